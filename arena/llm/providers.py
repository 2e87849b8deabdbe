"""OpenAI-compatible providers: registry, model aliases, keys, limits, retries, secret redaction.

Every provider is reached through `openai.AsyncOpenAI` (httpx underneath) with the client's own
retries off: Arena retries itself (exponential backoff with jitter, honouring Retry-After) so that
every attempt can be recorded in `llm_calls`. Keys come only from environment variables and are never
stored: error texts pass through `redact` before they are recorded anywhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arena.errors import ArenaError, ConfigError, Problem
from arena.llm.outage import ProviderHealth
from arena.llm.structured import rejects_format
from arena.llm.pool import EndpointPool, Replica, replicas_line
from arena.engine.records import CallRecord

COMMON_ALIASES = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.2-3b", "phi-4", "mixtral-8x7b")


class ProviderSpec(BaseModel):
    """How to reach one provider. Configurable in providers.yaml (never with a key in it)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    base_url: str | None = None  # None for `local` (the embedded server's URL is set at start)
    base_url_env: str | None = None  # an environment variable that overrides base_url
    base_urls: list[str] | None = Field(None, min_length=1, description="replicas of one model server (a pool), "
                                        "instead of base_url; concurrency and rpm then apply per replica")
    replicas: int = Field(1, ge=1, le=64, description="local only: llama.cpp servers to start, as a pool")
    threads: int | None = Field(None, ge=1, le=1024, description="local only: llama.cpp threads per server (None: "
                                "the cores not busy when the run starts, split over the replicas)")
    slots: int | None = Field(None, ge=1, le=64, description="local only: slots per server, each program pinned "
                              "to one (None: one per LLM program, capped by memory)")
    key_env: str | None = None  # the environment variable holding the API key; None: no key needed
    concurrency: int = Field(4, ge=1, le=1024, description="calls in flight at once")
    rpm: float | None = Field(None, gt=0, description="requests per minute (None: unlimited)")
    timeout: float = Field(60.0, gt=0, description="seconds per attempt")
    max_attempts: int = Field(6, ge=1, le=50, description="attempts per call, the first included")
    backoff_initial: float = Field(1.0, ge=0, description="first backoff in seconds (doubles, with jitter)")
    backoff_max: float = Field(30.0, ge=0, description="longest single backoff")
    retry_after_max: float = Field(120.0, ge=0, description="longest Retry-After honoured")
    outage_after: int = Field(5, ge=1, le=1000, description="failed attempts in a row (from 2+ calls): provider down")
    outage_wait: float = Field(600.0, ge=0, description="seconds calls keep waiting for a provider that is down")
    structured: Literal["auto", "json_schema", "grammar", "none"] = Field(
        "auto", description="constrained output: auto (JSON schema, free text if the endpoint rejects or ignores "
                            "it), json_schema, grammar (llama.cpp GBNF) or none (see structured.py)")
    send_seed: bool = True
    aliases: dict[str, str] = Field(default_factory=dict)  # alias -> this provider's model name

    def native(self, name: str) -> str:
        return self.aliases.get(name, name)

    def alias_of(self, name: str) -> str:
        """The alias a model name stands for here ('default' if it is none of them)."""
        if name in self.aliases:
            return name
        for alias, native in self.aliases.items():
            if native == name and alias != "default":
                return alias
        return "default"

    def url(self, env: Mapping[str, str]) -> str | None:
        if self.base_url_env and env.get(self.base_url_env):
            return env[self.base_url_env]
        return self.base_url

    def urls(self, env: Mapping[str, str]) -> list[str]:
        """The endpoints calls go to: the pool's replicas, or the one base URL (none for `local`)."""
        if self.base_urls:
            return list(self.base_urls)
        url = self.url(env)
        return [url] if url else []


def _same(model: str) -> dict[str, str]:
    return {"default": model, **{a: model for a in COMMON_ALIASES}}


