"""The ``neuralfields`` command: argument parsing only; each subcommand calls library functions.

Subcommands live in sibling modules that define ``register(subparsers)``; each registers a
parser whose ``handler`` default receives the parsed arguments. User errors
(:class:`~neuralfields.errors.NeuralFieldsError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..errors import NeuralFieldsError

COMMANDS = ["train", "eval", "render", "bake", "export", "fit", "distill", "view", "fields", "process"]  # module names in this package, in help order


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"warning: {message}\n"


class _Parser(argparse.ArgumentParser):
    """Argument errors print one ``error:`` line (and exit 2) like every other user error."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuralfields", description="Neural fields and 3D reconstruction in PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.handler(args) or 0)
    except NeuralFieldsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
