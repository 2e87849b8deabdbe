"""What a provider's calls cost in a run: counts, retries, failures by kind, latency, outages, replicas;
and the one line the end-of-run summary prints per provider (CLI and app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from arena.llm.pool import replicas_line


@dataclass
class ProviderStats:
    calls: int = 0  # logical requests (each may take several attempts)
    attempts: int = 0
    retries: int = 0  # attempts after a call's first
    retried: int = 0  # calls that needed more than one attempt
    failed: int = 0  # requests that failed after all attempts
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)  # failed attempts by kind (HTTP 429, timeout, ...)
    outages: int = 0  # times the provider (in a pool: a replica) was down (see outage.py)
    down_s: float = 0.0
    replicas: dict[str, dict] = field(default_factory=dict)  # per replica URL: answered, failed, latency_ms, ...

    def as_dict(self) -> dict:
        return {**self.__dict__, "errors": dict(self.errors), "replicas": {k: dict(v) for k, v in self.replicas.items()}}


def stats_line(name: str, s: dict) -> str:
    """One provider's share of a run, for the end-of-run summary (CLI and TUI)."""
    line = (f"provider {name}: {s['calls']} calls ({s.get('retried', 0)} retried, {s['failed']} failed), "
            f"{s['cached']} from cache, {s['attempts']} attempts")
    errors = s.get("errors") or {}
    if errors:
        kinds = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
        line += f"; {sum(errors.values())} failed attempts: " + ", ".join(f"{n} {k}" for k, n in kinds)
    if s.get("outages"):
        line += f"; down {s['outages']} time(s), {s.get('down_s', 0.0):.1f}s in all"
    answers = s.get("answers") or {}
    if answers:  # what the first answers were (prompts.FORMS): why a refusal rate is what it is
        line += "; first answers: " + ", ".join(f"{n} {k}" for k, n in answers.items())
    for endpoint, mode in (s.get("structured") or {}).items():
        line += f"; structured output at {endpoint}: {mode}"
    if len(s.get("replicas") or {}) > 1:
        line += f"; replicas: {replicas_line(s['replicas'])}"
    return line
