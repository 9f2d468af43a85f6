"""`python -m app [flags]`: the same as `verify app [flags]`."""

from __future__ import annotations

import sys

from verify.cli import main

if __name__ == "__main__":
    sys.exit(main(["app", *sys.argv[1:]]))
