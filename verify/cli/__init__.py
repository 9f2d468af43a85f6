"""The `verify` command line: one entry point, one module per subcommand.

The inference commands live in this package (`verify/cli/<command>.py`). Commands that need a part installed on
top of the library are found lazily: `verify app` in `app.cli`, and `train`, `distill`, `ood fit` in
`training/commands/`; when that part is not installed the command is simply absent.

Each command module defines `register(subparsers)`, which adds its parser(s) and sets `func` to a callable
`(argparse.Namespace) -> int`. Errors raised by the library become exit code 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence

from verify.cli.common import print_json
from verify.errors import VerifyError
from verify.io import os_reason, shown_name

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose reader closed the pipe
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with code 2 and one line, as the CLI conventions ask."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.prog.endswith(" batch") and message.startswith("argument {merge}: invalid choice"):
            message += "; the input is named with --pairs: verify batch --pairs IN.csv --out OUT.csv"
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# The library's own subcommands: modules of this package.
COMMANDS = ("batch", "embed", "enroll", "eval", "export", "fuse", "gallery", "identify", "match", "synth")
# Subcommands of the parts on top of the library (command -> module), imported only when that part is installed.
PLUGINS = {
    "app": "app.cli",
    "distill": "training.commands.distill",
    "ood": "training.commands.ood",
    "train": "training.commands.train",
}


# Optional dependencies -> the extra that installs them (pyproject's [project.optional-dependencies]).
_EXTRAS = {"gradio": "app", "yaml": "train", "onnx": "export", "onnxruntime": "export", "ray": "distributed"}


def _command_modules() -> list[str]:
    """Module names of every available subcommand, in the order of their command names."""
    modules = {name: f"{__name__}.{name}" for name in COMMANDS}
    for name, module in PLUGINS.items():
        if importlib.util.find_spec(module.partition(".")[0]) is not None:
            modules[name] = module
    return [modules[name] for name in sorted(modules)]


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every discovered subcommand."""
    parser = _Parser(
        prog="verify",
        description="Face and signature verification: train, evaluate, enroll, match, identify, serve.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _command_modules():
        importlib.import_module(name).register(subparsers)
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
        code = int(func(args) or 0)
        sys.stdout.flush()  # a reader that left (`| head`) is found here, not at interpreter exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except sqlite3.DatabaseError as exc:  # damage PRAGMA quick_check did not see, found while reading
        advice = "restore it from a backup, or copy what can still be read with `verify gallery recover --gallery DIR`"
        return _fail(args, "GalleryError", f"gallery database: {exc}; {advice}")
    except VerifyError as exc:
        if args.debug:
            traceback.print_exc()
        return _fail(args, type(exc).__name__, str(exc))
    except OSError as exc:  # a path the file system refuses: a name too long, no permission, a full disk
        if args.debug:
            traceback.print_exc()
        return _fail(args, "FileSystemError", os_error_message(exc))
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        message = f"needs {exc.name}, which is not installed; pip install 'siamese-verify[{extra}]'"
        return _fail(args, "MissingDependency", message)
    except KeyboardInterrupt:
        print(f"verify {args.command}: interrupted", file=sys.stderr)
        if getattr(args, "json", False):
            print_json({"error": {"type": "Interrupted", "message": "interrupted"}, "exit_code": EXIT_INTERRUPTED})
        return EXIT_INTERRUPTED


def _fail(args: argparse.Namespace, kind: str, message: str) -> int:
    """Report an error that stops the command: one line on stderr and, with `--json`, one JSON object on stdout
    (`{"error": {"type": "InvalidImageError", "message": ...}}`) so that a machine caller reads what went wrong
    where it reads answers. Returns the exit code (2)."""
    print(f"verify {args.command}: error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json({"error": {"type": kind, "message": message}, "exit_code": EXIT_USAGE})
    return EXIT_USAGE


def os_error_message(exc: OSError) -> str:
    """An operating-system error as one line: the path (shortened when long) and the reason in words."""
    reason = os_reason(exc)
    return f"{shown_name(os.fsdecode(exc.filename))}: {reason}" if exc.filename is not None else reason


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the final flush at exit does not fail again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
