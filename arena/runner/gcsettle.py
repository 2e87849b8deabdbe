"""The garbage collector of a process that runs a tournament (`arena run`/`resume`, a runner process).

Python's cyclic collector walks every container object of the generation it collects, and a full collection
walks them all: the modules, pydantic's schemas and the library, which live as long as the process, and the
batch of finished trials the runner holds until it writes them. `settle()`, called once the tournament is
set up and before it runs, collects what is garbage then and moves everything that is left out of the
collector's sight (gc.freeze), so that a full collection walks only what the run itself made. What is frozen is
still freed when its last reference goes (reference counting); only a cycle among frozen objects stays.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect now, then freeze what is left (see the module's docstring)."""
    gc.collect()
    gc.freeze()
