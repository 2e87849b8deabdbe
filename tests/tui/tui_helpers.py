"""Helpers for the TUI tests."""

from __future__ import annotations


async def wait_for(pilot, predicate, timeout: float = 10.0, step: float = 0.05):
    import time

    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(step)
