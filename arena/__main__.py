"""The `arena` command's entry point (also `python -m arena`).

Bare `arena` opens the app straight away, without building the typer CLI (every subcommand's options)
or importing typer, which the first paint would otherwise wait for (benchmarks/README.md). Anything else goes to
arena.cli.main.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) == 1:
        from .tui import launch

        try:
            launch()
        except KeyboardInterrupt:
            sys.exit(130)
        return
    from arena.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
