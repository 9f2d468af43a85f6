"""The `verify` command line: one entry point, one module per subcommand under `training/commands/`.

Each command module defines `register(subparsers)`, which adds its parser(s) and sets `func` to a callable
`(argparse.Namespace) -> int`. Errors raised by the library become exit code 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from verify.errors import VerifyError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with code 2 and one line, as the CLI conventions ask."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _command_modules() -> list[str]:
    import training.commands as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every discovered subcommand."""
    parser = _Parser(
        prog="verify",
        description="Face and signature verification: train, evaluate, enroll, match, identify, serve.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _command_modules():
        module = importlib.import_module(f"training.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 some input failed, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(func(args) or 0)
    except VerifyError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"verify {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"verify {args.command}: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
