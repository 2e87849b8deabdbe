"""The providers Arena knows: their specs (providers.yaml over the built-in ones), model aliases, where a
program's model is routed, and the identity of an endpoint (what the response cache tells apart)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from arena.errors import ArenaError, ConfigError, Problem
from arena.llm.redaction import public_url

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
                              "to one, or each program and opponent once every pair meets in 3 cells (None: one "
                              "per program or pair, capped by memory)")
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
    transport: Literal["lean", "sdk"] = Field(
        "lean", description="how requests go out: lean (aiohttp, a kept connection pool; transport.py) or sdk "
                            "(the openai client): the same requests, errors and retries")
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
        aliases={**_same("qwen2.5-coder-0.5b"), "smollm2-135m": "smollm2-135m",
                 "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b", "writer": "qwen2.5-coder-1.5b"},
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
