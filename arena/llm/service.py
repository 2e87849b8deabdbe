"""LLM programs in a tournament: the backend the runner uses (providers, prompts, cache, local server).

`LLMService` implements tournament.LLMBackend. `prepare` resolves every LLM program's route, checks
keys before anything runs, and starts the embedded local server when a program needs it. Each LLM
program becomes an `LLMAgent` whose ground/respond ask its model through `decide`:

1. build the messages (prompts.py) for the node's seat and mode (ground / respond / imagine);
2. serve from the response cache, or call the provider (retries recorded per attempt);
3. parse the last `ACTION:` line (or the constrained JSON); if unparseable, one corrective retry;
4. still nothing: a refusal, counted, never replaced by a default action.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from arena.llm import prompts
from arena.llm.cache import ResponseCache, cache_key
from arena.errors import ArenaError
from arena.engine.events import Notice, Sink
from arena.library.games import Game
from arena.engine.grid import TournamentConfig
from arena.library.programs import LLMProgram
from arena.llm.providers import (
    ProviderClient,
    ProviderSpec,
    Reply,
    Route,
    load_providers,
    redact,
    resolve,
    secret_values,
    split_credentials,
)
from arena.engine.records import CallRecord, Node, TrialSpec
from arena.store.database import Store


@dataclass
class LLMMove:
    action: str | None
    error: str | None = None
    refused: bool = False
    calls: list[CallRecord] = field(default_factory=list)


class LLMAgent:
    """The runtime form of an LLMProgram (see simulator.Agent)."""

    is_async = True

    def __init__(self, program: LLMProgram, service: LLMService, simulates: bool):
        self.program = program
        self.epsilon = program.epsilon
        self.simulates = simulates
        self.service = service

    async def ground(self, game: Game, opp, u: float, spec: TrialSpec, node: Node) -> LLMMove:
        mode = prompts.GROUND if self.simulates else prompts.IMAGINE
        return await self.service.decide(self.program, game, opp, spec, node, mode, None)

    async def respond(self, game: Game, opp, u: float, opp_action: str, spec: TrialSpec, node: Node) -> LLMMove:
        return await self.service.decide(self.program, game, opp, spec, node, prompts.RESPOND, opp_action)


class LLMService:
    """Providers, cache and local servers for one tournament run."""

    def __init__(self, store: Store | None = None, registry: Mapping[str, ProviderSpec] | None = None,
                 env: Mapping[str, str] | None = None, sink: Sink | None = None):
        self.store = store
        self.sink = sink  # receives Notices (a provider down, back again)
        self.env = dict(os.environ if env is None else env)
        self.registry = dict(registry) if registry is not None else load_providers(env=self.env)
        self.secrets = secret_values(self.registry, self.env)
        self.routes: dict[str, Route] = {}
        self.clients: dict[str, ProviderClient] = {}
        self.cache: ResponseCache | None = None
        self._local_servers: list = []
        self.gate: asyncio.Semaphore | None = None

    # -- LLMBackend --------------------------------------------------------------------------------
    def routes_for(self, programs: list[LLMProgram], config: TournamentConfig) -> dict[str, Route]:
        """Where each program's calls go (raises ArenaError for unknown providers or aliases)."""
        return {p.id: resolve(config.models.get(p.id, p.model), self.registry, config.provider) for p in programs}

    def check_keys(self, providers: set[str]) -> None:
        missing = []
        for name in sorted(providers):
            spec = self.registry[name]
            if spec.key_env and not self.env.get(spec.key_env) and not split_credentials(spec.url(self.env))[1]:
                missing.append(f"provider '{name}' needs the environment variable {spec.key_env}")
            if name != "local" and not spec.url(self.env):
                missing.append(f"provider '{name}' needs a base URL: set {spec.base_url_env}")
        if missing:
            raise ArenaError("; ".join(missing))

    def check(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        routes = self.routes_for(programs, config).values()
        self.check_keys({r.provider for r in routes})
        from arena.llm.localmodel import model_spec

        for r in routes:
            if r.provider == "local":
                model_spec(r.model)  # an unknown embedded model fails now, not mid-run

    async def prepare(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        self.routes = self.routes_for(programs, config)
        used = {r.provider for r in self.routes.values()}
        self.check_keys(used)
        if self.store is not None:
            self.cache = ResponseCache(self.store, read=config.cache)
        self.gate = asyncio.Semaphore(config.concurrency)  # calls in flight, over all providers
        for name in sorted(used):
            spec = self.registry[name]
            if name == "local":
                continue
            key = self.env.get(spec.key_env) if spec.key_env else None
            self.clients[name] = ProviderClient(spec, spec.url(self.env), key, self.secrets, self.gate,
                                                notify=self._notify)
        local_models = sorted({r.model for r in self.routes.values() if r.provider == "local"})
        if local_models:
            await self._start_local(local_models)

    async def _start_local(self, models: list[str]) -> None:
        from arena.llm.localmodel import LocalServer, model_spec

        spec = self.registry["local"]
        if len(models) > 1:
            raise ArenaError(f"one embedded model per tournament for now; asked for {', '.join(models)}")
        server = LocalServer(model_spec(models[0]), parallel=spec.concurrency)
        await server.start()
        self._local_servers.append(server)
        self.clients["local"] = ProviderClient(spec, server.base_url, None, self.secrets, self.gate,
                                               notify=self._notify)

    def _notify(self, message: str, level: str) -> None:
        if self.sink is not None:
            self.sink(Notice(redact(message, self.secrets) or "", level))

    def agent(self, program: LLMProgram, config: TournamentConfig) -> LLMAgent:
        return LLMAgent(program, self, simulates=config.simulation == "run")

    def stats(self) -> dict:
        return {name: c.stats.as_dict() for name, c in self.clients.items()}

    async def aclose(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        self.clients.clear()
        for s in self._local_servers:
            await s.stop()
        self._local_servers.clear()

    # -- one decision --------------------------------------------------------------------------------
    async def decide(self, program: LLMProgram, game: Game, opp, spec: TrialSpec, node: Node, mode: str,
                     opp_action: str | None) -> LLMMove:
        calls: list[CallRecord] = []
        try:
            return await self._decide(program, game, opp, spec, node, mode, opp_action, calls)
        except ArenaError:
            raise  # systematic (bad key, unknown model): the run stops
        except Exception as exc:  # anything else fails this node only, and its text never holds a key
            return LLMMove(None, redact(f"{type(exc).__name__}: {exc}", self.secrets), False, calls)

    async def _decide(self, program: LLMProgram, game: Game, opp, spec: TrialSpec, node: Node, mode: str,
                      opp_action: str | None, calls: list[CallRecord]) -> LLMMove:
        route = self.routes[program.id]
        client = self.clients[route.provider]
        structured = client.spec.structured == "json_schema"
        msgs = prompts.messages(program.system_prompt, game, node.side, opp.source(), mode, opp_action, structured)
        temperature = spec.temperature if spec.temperature is not None else program.temperature
        sample = "0" if temperature == 0 else f"{spec.seed}:{node.index}"
        seed = int.from_bytes(hashlib.blake2b(sample.encode(), digest_size=4).digest(), "big")
        fmt = prompts.json_schema(game.actions) if structured else None

        request, max_tokens, constraint, purpose = msgs, program.max_tokens, fmt, "answer"
        for final in (False, True):
            reply = await self._ask(client, route, request, temperature, max_tokens, seed, constraint, sample, calls,
                                    purpose)
            if reply.text is None:
                return LLMMove(None, reply.error, False, calls)
            action = prompts.parse_action(reply.text, game.actions)
            calls[-1].parsed_action = action
            if action is not None:
                return LLMMove(action, None, False, calls)
            calls[-1].status = "refusal" if final else "unparsed"
            # one corrective retry: the model sees its answer and is asked for the action line alone
            request = [*msgs, {"role": "assistant", "content": reply.text},
                       {"role": "user", "content": prompts.correction(game.actions)}]
            max_tokens, constraint, purpose = 16, None, "correction"
        return LLMMove(None, "no valid ACTION line, even after a corrective retry", True, calls)

    async def ask(self, program_id: str, msgs: list[dict], temperature: float, max_tokens: int, sample: str,
                  calls: list[CallRecord], purpose: str = "write") -> Reply:
        """One free-form request for a prepared program's route (the iterate writer), through the cache."""
        route = self.routes[program_id]
        seed = int.from_bytes(hashlib.blake2b(sample.encode(), digest_size=4).digest(), "big")
        return await self._ask(self.clients[route.provider], route, msgs, temperature, max_tokens, seed, None, sample,
                               calls, purpose)

    async def _ask(self, client: ProviderClient, route: Route, msgs: list[dict], temperature: float, max_tokens: int,
                   seed: int, fmt: dict | None, sample: str, calls: list[CallRecord], purpose: str) -> Reply:
        key = cache_key(route.provider, route.model, msgs, temperature, sample, max_tokens, fmt)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                client.stats.cached += 1
                calls.append(CallRecord(route.provider, route.model, msgs, response=hit.response, cached=True,
                                        prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens,
                                        params={"temperature": temperature, "max_tokens": max_tokens,
                                                "purpose": purpose, **({"seed": seed} if client.spec.send_seed else {})},
                                        started_at=time.time()))
                return Reply(hit.response)
        reply = await client.complete(model=route.model, messages=msgs, temperature=temperature, max_tokens=max_tokens,
                                      seed=seed, response_format=fmt, calls=calls, purpose=purpose)
        if reply.text is not None and self.cache is not None:
            last = calls[-1]
            self.cache.put(key, route.provider, route.model, reply.text, last.prompt_tokens, last.completion_tokens)
        return reply


__all__ = ["LLMService", "LLMAgent", "LLMMove", "redact"]


async def check_providers(names: list[str] | None = None, env: Mapping[str, str] | None = None) -> list[tuple[str, bool, str]]:
    """Ping providers with one tiny chat completion: (name, ok, detail) each."""
    env = dict(os.environ if env is None else env)
    registry = load_providers(env=env)
    if not names:
        names = ["local"] + [n for n, p in registry.items() if n != "local" and p.key_env and env.get(p.key_env)]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ArenaError(f"unknown provider(s): {', '.join(unknown)}. Providers: {', '.join(registry)}")

    async def one(name: str) -> tuple[str, bool, str]:
        service = LLMService(None, registry, env)
        model = f"{name}/default"
        try:
            config = TournamentConfig(programs=["x"], games=["g"], epsilons=[1.0], max_depths=[0], trials=1)
            probe = LLMProgram(id="probe", kind="llm", model=model, system_prompt="You answer tersely.", temperature=0)
            await service.prepare([probe], config)
            route = service.routes["probe"]
            client = service.clients[route.provider]
            calls: list[CallRecord] = []
            t0 = time.perf_counter()
            reply = await client.complete(model=route.model, messages=[{"role": "user", "content": "Say OK."}],
                                          temperature=0, max_tokens=5, seed=0, response_format=None, calls=calls)
            dt = time.perf_counter() - t0
            if reply.text is None:
                return name, False, f"{route.model}: {reply.error}"
            return name, True, f"{route.model}: answered in {dt:.2f}s ({len(calls)} attempt(s))"
        except ArenaError as exc:
            return name, False, redact(str(exc), service.secrets) or ""
        finally:
            await service.aclose()

    return list(await asyncio.gather(*(one(n) for n in names)))
