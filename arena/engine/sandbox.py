"""The sandbox that runs code programs: pydantic-monty worker processes, kept warm, one session a program.

Nothing of a program's source is ever executed in Arena's process: `decide(ctx)` runs in a Monty
worker (a Python interpreter in Rust, in a subprocess) with no filesystem, network or environment, and
with limits on time, memory and recursion per decision. A program's failure (an exception, a limit, a
crashed worker) comes back as a `DecisionOutcome` with an error naming the program's own source line; the
session is replaced when a limit leaves its heap in doubt.

Decisions are batched: `run_many` sends a list of ctx dicts in one feed, a small fraction of a round trip
per decision (benchmarks/README.md). A feed has the time limit of one decision, whatever its size, and is sized
to take about FEED_TARGET_S: a feed that passes holds no decision over its limit, and one that hits a
limit is fed again in smaller feeds, down to one decision alone, so a decision's verdict never depends on
the batching (a runaway program costs a few limits, then its limit per decision, and the others still get
answers). `Sandbox.checkpoint`, when set, is called before every feed of a batch (the runner pauses or
abandons a batch there).

Decisions are pure functions of their ctx: before each one the session loads the program afresh (its
source, re-run as the body of `_arena_fresh`, see codestate.reload_form: new objects for every global,
list, class and default; `random` seeded the same way before it), the ctx's lists and dicts are the
decision's own copies, and `random` is then seeded from the node's draw. So a program that counts its
calls in a global answers the same whatever the batch size, the number of workers, or which decisions
failed before it; state across the rounds of a match comes in ctx (history), never from session reuse.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from arena.engine.records import history_dicts
from arena.library.codecheck import uses_random
from arena.library.codestate import ANY, RELOAD_HEADER, calls_at_load, constant_module, reads_only, reload_form
from arena.library.programs import CodeProgram

PARALLEL_MIN = 128  # decisions a part of a batch must have before it is split over the cores
OUTPUT_CAP = 2000  # characters of printed output kept per decision
FEED_TARGET_S = 0.05  # a batch's feeds are sized to take about this long (at most a quarter of the limit)
MAX_FEED = 1 << 16
FIRST_FEED = 4  # decisions in a session's first feed (then twice as many a feed while they take under half that)
LOAD_SEED = 0  # `random`'s seed while the source loads afresh before each decision
# the immutable leaves of a ctx (code.build_ctx, code.match_ctx): a program that reads only these may share a
# batch's fixed part of the ctx with the other decisions; any other gets its own copies of the lists and dicts
CTX_LEAVES = frozenset({
    *((k,) for k in ("seat", "me", "opponent", "opponent_id", "opponent_kind", "opponent_action", "depth",
                     "epsilon", "u", "round", "rounds", "continuation")),
    ("game", "id"), ("game", "default_action"), ("game", "defect_action"), ("game", "actions", ANY),
    ("game", "payoffs", ANY, ANY, ANY), ("game", "cooperative", ANY, ANY), ("history", ANY, ANY)})

_PRELUDE = f'''
import json as _arena_json
import copy as _arena_copy
_arena_out = []
_arena_size = [0]
def print(*args, sep=" ", end="\\n"):
    if _arena_size[0] < {OUTPUT_CAP}:
        _arena_piece = sep.join([str(a) for a in args]) + end
        _arena_out.append(_arena_piece)
        _arena_size[0] += len(_arena_piece)
def _arena_load():
    if _arena_decimal is not None:
        _arena_decimal.setcontext(_arena_decimal.Context())
    if _arena_reloads:
        if _arena_load_seeded:
            _arena_random.seed({LOAD_SEED})
        _arena_fresh()
        if _arena_out:
            _arena_out.clear()
            _arena_size[0] = 0
def _arena_text(v):
    if type(v) is list or type(v) is dict:
        _arena_t = _arena_json.dumps(v)
        if _arena_json.loads(_arena_t) == v:
            return _arena_t
    return None
def _arena_own(v):
    if type(v) is list or type(v) is dict or type(v) is set or type(v) is tuple:
        return _arena_copy.deepcopy(v)
    return v
def _arena_one(c, seed):
    _arena_load()
    _arena_out.clear()
    _arena_size[0] = 0
    if seed is not None:
        _arena_random.seed(seed)
    _arena_r = decide(c)
    return (_arena_r, "".join(_arena_out)[:{OUTPUT_CAP}])
def _arena_run(bases, items, seeds):
    _arena_res = []
    _arena_outs = []
    _arena_fails = []
    _arena_i = 0
    _arena_kept = []
    for _arena_b in bases:
        _arena_kept.append([(_arena_key, _arena_text(_arena_b[_arena_key])) for _arena_key in _arena_b
                            if _arena_copies and type(_arena_b[_arena_key]) in (list, dict, set, tuple)])
    for _arena_k, _arena_a, _arena_d, _arena_e, _arena_u, _arena_m in items:
        _arena_b = bases[_arena_k]
        _arena_c = dict(_arena_b)
        for _arena_key, _arena_t in _arena_kept[_arena_k]:
            if _arena_t is None:
                _arena_c[_arena_key] = _arena_copy.deepcopy(_arena_b[_arena_key])
            elif _arena_t == "[]":
                _arena_c[_arena_key] = []
            else:
                _arena_c[_arena_key] = _arena_json.loads(_arena_t)
        _arena_c["opponent_action"] = _arena_a
        _arena_c["depth"] = _arena_d
        _arena_c["epsilon"] = _arena_e
        _arena_c["u"] = _arena_u
        if _arena_m is not None:
            for _arena_key in _arena_m:
                if _arena_key != "history" and _arena_key != "state":
                    _arena_c[_arena_key] = _arena_own(_arena_m[_arena_key]) if _arena_copies else _arena_m[_arena_key]
            if _arena_m["state"] is None:
                _arena_c["state"] = None
                _arena_c["history"] = [{{"me": _arena_h[0], "opponent": _arena_h[1], "my_payoff": _arena_h[2],
                                        "opponent_payoff": _arena_h[3]}} for _arena_h in _arena_m["history"]]
            else:
                _arena_c["state"] = _arena_json.loads(_arena_m["state"])
                _arena_c["history"] = [{{"me": _arena_h[0], "opponent": _arena_h[1], "my_payoff": _arena_h[2],
                                        "opponent_payoff": _arena_h[3], "state": _arena_json.loads(_arena_h[4])}}
                                       for _arena_h in _arena_m["history"]]
        try:
            if _arena_resets:
                _arena_load()
            if seeds is not None:
                _arena_random.seed(seeds[_arena_i])
            _arena_res.append(decide(_arena_c))
        except Exception:
            _arena_res.append(None)
            _arena_fails.append(_arena_i)
        if _arena_out:
            _arena_outs.append((_arena_i, "".join(_arena_out)[:{OUTPUT_CAP}]))
            _arena_out.clear()
            _arena_size[0] = 0
        _arena_i += 1
    return (_arena_res, _arena_outs, _arena_fails)
'''
_SOURCE_FEED = "<python-input-1>"  # the prelude is feed 0, the program's source feed 1,
_RELOAD_FEED = "<python-input-2>"  # its reload form feed 2 (lines RELOAD_HEADER further down), the prelude again 3

# The papers' conventions (docs/markov-games.md): a source that defines, instead of decide(ctx), the PIBR
# paper's history_dependent_policy_0/1(game_history) or Sistla & Kleiman-Weiner's strategy_function(...)
# gets this decide (feed 2, after its source), which calls its function with the arguments in the papers'
# shape. game_history = {"state": [s_0, ..., s_t], "action": [[a0, a1], ...]}: the states so far and the
# current one (a Markov game: this seat's observation vector; a matrix game has one state, 0), the joint
# actions as action indices in seat order (row = agent 0). strategy_function's histories are 'C'/'D' ('C':
# the game's default action for the seat, 'D' any other), and so is its answer.
_ADAPTERS = {
    "pibr": """
