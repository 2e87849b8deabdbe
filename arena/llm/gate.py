"""A cap on calls in flight whose acquire and release cost O(1) however many calls wait.

asyncio.Semaphore (Python 3.11) scans its waiters on every acquire (`locked()` looks for one not cancelled),
so with hundreds of calls queued behind a provider's cap each acquire costs time linear in the queue. A call
passes three such caps (the pool's, the tournament's, the replica's). Gate keeps a count of free slots and a
FIFO of waiting futures; a release hands its slot straight to the first live waiter (first come, first
served, as Semaphore), so a waiter woken is never overtaken by a newcomer.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Gate:
    """At most `slots` holders at once (`async with gate:`), FIFO among those that wait."""

    __slots__ = ("slots", "_free", "_waiters")

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"a gate needs at least one slot, not {slots}")
        self.slots = slots
        self._free = slots
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def in_use(self) -> int:
        return self.slots - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # resolved by release(), which hands this waiter its slot
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed a slot, cancelled before using it: pass it on
                self.release()
            raise  # (a cancelled future stays queued; release skips it)

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot goes to this waiter: _free is unchanged
                return
        self._free += 1
        if self._free > self.slots:
            raise RuntimeError("Gate released more often than acquired")

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc) -> None:
        self.release()
