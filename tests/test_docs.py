"""The documentation's shape: the README stays a product page, and no relative link points nowhere."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def doc_files() -> list[Path]:
    """The pages a reader navigates: the README, docs/, and the committed results' READMEs and notes."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    pages += [*sorted((REPO / "results").glob("**/README.md")), REPO / "results" / "ablation.md"]
    return [p for p in pages if p.is_file()]


def relative_links(text: str) -> list[str]:
    """Link targets that are paths in this tree (no URL, no mail, no in-page anchor), code left out."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    missing = [t for t in relative_links(page.read_text(encoding="utf-8")) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to paths that do not exist: {missing}"


def test_readme_is_a_page() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_link_pattern_finds_what_it_should() -> None:
    text = "[a](docs/x.md) ![b](img.png#frag) [c](https://h.io) [d](#top) `[e](no.md)`\n```\n[f](n.md)\n```\n"
    assert relative_links(text) == ["docs/x.md", "img.png"]


def test_readme_results_are_the_published_runs_own_figures(repo_root: Path) -> None:
    """Every row of the README's results table is written from results/cpu/results.json (headline_rows), in
    one block: the zero-shot group's row and its sets, then the in-domain group's."""
    import json

    from medenc.core.eval_sets import EVAL_SETS, IN_DOMAIN, ZERO_SHOT
    from medenc.evaluation.results import Results
    from medenc.release.publish import group_row, headline_rows

    path = repo_root / "results" / "cpu" / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    rows = headline_rows(Results.load(path))
    assert len(rows) == len(results["sets"]) + 2 and "\n".join(rows) in readme
    first, second = rows.index(group_row(ZERO_SHOT)), rows.index(group_row(IN_DOMAIN))
    assert first == 0
    for name, info in results["sets"].items():
        at = next(i for i, r in enumerate(rows) if r.startswith(f"| {info['title']} (n="))
        assert (at < second) is EVAL_SETS[name].zero_shot, name


def test_headline_rows_group_a_new_zero_shot_set_with_the_others(repo_root: Path) -> None:
    """A zero-shot set (nfcorpus_dev) in a results.json lands in the zero-shot group, ahead of in-domain."""
    import copy
    import json

    from medenc.core.eval_sets import IN_DOMAIN
    from medenc.evaluation.results import Results
    from medenc.release.publish import group_row, headline_rows

    path = repo_root / "results" / "cpu" / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    doc = copy.deepcopy(results)
    title = "Lay question -> PubMed abstract (NFCorpus dev)"
    doc["sets"]["nfcorpus_dev"] = {**doc["sets"]["pubmedqa"], "title": title, "n": 287}
    for per_model in (doc["results"], doc["deltas"]):
        for model in per_model:
            per_model[model]["nfcorpus_dev"] = per_model[model]["pubmedqa"]
    rows = headline_rows(Results.from_doc(doc, path))
    at = next(i for i, r in enumerate(rows) if r.startswith(f"| {title} (n=287) | ndcg@10 |"))
    assert at < rows.index(group_row(IN_DOMAIN))


def test_readme_serving_figures_are_the_published_runs_own(repo_root: Path) -> None:
    """The README's serving sentence is written from results/cpu/results.json's export figures."""
    from medenc.evaluation.results import Results
    from medenc.release.publish import serving_line

    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert serving_line(Results.load(repo_root / "results" / "cpu" / "results.json")) in " ".join(
        readme.split()
    )


# A test file named in prose: tests/<name>.py, optionally ::test_function.
NAMED_TEST = re.compile(r"tests/(test_\w+|fakes|conftest|hub_server)\.py(?:::(\w+))?")


def test_test_files_named_in_docs_and_code_exist() -> None:
    """A renamed or split test module leaves no page, docstring or comment pointing at the old name."""
    texts = [*doc_files(), *sorted(REPO.glob("medenc/**/*.py")), *sorted(REPO.glob("tests/*.py"))]
    texts += [*sorted(REPO.glob("tools/*.py")), REPO / "Makefile", REPO / "pyproject.toml"]
    missing = set()
    for path in texts:
        for name, function in NAMED_TEST.findall(path.read_text(encoding="utf-8")):
            module = REPO / "tests" / f"{name}.py"
            if not module.is_file() or (function and f"def {function}(" not in module.read_text("utf-8")):
                missing.add(f"{path.relative_to(REPO)}: tests/{name}.py{'::' + function if function else ''}")
    assert not missing, sorted(missing)
