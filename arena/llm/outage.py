"""Telling a provider that is down from a call that fails, so that an outage costs time, not trials.

A call normally gets `max_attempts` attempts. When a provider fails `outage_after` attempts in a row
(with no success in between, from at least two different calls) it counts as *down*. A failed attempt
sent while the provider is down is *excused*: it does not count against its call's attempts, so calls
keep retrying (backoff capped at `backoff_max`) for as long as the provider has been down less than
`outage_wait` seconds; after that their failures count again, and calls fail after their own
attempts. The first answer to a request sent after the outage began ends it. A single request that
always fails (its own fault, not the provider's) never makes a streak from two calls alone, so it
still fails after its own attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ProviderHealth:
    """Attempts are judged by when they were *sent* (`started`, on `clock`): an answer to a request
    sent before a streak of failures began says nothing about the provider now, and neither does a
    failure of a request sent before the latest answered one."""

    outage_after: int
    outage_wait: float
    clock: Callable[[], float] = time.monotonic
    failures_in_row: int = 0
    streak_calls: set[int] = field(default_factory=set)
    streak_start: float | None = None  # when the first failed attempt of the current streak was sent
    last_ok_start: float = float("-inf")  # when the latest answered attempt was sent
    down_since: float | None = None
    outage_from: float | None = None  # when the first failed attempt of the current outage was sent
    last_outage: tuple[float, float] | None = None  # the last outage's excused sending times [from, to)
    outages: int = 0
    down_s: float = 0.0  # time spent down, over the outages that ended
    gave_up: bool = False  # the current outage outlasted outage_wait

    def failed(self, call: int, started: float) -> bool:
        """A retriable failure of call number `call`; True when it makes the provider count as down."""
        if started < self.last_ok_start:
            return False
        if self.streak_start is None:
            self.streak_start = started
        self.failures_in_row += 1
        self.streak_calls.add(call)
        if self.down_since is None and self.failures_in_row >= self.outage_after and len(self.streak_calls) >= 2:
            self.down_since = self.clock()
            self.outage_from = self.streak_start
            self.outages += 1
            self.gave_up = False
            return True
        return False

    def succeeded(self, started: float) -> float | None:
        """An answer; returns how long the provider was down if this ends an outage."""
        self.last_ok_start = max(self.last_ok_start, started)
        if self.streak_start is not None and started < self.streak_start:
            return None
        self.failures_in_row = 0
        self.streak_calls.clear()
        self.streak_start = None
        if self.down_since is None:
            return None
        down = self.clock() - self.down_since
        self.down_s += down
        start = self.outage_from if self.outage_from is not None else started
        # attempts sent during it are excused, but not past outage_wait (their calls were no longer waiting)
        self.last_outage = (start, min(started, self.down_since + self.outage_wait)) if self.outage_wait > 0 else None
        self.down_since = None
        return down

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def waiting(self) -> bool:
        """Whether a call out of attempts should keep waiting for the provider to come back."""
        return self.down_since is not None and self.clock() - self.down_since < self.outage_wait

    def excuses(self, started: float) -> bool:
        """Whether a failed attempt sent at `started` is the outage's fault, not its call's."""
        if self.down_since is not None:
            return self.waiting()
        return self.last_outage is not None and self.last_outage[0] <= started < self.last_outage[1]

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else self.clock() - self.down_since
