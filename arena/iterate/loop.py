"""The iterate run: rounds of best responses, each player in turn improving against the other's program.

Per round, row then column holds the opponent's current program fixed and takes `steps` writer steps; a
step is one writer answer → a candidate → unit tests → `episodes` trials against the opponent → feedback
(the next user turn of the same conversation). The player's current program is a candidate of its own turn
(step 0, on the same episodes); the player keeps the best by mean utility (ties: the earlier one, so the
current program unless one does strictly better), and the kept one is played again on fresh episodes
(step T + 1): that is the welfare the turn reports (never the maximum that chose it). The run stops after `rounds` rounds, or when a whole round changes
neither program. Every step is stored whole (arena/store/iterate.py) before the next starts, so a
resumed run replays the stored steps (their replies and feedback rebuild the conversation) and asks the
writer only from the first missing step on: with the seeds and the response cache it is the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from arena import __version__
from arena.engine.grid import TournamentConfig
from arena.engine.records import CallRecord
from arena.engine.sandbox import Sandbox
from arena.errors import ArenaError
from arena.iterate import feedback as fb
from arena.iterate import prompts
from arena.iterate.events import StepStored, WriterAsked
from arena.iterate.play import play, specs
from arena.library.games import Game, parse_game
from arena.library.personas import Persona
from arena.library.yamlio import dump_yaml
from arena.library.programs import CodeProgram, LLMProgram, program_from_json
from arena.store import iterate as db
from arena.store.database import Store

SEATS = ("row", "col")
RANDOM_CODE = ('def decide(ctx):\n    n = len(ctx["game"]["actions"])\n    return [1 / n] * n   '
               '# uniformly at random\n')
PROTOCOL = 2
START_PROMPT = "You play a one-shot game. Choose the action that gives you a high payoff."


PROTOCOLS = ("best-response", "meta-rounds")
META_ROUNDS_FIELDS = ("meta_rounds", "model_col", "persona_row", "persona_col", "retries", "judge", "seeds",
                      "continuation", "noise")


class IterateConfig(BaseModel):
    """Everything that determines an iterate run; stored as JSON with it.

    `protocol` says which loop runs: `best-response` (this module: PIBR, one player improving against the
    other's fixed program) or `meta-rounds` (iterate/metarounds.py: both writers rewrite at once each
    meta-round, then the pair plays a match). Under meta-rounds `rounds` is the match's fixed horizon
    (`continuation` instead: a chance of going on), `steps` is unused, and `seeds` lists the protocol's
    seeds (None: `seed` alone)."""

    model_config = ConfigDict(extra="forbid")

    game: str
    model: str = Field(pattern=r"^[a-z0-9_-]+/.+$")
    rounds: int = Field(ge=1, le=1000)
    steps: int = Field(ge=1, le=1000)
    episodes: int = Field(ge=1, le=100_000)
    seed: int = 0
    epsilon: float = Field(0.2, gt=0, le=1)
    max_depth: int = Field(5, ge=0, le=1000)
    kind: Literal["code", "prompt"] = "code"
    start_row: dict | None = None  # program definitions (JSON); None: a uniformly random program
    start_col: dict | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, ge=16, le=8192)
    # the writer's prompt and answer shape (iterate/prompts.py); a run stored without it asked version 1
    writer: Literal[1, 2] = prompts.WRITER_VERSION
    out: str | None = None  # where the final pair's files go (a resume writes them there too)
    protocol: Literal["best-response", "meta-rounds"] = "best-response"
    # best-response's revision: 2, the current program competes in its turn and the kept one is
    # re-evaluated on fresh episodes. A run stored without it (by an older Arena) is not resumed.
    revision: Literal[2] = PROTOCOL
    # -- meta-rounds (iterate/metarounds.py)
    meta_rounds: int = Field(10, ge=1, le=1000)
    model_col: str | None = Field(None, pattern=r"^[a-z0-9_-]+/.+$")  # the column's writer; None: `model`
    persona_row: Persona | None = None  # None: the plain payoff-maximiser (pm)
    persona_col: Persona | None = None
    retries: int = Field(2, ge=0, le=20)  # rewrites after a program fails its checks
    judge: str | None = Field(None, pattern=r"^[a-z0-9_-]+/.+$")  # the model that labels each rewrite
    seeds: list[int] | None = Field(None, min_length=1, max_length=1000)
    continuation: float | None = Field(None, gt=0, lt=1)
    noise: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _stored_revision(cls, data):
        """A config stored as `protocol: 2` (the best-response loop's revision, before meta-rounds)."""
        if isinstance(data, dict) and data.get("protocol") == PROTOCOL:
            data = {**data, "protocol": "best-response", "revision": PROTOCOL}
        return data

    @model_validator(mode="after")
    def _meta_rounds(self) -> IterateConfig:
        if self.protocol == "meta-rounds":
            if self.kind != "code":
                raise ValueError("the meta-rounds protocol writes code programs (kind code)")
            if self.continuation is not None and self.rounds != 1:
                raise ValueError("rounds and continuation are alternatives (a fixed horizon, or a chance of going "
                                 "on after each round): give one of them")
            if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds repeat")
        return self

    def stored(self) -> dict:
        """The config as stored with the run (JSON): a best-response run's without the meta-rounds fields."""
        data = self.model_dump(mode="json")
        if self.protocol == "best-response":
            data = {k: v for k, v in data.items() if k not in META_ROUNDS_FIELDS}
        return data

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed]


