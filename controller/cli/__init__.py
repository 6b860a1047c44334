"""The `sluice` command line (typer + rich). Subcommands live one per module."""
