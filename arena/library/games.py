"""Normal-form games: the pydantic model, payoff lookup, the cooperative outcome set, loading."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (BaseModel, ConfigDict, Field, FiniteFloat, SerializerFunctionWrapHandler, ValidationInfo,
                      field_validator, model_serializer, model_validator)

from arena.errors import ConfigError, LookupFailed, Problem
from arena.library.yamlio import did_you_mean, iter_yaml_files, plain, read_documents, validate

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
ActionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=32)]


class SeatActions(BaseModel):
    """An action per seat: what the row player and what the column player plays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row: ActionName
    col: ActionName


class Game(BaseModel):
    """A symmetric-action one-shot game: both players choose from the same action list.

    `payoffs[i][j]` is (row payoff, column payoff) when row plays `actions[i]` and column plays
    `actions[j]`. A common-payoff game may be written with plain numbers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    markov: ClassVar[bool] = False  # a game with a state (LBFGame): a trial steps an environment

    id: Identifier
    name: str = Field(min_length=1)
    description: str = Field(min_length=1, description="the text an LLM is shown")
    actions: list[ActionName] = Field(min_length=2, max_length=12)
    payoffs: list[list[tuple[FiniteFloat, FiniteFloat]]]
    cooperative: list[tuple[ActionName, ActionName]] = Field(min_length=1)
    default_action: ActionName | SeatActions = Field(
        description="what a grounded cooperative player plays: one action, or {row: a, col: c} per seat "
                    "(so that grounded cooperators coordinate on an asymmetric optimum)")
    defect_action: ActionName = Field(description="what DefectBot / CliqueBot-against-outsiders play")

    @field_validator("payoffs", mode="before")
    @classmethod
    def _expand_common(cls, v):
        # Allow [[2, 0], [0, 1]] for a common-payoff game: each cell becomes (x, x).
        if isinstance(v, list):
            return [
                [[c, c] if isinstance(c, (int, float)) and not isinstance(c, bool) else c for c in row]
                if isinstance(row, list)
                else row
                for row in v
            ]
        return v

    @field_validator("actions")
    @classmethod
    def _unique_actions(cls, v: list[str]) -> list[str]:
        dup = sorted({a for a in v if v.count(a) > 1})
        if dup:
            raise ValueError(f"actions must be unique; repeated: {', '.join(dup)}")
        return v

    # The checks below use the (already validated) action list: fields validate in declaration order.
    @field_validator("payoffs")
    @classmethod
    def _square(cls, v: list, info: ValidationInfo) -> list:
        actions = info.data.get("actions")
        if actions is not None:
            n = len(actions)
            if len(v) != n or any(len(row) != n for row in v):
                shape = f"{len(v)} row(s) of " + ", ".join(str(len(r)) for r in v) + " cell(s)"
                raise ValueError(f"payoffs must be a {n}x{n} matrix (one row and column per action), got {shape}")
        return v

    @field_validator("cooperative")
    @classmethod
    def _known_outcomes(cls, v: list, info: ValidationInfo) -> list:
        known = set(info.data.get("actions") or ())
        for a, b in v:
            if known and (a not in known or b not in known):
                raise ValueError(f"cooperative outcome ({a}, {b}) uses an action not in {sorted(known)}")
        return v

    @field_validator("default_action", "defect_action")
    @classmethod
    def _known_action(cls, v, info: ValidationInfo):
        actions = info.data.get("actions")
        for seat, a in ([("row", v.row), ("col", v.col)] if isinstance(v, SeatActions) else [(None, v)]):
            if actions is not None and a not in actions:
                where = f"{info.field_name}.{seat}" if seat else info.field_name
                raise ValueError(f"{where} '{a}' is not one of the actions {actions}")
        return v

    def default_for(self, seat: str) -> str:
        """The default (grounded cooperative) action of the player in `seat` ('row' or 'col')."""
        d = self.default_action
        return d if isinstance(d, str) else (d.col if seat == "col" else d.row)

    @property
    def default_label(self) -> str:
        """The default action as a user reads it: 'a', or 'row a, col c'."""
        d = self.default_action
        return d if isinstance(d, str) else f"row {d.row}, col {d.col}"

    # --- lookups (cached: games are frozen) -------------------------------------------------
    @cached_property
    def payoff_table(self) -> dict[tuple[str, str], tuple[float, float]]:
        return {
            (a, b): self.payoffs[i][j] for i, a in enumerate(self.actions) for j, b in enumerate(self.actions)
        }

    @cached_property
    def cooperative_set(self) -> frozenset[tuple[str, str]]:
        return frozenset(tuple(c) for c in self.cooperative)

    def payoff(self, row_action: str, col_action: str) -> tuple[float, float]:
        return self.payoff_table[(row_action, col_action)]

    def is_cooperative(self, row_action: str, col_action: str) -> bool:
        return (row_action, col_action) in self.cooperative_set

    @property
    def common_payoff(self) -> bool:
        return all(r == c for row in self.payoffs for r, c in row)

    @property
    def is_2x2(self) -> bool:
        return len(self.actions) == 2

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.model_dump(mode="json"))

    def matrix_text(self) -> str:
        """The payoff matrix as plain text, for prompts and terminals."""
        width = max(len(a) for a in self.actions) + 2
        cells = [[f"{r:g}, {c:g}" for r, c in row] for row in self.payoffs]
        cw = max(width, *(len(x) + 2 for row in cells for x in row))
        head = " " * width + "".join(a.center(cw) for a in self.actions)
        lines = [head] + [a.ljust(width) + "".join(x.center(cw) for x in cells[i]) for i, a in enumerate(self.actions)]
        return "\n".join(lines)


LBF_ACTIONS = ["none", "north", "south", "west", "east", "load"]  # the package's Action codes 0..5, in order
LBF_ENV_ID = r"^Foraging(-grid)?(-\d+s)?-\d+x\d+-\d+p-\d+f(-coop)?(-2s)?(-ind)?(-pen)?-v3$"


# the env's parameters a game gives instead of an env_id (a registered env has its own)
ENV_PARAMETERS = ("field_size", "max_num_food", "force_coop", "sight", "max_episode_steps", "penalty",
                  "min_player_level", "max_player_level", "min_food_level", "max_food_level")


class LBFGame(Game):
    """Level-Based Foraging (the `lbforaging` package): a Markov game whose trials step the package's
    ForagingEnv (engine/lbf.py). Either `env_id`, one of the package's registered ids, or the env's
    parameters; `terminal_penalty` c makes it the PIBR variant (docs/markov-games.md: each agent's last
    reward is lowered by c·L/T, L the episode's length and T = max_episode_steps).

    The matrix fields are filled in (the six actions by name; payoffs all 0, unused: a step's rewards
    come from the env) so that everything that lists a game's actions works unchanged."""

    markov: ClassVar[bool] = True

    kind: Literal["lbf"]
    env_id: Annotated[str, Field(pattern=LBF_ENV_ID)] | None = None
    field_size: Annotated[int, Field(ge=3, le=30)] | tuple[Annotated[int, Field(ge=3, le=30)],
                                                            Annotated[int, Field(ge=3, le=30)]] = 5
    players: Literal[2] = 2
    max_num_food: int = Field(2, ge=1, le=10)
    force_coop: bool = False
    sight: int | None = Field(None, ge=1, le=30, description="None: the whole field")
    max_episode_steps: int = Field(50, ge=1, le=10_000)
    penalty: float = Field(0.0, ge=0, le=10, allow_inf_nan=False, description="the package's failed-load penalty")
    min_player_level: int = Field(1, ge=1, le=10)
    max_player_level: int = Field(2, ge=1, le=10)
    min_food_level: int = Field(1, ge=1, le=30)
    max_food_level: int | None = Field(None, ge=1, le=30)
    terminal_penalty: float | None = Field(None, ge=0, le=100, allow_inf_nan=False,
                                           description="the PIBR wrapper's c: the last step costs each agent c·L/T")

    @model_validator(mode="before")
    @classmethod
    def _matrix_fields(cls, v):
        if isinstance(v, dict):
            n = len(LBF_ACTIONS)
            v = {**v, "actions": LBF_ACTIONS, "payoffs": [[[0.0, 0.0]] * n for _ in range(n)],
                 "cooperative": [["load", "load"]], "default_action": "load", "defect_action": "none"}
        return v

    @model_validator(mode="after")
    def _env_given_once(self) -> LBFGame:
        given = sorted(self.model_fields_set & set(ENV_PARAMETERS))
        if self.env_id is not None and given:
            raise ValueError(f"give env_id (a registered env) or the env's parameters, not both "
                             f"(env_id {self.env_id} with {', '.join(given)})")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_parameters(self, handler: SerializerFunctionWrapHandler) -> dict:
        """A registered env's game as it was written: its env_id, not the parameter fields it leaves unused
        (their defaults would otherwise be stored, and the stored game read back as both)."""
        data = handler(self)
        if self.env_id is not None and isinstance(data, dict):
            for name in ENV_PARAMETERS:
                data.pop(name, None)
        return data

    def env_kwargs(self) -> dict:
        """ForagingEnv's keyword arguments: the registered env's (env_id), else from the fields."""
        if self.env_id is not None:
            import gymnasium
            import lbforaging  # noqa: F401 (registers the ids)

            return dict(gymnasium.spec(self.env_id).kwargs)
        size = (self.field_size, self.field_size) if isinstance(self.field_size, int) else tuple(self.field_size)
        return {"players": self.players, "min_player_level": self.min_player_level,
                "max_player_level": self.max_player_level, "field_size": size,
                "min_food_level": self.min_food_level, "max_food_level": self.max_food_level,
                "max_num_food": self.max_num_food, "sight": self.sight or max(size),
                "max_episode_steps": self.max_episode_steps, "force_coop": self.force_coop,
                "grid_observation": False, "penalty": self.penalty}

    def parameters(self) -> dict:
        """The game's parameters as the app and `arena games show` list them (label → value; None: not set)."""
        if self.env_id is not None:
            fields = {"env id": self.env_id}
        else:
            fields = {"field": self.field_size, "players": self.players, "foods": self.max_num_food,
                      "every food needs both": self.force_coop, "sight": self.sight or "the whole field",
                      "steps": self.max_episode_steps,
                      "player levels": f"{self.min_player_level}–{self.max_player_level}"}
        fields["terminal penalty c (c·L/T)"] = self.terminal_penalty
        return fields

    @property
    def horizon(self) -> int:
        """T, the episode's longest length (the env's max_episode_steps)."""
        return self.env_kwargs()["max_episode_steps"] if self.env_id is not None else self.max_episode_steps


def parse_game(data: dict) -> Game:
    """A game from its stored JSON (or a YAML record's plain data): an LBFGame for kind lbf."""
    return (LBFGame if isinstance(data, dict) and data.get("kind") == "lbf" else Game).model_validate(data)


def game_model(data) -> type[Game]:
    """The model a game record validates against."""
    return LBFGame if isinstance(data, dict) and data.get("kind") == "lbf" else Game


def content_hash(data: object) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load_games(directory: Path) -> dict[str, Game]:
    """Every game in a directory of YAML files; all problems are collected before raising."""
    games: dict[str, Game] = {}
    where: dict[str, str] = {}  # id -> file:line where it was first defined
    problems: list[Problem] = []
    for path in iter_yaml_files(directory):
        try:
            for doc in read_documents(path):
                game = validate(doc, game_model(plain(doc.data)))
                if game.id in games:
                    problems.append(Problem(doc.file, doc.line, "id",
                                            f"duplicate game id '{game.id}' (first defined in {where[game.id]})"))
                    continue
                games[game.id] = game
                where[game.id] = f"{doc.file}:{doc.line}"
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return games


def pick(games: dict[str, Game], ids: list[str]) -> list[Game]:
    missing = [g for g in ids if g not in games]
    if missing:
        raise LookupFailed(f"unknown game(s): {', '.join(missing)}{did_you_mean(missing, games)}. "
                           f"Known: {', '.join(sorted(games))}")
    return [games[g] for g in ids]
