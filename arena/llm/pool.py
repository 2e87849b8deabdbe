"""Endpoint pools: one provider served by several replicas of a model server (`base_urls` in providers.yaml).

Each replica has its own concurrency gate and rate limiter (`concurrency` and `rpm` apply per replica;
the pool's capacity is their sum) and its own health (outage.py). An attempt goes to the replica with
the fewest calls in flight among those that are up (ties in turn), never back to the replica that just
failed the same call when another is up. A replica that is down gets no calls but one probe every
`probe_every` seconds (a real call: its answer ends the outage and the replica rejoins). A failed
attempt on a replica that is down is excused while another replica is up, so a dead replica costs
time, never a trial; only when every replica is down do the provider's `outage_wait` rules apply.

A provider with one base URL is a pool of one replica: the same code path, with one replica to choose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from arena.llm.gate import Gate
from arena.llm.outage import ProviderHealth


@dataclass
class ReplicaStats:
    answered: int = 0  # attempts that got an answer
    failed: int = 0  # attempts that failed
    latency_ms: float = 0.0  # over answered attempts

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Replica:
    """One model server of a pool."""

    index: int
    url: str  # as configured (may hold credentials: never shown; see `label`)
    label: str  # the URL without credentials: what llm_calls and the summary show
    concurrency: int
    rpm: float | None
    health: ProviderHealth
    in_flight: int = 0
    next_probe: float = 0.0
    stats: ReplicaStats = field(default_factory=ReplicaStats)
    client: object | None = None  # the replica's transport (transport.py), made on first use by the provider

    def __post_init__(self) -> None:
        self.gate = Gate(self.concurrency)
        self.limiter = None
        if self.rpm:
            from aiolimiter import AsyncLimiter

            # a leaky bucket of one request per 60/rpm seconds (bursts of at most a sixth of a minute)
            burst = max(1.0, self.rpm / 6)
            self.limiter = AsyncLimiter(burst, 60.0 * burst / self.rpm)


class EndpointPool:
    """The replicas of one provider and the choice of the replica for each attempt."""

    def __init__(self, urls: list[str], labels: list[str], *, concurrency: int, rpm: float | None,
                 outage_after: int, outage_wait: float, probe_every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        if not urls:
            raise ValueError("a pool needs at least one URL")
        self.replicas = [Replica(i, u, lab, concurrency, rpm, ProviderHealth(outage_after, outage_wait, clock))
                         for i, (u, lab) in enumerate(zip(urls, labels))]
        self.gate = Gate(concurrency * len(urls))  # the pool's capacity: the sum of its replicas'
        self.probe_every = probe_every
        self.clock = clock
        self._turn = 0

    def __len__(self) -> int:
        return len(self.replicas)

    def up(self) -> list[Replica]:
        return [r for r in self.replicas if not r.health.down]

    def pick(self, avoid: Replica | None = None) -> Replica:
        """The replica for the next attempt (its in-flight count is taken by the caller)."""
        if len(self.replicas) == 1:  # a provider of one endpoint: it gets every attempt, up or down
            return self.replicas[0]
        now = self.clock()
        up = self.up()
        if up and len(up) < len(self.replicas):
            for r in self.replicas:  # a down replica due for a probe gets this attempt
                if r.health.down and now >= r.next_probe and r is not avoid:
                    r.next_probe = now + self.probe_every
                    return r
        candidates = [r for r in up if r is not avoid] or up or self.replicas
        least = min(r.in_flight for r in candidates)
        ties = [r for r in candidates if r.in_flight == least]
        n = len(self.replicas)
        chosen = min(ties, key=lambda r: (r.index - self._turn) % n)
        self._turn = (chosen.index + 1) % n
        return chosen

    def went_down(self, replica: Replica) -> None:
        replica.next_probe = self.clock() + self.probe_every

    def has_other(self, replica: Replica | None) -> bool:
        """Whether another replica than `replica` is up (a retry may go there at once)."""
        return replica is not None and any(r is not replica for r in self.up())

    def excuses(self, replica: Replica, sent: float) -> bool:
        """Whether a failed attempt sent at `sent` to `replica` is an outage's fault, not its call's:
        the replica's own outage rules, or the replica is down while another one is up."""
        if replica.health.excuses(sent):
            return True
        return replica.health.down and len(self.up()) > 0

    def all_down(self) -> bool:
        return not self.up()

    def stats(self) -> dict[str, dict]:
        return {r.label: {**r.stats.as_dict(), "outages": r.health.outages, "down_s": round(r.health.down_s, 3)}
                for r in self.replicas}


def replicas_line(replicas: dict[str, dict]) -> str:
    """Per-replica counts for the provider summary line: 'url 12 calls, 0 failed, 105 ms'."""
    parts = []
    for label, s in replicas.items():
        mean = f"{s['latency_ms'] / s['answered']:.0f} ms" if s.get("answered") else "no answer"
        part = f"{label} {s.get('answered', 0)} answered, {s.get('failed', 0)} failed, {mean}"
        if s.get("outages"):
            part += f", down {s['outages']}x"
        parts.append(part)
    return "; ".join(parts)