BUILTIN: dict[str, ProviderSpec] = {p.name: p for p in [
    ProviderSpec(
        name="local", description="embedded llama.cpp server with a small model from PyPI (offline)",
        # one server slot: on 2 cores, 2 slots answered a real tournament's 63 calls in 121 s against 98 s
        # for one (llama.cpp's threads share the cores); raise it in providers.yaml on a bigger machine
        concurrency=1, timeout=180.0, max_attempts=3, backoff_initial=0.5, structured="json_schema",
        aliases={**_same("qwen2.5-coder-0.5b"), "smollm2-135m": "smollm2-135m"},
    ),
    ProviderSpec(
        name="ollama", description="a local Ollama server", base_url="http://localhost:11434/v1",
        base_url_env="OLLAMA_BASE_URL", concurrency=2, timeout=300.0,
        aliases={"default": "llama3.1:8b", "llama-3.1-8b": "llama3.1:8b", "llama-3.1-70b": "llama3.1:70b",
                 "llama-3.2-3b": "llama3.2:3b", "phi-4": "phi4", "mixtral-8x7b": "mixtral:8x7b"},
    ),
    ProviderSpec(
        name="nvidia", description="NVIDIA NIM (build.nvidia.com)", base_url="https://integrate.api.nvidia.com/v1",
        key_env="NVIDIA_API_KEY", concurrency=8, rpm=40, structured="none",
        aliases={"default": "meta/llama-3.1-8b-instruct", "llama-3.1-8b": "meta/llama-3.1-8b-instruct",
                 "llama-3.1-70b": "meta/llama-3.1-70b-instruct", "llama-3.2-3b": "meta/llama-3.2-3b-instruct",
                 "phi-4": "microsoft/phi-4-mini-instruct", "mixtral-8x7b": "mistralai/mixtral-8x7b-instruct-v0.1"},
    ),
    ProviderSpec(
        name="cerebras", description="Cerebras inference", base_url="https://api.cerebras.ai/v1",
        key_env="CEREBRAS_API_KEY", concurrency=8, rpm=30, structured="none",
        aliases={"default": "llama3.1-8b", "llama-3.1-8b": "llama3.1-8b", "llama-3.1-70b": "llama-3.3-70b"},
    ),
    ProviderSpec(
        name="groq", description="Groq", base_url="https://api.groq.com/openai/v1", key_env="GROQ_API_KEY",
        concurrency=8, rpm=30, structured="none",
        aliases={"default": "llama-3.1-8b-instant", "llama-3.1-8b": "llama-3.1-8b-instant",
                 "llama-3.1-70b": "llama-3.3-70b-versatile", "llama-3.2-3b": "llama-3.2-3b-preview",
                 "mixtral-8x7b": "mixtral-8x7b-32768"},
    ),
    ProviderSpec(
        name="openai", description="OpenAI", base_url="https://api.openai.com/v1", key_env="OPENAI_API_KEY",
        concurrency=8, structured="json_schema", aliases={"default": "gpt-4o-mini"},
    ),
    ProviderSpec(
        name="custom", description="any OpenAI-compatible endpoint: LLM_BASE_URL and LLM_API_KEY",
        base_url_env="LLM_BASE_URL", key_env="LLM_API_KEY", concurrency=8,
    ),
]}


def load_providers(path: Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, ProviderSpec]:
    """The built-in registry, with overrides from providers.yaml (`$ARENA_PROVIDERS` or ./providers.yaml).

    The file maps provider names to fields of ProviderSpec; a new name defines a new provider.
    """
    from pydantic import ValidationError

    from arena.library.yamlio import SECRET_FIELDS, plain, problems_from, read_documents

    env = os.environ if env is None else env
    path = path or Path(env.get("ARENA_PROVIDERS") or "providers.yaml")
    registry = dict(BUILTIN)
    if not path.exists():
        return registry
    docs = read_documents(path)
    if len(docs) != 1 or docs[0].index is not None:
        raise ConfigError([Problem(str(path), 1, None, "expected a mapping of provider names to their settings")])
    doc = docs[0]
    problems = []
    for name, fields in doc.data.items():
        line = doc.data.lc.key(name)[0] + 1
        base = registry.get(name, ProviderSpec(name=name)).model_dump()
        if not isinstance(fields, dict):
            problems.append(Problem(str(path), line, str(name), "expected a mapping of provider settings"))
            continue
        if any(str(k).lower() in SECRET_FIELDS for k in fields):
            problems.append(Problem(str(path), line, str(name), "keys never go in files: set the key_env variable"))
            continue
        try:
            registry[name] = ProviderSpec.model_validate({**base, **plain(fields), "name": name})
        except ValidationError as exc:
            problems.extend(problems_from(exc, doc, prefix=(name,), allowed=ProviderSpec.model_fields))
    if problems:
        raise ConfigError(problems)
    return registry