def record_run(store: Store, cfg: IterateConfig) -> tuple[int, int]:
    """A new run of either protocol and its tournament row: (run id, tournament id)."""
    return db.create_run(store, cfg.stored(), f"iterate {cfg.game}", cfg.seed, __version__)


def load_run(store: Store, run_id: int | None, protocol: str) -> tuple[int, int, IterateConfig, Game]:
    """A stored run of `protocol` (None: the latest run), claimed by this process to resume it (refused while
    another live process runs it): (run id, tournament id, its config, its game). Raises ArenaError for a
    run of the other protocol, one without its stored game, or a best-response run stored by an Arena
    before the current program competed in its turn."""
    row = db.run_row(store, run_id)
    if "protocol" not in row["config"]:
        raise ArenaError(f"iterate run {row['id']} was stored by an older Arena, which chose and reported "
                         "the kept programs differently; it cannot be resumed: start a new run")
    cfg = IterateConfig.model_validate({"writer": prompts.WRITER_V1, **row["config"]})
    if cfg.protocol != protocol:
        raise ArenaError(f"iterate run {row['id']} is a {cfg.protocol} run, not a {protocol} one")
    _programs, games = store.snapshot(row["tournament_id"])
    if cfg.game not in games:
        raise ArenaError(f"iterate run {row['id']} has no stored game; it cannot be resumed")
    db.claim(store, row["id"], row["tournament_id"])
    return row["id"], row["tournament_id"], cfg, parse_game(games[cfg.game])


@dataclass
class StepView:
    """What a listener (CLI, app) is told after each step."""

    round: int
    player: str
    step: int
    program_id: str
    source: str | None
    valid: bool
    feedback: str
    welfare: float | None
    utility: float | None


@dataclass
class RunResult:
    """What an iterate run handed back: its final pair, their welfare, the paper's choice, the files."""

    run_id: int
    status: str
    final: dict = field(default_factory=dict)  # seat -> program
    welfare: float | None = None  # the final pair's social welfare
    best: tuple | None = None  # the paper's choice: (welfare, round, player) of the best profile in the history
    history: list = field(default_factory=list)  # (round, player, welfare) after each turn
    files: list[Path] = field(default_factory=list)
    calls: int = 0

    @property
    def best_welfare(self) -> float | None:
        return self.best[0] if self.best else None


