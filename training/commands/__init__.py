"""Subcommands of the `verify` CLI, one module each; discovered by `training.cli`."""
