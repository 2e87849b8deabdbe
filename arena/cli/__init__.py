"""The `arena` command line: subcommands and headless progress display."""
