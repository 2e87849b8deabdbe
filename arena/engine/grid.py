"""Tournament configuration, grid presets, and the lazy expansion of a grid into trials.

Pairs are *ordered*: every (row, column) pair of the chosen programs, self-play included, so each
unordered pair is played in both seats (n programs -> n*n cells per condition). The grid order puts
the trial index outermost, so a partly finished tournament has results for every cell.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arena.errors import ArenaError
from arena.engine.disclosure import FULL_DISCLOSURE, Disclosure
from arena.engine.records import ONE_SHOT, MatchRules, TrialSpec
from arena.library.panel import PANEL, panel_id

Epsilon = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Depth = Annotated[int, Field(ge=0, le=100_000)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
Rounds = Annotated[int, Field(ge=1, le=100_000)]
Continuation = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
Noise = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Recall = Annotated[int, Field(ge=0, le=100_000)]
Level = Literal["full", "prompt", "model", "none", "obfuscated"]  # engine/disclosure.py LEVELS


class Preset(BaseModel):
    model_config = ConfigDict(frozen=True)
    description: str
    games: list[str]
    epsilons: list[float]
    max_depths: list[int]
    trials: int
    programs: list[str] | None = None  # None: every program in the library (or the panel's)
    # LLM presets: programs = prompt x model alias x temperature (library/panel.py)
    prompts: list[str] | None = None
    panel: list[str] | None = None
    panel_temperatures: list[float] = [0.7]
    disclosures: list[str] | None = None  # None: the default (everything shown)

    @property
    def llm(self) -> bool:
        return self.panel is not None

    def panel_ids(self) -> list[str]:
        return [panel_id(p, m, t) for p in self.prompts or [] for m in self.panel or [] for t in self.panel_temperatures]


PRESETS: dict[str, Preset] = {
    "bots": Preset(
        description="Seconds on built-in bots: Prisoner's Dilemma, eps 0.2, depth cap 10, 20 trials",
        games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10], trials=20,
        programs=["cooperatebot", "defectbot", "randombot", "fairbot", "cliquebot"],
    ),
    "smoke": Preset(
        description="The seed's smoke test: three LLM programs on one model (llama-3.1-8b), Prisoner's Dilemma, "
                    "eps 0.5, depth cap 3, 2 trials",
        games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[3], trials=2,
        prompts=["fair-llm", "cooperate-llm", "defect-llm"], panel=["llama-3.1-8b"],
    ),
    "headline": Preset(
        description="The seed's headline experiment: the open-weight panel (5 models) x fair/defect prompts at "
                    "T 0.7 on the four classic 2x2 games, eps 0.1/0.5, depth cap 10, 5 trials",
        games=["prisoners_dilemma", "stag_hunt", "chicken", "battle_of_the_sexes"],
        epsilons=[0.1, 0.5], max_depths=[10], trials=5,
        prompts=["fair-llm", "defect-llm"], panel=list(PANEL),
    ),
    "full": Preset(
        description="The seed's full experiment: the panel x fair/cooperate/defect prompts x T 0/0.7 on the four "
                    "classic 2x2 games, eps 0.1/0.2/0.5, depth cap 10, 10 trials",
        games=["prisoners_dilemma", "stag_hunt", "chicken", "battle_of_the_sexes"],
        epsilons=[0.1, 0.2, 0.5], max_depths=[10], trials=10,
        prompts=["fair-llm", "cooperate-llm", "defect-llm"], panel=list(PANEL), panel_temperatures=[0.0, 0.7],
    ),
    "disclosure": Preset(
        description="Value of disclosure in seconds: built-in and code bots (CliqueBot and FairBot as bots and as code) "
                    "under every disclosure level, Prisoner's Dilemma, eps 0.2, depth cap 10, 100 trials",
        games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10], trials=100,
        programs=["cooperatebot", "defectbot", "fairbot", "cliquebot", "clique-code", "fair-code"],
        disclosures=["full", "prompt", "model", "none", "obfuscated"],
    ),
}
DEFAULT_PRESET = "bots"  # `arena run` with no options and the app's first run: seconds, no LLM


class TournamentConfig(BaseModel):
    """Everything that determines a tournament's trials; stored as JSON with the tournament."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    preset: str | None = None
    programs: list[str] = Field(min_length=1)
    games: list[str] = Field(min_length=1)
    epsilons: list[Epsilon] = Field(min_length=1)
    max_depths: list[Depth] = Field(min_length=1)
    temperatures: list[Temperature | None] = Field(default_factory=lambda: [None], min_length=1)
    trials: int = Field(ge=1, le=100_000_000)
    seed: int = 0
    concurrency: int = Field(8, ge=1, le=1024, description="LLM calls in flight at once (decisions asking; each provider's own limit applies too)")
    simulation: Literal["run", "imagine"] = "run"
    provider: str | None = None  # run every LLM program on this provider (model aliases mapped)
    models: dict[str, str] = Field(default_factory=dict)  # program id -> provider/model override
    cache: bool = True
    # Repeated games (engine/match.py): axes like epsilons, each default the one-shot game.
    rounds: list[Rounds] = Field(default_factory=lambda: [1], min_length=1, description="fixed horizons")
    continuations: list[Continuation | None] = Field(default_factory=lambda: [None], min_length=1,
                                                     description="chances the match goes on after a round")
    noises: list[Noise] = Field(default_factory=lambda: [0.0], min_length=1)
    recalls: list[Recall | None] = Field(default_factory=lambda: [None], min_length=1,
                                         description="past rounds a program is shown (None: all)")
    max_rounds: int = Field(1000, ge=1, le=100_000, description="the cap of a match under continuation")
    horizon: Literal["known", "hidden"] = "known"
    discount: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="weight D**t of round t in the discounted total")
    # What each program is shown of its opponent (engine/disclosure.py): an axis, the default today's `full`.
    disclosures: list[Level] = Field(default_factory=lambda: ["full"], min_length=1)
    obfuscate_prompts: Literal["shuffle", "none"] = Field(
        "shuffle", description="under 'obfuscated', an LLM opponent's prompt: its sentences shuffled, or unchanged")

    @field_validator("programs", "games", "epsilons", "max_depths", "temperatures", "rounds", "continuations",
                     "noises", "recalls", "disclosures")
    @classmethod
    def _unique(cls, v: list, info):
        seen = set()
        dups = [x for x in v if x in seen or seen.add(x)]
        if dups:
            raise ValueError(f"{info.field_name} repeats {', '.join(map(str, dups))}")
        return v

    @model_validator(mode="after")
    def _size(self) -> TournamentConfig:
        if any(c is not None for c in self.continuations) and self.rounds != [1]:
            raise ValueError("rounds and continuations are alternatives (a fixed horizon, or a chance of going on "
                             "after each round, capped by max_rounds): give one of them")
        if self.total_trials > 100_000_000:
            raise ValueError(f"the grid has {self.total_trials:,} trials; the limit is 100,000,000")
        return self

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(r, c) for r in self.programs for c in self.programs]

    @property
    def matches(self) -> list[MatchRules]:
        """The match rules of the grid, in grid order (one: the one-shot game, unless the axes say more)."""
        hidden = self.horizon == "hidden"
        return [MatchRules(r, c, x, k, self.max_rounds, hidden, self.discount) if (r, c, x, k) != (1, None, 0.0, None)
                or hidden or self.discount != 1.0 or self.max_rounds != 1000 else ONE_SHOT
                for r in self.rounds for c in self.continuations for x in self.noises for k in self.recalls]

    @property
    def disclosure_rules(self) -> list[Disclosure]:
        """The disclosure levels of the grid, in grid order (`full` is today's FULL_DISCLOSURE)."""
        return [FULL_DISCLOSURE if level == "full" else Disclosure(level, self.obfuscate_prompts)
                for level in self.disclosures]

    @property
    def repeated(self) -> bool:
        """Whether a trial of this grid can last more than one round."""
        return self.rounds != [1] or self.continuations != [None]

    @property
    def cells(self) -> int:
        return (len(self.games) * len(self.epsilons) * len(self.max_depths) * len(self.temperatures)
                * len(self.rounds) * len(self.continuations) * len(self.noises) * len(self.recalls)
                * len(self.disclosures) * len(self.programs) ** 2)

    @property
    def total_trials(self) -> int:
        return self.cells * self.trials

    def spec_at(self, seq: int) -> TrialSpec:
        """The trial at grid position `seq` (mixed-radix decoding; the trial index is outermost)."""
        n = len(self.programs)
        seq0 = seq
        seq, col = divmod(seq, n)
        seq, row = divmod(seq, n)
        disclosures = self.disclosure_rules
        seq, k = divmod(seq, len(disclosures))
        matches = self.matches
        seq, m = divmod(seq, len(matches))
        seq, t = divmod(seq, len(self.temperatures))
        seq, d = divmod(seq, len(self.max_depths))
        seq, e = divmod(seq, len(self.epsilons))
        index, g = divmod(seq, len(self.games))
        return self._spec(seq0, self.games[g], self.programs[row], self.programs[col], self.epsilons[e],
                          self.max_depths[d], self.temperatures[t], index, matches[m], disclosures[k])

    def _spec(self, seq, game, row, col, eps, depth, temp, index, match: MatchRules = ONE_SHOT,
              disclosure: Disclosure = FULL_DISCLOSURE) -> TrialSpec:
        # the seed leaves the disclosure out: a cell's trials draw the same coins at every level (paired)
        return TrialSpec(seq, game, row, col, eps, depth, temp, index,
                         trial_seed(self.seed, game, row, col, eps, depth, temp, index, match), match, None, disclosure)

    def iter_specs(self, skip: bytearray | None = None) -> Iterator[TrialSpec]:
        """Every trial in grid order, lazily; `skip[seq]` true means already done."""
        seq = 0
        matches = self.matches
        disclosures = self.disclosure_rules
        for index in range(self.trials):
            for game in self.games:
                for eps in self.epsilons:
                    for depth in self.max_depths:
                        for temp in self.temperatures:
                            for match in matches:
                                for dis in disclosures:
                                    for row in self.programs:
                                        for col in self.programs:
                                            if skip is None or not skip[seq]:
                                                yield self._spec(seq, game, row, col, eps, depth, temp, index, match,
                                                                 dis)
                                            seq += 1