def decide(ctx):
    _arena_acts = ctx["game"]["actions"]
    _arena_row = ctx["seat"] == "row"
    _arena_pairs = []
    _arena_states = []
    for _arena_h in ctx["history"]:
        _arena_a = _arena_acts.index(_arena_h["me"])
        _arena_b = _arena_acts.index(_arena_h["opponent"])
        _arena_pairs.append([_arena_a, _arena_b] if _arena_row else [_arena_b, _arena_a])
        _arena_states.append(0 if ctx["state"] is None else _arena_h["state"]["obs"])
    _arena_states.append(0 if ctx["state"] is None else ctx["state"]["obs"])
    _arena_gh = {"state": _arena_states, "action": _arena_pairs}
    return (ROW_POLICY if _arena_row else COL_POLICY)(_arena_gh)
""",
    "strategy_function": """
def decide(ctx):
    _arena_c = ctx["game"]["default_action"]
    _arena_d = [a for a in ctx["game"]["actions"] if a != _arena_c]
    _arena_mine = ["C" if h["me"] == _arena_c else "D" for h in ctx["history"]]
    _arena_theirs = ["C" if h["opponent"] == _arena_c else "D" for h in ctx["history"]]
    _arena_r = strategy_function(_arena_mine, _arena_theirs, ctx["me"], ctx["opponent"])
    if _arena_r == "C":
        return _arena_c
    if _arena_r == "D" and len(_arena_d) == 1:
        return _arena_d[0]
    return _arena_r
