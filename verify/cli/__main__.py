"""`python -m verify.cli ...`: the same as the `verify` command (e.g. under `torchrun`)."""

from __future__ import annotations

import sys

from verify.cli import main

if __name__ == "__main__":
    sys.exit(main())