def endpoint_identity(spec: ProviderSpec, env: Mapping[str, str] | None = None) -> str:
    """Which server answers a provider's calls, as the response cache tells them apart: the base URL
    without credentials (the embedded server: 'local', its model is in the cache key). Every use of an
    endpoint's identity goes through here. A pool is one identity for all its replicas (the sorted URLs,
    without credentials): replicas of one model answer alike, so any of them may serve a cached answer."""
    if spec.name == "local":
        return "local"
    if spec.base_urls:
        return "pool:" + ",".join(sorted(public_url(u) or "" for u in spec.base_urls))
    url = public_url(spec.url(os.environ if env is None else env))
    return url.rstrip("/") if url else f"unset:{spec.name}"


@dataclass(frozen=True)
class Route:
    """Where one LLM program's calls go."""

    provider: str
    model: str  # the provider's own model name
    requested: str  # what the program (or override) asked for, e.g. "local/qwen2.5-coder-0.5b"


def resolve(model: str, registry: Mapping[str, ProviderSpec], provider_override: str | None = None) -> Route:
    """Map `provider/model-or-alias` (and an optional --provider) to a provider and its model name."""
    if "/" not in model:
        raise ArenaError(f"model '{model}' must look like provider/model (providers: {', '.join(registry)})")
    provider, name = model.split("/", 1)
    if provider not in registry:
        raise ArenaError(f"unknown provider '{provider}' in model '{model}'. Providers: {', '.join(registry)}")
    if provider_override and provider_override != provider:
        if provider_override not in registry:
            raise ArenaError(f"unknown provider '{provider_override}'. Providers: {', '.join(registry)}")
        alias = registry[provider].alias_of(name)
        target = registry[provider_override]
        if not target.aliases and alias != "default":  # a provider without aliases (custom): the alias is its name
            return Route(provider_override, alias, model)
        if alias not in target.aliases:
            known = ", ".join(sorted(target.aliases)) or "none"
            raise ArenaError(f"provider '{provider_override}' has no model for '{alias}' (from {model}); "
                             f"its aliases: {known}. Use --model PROGRAM={provider_override}/MODEL")
        return Route(provider_override, target.native(alias), model)
    return Route(provider, registry[provider].native(name), model)


# --- secrets ---------------------------------------------------------------------------------------
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_BEARER = re.compile(r"(?i)(bearer\s+|basic\s+|api[_-]?key[\"'=:\s]+)[A-Za-z0-9._~+/=-]{6,}")
_QUERY_KEY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|auth)=)[^&\s\"']+")
# Environment variables holding a secret even if no provider names them (HF_TOKEN, ANTHROPIC_API_KEY, ...)
_SECRET_ENV = re.compile(r"(?i)(^|_)(api_?key|key|token|secret|password|passwd)$")


def split_credentials(url: str | None) -> tuple[str | None, str | None]:
    """A base URL without its user:password@ part, and that password (or a lone user part) if any."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if not url or "@" not in url:
        return url, None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    secret = parts.password if parts.password is not None else parts.username
    return urlunsplit(parts._replace(netloc=netloc)), unquote(secret) if secret else None


def public_url(url: str | None) -> str | None:
    """A base URL as it may be stored, shown or used as an identity: no user:password@, every query value
    and the fragment replaced by *** (`?api_key=...` or `#token` would carry a key); the parameter names
    stay, so that two endpoints told apart by them stay apart."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    url = split_credentials(url)[0]
    if not url or ("?" not in url and "#" not in url):
        return url
    parts = urlsplit(url)
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query=query, fragment="***" if parts.fragment else ""))