""",
}


def adapter(source: str) -> str | None:
    """The decide(ctx) Arena adds after a source written in a paper's convention; None for decide's own."""
    import ast

    from arena.library.codecheck import entry_point

    entry = entry_point(source)
    if entry == "decide":
        return None
    text = _ADAPTERS[entry]
    if entry == "pibr":
        names = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        row = "history_dependent_policy_0" if "history_dependent_policy_0" in names else "history_dependent_policy_1"
        col = "history_dependent_policy_1" if "history_dependent_policy_1" in names else "history_dependent_policy_0"
        text = text.replace("ROW_POLICY", row).replace("COL_POLICY", col)
    return text


class SandboxError(Exception):
    """The sandbox itself cannot run (the monty runtime is missing or will not start): an Arena problem,
    never a program's failure."""


@dataclass(slots=True)
class DecisionOutcome:
    """What one decide(ctx) gave: its value and printed output, or an error naming the source line."""

    value: Any = None
    output: str = ""
    error: str | None = None
    line: int | None = None  # the source line that raised, when known


# A decision as the sandbox receives it: the ctx's fixed part (shared by every decision with the same
# game, seat and opponent), then opponent_action, depth, epsilon, u, and in a repeated game the round's
# keys (round, rounds, continuation, history as (me, opponent, my_payoff, opponent_payoff) tuples, state;
# None: the base's, those of a one-shot game).
Request = tuple[dict, "str | None", int, float, float, "dict | None"]


def full_ctx(request: Request) -> dict:
    base, a, d, e, u, m = request
    ctx = dict(base)
    ctx["opponent_action"], ctx["depth"], ctx["epsilon"], ctx["u"] = a, d, e, u
    if m is not None:
        ctx.update(m)
        ctx["history"] = history_dicts(m["history"])
        if isinstance(m.get("state"), str):  # a grid world's state crosses as JSON text (code.match_ctx)
            ctx["state"] = json.loads(m["state"])
    return ctx


def seed_of(u: float) -> int:
    """The seed of a node's `random` module: a function of the node's own draw, so a trial replays."""
    return int(u * 2**53)


UNRELOADABLE = "the source cannot be loaded afresh for each decision (Python's compiler refuses it)"
TAMPERED = ("the program's answer did not come back in the shape Arena's sandbox helpers give it (a program "
            "may not define or change names starting with _arena)")


