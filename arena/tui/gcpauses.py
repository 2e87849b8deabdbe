"""Short garbage-collector pauses for the app's process (called once, by `arena` and `arena attach`).

Python's cyclic collector holds every thread while it runs, and a full collection walks every container
object of the process: the app's process holds a great many (imported modules, pydantic's schemas,
Textual's widgets) and, under a running tournament, decodes and drops thousands of tree nodes a second,
so full collections come often and are the main share of the slowest key presses (benchmarks/README.md
has the pauses measured under benchmarks/tui_load.py's loads, before and after).

`quiet()` runs once after the first paint: what exists then lives as long as the app, so it is moved out
of the collector's sight (gc.freeze), and the young generation is collected after 10,000 allocations
instead of 700, so that a tree decoded and dropped between two collections is never walked twice.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between two young collections (Python's default: 700)


def quiet() -> None:
    gc.collect()  # (garbage now would otherwise be frozen with the rest)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG, older, oldest)
