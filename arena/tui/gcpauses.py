"""Short garbage-collector pauses for the app's process (called once, by `arena` and `arena attach`).

Python's cyclic collector holds every thread while it runs, and a full collection walks every container
object of the process: the app's process holds ~150,000 (imported modules, pydantic's schemas, Textual's
widgets) and, under a running tournament, decodes and drops thousands of tree nodes a second. Measured
under benchmarks/tui_load.py's two loads: a full collection about once a second, 45-85 ms each, the main
share of the slowest key presses.

`quiet()` runs once after the first paint: what exists then lives as long as the app, so it is moved out
of the collector's sight (gc.freeze), and the young generation is collected after 10,000 allocations
instead of 700, so that a tree decoded and dropped between two collections is never walked twice. The
same loads then saw no full collection in 10 s, and young ones of 0.5-11 ms.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between two young collections (Python's default: 700)


def quiet() -> None:
    gc.collect()  # (garbage now would otherwise be frozen with the rest)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG, older, oldest)