def _well_formed(answer: Any, n: int) -> bool:
    """Whether a batch's answer is what `_arena_run` returns for n decisions: n values, (index, text) outputs
    and failed indices within range. Anything else is the program's doing, never a node skipped."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 3):
        return False
    values, outputs, failed = answer
    if not (isinstance(values, list) and len(values) == n and isinstance(outputs, list) and isinstance(failed, list)):
        return False
    ok_index = lambda i: type(i) is int and 0 <= i < n  # noqa: E731
    return (all(isinstance(o, (tuple, list)) and len(o) == 2 and ok_index(o[0]) and isinstance(o[1], str)
                for o in outputs) and all(ok_index(i) for i in failed))


def _limits(program: CodeProgram, batch: bool) -> dict:
    t = program.time_limit_ms / 1000  # a batch feed too: one that passes holds no decision over the limit
    return {"max_feed_duration_secs": t,
            "max_memory": program.memory_mb * 1_000_000, "max_recursion_depth": 200}


def _describe(exc: BaseException, program: CodeProgram) -> str:
    """A program's failure in one line: the error and the program's own source line that raised it."""
    from pydantic_monty import MontyCrashedError, MontyRuntimeError, MontySyntaxError

    if isinstance(exc, MontyRuntimeError):
        msg = exc.display("type-msg")
        if msg.startswith("TimeoutError"):
            return f"TimeoutError: decide took longer than its limit of {program.time_limit_ms} ms"
        if msg.startswith("MemoryError"):
            return f"MemoryError: decide used more than its limit of {program.memory_mb} MB"
        frames = _frames(exc)
        if frames:
            line, text = frames[-1]
            return f"{_short(msg)} (line {line}: `{text}`)"
        return _short(msg)
    if isinstance(exc, MontySyntaxError):
        return _short(exc.display("type-msg"))
    if isinstance(exc, MontyCrashedError):
        return f"the sandbox worker running decide died ({_short(str(exc))})"
    return _short(f"{type(exc).__name__}: {exc}")


def _frames(exc: BaseException) -> list[tuple[int, str]]:
    """(source line, its text) of each frame of the program's own code, loaded or loaded afresh."""
    from pydantic_monty import MontyRuntimeError

    if not isinstance(exc, MontyRuntimeError):
        return []
    out = []
    for f in exc.traceback():
        if f.filename in (_SOURCE_FEED, _RELOAD_FEED):
            line = f.line - (RELOAD_HEADER if f.filename == _RELOAD_FEED else 0)
            out.append((line, (f.source_line or "").strip()))
    return out


