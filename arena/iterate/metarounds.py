"""The meta-rounds protocol (Sistla & Kleiman-Weiner's open-source games with LLM writers).

For each of the run's seeds, meta-rounds k = 1..K: both seats' writers are asked at once (their calls in
flight together) for a program, each from its own prompt (iterate/metaprompts.py: persona, rules,
meta-round k of K, the scores so far, the past meta-rounds, the opponent's program of meta-round k − 1).
A program that fails its checks (the static check, the smoke calls: iterate/feedback.py) goes back to its
writer with the errors, up to `retries` rewrites; a seat whose writer gives no valid program plays its
previous one (in meta-round 1 the uniformly random program) and the meta-round records the failure.
With a judge, each seat's new program from meta-round 2 on is labelled. Then the pair plays `episodes`
matches of the condition (rounds or continuation, noise, ε, depth); match i's seed is
`trial_seed(seed, game, row id, col id, ε, depth, None, i, rules)`, the seed `arena run --seed SEED
--trials N` gives the pair's trial i, so the stored pair replays exactly there.

Every attempt is stored whole with its writer calls, every meta-round with its trials; a resumed run
replays what is stored and asks the writers only for what is missing. Listeners get a `ProgramView`
per attempt (and the valid one's again once the judge has labelled it) and a `MetaRoundView` per
meta-round played (stored ones included, on resume) through `on_step`; through `on_event` (a runner
process's hub) the events of iterate/events.py as things happen: a writer asked, an attempt stored or
labelled, a meta-round stored (nothing for what a resume replays: that is in the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from arena.engine.code import CodeAgent
from arena.engine.grid import TournamentConfig, trial_seed
from arena.engine.match import run_any_batched, totals
from arena.engine.records import CallRecord, MatchRules, TrialResult, TrialSpec
from arena.engine.sandbox import Sandbox
from arena.errors import ArenaError
from arena.iterate import feedback as fb
from arena.iterate import metaprompts as mp
from arena.iterate.events import AttemptStored, MetaRoundStored, MetaWriterAsked
from arena.iterate.loop import RANDOM_CODE, SEATS, IterateConfig, load_run, record_run
from arena.iterate.prompts import extract
from arena.library.codemetrics import metrics
from arena.library.games import Game
from arena.library.personas import builtin
from arena.library.programs import CodeProgram, LLMProgram
from arena.store import iterate as db
from arena.store.database import Store


@dataclass
class ProgramView:
    """One writer attempt, as a listener (CLI, app) is told it."""

    seed: int
    meta_round: int
    seat: str
    attempt: int
    program_id: str
    source: str | None
    valid: bool
    errors: list[str]
    metrics: dict | None
    label: str | None = None
    reply: str | None = None  # the writer's whole answer
    feedback: str | None = None  # what went back to the writer after a failed attempt


@dataclass
class MetaRoundView:
    """One meta-round played: the pair and its payoffs (means over the matches)."""

    seed: int
    meta_round: int
    row_program: str
    col_program: str
    row_failed: bool
    col_failed: bool
    row_payoff: float | None
    col_payoff: float | None
    row_total: float | None
    col_total: float | None


@dataclass
class MetaRunResult:
    run_id: int
    status: str
    rounds: list[dict] = field(default_factory=list)  # the meta_rounds rows, every seed
    calls: int = 0  # writer and judge calls made (not cached)
    welfare: float | None = None  # the last meta-round's row + column payoff per round, mean over seeds
    best_welfare: float | None = None  # the best meta-round's


def match_rules(cfg: IterateConfig) -> MatchRules:
    """The condition's match, as `arena run --rounds/--continuation/--noise` builds it."""
    if cfg.continuation is not None:
        return MatchRules(1, cfg.continuation, cfg.noise)
    return MatchRules(cfg.rounds, None, cfg.noise)


def persona(cfg: IterateConfig, seat: str):
    p = cfg.persona_row if seat == "row" else cfg.persona_col
    return p if p is not None else builtin("pm")


