"""Typed events a running tournament emits; the TUI and the CLI progress display consume them.

Frozen slotted dataclasses (not pydantic): a built-in tournament emits them at high rates, and they
carry records the core already built. Consumers must treat the carried nodes and results as
read-only snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from arena.engine.records import Node, TrialResult, TrialSpec


@dataclass(frozen=True, slots=True)
class TournamentStarted:
    tournament_id: int
    total: int
    already_done: int  # trials found stored (resume)
    config: dict


@dataclass(frozen=True, slots=True)
class TrialPlanned:
    """An LLM trial's simulation tree, all nodes pending (no program has acted yet)."""

    tournament_id: int
    spec: TrialSpec
    nodes: list[Node]


@dataclass(frozen=True, slots=True)
class NodeResolved:
    """One node of an LLM trial got its action (or failed), with the LLM calls it made."""

    tournament_id: int
    spec: TrialSpec
    node: Node


@dataclass(frozen=True, slots=True)
class TrialsFinished:
    """Trials stored in the database (one for LLM trials, a batch for built-in bots)."""

    tournament_id: int
    results: list[TrialResult]
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should see: a retry storm, a provider down, a pause."""

    message: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True, slots=True)
class TournamentFinished:
    tournament_id: int
    status: str  # finished | cancelled | failed
    done: int
    total: int
    counts: dict = field(default_factory=dict)  # trials by status written in this run
    elapsed_s: float = 0.0
    error: str | None = None
    providers: dict = field(default_factory=dict)  # per provider: calls, attempts, retries, failed, cached, ...


Event = TournamentStarted | TrialPlanned | NodeResolved | TrialsFinished | Notice | TournamentFinished
Sink = Callable[[Event], None]