def secret_values(registry: Mapping[str, ProviderSpec], env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret a run could see: provider keys, other *_KEY/*_TOKEN variables, passwords in base
    URLs (with their Basic-auth forms). Longest first, so that a key containing another is removed whole."""
    import base64
    from urllib.parse import quote, unquote, urlsplit

    env = os.environ if env is None else env
    found = {env[p.key_env] for p in registry.values() if p.key_env and env.get(p.key_env)}
    found |= {v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= 8}
    for p in registry.values():
        for url in (p.base_url, env.get(p.base_url_env) if p.base_url_env else None, *(p.base_urls or [])):
            if not url or "@" not in url:
                continue
            parts = urlsplit(url)
            user, password = parts.username or "", parts.password or ""
            for value in (password, unquote(password), user if not password else ""):
                if value:
                    found |= {value, quote(value, safe="")}
            if user or password:
                found.add(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode())
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)


def redact(text: str | None, secrets: list[str] = ()) -> str | None:
    """Remove keys, bearer tokens and URL credentials from a text that may be stored or shown."""
    if not text:
        return text
    for s in secrets:
        text = text.replace(s, "***")
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    text = _QUERY_KEY.sub(r"\1***", text)
    return _BEARER.sub(r"\1***", text)


# --- calling ---------------------------------------------------------------------------------------
class ProviderUnusable(ArenaError):
    """Authentication, permission or model-not-found: every call would fail, so the run stops."""


class EmptyAnswer(Exception):
    """A 200 response with no content."""


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
    shared_gate: asyncio.Semaphore | None = None  # the tournament's cap on calls in flight, over all providers
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
        """A replica's AsyncOpenAI client, made on first use: a run served from the cache never needs one
        (making it loads the TLS certificate store, ~20 ms)."""
        if replica.client is None:
            from openai import AsyncOpenAI

            # Credentials in the URL would go out as Basic auth *instead of* the key: the key is sent as a
            # bearer token, the URL's password only stands in for a key that is not set.
            url, url_key = split_credentials(replica.url)
            replica.client = AsyncOpenAI(base_url=url, api_key=self.api_key or url_key or "no-key", max_retries=0,
                                         timeout=self.spec.timeout)
        return replica.client

    @property
    def client(self):
        return self._client_for(self.pool.replicas[0])

    async def aclose(self) -> None:
        for r in self.pool.replicas:
            if r.client is not None:
                await r.client.close()

    async def complete(self, *, model: str, messages: list[dict], temperature: float, max_tokens: int,
                       seed: int | None, response_format: dict | None, calls: list[CallRecord],
                       purpose: str = "answer", grammar: str | None = None, mode: str | None = None,
                       extra: dict | None = None) -> Reply:
        """One logical request: attempts until an answer or a final failure; each attempt is appended
        to `calls`. Raises ProviderUnusable on 401/403/404 (a systematic failure). `extra` goes into the
        request body as is (e.g. llama.cpp's `id_slot`); it is not recorded in the call's params."""
        from openai.types.chat import ChatCompletion
        from tenacity import AsyncRetrying, retry_if_exception

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
        retrying = AsyncRetrying(
            stop=lambda state: self._stop(charged[0]),
            # another replica is up: the retry goes there at once
            wait=lambda state: 0.0 if self.pool.has_other(last[0]) else self._wait(state),
            retry=retry_if_exception(_retriable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
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
                                    # `post` rather than `chat.completions.create`: the same request and
                                    # parsed ChatCompletion without create()'s walk of every message
                                    # against the typed params (~0.4 ms of CPU a call, a third of the
                                    # client's cost; the messages are plain role/content dicts we built).
                                    resp = await self._client_for(replica).post("/chat/completions", body=kwargs,
                                                                                cast_to=ChatCompletion)
                            finally:
                                replica.in_flight -= 1
                        text = resp.choices[0].message.content if resp.choices else None
                        record.latency_ms = (time.perf_counter() - t0) * 1000
                        self.stats.latency_ms += record.latency_ms
                        if resp.usage is not None:
                            record.prompt_tokens = resp.usage.prompt_tokens
                            record.completion_tokens = resp.usage.completion_tokens
                            self.stats.prompt_tokens += resp.usage.prompt_tokens or 0
                            self.stats.completion_tokens += resp.usage.completion_tokens or 0
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

    def _wait(self, state) -> float:
        """Retry-After when the server gives one (capped), else exponential backoff with full jitter."""
        import random

        exc = state.outcome.exception() if state.outcome is not None else None
        after = retry_after(exc)
        if after is not None:
            return min(after, self.spec.retry_after_max)
        # the exponent capped: an outage keeps a call retrying for minutes (2 ** 1100 overflows a float)
        ceiling = min(self.spec.backoff_max, self.spec.backoff_initial * 2 ** min(state.attempt_number - 1, 60))
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
