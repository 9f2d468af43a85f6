"""Subcommands of the `verify` CLI that need training (train, distill, ood fit); found lazily by `verify.cli`."""
