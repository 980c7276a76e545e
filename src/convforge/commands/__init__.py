"""Subcommands of the `convforge` CLI: each module has add_arguments(parser) and run(args) -> int."""