def start_program(cfg: IterateConfig, seat: str, run_id: int):
    data = cfg.start_row if seat == "row" else cfg.start_col
    pid = f"it{run_id}-start-{seat}"
    if data is not None:
        return program_from_json({**data, "id": pid})
    if cfg.kind == "code":
        return CodeProgram(id=pid, kind="code", source=RANDOM_CODE, simulates=False,
                           description="plays uniformly at random")
    return LLMProgram(id=pid, kind="llm", model=cfg.model, system_prompt=START_PROMPT)


def text_of(program) -> str:
    """What tells two programs apart for 'changed': the code, the prompt, or the definition."""
    if isinstance(program, CodeProgram):
        return program.code
    if isinstance(program, LLMProgram):
        return program.system_prompt
    return program.source()


class IterateRunner:
    def __init__(self, store: Store, run_id: int, tid: int, cfg: IterateConfig, game: Game, service,
                 on_step: Callable[[StepView], None] | None = None, on_event: Callable | None = None):
        self.store, self.run_id, self.tid, self.cfg, self.game = store, run_id, tid, cfg, game
        self.service = service
        self.on_step = on_step or (lambda view: None)
        self.on_event = on_event or (lambda event: None)  # iterate/events.py: a writer asked, a step stored
        self.llm_config = TournamentConfig(programs=["writer"], games=[game.id], epsilons=[cfg.epsilon],
                                           max_depths=[cfg.max_depth], trials=1, concurrency=4)
        self.writer = LLMProgram(id="writer", kind="llm", model=cfg.model, system_prompt="writer")
        self.calls = 0
        self.sandbox = Sandbox([])  # opened by run(); one session a program while it plays

    @classmethod
    def create(cls, store: Store, cfg: IterateConfig, game: Game, service, **kw) -> IterateRunner:
        return cls(store, *record_run(store, cfg), cfg, game, service, **kw)

    @classmethod
    def resume(cls, store: Store, run_id: int | None, service, **kw) -> IterateRunner:
        return cls(store, *load_run(store, run_id, "best-response"), service, **kw)

    # -- the run ----------------------------------------------------------------------------------------
    async def run(self, out_dir: Path | None = None) -> RunResult:
        cfg = self.cfg
        done = {(s["round"], s["player"], s["step"]): s for s in db.steps(self.store, self.run_id)}
        current = {seat: start_program(cfg, seat, self.run_id) for seat in SEATS}
        try:
            llm_progs = [self.writer] + [p for p in current.values() if isinstance(p, LLMProgram)]
            await self.service.prepare(llm_progs, self.llm_config)
            for p in current.values():
                db.add_program(self.store, self.tid, p, self.game)
            history: list[tuple[int, str, float]] = []
            welfare = await self._start(done, current)
            history.append((0, "start", welfare))
            for k in range(1, cfg.rounds + 1):
                changed = False
                for seat in SEATS:
                    prog, welfare = await self._turn(k, seat, done, current)
                    if text_of(prog) != text_of(current[seat]):
                        changed = True
                    current[seat] = prog
                    history.append((k, seat, welfare))
                if not changed:
                    break
        except BaseException as exc:
            status = "cancelled" if not isinstance(exc, Exception) else "failed"
            db.finish_run(self.store, self.run_id, self.tid, status, str(exc) or type(exc).__name__)
            raise
        finally:
            self.sandbox.close()
            await self.service.aclose()
        files = write_final(current, self.run_id, out_dir) if out_dir is not None else []
        top = max(history, key=lambda h: h[2])  # the first of the best (ties: earlier)
        db.finish_run(self.store, self.run_id, self.tid, "finished", None, welfare, top[2])
        return RunResult(self.run_id, "finished", current, welfare, (top[2], top[0], top[1]), history, files,
                       self.calls)

    async def _play(self, row, col, stream: str, first_seq: int) -> list:
        """Episodes of (row, col), stored as the run's trials; the programs' sandbox sessions are closed
        after (a run sees many candidates; the sandbox's pool of workers is bounded)."""
        cfg = self.cfg
        programs = {row.id: row, col.id: col}
        missing = [p for p in programs.values() if isinstance(p, LLMProgram) and p.id not in self.service.routes]
        if missing:  # a candidate, or a kept one rebuilt from the store on resume
            self.service.routes.update(self.service.routes_for(missing, self.llm_config))
        trials = specs(self.game, row.id, col.id, cfg.epsilon, cfg.max_depth, cfg.episodes, cfg.seed, stream,
                       first_seq)
        try:
            results = await play(trials, self.game, programs, self.sandbox, self.service, self.llm_config)
        finally:
            for pid in programs:
                self.sandbox.release(pid)
        self.store.write_trials(self.tid, results)
        return results

    def _scored(self, results: list) -> dict:
        u = fb.utilities(results, self.game)
        return {"row_utility": u[0], "col_utility": u[1], "welfare": u[0] + u[1],
                "validation": fb.error_note(results, self.game)}

    async def _start(self, done: dict, current: dict) -> float:
        key = (0, "start", 0)
        if key in done:
            return done[key]["welfare"]
        results = await self._play(current["row"], current["col"], "start", 0)
        step = {"round": 0, "player": "start", "step": 0, "program_id": current["row"].id,
                "program_hash": current["row"].content_hash, "valid": 1, "kept": 1, **self._scored(results)}
        db.write_step(self.store, self.run_id, self.tid, step, [])
        self.on_event(StepStored(self.run_id, step))
        return step["welfare"]

    async def _evaluation(self, k: int, seat: str, t: int, prog, opp, stream: str, done: dict) -> dict:
        """A step without a writer: the current program on the turn's episodes (t = 0), or the kept one on
        fresh episodes (t = T + 1)."""
        stored = done.get((k, seat, t))
        if stored is not None:
            return stored
        row, col = (prog, opp) if seat == "row" else (opp, prog)
        results = await self._play(row, col, stream, db.first_seq(self.cfg.model_dump(), k, seat, t))
        step = {"round": k, "player": seat, "step": t, "program_id": prog.id, "program_hash": prog.content_hash,
                "source": text_of(prog), "valid": 1, **self._scored(results)}
        db.write_step(self.store, self.run_id, self.tid, step, [])
        self.on_event(StepStored(self.run_id, step))
        return step

    async def _turn(self, k: int, seat: str, done: dict, current: dict):
        """One player's best response: (kept program, the profile's welfare on fresh episodes).

        The current program is a candidate of its own turn (step 0, on the turn's episodes, which every
        candidate meets): a writer's candidate is kept only if it does strictly better. The kept one is then
        played again on fresh episodes (step T + 1), and that is what the turn reports: the best of several
        candidates on the episodes that chose it overstates it (the winner's curse)."""
        cfg = self.cfg
        other = "col" if seat == "row" else "row"
        opp = current[other]
        util = lambda s: s["row_utility"] if seat == "row" else s["col_utility"]
        incumbent = await self._evaluation(k, seat, 0, current[seat], opp, f"r{k}-{seat}", done)
        best = (util(incumbent), 0, current[seat])  # (utility, step, program)
        msgs = prompts.writer_messages(cfg.writer, cfg.kind, self.service.writer_mode("writer"), self.game, seat,
                                       opp.source(), cfg.episodes)
        for t in range(1, cfg.steps + 1):
            pid = f"it{self.run_id}-r{k}-{seat}-s{t}"
            stored = done.get((k, seat, t))
            if stored is None:
                self.on_event(WriterAsked(self.run_id, k, seat, t, pid))
                stored = await self._step(k, seat, t, pid, msgs, opp, best[0])
            if stored["valid"]:
                prog = (CodeProgram(id=pid, kind="code", source=stored["source"]) if cfg.kind == "code"
                        else fb.prompt_candidate(pid, stored["source"], cfg.model)[0])  # as built when played
                if util(stored) > best[0]:
                    best = (util(stored), t, prog)
            msgs = msgs + [{"role": "assistant", "content": stored["reply"]},
                           {"role": "user", "content": stored["feedback"]}]
            self.on_step(StepView(k, seat, t, pid, stored["source"], bool(stored["valid"]), stored["feedback"],
                                  stored["welfare"], util(stored)))
        db.mark_kept(self.store, self.run_id, k, seat, best[1])
        self.on_event(StepStored(self.run_id, {"round": k, "player": seat, "step": best[1], "kept": 1}))
        fresh = await self._evaluation(k, seat, cfg.steps + 1, best[2], opp, f"r{k}-{seat}-fresh", done)
        return best[2], fresh["welfare"]

    async def _step(self, k: int, seat: str, t: int, pid: str, msgs: list[dict], opp, best: float) -> dict:
        cfg = self.cfg
        calls: list[CallRecord] = []
        constraint = prompts.writer_request(cfg.writer, cfg.kind, self.service.writer_mode("writer"), self.game)
        reply = await self.service.ask("writer", msgs, cfg.temperature, cfg.max_tokens,
                                       f"iterate:{cfg.seed}:{k}:{seat}:{t}", calls, **constraint)
        self.calls += sum(not c.cached for c in calls)
        if reply.text is None:
            raise ArenaError(f"the writer ({cfg.model}) failed at round {k}, {seat} step {t}: {reply.error}")
        source = prompts.extract_answer(reply.text) if cfg.writer >= prompts.WRITER_V2 else prompts.extract(reply.text)
        try:
            if cfg.kind == "code":
                prog, errors = fb.code_candidate(pid, source, self.game, self.sandbox)
            else:
                prog, errors = fb.prompt_candidate(pid, source, cfg.model)
        finally:
            self.sandbox.release(pid)  # the smoke calls' session
        step = {"round": k, "player": seat, "step": t, "program_id": pid, "source": source, "reply": reply.text,
                "valid": 0}
        if prog is not None:
            db.add_program(self.store, self.tid, prog)
            row, col = (prog, opp) if seat == "row" else (opp, prog)
            results = await self._play(row, col, f"r{k}-{seat}", db.first_seq(cfg.model_dump(), k, seat, t))
            errors = [e for e in fb.trial_errors(results) if f" {pid}: " in e]  # its own failures
            if not errors:
                step.update(valid=1, program_hash=prog.content_hash, **self._scored(results))
                mine = step["row_utility"] if seat == "row" else step["col_utility"]
                step["feedback"] = fb.utility_text(results, self.game, seat, max(best, mine))
        if not step["valid"]:
            step["validation"] = "\n".join(errors)
            step["feedback"] = (fb.invalid_text(errors, source, self.game) if cfg.writer >= prompts.WRITER_V2
                                and cfg.kind == "code" else fb.invalid_text(errors))
        db.write_step(self.store, self.run_id, self.tid, step, calls)
        stored = {k: step.get(k) for k in db.STEP_FIELDS}
        self.on_event(StepStored(self.run_id, stored))
        return stored


def write_final(current: dict, run_id: int, out_dir: Path) -> list[Path]:
    """The final pair as program files ready for `arena run` (ids derived from the run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for seat in SEATS:
        prog = current[seat]
        data = prog.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["id"] = f"iterate{run_id}-{seat}"
        data["description"] = (f"The {seat} player's program of iterate run {run_id}"
                               + (f": {prog.description}" if prog.description else ""))
        order = ["id", "kind", "description"]
        data = {k: data[k] for k in order if k in data} | {k: v for k, v in data.items() if k not in order}
        path = out_dir / f"iterate{run_id}-{seat}.yaml"
        path.write_text(dump_yaml(data))
        paths.append(path)
    return paths