def trial_seed(base: int, game: str, row: str, col: str, eps: float, depth: int, temp: float | None, index: int,
               match: MatchRules = ONE_SHOT) -> int:
    """A trial's seed from its coordinates alone, so it never depends on scheduling order (a one-shot trial's
    key leaves the match rules out: its seed is the same whether or not the tournament has repeated games)."""
    key = f"{base}|{game}|{row}|{col}|{eps!r}|{depth}|{temp!r}|{index}"
    if match.coordinates != ONE_SHOT.coordinates:
        rounds, cont, noise, recall = match.coordinates
        key += f"|{rounds}|{cont!r}|{noise!r}|{recall!r}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


def preset_programs(name: str, library: dict) -> dict:
    """The programs an LLM preset adds to the library (prompt x model x temperature); {} for the others."""
    from arena.library.panel import panel_programs

    p = PRESETS.get(name)
    if p is None or not p.llm:
        return {}
    return panel_programs(library, list(p.prompts or []), list(p.panel or []), list(p.panel_temperatures))


def from_preset(name: str, **overrides) -> dict:
    """Config fields of a preset, with explicit overrides (None values ignored)."""
    if name not in PRESETS:
        raise ArenaError(f"unknown grid '{name}'. Presets: {', '.join(PRESETS)}")
    p = PRESETS[name]
    base = {"preset": name, "games": p.games, "epsilons": p.epsilons, "max_depths": p.max_depths, "trials": p.trials}
    if p.disclosures is not None:
        base["disclosures"] = p.disclosures
    if p.programs is not None:
        base["programs"] = p.programs
    elif p.llm:
        base["programs"] = p.panel_ids()
    base.update({k: v for k, v in overrides.items() if v not in (None, [], ())})
    return base


def expected_nodes(simulates: tuple[bool, bool], eps: tuple[float, float], max_depth: int) -> tuple[float, float]:
    """Expected nodes of one top-level decision, split by which program decides at the node.

    Node k belongs to the deciding program when k is even and to its opponent when k is odd; it exists
    if all nodes above it simulated.
    """
    own = other = 0.0
    alive = 1.0
    for k in range(max_depth + 1):
        who = k % 2
        if who == 0:
            own += alive
        else:
            other += alive
        if not simulates[who] or k >= max_depth:
            break
        alive *= 1 - eps[who]
        if alive < 1e-12:
            break
    return own, other
