"""The shape of the package, checked: one package per stage, imports flow one way, short functions.

Data flows data -> training -> evaluation -> export -> release; ``core`` is shared plumbing every stage may
import and that imports no stage; the bench (over training) and gpu (the transport to a GPU machine) are
tools that nothing imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

from medenc.core.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "medenc"
ORDER = ["core", "data", "training", "evaluation", "export", "release"]
# What each stage may import besides itself.
ALLOWED = {stage: set(ORDER[: ORDER.index(stage)]) for stage in ORDER}
ALLOWED["bench"] = {"core", "data", "training"}
ALLOWED["gpu"] = {"core"}  # the GPU machine's transport (scripts/gpu_transport.py), which nothing imports
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _stage(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imported_stages(path: Path) -> set[str]:
    """The medenc stages a module imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out |= {n.split(".")[1] for n in names if n.startswith("medenc.") and n.count(".") >= 1}
    return out


def test_every_module_sits_in_a_stage_package():
    assert {_stage(p) for p in _modules() if p.parent != PACKAGE} <= set(ALLOWED)
    assert [p.name for p in _modules() if p.parent == PACKAGE] == ["__init__.py"]


def test_imports_flow_one_way():
    wrong = {
        str(p.relative_to(PROJECT_ROOT)): sorted(_imported_stages(p) - ALLOWED[_stage(p)] - {_stage(p)})
        for p in _modules()
        if p.parent != PACKAGE
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_library_functions_read_in_one_screen():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_scripts_are_thin_and_import_the_installed_package():
    for script in (PROJECT_ROOT / "scripts").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        assert "sys.path" not in text, script
        assert script.stem not in {"evaluate", "datasets", "transformers", "accelerate"}, script


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports only a type checker runs."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _medenc_imports(path: Path, modules: set[str]) -> set[str]:
    """The medenc modules a module imports, at module level or inside functions (a deferred import still
    runs; pins.py and prepare.py once imported each other that way), not under ``if TYPE_CHECKING:``.

    ``from medenc.x import y`` counts as importing ``medenc.x.y`` where that is a module, else ``medenc.x``.
    """
    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out |= {full} if full in modules else ({node.module} & modules)
        elif not _is_type_checking(node):
            todo += ast.iter_child_nodes(node)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (module -> modules it imports), or [] where there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod: str) -> list[str]:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[mod] = 2
        path.pop()
        return []

    for mod in sorted(graph):
        if mod not in state and (found := visit(mod)):
            return found
    return []


def test_no_import_circle_inside_the_package():
    names = {_module_name(p): p for p in _modules()}
    graph = {mod: _medenc_imports(p, set(names)) - {mod} for mod, p in names.items()}
    assert _cycle(graph) == []
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check finds one
