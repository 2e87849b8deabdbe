"""The `arena` command's entry point (also `python -m arena`).

Bare `arena` opens the app straight away: building the typer CLI (every subcommand's options) and
importing typer cost ~80 ms that the first paint would otherwise wait for. Anything else goes to
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