def error_line(exc: BaseException) -> int | None:
    frames = _frames(exc)
    return frames[-1][0] if frames else None


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ProgramSession:
    """One code program's warm session: its source loaded once, decisions fed in batches."""

    def __init__(self, pool: Any, program: CodeProgram, checkpoint: Any = None):
        self.pool = pool
        self.program = program
        self.checkpoint = checkpoint  # called before each feed of a batch (may raise to abandon it)
        self.seeded = uses_random(program.code)
        code = program.code
        # what each decision needs to start fresh, from the source: a fresh load (not for a module no decision
        # can change), random seeded before it (when loading calls something), decimal's context reset, copies
        # of the ctx's shared lists and dicts (not for a program that reads only immutable leaves of its ctx)
        self._prelude = (_PRELUDE + ("import random as _arena_random\n" if self.seeded else "")
                         + ("import decimal as _arena_decimal\n" if "decimal" in code else "_arena_decimal = None\n")
                         + f"_arena_reloads = {not constant_module(code)}\n"
                         + f"_arena_load_seeded = {self.seeded and calls_at_load(code)}\n"
                         + f"_arena_copies = {not reads_only(code, CTX_LEAVES)}\n"
                         + "_arena_resets = _arena_reloads or _arena_decimal is not None\n")
        self._cm = None
        self._session = None
        self._batch_limits = True
        self.load_error: str | None = None
        self.load_line: int | None = None
        self.max_batch: int | None = FIRST_FEED  # decisions a feed: follows the feeds' times, and a limit hit
        self._target = min(FEED_TARGET_S, program.time_limit_ms / 4000)

    # -- session lifecycle -------------------------------------------------------------------
    def _open(self, batch: bool) -> Any:
        from pydantic_monty import MontyError

        if self._session is not None and self._batch_limits == batch:
            return self._session
        self.close()
        self._cm = self.pool.checkout(script_name=f"{self.program.id}.py", limits=_limits(self.program, batch),
                                      os_policy={"random_start": {"seed": 0}, "sleep": "zero"})
        self._session = self._cm.__enter__()
        self._batch_limits = batch
        prelude = self._prelude
        try:
            self._session.feed_run(prelude)
            self._session.feed_run(self.program.code)
            fresh = reload_form(self.program.code, keep_out=frozenset({"print"}))
            if fresh is None:
                self.load_error, self.load_line = UNRELOADABLE, None
                return self._session
            self._session.feed_run(fresh)
            extra = adapter(self.program.code)
            if extra is not None:
                self._session.feed_run(extra)
            # the helpers again, over any name of the program's that shadows them (the static check refuses
            # such names; this holds even for a source that reached the sandbox without it)
            self._session.feed_run(prelude)
            self.load_error = None
        except MontyError as exc:
            self.load_error = _describe(exc, self.program)
            self.load_line = error_line(exc)
        return self._session

    def close(self) -> None:
        cm, self._cm, self._session = self._cm, None, None
        if cm is not None:
            try:
                cm.__exit__(None, None, None)
            except Exception:  # a dead worker: the pool replaces it
                pass

    # -- deciding -----------------------------------------------------------------------------
    def run_one(self, ctx: dict) -> DecisionOutcome:
        """decide(ctx) alone, with the per-decision limit; the error names the source line."""
        from pydantic_monty import MontyCrashedError, MontyError

        session = self._open(batch=False)
        if self.load_error is not None:
            return DecisionOutcome(error=self.load_error, line=self.load_line)
        seed = seed_of(ctx["u"]) if self.seeded else None
        t0 = time.perf_counter()
        try:
            answer = session.feed_run("_arena_one(c, s)", inputs={"c": ctx, "s": seed})
        except MontyError as exc:
            msg = _describe(exc, self.program)
            if isinstance(exc, MontyCrashedError) or msg.startswith(("TimeoutError", "MemoryError")):
                self.close()  # a limit leaves the heap in doubt: a fresh session for the next decision
            return DecisionOutcome(error=msg, line=error_line(exc))
        if not (isinstance(answer, (tuple, list)) and len(answer) == 2 and isinstance(answer[1], str)):
            self.close()
            return DecisionOutcome(error=TAMPERED)
        if self.max_batch is not None and time.perf_counter() - t0 < self._target / 2:
            self.max_batch = min(2 * self.max_batch, MAX_FEED)  # fast again: larger feeds
        return DecisionOutcome(answer[0], answer[1])

    def _check(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint()

    def run_many(self, requests: list[Request]) -> list[DecisionOutcome]:
        """decide(ctx) for each request, in one feed when all goes well: the parts of the ctx fixed by
        (game, seat, opponent) cross to the sandbox once a batch, each decision adds its own four."""
        from pydantic_monty import MontyError

        if len(requests) == 1:
            self._check()
            return [self.run_one(full_ctx(requests[0]))]
        if self.max_batch is not None and len(requests) > self.max_batch:
            out: list[DecisionOutcome] = []
            while len(out) < len(requests):  # (max_batch follows the feeds' times)
                out.extend(self.run_many(requests[len(out):len(out) + self.max_batch]))
            return out
        self._check()
        session = self._open(batch=True)
        if self.load_error is not None:
            return [DecisionOutcome(error=self.load_error, line=self.load_line) for _ in requests]
        index: dict[int, int] = {}
        bases: list[dict] = []
        items = []
        for base, a, d, e, u, m in requests:
            k = index.get(id(base))
            if k is None:
                k = index[id(base)] = len(bases)
                bases.append(base)
            items.append((k, a, d, e, u, m))
        seeds = [seed_of(r[4]) for r in requests] if self.seeded else None
        t0 = time.perf_counter()
        try:
            answer = session.feed_run("_arena_run(b, c, s)", inputs={"b": bases, "c": items, "s": seeds})
        except MontyError as exc:
            self.close()
            if _describe(exc, self.program).startswith(("TimeoutError", "MemoryError")):
                # smaller feeds from now on, down to one decision alone: each decision its own limit
                self.max_batch = max(1, len(requests) // 8)
                return self.run_many(requests)
            out = []
            for r in requests:
                self._check()
                out.append(self.run_one(full_ctx(r)))
            return out
        elapsed = time.perf_counter() - t0
        if elapsed > self._target:
            self.max_batch = max(1, int(len(requests) * self._target / elapsed))
        elif self.max_batch is not None and len(requests) >= self.max_batch and elapsed < self._target / 2:
            self.max_batch = min(2 * self.max_batch, MAX_FEED)
        if not _well_formed(answer, len(requests)):
            self.close()
            return [DecisionOutcome(error=TAMPERED) for _ in requests]
        values, outputs, failed = answer
        out = [DecisionOutcome(v) for v in values]
        for i, text in outputs:
            out[i].output = text
        for i in failed:  # rerun alone for the error and the line that raised it
            self._check()
            out[i] = self.run_one(full_ctx(requests[i]))
        return out


class Sandbox:
    """A pool of Monty workers and one warm session per code program. Use as a context manager (or call
    close()); thread-safe per program (one lock a session). `checkpoint`: called (in the thread feeding)
    before each feed of a batch; what it raises ends the batch."""

    def __init__(self, programs: list[CodeProgram], workers: int | None = None):
        self.programs = {p.id: p for p in programs}
        self.workers = workers or os.cpu_count() or 1
        self._pool = None
        self._sessions: dict[str, ProgramSession] = {}
        self._helpers: dict[str, list[ProgramSession]] = {}  # more sessions of a program, for parallel feeds
        self._locks: dict[str, threading.Lock] = {}
        self._executor = None
        self.checkpoint: Any = None

    def _checkpoint(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint()

    def __enter__(self) -> Sandbox:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._pool is not None:
            return
        try:
            from pydantic_monty import Monty
        except ImportError as exc:
            raise SandboxError(f"code programs need pydantic-monty (pip install pydantic-monty==1.4.0): {exc}") from None
        n = max(64, len(self.programs) * self.workers + 1)  # started on demand: a session a program and core
        try:
            self._pool = Monty(min_processes=1, max_processes=n, checkout_timeout=30)
            self._pool.__enter__()
        except Exception as exc:  # the runtime binary missing or not starting: Arena's problem
            self._pool = None
            raise SandboxError(f"the code sandbox (pydantic-monty) did not start: {exc}") from None

    def close(self) -> None:
        for lock in list(self._locks.values()):  # decisions under way in other threads end first (their limit)
            with lock:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for s in [*self._sessions.values(), *(h for hs in self._helpers.values() for h in hs)]:
            s.close()
        self._sessions.clear()
        self._helpers.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.__exit__(None, None, None)
            except Exception:
                pass

    def session(self, program: CodeProgram) -> ProgramSession:
        if self._pool is None:
            self.open()
        s = self._sessions.get(program.id)
        if s is None or s.program is not program:
            if s is not None:
                s.close()
            s = self._sessions[program.id] = ProgramSession(self._pool, program, self._checkpoint)
            self._locks[program.id] = threading.Lock()
        return s

    def release(self, program_id: str) -> None:
        """Close program `program_id`'s sessions and return their workers to the pool (a later decision opens
        a new one). For a long-lived sandbox that sees many programs one after another (`arena iterate`):
        the pool has a bounded number of workers, and a checkout past it waits, then fails."""
        lock = self._locks.get(program_id)
        if lock is None:
            return
        with lock:
            s = self._sessions.pop(program_id, None)
            for h in [*([s] if s is not None else []), *self._helpers.pop(program_id, [])]:
                h.close()
        self._locks.pop(program_id, None)

    def run_many(self, program: CodeProgram, requests: list[Request]) -> list[DecisionOutcome]:
        """A large batch is split over one session per core (feeds run with the GIL released)."""
        s = self.session(program)
        with self._locks[program.id]:
            parts = min(self.workers, len(requests) // PARALLEL_MIN)
            if parts < 2:
                return s.run_many(requests)
            helpers = self._helpers.setdefault(program.id, [])
            while len(helpers) < parts - 1:
                helpers.append(ProgramSession(self._pool, program, self._checkpoint))
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="arena-sandbox")
            size = -(-len(requests) // parts)
            chunks = [requests[i:i + size] for i in range(0, len(requests), size)]
            futures = [self._executor.submit(h.run_many, c) for h, c in zip(helpers, chunks[1:])]
            out = s.run_many(chunks[0])
            for f in futures:
                out.extend(f.result())
            return out

    def run_one(self, program: CodeProgram, ctx: dict) -> DecisionOutcome:
        s = self.session(program)
        with self._locks[program.id]:
            return s.run_one(ctx)

