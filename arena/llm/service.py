"""LLM programs in a tournament: the backend the runner uses (providers, prompts, cache, local server).

`LLMService` implements tournament.LLMBackend. `prepare` resolves every LLM program's route, checks
keys before anything runs, and starts the embedded local server when a program needs it. Each LLM
program becomes an `LLMAgent` whose ground/respond ask its model through `decide`:

1. build the messages (prompts.py) for the node's seat and mode (ground / respond / imagine);
2. serve from the response cache, or call the provider (retries recorded per attempt);
3. parse the last `ACTION:` line, a bare action word, or the constrained JSON; if unparseable, one
   corrective retry (the model's own answer, then the exact lines accepted);
4. still nothing: a refusal, counted, never replaced by a default action.

Constrained output is chosen per endpoint (structured.py): an `auto` endpoint that rejects or ignores the
JSON schema falls back to free text once, with a notice; each call's params record the mode it used
(`structured`) and the form of its answer (`answer`, one of prompts.FORMS).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from arena.llm import prompts
from arena.llm.cache import ResponseCache, cache_key, key_json
from arena.llm.structured import GRAMMAR, JSON_SCHEMA, NONE, StructuredModes
from arena.errors import ArenaError
from arena.engine.events import Notice, Sink
from arena.library.games import Game
from arena.engine.grid import TournamentConfig
from arena.library.programs import LLMProgram
from arena.llm.client import ProviderClient, Reply
from arena.llm.gate import Gate
from arena.llm.redaction import public_url, redact, split_credentials
from arena.llm.registry import ProviderSpec, Route, endpoint_identity, load_providers, resolve
from arena.llm.secrets import secret_values
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


def one_embedded_model(models: list[str]) -> str:
    return (f"these programs need {len(models)} embedded models ({', '.join(models)}); a tournament runs one "
            "embedded model (one llama.cpp server on this machine's cores): give them one with --provider local "
            "(every alias maps to the default model) or --model PROGRAM=local/MODEL")


PAIR_MEETINGS = 3  # cells per ordered pair of programs from which a slot per pair reads less than one per program


def slot_per_pair(config: TournamentConfig) -> bool:
    """Whether the embedded server gets a slot per (program, opponent): once each ordered pair meets in
    PAIR_MEETINGS cells or more. Each meeting after the first re-reads the opponent's source on a program's
    one slot; a pair's own slot reads its whole prompt once instead (the numbers: docs/embedded-model.md)."""
    return config.total_trials // len(config.programs) ** 2 >= PAIR_MEETINGS


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
        self.slots: dict[str, int] = {}  # program id -> its llama.cpp slot on the embedded server
        # (program id, opponent id) -> the slot of its decisions against that opponent, when pairs have slots
        self.pair_slots: dict[tuple[str, str], int] = {}
        self.gate: Gate | None = None
        self.modes = StructuredModes()  # constrained output, per endpoint
        self.answers: dict[str, Counter] = {}  # provider -> forms of first answers (prompts.FORMS)
        # a one-shot, fully disclosed question's messages and their key_json, built once (_messages)
        self._prompts: dict[tuple, tuple[Game, list[dict], str]] = {}
        self._schemas: dict[tuple[str, ...], tuple[dict, str]] = {}  # actions -> json_schema and its key_json
        self._endpoints: dict[str, tuple[ProviderClient, str, str]] = {}  # provider -> (client, endpoint, identity)

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
            if name != "local" and not spec.urls(self.env):
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
        local = sorted({r.model for r in routes if r.provider == "local"})
        if len(local) > 1:  # before anything is recorded, not once the run has started
            raise ArenaError(one_embedded_model(local))

    async def prepare(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        self.routes = self.routes_for(programs, config)
        used = {r.provider for r in self.routes.values()}
        self.check_keys(used)
        if self.store is not None:
            self.cache = ResponseCache(self.store, read=config.cache)
        self.gate = Gate(config.concurrency)  # calls in flight, over all providers
        for name in sorted(used):
            spec = self.registry[name]
            if name == "local":
                continue
            key = self.env.get(spec.key_env) if spec.key_env else None
            self.clients[name] = ProviderClient(spec, spec.url(self.env), key, self.secrets, self.gate,
                                                notify=self._notify, base_urls=spec.base_urls)
        local_models = sorted({r.model for r in self.routes.values() if r.provider == "local"})
        if local_models:
            await self._start_local(local_models, config)

    async def _start_local(self, models: list[str], config: TournamentConfig) -> None:
        from arena.llm.localmodel import LocalServer, model_spec, server_threads, slot_count

        spec = self.registry["local"]
        if len(models) > 1:
            raise ArenaError(one_embedded_model(models))
        # a slot per program, pinned (what it asked last stays cached there), and when each pair of programs
        # meets often enough a slot per program and opponent: a decision's prompt is the program's, then the
        # game, then the opponent's source, then what varies (seat, simulated action, history), and the grid
        # changes a program's opponent within every trial; a pair's slot reads its whole prompt once, then
        # only that last part. Capped by memory (pairs beyond it share slots); `concurrency` stays the calls
        # in flight per server (1: llama.cpp's threads share the cores)
        programs = sorted(p for p, r in self.routes.items() if r.provider == "local")
        opponents = sorted(set(config.programs)) if slot_per_pair(config) else []
        pairs = [(p, o) for p in programs for o in opponents]
        slots = spec.slots or slot_count(max(len(pairs), len(programs)))
        self.slots = {p: i % slots for i, p in enumerate(programs)}
        self.pair_slots = {pair: i % slots for i, pair in enumerate(pairs)}
        # (reading the busy cores takes a quarter of a second: not on the event loop)
        threads = spec.threads or await asyncio.to_thread(server_threads, spec.replicas)
        servers = [LocalServer(model_spec(models[0]), parallel=max(slots, spec.concurrency), threads=threads)
                   for _ in range(spec.replicas)]
        self._local_servers.extend(servers)  # stopped by aclose even if another fails to start
        await asyncio.gather(*(s.start() for s in servers))
        urls = [s.base_url for s in servers]
        self.clients["local"] = ProviderClient(spec, urls[0], None, self.secrets, self.gate,
                                               notify=self._notify, base_urls=urls if len(urls) > 1 else None)

    def _notify(self, message: str, level: str) -> None:
        if self.sink is not None:
            self.sink(Notice(redact(message, self.secrets) or "", level))

    def agent(self, program: LLMProgram, config: TournamentConfig) -> LLMAgent:
        return LLMAgent(program, self, simulates=config.simulation == "run")

    def stats(self) -> dict:
        return {name: {**c.stats.as_dict(), "answers": dict(self.answers.get(name, {})),
                       "structured": self.modes.summary(f"{name} ")}
                for name, c in self.clients.items()}

    @staticmethod
    def endpoint(client: ProviderClient) -> str:
        """The key of an endpoint's state: the provider and its base URL without credentials."""
        return f"{client.spec.name} {redact(public_url(client.base_url), client.secrets)}"

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
        # A provider's failure comes back as a Reply without text (an error node); ArenaError (bad key,
        # unknown model) stops the run; any other exception is a bug in Arena and stops it too.
        calls: list[CallRecord] = []
        move = await self._decide(program, game, opp, spec, node, mode, opp_action, calls)
        for c in calls:  # the layout of its messages (a replay rebuilds them in it)
            c.params["prompt"] = prompts.PROMPT_VERSION
        d = spec.disclosure
        if not d.full:  # the level and the hash of its wording (prompts.wording_hash), on each call
            for c in calls:
                c.params["disclosure"] = d.level
                c.params["disclosure_wording"] = prompts.wording_hash(d)
        return move

    async def _decide(self, program: LLMProgram, game: Game, opp, spec: TrialSpec, node: Node, mode: str,
                      opp_action: str | None, calls: list[CallRecord]) -> LLMMove:
        route = self.routes[program.id]
        client = self.clients[route.provider]
        endpoint = self._endpoint_of(route.provider, client)[1]
        temperature = spec.temperature if spec.temperature is not None else program.temperature
        sample = "0" if temperature == 0 else f"{spec.seed}:{node.index}"
        seed = int.from_bytes(hashlib.blake2b(sample.encode(), digest_size=4).digest(), "big")

        slot = None
        if route.provider == "local":
            slot = self.pair_slots.get((program.id, opp.id), self.slots.get(program.id))
        extra = None if slot is None else {"id_slot": slot, "cache_prompt": True}  # llama.cpp: its own slot
        structured, probe = await self.modes.acquire(endpoint, client.spec.structured)
        try:
            while True:  # at most twice: once more in free text when the endpoint rejects the JSON schema
                msgs, msgs_json = self._messages(program, game, node.side, opp, mode, opp_action,
                                                 structured == JSON_SCHEMA, spec)
                fmt, fmt_json = self._schema(game.actions) if structured == JSON_SCHEMA else (None, None)
                grammar = prompts.grammar(game.actions) if structured == GRAMMAR else None
                first = len(calls)
                reply = await self._ask(client, route, msgs, temperature, program.max_tokens, seed, fmt, sample,
                                        calls, "answer", grammar, structured, extra, msgs_json, fmt_json)
                answer = self._record_answer(route.provider, reply, calls[first:], game.actions)
                if not reply.format_rejected:
                    break
                self._fall_back(client, endpoint, "endpoint rejected response_format")
                if self.modes.mode(endpoint, client.spec.structured) == structured:  # forced json_schema
                    client.stats.failed += 1
                    break
                for c in calls[first:]:
                    c.status = "fallback"  # not a failure: asked again in free text
                structured, probe = self.modes.mode(endpoint, client.spec.structured), False
            if probe and reply.text is not None:
                if answer.form == prompts.JSON:
                    self.modes.honoured(endpoint)
                else:
                    self._fall_back(client, endpoint, "endpoint ignored response_format")
        finally:
            if probe:
                self.modes.release(endpoint)  # no verdict (the call failed): another call probes
        if reply.text is None:
            return LLMMove(None, reply.error, False, calls)

        request, max_tokens, purpose = msgs, program.max_tokens, "answer"
        grammar = prompts.grammar(game.actions, reasoning=False) if structured == GRAMMAR else None
        for final in (False, True):
            if final:
                reply = await self._ask(client, route, request, temperature, max_tokens, seed, None, sample, calls,
                                        purpose, grammar, structured if grammar else NONE, extra)
                if reply.text is None:
                    return LLMMove(None, reply.error, False, calls)
                answer = prompts.read_answer(reply.text, game.actions)
                calls[-1].params["answer"] = answer.form
            calls[-1].parsed_action = answer.action
            if answer.action is not None:
                return LLMMove(answer.action, None, False, calls)
            calls[-1].status = "refusal" if final else "unparsed"
            # one corrective retry: the model sees its own answer, then the exact lines accepted
            request = [*msgs, {"role": "assistant", "content": reply.text},
                       {"role": "user", "content": prompts.correction(game.actions)}]
            max_tokens, purpose = 16, "correction"
        return LLMMove(None, "no valid ACTION line, even after a corrective retry", True, calls)

    def _messages(self, program: LLMProgram, game: Game, side: str, opp, mode: str, opp_action: str | None,
                  structured: bool, spec: TrialSpec) -> tuple[list[dict], str | None]:
        """A decision's messages (prompts.decision_messages) and their key_json. A one-shot game's question
        under full disclosure depends on nothing of the trial: it is built and serialised once, and its
        calls share the one list (read-only); any other comes back built anew, its key_json None."""
        if spec.play is not None or not spec.disclosure.full:
            return prompts.decision_messages(program.system_prompt, game, side, opp, mode, opp_action, structured,
                                             spec.play, spec.disclosure, spec.seed, prompts.PROMPT_VERSION), None
        key = (program.system_prompt, id(game), side, opp.kind, opp.source(), mode, opp_action, structured)
        hit = self._prompts.get(key)
        if hit is None or hit[0] is not game:  # the game itself is held: its id is not reused while held
            msgs = prompts.decision_messages(program.system_prompt, game, side, opp, mode, opp_action, structured,
                                             None, spec.disclosure, spec.seed, prompts.PROMPT_VERSION)
            if len(self._prompts) >= 4096:
                self._prompts.clear()
            hit = self._prompts[key] = (game, msgs, key_json(msgs))
        return hit[1], hit[2]

    def _schema(self, actions: list[str]) -> tuple[dict, str]:
        """prompts.json_schema(actions) and its key_json, made once per list of actions (read-only)."""
        known = self._schemas.get(tuple(actions))
        if known is None:
            fmt = prompts.json_schema(actions)
            known = self._schemas[tuple(actions)] = (fmt, key_json(fmt))
        return known

    def _endpoint_of(self, provider: str, client: ProviderClient) -> tuple[ProviderClient, str, str]:
        """A provider's client, its endpoint (LLMService.endpoint) and its identity (endpoint_identity), worked
        out once per client."""
        known = self._endpoints.get(provider)
        if known is None or known[0] is not client:
            known = self._endpoints[provider] = (client, self.endpoint(client),
                                                 endpoint_identity(client.spec, self.env))
        return known

    def _record_answer(self, provider: str, reply: Reply, records: list[CallRecord],
                       actions: list[str]) -> prompts.Answer:
        """The form of a first answer, on its call record and in the provider's counts (empty attempts
        included: they are retried, but say something about the endpoint)."""
        counts = self.answers.setdefault(provider, Counter())
        for c in records:
            if c.error and "empty answer" in c.error:
                c.params["answer"] = prompts.EMPTY
                counts[prompts.EMPTY] += 1
        answer = prompts.read_answer(reply.text, actions)
        if reply.text is not None:
            records[-1].params["answer"] = answer.form
            counts[answer.form] += 1
        return answer

    def _fall_back(self, client: ProviderClient, endpoint: str, reason: str) -> None:
        if self.modes.fall_back(endpoint, reason):
            self._notify(f"provider '{client.spec.name}': {reason} at {endpoint.split(' ', 1)[1]}; "
                         "its calls use free text (ACTION: line) from now on", "warning")

    def writer_mode(self, program_id: str) -> str:
        """The constraint a prepared program's free-form requests can use (json_schema | grammar | none): the
        embedded server takes a GBNF grammar; another endpoint its `structured` setting, an auto one the mode
        a probe settled (none while unsettled)."""
        route = self.routes[program_id]
        if route.provider == "local":
            return GRAMMAR
        client = self.clients[route.provider]
        setting = client.spec.structured
        if setting != "auto":
            return setting
        return self.modes.settled_mode(self.endpoint(client)) or NONE

    async def ask(self, program_id: str, msgs: list[dict], temperature: float, max_tokens: int, sample: str,
                  calls: list[CallRecord], purpose: str = "write", fmt: dict | None = None,
                  grammar: str | None = None, structured: str = NONE, extra: dict | None = None) -> Reply:
        """One free-form request for a prepared program's route (the iterate writer), through the cache; `fmt`
        or `grammar` constrain the answer, `extra` goes into the request body (stop sequences). The stop
        sequences are part of the cache key."""
        route = self.routes[program_id]
        seed = int.from_bytes(hashlib.blake2b(sample.encode(), digest_size=4).digest(), "big")
        client = self.clients[route.provider]
        slot = self.slots.get(program_id) if route.provider == "local" else None
        if slot is not None:
            extra = {**(extra or {}), "id_slot": slot, "cache_prompt": True}
        return await self._ask(client, route, msgs, temperature, max_tokens, seed, fmt, sample, calls, purpose,
                               grammar, structured, extra)

    async def _ask(self, client: ProviderClient, route: Route, msgs: list[dict], temperature: float, max_tokens: int,
                   seed: int, fmt: dict | None, sample: str, calls: list[CallRecord], purpose: str,
                   grammar: str | None = None, structured: str = NONE, extra: dict | None = None,
                   msgs_json: str | None = None, fmt_json: str | None = None) -> Reply:
        constraint = {"grammar": grammar} if grammar is not None else fmt
        if extra and "stop" in extra:  # a free-text writer answer's stop sequences shape the answer too
            constraint = {**(constraint or {}), "stop": extra["stop"]}
        key = cache_key(route.provider, route.model, msgs, temperature, sample, max_tokens, constraint, msgs_json,
                        fmt_json if constraint is fmt else None)
        endpoint = self._endpoint_of(route.provider, client)[2]
        if self.cache is not None:
            hit = self.cache.get(key, endpoint)
            if hit is not None:
                client.stats.cached += 1
                calls.append(CallRecord(route.provider, route.model, msgs, response=hit.response, cached=True,
                                        prompt_tokens=hit.prompt_tokens, completion_tokens=hit.completion_tokens,
                                        params={"temperature": temperature, "max_tokens": max_tokens,
                                                "purpose": purpose, "structured": structured,
                                                **({"seed": seed} if client.spec.send_seed else {})},
                                        started_at=time.time()))
                return Reply(hit.response)
        reply = await client.complete(model=route.model, messages=msgs, temperature=temperature, max_tokens=max_tokens,
                                      seed=seed, response_format=fmt, calls=calls, purpose=purpose, grammar=grammar,
                                      mode=structured, extra=extra)
        if reply.text is not None and self.cache is not None:
            last = calls[-1]
            self.cache.put(key, endpoint, route.provider, route.model, reply.text, last.prompt_tokens, last.completion_tokens)
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
