"""Calling a provider: one OpenAI-compatible transport per replica (transport.py: aiohttp, or the openai SDK),
with the provider's concurrency and rate limits and Arena's own retries (exponential backoff with jitter, honouring
Retry-After; the client's retries off), so that every attempt is recorded in `llm_calls`. Error texts
pass through `redact` before they are recorded anywhere; keys come only from the environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from arena.engine.records import CallRecord
from arena.errors import ArenaError
from arena.llm.gate import Gate
from arena.llm.pool import EndpointPool, Replica
from arena.llm.redaction import public_url, redact, split_credentials
from arena.llm.registry import ProviderSpec
from arena.llm.stats import ProviderStats
from arena.llm.structured import rejects_format


class ProviderUnusable(ArenaError):
    """Authentication, permission or model-not-found: every call would fail, so the run stops."""


class EmptyAnswer(Exception):
    """A 200 response with no content."""


@dataclass
class Reply:
    text: str | None
    error: str | None = None
    format_rejected: bool = False  # a 4xx naming response_format (structured.py: the endpoint falls back)


@dataclass
class ProviderClient:
    """One provider's client with its concurrency limit, rate limit and retry policy."""

    spec: ProviderSpec
    base_url: str
    api_key: str | None
    secrets: list[str] = field(default_factory=list)
    shared_gate: Gate | None = None  # the tournament's cap on calls in flight, over all providers
    stats: ProviderStats = field(default_factory=ProviderStats)
    notify: Callable[[str, str], None] = lambda message, level: None  # (message, info | warning | error)
    base_urls: list[str] | None = None  # a pool's replicas (see pool.py); None: base_url alone

    def __post_init__(self) -> None:
        self._next_call = 0
        urls = list(self.base_urls or [self.base_url])
        self.pool = EndpointPool(urls, [public_url(u) or "" for u in urls],
                                 concurrency=self.spec.concurrency, rpm=self.spec.rpm,
                                 outage_after=self.spec.outage_after, outage_wait=self.spec.outage_wait,
                                 probe_every=max(0.05, min(self.spec.backoff_max, 2.0)))
        self.health = self.pool.replicas[0].health  # a provider of one endpoint: that endpoint's health

    def _client_for(self, replica: Replica):
        """A replica's transport (transport.py: the spec's `transport`), made on first use: a run served from
        the cache never needs one."""
        if replica.client is None:
            from arena.llm.transport import TRANSPORTS

            # Credentials in the URL would go out as Basic auth *instead of* the key: the key is sent as a
            # bearer token, the URL's password only stands in for a key that is not set.
            url, url_key = split_credentials(replica.url)
            replica.client = TRANSPORTS[self.spec.transport](url, self.api_key or url_key or "no-key",
                                                             timeout=self.spec.timeout)
        return replica.client

    @property
    def client(self):
        return self._client_for(self.pool.replicas[0])

    async def aclose(self) -> None:
        for r in self.pool.replicas:
            if r.client is not None:
                await r.client.aclose()
                r.client = None

    async def complete(self, *, model: str, messages: list[dict], temperature: float, max_tokens: int,
                       seed: int | None, response_format: dict | None, calls: list[CallRecord],
                       purpose: str = "answer", grammar: str | None = None, mode: str | None = None,
                       extra: dict | None = None) -> Reply:
        """One logical request: attempts until an answer or a final failure; each attempt is appended
        to `calls`. Raises ProviderUnusable on 401/403/404 (a systematic failure). `extra` goes into the
        request body as is (e.g. llama.cpp's `id_slot`); it is not recorded in the call's params."""
        import openai

        params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "purpose": purpose}
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature,
                                  "max_tokens": max_tokens}
        if seed is not None and self.spec.send_seed:
            kwargs["seed"] = params["seed"] = seed
        if response_format is not None:
            kwargs["response_format"] = response_format
            params["constraint"] = response_format.get("type")
        if grammar is not None:  # llama.cpp's GBNF constraint
            kwargs["grammar"], params["constraint"] = grammar, "grammar"
        if mode is not None:
            params["structured"] = mode
        if extra:
            kwargs.update(extra)
        self.stats.calls += 1
        self._next_call += 1
        call_no = self._next_call
        attempt_no = 0
        charged = [0]  # failed attempts that count against this call (not excused by an outage)
        last: list[Replica | None] = [None]  # the replica of the latest failed attempt
        try:
            # each failed attempt: not retriable, re-raised; else the wait before the next (another replica is up:
            # none), then the stop (_stop), re-raising the attempt's error; else a sleep (of 0 too) and the next
            while True:
                try:
                    attempt_no += 1
                    record = CallRecord(self.spec.name, model, messages, attempt=attempt_no, params=dict(params),
                                        started_at=time.time())
                    calls.append(record)
                    if attempt_no > 1:
                        self.stats.retries += 1
                        self.stats.retried += attempt_no == 2
                    self.stats.attempts += 1
                    t0 = time.perf_counter()
                    replica = None
                    sent = self.pool.clock()
                    try:
                        # this provider's slot first, then the tournament's: a call waiting for a busy
                        # provider never holds a slot that a call to another provider could use; the
                        # replica is chosen last, when the call can go (pool.py)
                        async with self.pool.gate, self.shared_gate or nullcontext():
                            replica = self.pool.pick(avoid=last[0])
                            replica.in_flight += 1
                            try:
                                async with replica.gate:
                                    if replica.limiter is not None:
                                        await replica.limiter.acquire()
                                    t0 = time.perf_counter()
                                    sent = replica.health.clock()
                                    record.replica = replica.label
                                    resp = await self._client_for(replica).chat(kwargs)
                            finally:
                                replica.in_flight -= 1
                        text = resp.content
                        record.latency_ms = (time.perf_counter() - t0) * 1000
                        self.stats.latency_ms += record.latency_ms
                        if resp.prompt_tokens is not None or resp.completion_tokens is not None:
                            record.prompt_tokens = resp.prompt_tokens
                            record.completion_tokens = resp.completion_tokens
                            self.stats.prompt_tokens += resp.prompt_tokens or 0
                            self.stats.completion_tokens += resp.completion_tokens or 0
                        if not text or not text.strip():
                            raise EmptyAnswer("empty answer (no content)")
                        # a reply that echoes a key (a hostile proxy) keeps no key, bearer token or password
                        text = redact(text, self.secrets) or text
                        record.response = text
                        replica.stats.answered += 1
                        replica.stats.latency_ms += record.latency_ms
                        self._answered(replica, sent)
                        return Reply(text)
                    except Exception as exc:
                        record.latency_ms = record.latency_ms or (time.perf_counter() - t0) * 1000
                        record.status = "error"
                        record.error = clip(redact(describe(exc), self.secrets))
                        kind = error_kind(exc)
                        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
                        if replica is not None:
                            replica.stats.failed += 1
                        if _retriable(exc) and replica is not None:
                            self._failed(replica, call_no, sent, record.error)
                            charged[0] += not self.pool.excuses(replica, sent)
                            last[0] = replica
                        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError,
                                            openai.NotFoundError)):
                            raise ProviderUnusable(
                                f"provider '{self.spec.name}' refused model '{model}': {record.error}") from None
                        raise
                except Exception as exc:
                    if not _retriable(exc):
                        raise
                    delay = 0.0 if self.pool.has_other(last[0]) else self._wait(exc, attempt_no)
                    if self._stop(charged[0]):
                        raise
                    await asyncio.sleep(delay)
        except ProviderUnusable:
            self.stats.failed += 1
            raise
        except (openai.APIError, EmptyAnswer, ValueError) as exc:  # the provider's failure; any other is Arena's bug
            rejected = response_format is not None and rejects_format(exc)
            self.stats.failed += not rejected  # a rejected format is asked again in free text (service.py)
            last = calls[-1].error if calls else "unknown error"
            return Reply(None, f"{self.spec.name}: failed after {attempt_no} attempt(s): {last}", rejected)
        raise AssertionError("unreachable")  # pragma: no cover

    def _who(self, replica: Replica) -> str:
        return (f"provider '{self.spec.name}'" if len(self.pool) == 1
                else f"replica {replica.label} of provider '{self.spec.name}'")

    def _sync_stats(self) -> None:
        reps = self.pool.replicas
        self.stats.outages = sum(r.health.outages for r in reps)
        self.stats.down_s = sum(r.health.down_s for r in reps)
        if len(reps) > 1:
            self.stats.replicas = self.pool.stats()

    def _answered(self, replica: Replica, sent: float) -> None:
        down = replica.health.succeeded(sent)
        if down is not None:
            self._sync_stats()
            self.notify(f"{self._who(replica)} answers again after {down:.0f}s down", "info")
        elif len(self.pool) > 1:
            self.stats.replicas = self.pool.stats()

    def _failed(self, replica: Replica, call_no: int, sent: float, error: str | None) -> None:
        if replica.health.failed(call_no, sent):
            self.pool.went_down(replica)
            self._sync_stats()
            then = (f"its calls keep retrying for up to {self.spec.outage_wait:g}s" if len(self.pool) == 1
                    else "its calls go to the other replicas; it is probed and rejoins when it answers")
            self.notify(f"{self._who(replica)} looks down ({replica.health.failures_in_row} failed attempts in a "
                        f"row, last: {error}); {then}", "warning")
        elif len(self.pool) > 1:
            self.stats.replicas = self.pool.stats()

    def _stop(self, charged: int) -> bool:
        """Out of attempts: `max_attempts` failed attempts that no outage excuses (see outage.py, pool.py)."""
        if charged < self.spec.max_attempts:
            return False
        reps = [r.health for r in self.pool.replicas]
        if all(h.down for h in reps) and not any(h.waiting() for h in reps) and not all(h.gave_up for h in reps):
            for h in reps:
                h.gave_up = True
            what = f"provider '{self.spec.name}'" if len(reps) == 1 else f"every replica of provider '{self.spec.name}'"
            self.notify(f"{what} has been down for {min(h.down_for() for h in reps):.0f}s: its calls "
                        "now fail after their own attempts (failed trials are recorded) until it answers again",
                        "error")
        return True

    def _wait(self, exc: BaseException | None, attempts: int) -> float:
        """The wait after a call's `attempts`-th failed attempt (`exc`): Retry-After when the server gives one
        (capped), else exponential backoff with full jitter."""
        import random

        after = retry_after(exc)
        if after is not None:
            return min(after, self.spec.retry_after_max)
        # the exponent capped: an outage keeps a call retrying for minutes (2 ** 1100 overflows a float)
        ceiling = min(self.spec.backoff_max, self.spec.backoff_initial * 2 ** min(attempts - 1, 60))
        return random.uniform(ceiling / 2, ceiling)


def _retriable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError,
                        openai.BadRequestError, openai.UnprocessableEntityError, ProviderUnusable)):
        return False
    return isinstance(exc, (openai.APIError, EmptyAnswer, ValueError))


def error_kind(exc: BaseException) -> str:
    """A failed attempt's kind, for counting: 'HTTP 503', 'timeout', 'connection', 'bad body', ..."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    status = getattr(exc, "status_code", None)
    if status:
        return f"HTTP {status}"
    if isinstance(exc, EmptyAnswer):
        return "empty answer"
    if isinstance(exc, ValueError):
        return "bad body"
    return type(exc).__name__


def retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def describe(exc: BaseException) -> str:
    import openai

    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        return f"connection error: {type(cause).__name__ if cause else name}"
    msg = str(exc).strip() or name
    return f"HTTP {status}: {msg}" if status else f"{name}: {msg}"


def clip(text: str | None, limit: int = 500) -> str | None:
    """Shorten an error text for storage (after redaction: a cut must never leave half a key behind)."""
    return text if text is None or len(text) <= limit else text[:limit] + "..."