class MetaRoundsRunner:
    def __init__(self, store: Store, run_id: int, tid: int, cfg: IterateConfig, game: Game, service,
                 on_step: Callable[[ProgramView | MetaRoundView], None] | None = None,
                 on_event: Callable | None = None):
        if cfg.protocol != "meta-rounds":
            raise ArenaError(f"iterate run {run_id} is a {cfg.protocol} run, not a meta-rounds one")
        self.store, self.run_id, self.tid, self.cfg, self.game = store, run_id, tid, cfg, game
        self.service = service
        self.on_step = on_step or (lambda view: None)
        self.on_event = on_event or (lambda event: None)
        self.rules = match_rules(cfg)
        self.writers = {"row": LLMProgram(id="writer-row", kind="llm", model=cfg.model, system_prompt="writer"),
                        "col": LLMProgram(id="writer-col", kind="llm", model=cfg.model_col or cfg.model,
                                          system_prompt="writer")}
        self.judge = (LLMProgram(id="judge", kind="llm", model=cfg.judge, system_prompt="judge")
                      if cfg.judge else None)
        self.llm_config = TournamentConfig(programs=["writer-row"], games=[game.id], epsilons=[cfg.epsilon],
                                           max_depths=[cfg.max_depth], trials=1, concurrency=4)
        self.calls = 0
        self.sandbox = Sandbox([])

    @classmethod
    def create(cls, store: Store, cfg: IterateConfig, game: Game, service, **kw) -> MetaRoundsRunner:
        return cls(store, *record_run(store, cfg), cfg, game, service, **kw)

    @classmethod
    def resume(cls, store: Store, run_id: int | None, service, **kw) -> MetaRoundsRunner:
        return cls(store, *load_run(store, run_id, "meta-rounds"), service, **kw)

    def start_pair(self, seed: int) -> dict[str, CodeProgram]:
        """Each seat's program before meta-round 1 of `seed`: the uniformly random one."""
        return {seat: CodeProgram(id=f"mr{self.run_id}-s{seed}-start-{seat}", kind="code", source=RANDOM_CODE,
                                  simulates=False, description="plays uniformly at random") for seat in SEATS}

    def program_id(self, seed: int, k: int, seat: str, attempt: int = 0) -> str:
        return f"mr{self.run_id}-s{seed}-m{k}-{seat}" + (f"-a{attempt}" if attempt else "")

    def first_seq(self, seed_index: int, k: int) -> int:
        """The seq of meta-round k's first match (of the run's seed_index-th seed); the next `episodes` follow."""
        return (seed_index * self.cfg.meta_rounds + k - 1) * self.cfg.episodes

    # -- the run --------------------------------------------------------------------------------------------
    async def run(self) -> MetaRunResult:
        cfg = self.cfg
        try:
            progs = [*self.writers.values()] + ([self.judge] if self.judge else [])
            await self.service.prepare(progs, self.llm_config)
            attempts = {(a["seed"], a["meta_round"], a["seat"], a["attempt"]): a
                        for a in db.meta_programs(self.store, self.run_id)}
            played = {(r["seed"], r["meta_round"]): r for r in db.meta_rounds(self.store, self.run_id)}
            for i, seed in enumerate(cfg.seed_list):
                await self._seed(i, seed, attempts, played)
        except BaseException as exc:
            status = "cancelled" if not isinstance(exc, Exception) else "failed"
            db.finish_run(self.store, self.run_id, self.tid, status, str(exc) or type(exc).__name__)
            raise
        finally:
            self.sandbox.close()
            await self.service.aclose()
        rounds = db.meta_rounds(self.store, self.run_id)
        welfare = _welfare([r for r in rounds if r["meta_round"] == cfg.meta_rounds])
        best = max((_welfare([r for r in rounds if r["meta_round"] == k]) for k in range(1, cfg.meta_rounds + 1)),
                   default=None, key=lambda w: -float("inf") if w is None else w)
        db.finish_run(self.store, self.run_id, self.tid, "finished", None, welfare, best)
        return MetaRunResult(self.run_id, "finished", rounds, self.calls, welfare, best)

    async def _seed(self, index: int, seed: int, attempts: dict, played: dict) -> None:
        cfg = self.cfg
        current = self.start_pair(seed)
        for p in current.values():
            db.add_program(self.store, self.tid, p, self.game)
        history: list[dict] = []
        known = {p.id: p for p in current.values()}  # every program of this seed so far, by id
        for k in range(1, cfg.meta_rounds + 1):
            stored = played.get((seed, k))
            if stored is not None:  # replay: the pair that played, from the stored attempts
                for seat in SEATS:
                    self._replay_attempts(seed, k, seat, attempts)
                    pid = stored[f"{seat}_program"]
                    if pid not in known:
                        src = next(a["source"] for a in attempts.values() if a["program_id"] == pid)
                        known[pid] = CodeProgram(id=pid, kind="code", source=src)
                    current[seat] = known[pid]
                history.append(stored)
                self.on_step(_round_view(stored))
                continue
            previous = {seat: known[history[-1][f"{seat}_program"]].code if history else None for seat in SEATS}
            written = await asyncio.gather(*(  # both writers' calls in flight at once
                self._write(seed, k, seat, history, previous[_other(seat)], attempts) for seat in SEATS))
            new = dict(zip(SEATS, written))
            if self.judge is not None and k > 1:
                for seat in SEATS:
                    if new[seat] is not None:
                        await self._label(seed, k, seat, current[seat], current[_other(seat)],
                                          new[seat], attempts)
            failed = {seat: new[seat] is None for seat in SEATS}
            for seat in SEATS:
                if new[seat] is not None:
                    current[seat] = known[new[seat].id] = new[seat]
            row = await self._play(index, seed, k, current["row"], current["col"], failed)
            played[(seed, k)] = row
            history.append(row)
            self.on_step(_round_view(row))

    def _replay_attempts(self, seed: int, k: int, seat: str, attempts: dict) -> None:
        for a in range(self.cfg.retries + 1):
            stored = attempts.get((seed, k, seat, a))
            if stored is None:
                return
            self.on_step(_program_view(stored))

    async def _write(self, seed: int, k: int, seat: str, history: list[dict], opp_source: str | None,
                     attempts: dict) -> CodeProgram | None:
        """The seat's program of meta-round k (None: every attempt failed its checks)."""
        cfg = self.cfg
        msgs = [{"role": "system", "content": mp.system_message(persona(cfg, seat).text, self.rules)},
                {"role": "user", "content": mp.task_message(self.game, seat, self.rules, cfg.episodes, k,
                                                            cfg.meta_rounds, history, opp_source)}]
        for attempt in range(cfg.retries + 1):
            pid = self.program_id(seed, k, seat, attempt)
            stored = attempts.get((seed, k, seat, attempt))
            if stored is None:
                self.on_event(MetaWriterAsked(self.run_id, seed, k, seat, attempt, pid))
                stored = await self._attempt(seed, k, seat, attempt, pid, msgs)
                attempts[(seed, k, seat, attempt)] = stored
                self.on_event(AttemptStored(self.run_id, {f: stored.get(f) for f in db.META_PROGRAM_FIELDS}))
            self.on_step(_program_view(stored))
            if stored["valid"]:
                return CodeProgram(id=pid, kind="code", source=stored["source"])
            msgs = msgs + [{"role": "assistant", "content": stored["reply"]},
                           {"role": "user", "content": stored["feedback"]}]
        return None

    async def _attempt(self, seed: int, k: int, seat: str, attempt: int, pid: str, msgs: list[dict]) -> dict:
        cfg = self.cfg
        calls: list[CallRecord] = []
        writer = self.writers[seat]
        reply = await self.service.ask(writer.id, msgs, cfg.temperature, cfg.max_tokens,
                                       f"meta:{seed}:{k}:{seat}:{attempt}", calls)
        self.calls += sum(not c.cached for c in calls)
        if reply.text is None:
            raise ArenaError(f"the {seat} writer ({writer.model}) failed at seed {seed}, meta-round {k}: {reply.error}")
        source = extract(reply.text)
        try:
            prog, errors = fb.code_candidate(pid, source, self.game, self.sandbox)
        finally:
            self.sandbox.release(pid)
        m = metrics(source)
        row = {"seed": seed, "meta_round": k, "seat": seat, "attempt": attempt, "program_id": pid, "source": source,
               "reply": reply.text, "valid": int(prog is not None), **(m.model_dump() if m is not None else {})}
        if prog is not None:
            db.add_program(self.store, self.tid, prog)
            row["program_hash"] = prog.content_hash
        else:
            row["validation"] = "\n".join(errors)
            row["feedback"] = mp.retry_message(errors, cfg.retries - attempt)
        db.write_meta_program(self.store, self.run_id, self.tid, row, calls)
        row.setdefault("label", None)
        return row

    async def _label(self, seed: int, k: int, seat: str, previous: CodeProgram, opp_previous: CodeProgram,
                     new: CodeProgram, attempts: dict) -> None:
        stored = next(a for a in attempts.values() if a["program_id"] == new.id)
        if stored.get("label") is not None:
            return
        calls: list[CallRecord] = []
        msgs = mp.judge_messages(seat, k, previous.code, opp_previous.code, new.code)
        reply = await self.service.ask("judge", msgs, 0.0, 256, f"judge:{seed}:{k}:{seat}", calls, purpose="judge")
        self.calls += sum(not c.cached for c in calls)
        label = mp.parse_label(reply.text)
        db.write_label(self.store, self.run_id, self.tid, new.id, label, calls)
        stored["label"] = label
        self.on_event(AttemptStored(self.run_id, {f: stored[f] for f in ("seed", "meta_round", "seat", "attempt",
                                                                         "label")}))
        self.on_step(_program_view(stored))  # the program's view again, labelled

    async def _play(self, index: int, seed: int, k: int, row: CodeProgram, col: CodeProgram,
                    failed: dict) -> dict:
        cfg = self.cfg
        first = self.first_seq(index, k)
        specs = [TrialSpec(first + i, self.game.id, row.id, col.id, cfg.epsilon, cfg.max_depth, None, first + i,
                           trial_seed(seed, self.game.id, row.id, col.id, cfg.epsilon, cfg.max_depth, None, i,
                                      self.rules), self.rules)
                 for i in range(cfg.episodes)]
        programs = {row.id: row, col.id: col}
        agents = {pid: CodeAgent(p, self.sandbox) for pid, p in programs.items()}
        try:
            results = await asyncio.to_thread(run_any_batched, specs, {self.game.id: self.game}, agents, programs)
        finally:
            for pid in programs:
                self.sandbox.release(pid)
        self.store.write_trials(self.tid, results)
        pay = fb.utilities(results, self.game)
        tot = self._totals(results)
        errors = fb.trial_errors(results)
        out = {"seed": seed, "meta_round": k, "row_program": row.id, "col_program": col.id,
               "row_hash": row.content_hash, "col_hash": col.content_hash, "row_failed": int(failed["row"]),
               "col_failed": int(failed["col"]), "row_payoff": pay[0], "col_payoff": pay[1], "row_total": tot[0],
               "col_total": tot[1], "episodes": cfg.episodes, "first_seq": first,
               "errors": "\n".join(errors) if errors else None}
        db.write_meta_round(self.store, self.run_id, self.tid, out)
        self.on_event(MetaRoundStored(self.run_id, out))
        return out

    def _totals(self, results: list[TrialResult]) -> tuple[float, float]:
        """Mean match totals; a match that ended in an error scores each seat's worst payoff for each round of
        the rules' expected length (as fb.utilities scores it per round)."""
        worst = fb.worst_payoffs(self.game)
        n = max(len(results), 1)
        row = col = 0.0
        for r in results:
            if r.row_payoff is None or r.col_payoff is None:
                row += worst[0] * self.rules.expected_rounds
                col += worst[1] * self.rules.expected_rounds
            else:
                t = totals(r.rounds, 1.0) if r.rounds else (r.row_payoff, r.col_payoff)
                row += t[0]
                col += t[1]
        return row / n, col / n


