"""``neuralfields fields``: list the registered fields and their options."""

from __future__ import annotations

import argparse
import dataclasses
import re

from ..errors import NeuralFieldsError
from ..fields import FIELDS


def register(sub) -> None:
    p = sub.add_parser("fields", help="list the registered fields (usable with --field, --student, fit)",
                       description="List the registered fields, what each is, and its options with defaults.")
    p.add_argument("name", nargs="?", help="show only this field")
    p.add_argument("--options", action="store_true", help="also list every option and its default")
    p.set_defaults(handler=run)


def summary(cls: type) -> str:
    """First line of a field class's docstring, without reST markup."""
    line = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", line).replace("``", "")


def run(args: argparse.Namespace) -> int:
    names = sorted(FIELDS)
    if args.name:
        if args.name not in FIELDS:
            raise NeuralFieldsError(f"unknown field '{args.name}'; available: {', '.join(names)}")
        names = [args.name]
    for name in names:
        spec = FIELDS[name]
        kind = "dynamic" if spec.cls.time_dependent else "static"
        print(f"{name:14s} [{kind}] {summary(spec.cls)}")
        if args.options or args.name:
            for f in dataclasses.fields(spec.config_cls):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                print(f"    {f.name} = {default!r}")
    return 0
