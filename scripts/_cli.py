"""Command-line pieces shared by the scripts (not an entry point): the library parses no command line.

``add_override_argument`` is training's repeatable ``--set KEY=VALUE`` (the values are parsed by
medenc.training.recipe); ``with_env_args`` adds the extra arguments ``make`` passes in the environment
(``TRAIN_ARGS`` as ``MEDENC_TRAIN_ARGS``, ...); ``parse_bench_args`` builds the benchmark's command line from
:class:`medenc.bench.BenchConfig`'s fields, so each option is defined once, as a field.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import types
import typing
from dataclasses import fields
from typing import Any

from medenc.bench.options import BenchConfig


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) on a parser, as training and the benchmark take it."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. phase2.batch_size=16 (repeatable)",
    )


def with_env_args(argv: list[str] | None, variable: str) -> list[str]:
    """``argv`` as given, or the command line followed by the words of ``$variable``.

    ``make train TRAIN_ARGS="..."`` never pastes the value into a shell line (a quote in it could end the
    quoting and run the rest): the Makefile passes it in the environment as ``MEDENC_TRAIN_ARGS``, split here
    into words as a shell would (quotes group words, ``--set 'k=a b'`` is one value), expanding and running
    nothing. Unbalanced quotes are a usage error (exit 2).
    """
    if argv is not None:
        return list(argv)
    value = os.environ.get(variable, "")
    try:
        extra = shlex.split(value)
    except ValueError as exc:
        name = variable.removeprefix("MEDENC_")
        example = f"{name}=\"--set 'key=a b'\""
        print(f"error: {name}={value!r}: {exc}; quote a value with spaces, e.g. {example}", file=sys.stderr)
        sys.exit(2)
    return [*sys.argv[1:], *extra]


def _value_type(hint: Any) -> Any:
    """The parser of a field's values: its type, without the ``| None`` of an optional one."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def bench_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The command line of :class:`BenchConfig`: each field a ``--field-name`` with its metadata's help,
    choices and parser; a bool that defaults to True a ``--no-field-name``; ``overrides`` training's
    ``--set``; a field with ``metadata={"cli": False}`` stays off."""
    parser = argparse.ArgumentParser(description=description)
    hints = typing.get_type_hints(BenchConfig)
    for f in fields(BenchConfig):
        if not f.metadata.get("cli", True):
            continue
        if f.name == "overrides":
            add_override_argument(parser)  # dest "overrides", like this field
            continue
        flag = "--" + f.name.replace("_", "-")
        extra = {k: v for k, v in f.metadata.items() if k in ("choices", "help", "metavar")}
        if hints[f.name] is bool:
            if f.default is True:
                parser.add_argument(f"--no-{flag[2:]}", dest=f.name, action="store_false", **extra)
            else:
                parser.add_argument(flag, action="store_true", **extra)
            continue
        value_type = f.metadata.get("type", _value_type(hints[f.name]))
        parser.add_argument(flag, type=value_type, default=f.default, **extra)
    return parser


def parse_bench_args(argv: list[str] | None = None, description: str | None = None) -> BenchConfig:
    """A :class:`BenchConfig` from the command line (``sys.argv[1:]`` unless ``argv``)."""
    values = vars(bench_parser(description).parse_args(argv))
    values["overrides"] = tuple(values["overrides"])
    return BenchConfig(**values)