def _other(seat: str) -> str:
    return "col" if seat == "row" else "row"


def _welfare(rows: list[dict]) -> float | None:
    """Mean over the rows (seeds) of the meta-round's row + column payoff per round."""
    vals = [r["row_payoff"] + r["col_payoff"] for r in rows if r["row_payoff"] is not None]
    return sum(vals) / len(vals) if vals else None


def _program_view(a: dict) -> ProgramView:
    m = None
    if a.get("sloc") is not None:
        m = {k: a.get(k) for k in ("sloc", "complexity", "halstead_volume", "opponent_use", "ctx_fields")}
    errors = a["validation"].splitlines() if a.get("validation") else []
    return ProgramView(a["seed"], a["meta_round"], a["seat"], a["attempt"], a["program_id"], a["source"],
                       bool(a["valid"]), errors, m, a.get("label"), a.get("reply"), a.get("feedback"))


def _round_view(r: dict) -> MetaRoundView:
    return MetaRoundView(r["seed"], r["meta_round"], r["row_program"], r["col_program"], bool(r["row_failed"]),
                         bool(r["col_failed"]), r["row_payoff"], r["col_payoff"], r["row_total"], r["col_total"])


def write_pairs(store: Store, run_id: int, out_dir) -> list:
    """Each seed's last pair as program files (`mrRUN-sSEED-SEAT.yaml`), each with the id it played under, so
    `arena run --program ROW --program COL --seed SEED` with the run's condition replays its matches."""
    from pathlib import Path

    from arena.library.yamlio import dump_yaml

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last: dict[int, dict] = {}
    for r in db.meta_rounds(store, run_id):
        last[r["seed"]] = r  # ordered by seed, meta-round: the last one stays
    sources = {p["program_id"]: p["source"] for p in db.meta_programs(store, run_id)}
    paths = []
    for seed, r in last.items():
        for seat in SEATS:
            pid = r[f"{seat}_program"]
            src = sources.get(pid, RANDOM_CODE)  # a writer that never wrote a valid program: the random start
            data = {"id": pid, "kind": "code",
                    "description": f"The {seat} player's program of meta-rounds run {run_id}, seed {seed}, "
                                   f"meta-round {r['meta_round']}", "source": src}
            if pid not in sources:
                data["simulates"] = False
            path = out_dir / f"mr{run_id}-s{seed}-{seat}.yaml"
            path.write_text(dump_yaml(data))
            paths.append(path)
    return paths
