"""Program models (LLM programs and built-in bots) and loading them from YAML."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from arena.errors import ConfigError, LookupFailed, Problem
from arena.library.codecheck import check_source
from arena.library.axelrod_programs import AXELROD_PREFIX, strategy_class, summary
from arena.library.games import Identifier, content_hash
from arena.library.yamlio import (
    SECRET_FIELDS,
    Document,
    did_you_mean,
    iter_yaml_files,
    line_of,
    plain,
    problems_from,
    read_documents,
)

Epsilon = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description="probability of acting without simulating")]
STRATEGIES = ("cooperate", "defect", "random", "fairbot", "cliquebot", "titfortat", "grimtrigger", "pavlov",
              "titfortwotats", "alternator", "axelrod", "uniform", "lbf_heuristic")
REPEATED = STRATEGIES[5:10]  # strategies that read the match's history (in a one-shot game: the first round)
# A program id: the library's identifiers, or axelrod:NAME (an Axelrod strategy's class name, e.g. axelrod:TitForTat)
ProgramId = Annotated[str, Field(pattern=r"^(?:[a-z0-9][a-z0-9_.-]*|axelrod:[A-Za-z][A-Za-z0-9_]*)$", max_length=64)]


class _ProgramBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProgramId
    description: str = ""
    epsilon: Epsilon | None = None

    @model_validator(mode="after")
    def _axelrod_id(self):
        # `axelrod:NAME` always means Axelrod's strategy NAME, whoever defines it
        if self.id.startswith(AXELROD_PREFIX):
            name = self.id[len(AXELROD_PREFIX):]
            if getattr(self, "strategy", None) != "axelrod" or getattr(self, "params", {}).get("name") != name:
                raise ValueError(f"the id '{self.id}' is reserved for Axelrod's strategy {name} (kind: builtin, "
                                 f"strategy: axelrod, params: {{name: {name}}}); choose another id")
        return self

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.model_dump(mode="json"))


# --- built-in strategies' parameters -------------------------------------------------------
class _ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str | None = Field(None, description="play this action instead of the game's default")


class _RandomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p: float = Field(0.5, ge=0, le=1, description="probability of the game's default (cooperative) action")


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _AxelrodParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=56,
                      description="the class name of one of Axelrod's strategies, e.g. TitForTat")


class _HeuristicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    h: Literal[1, 2, 3, 4] = Field(description="the lbforaging heuristic agent H1..H4")


PARAMS: dict[str, type[BaseModel]] = {
    "cooperate": _ActionParams,
    "defect": _ActionParams,
    "random": _RandomParams,
    "fairbot": _NoParams,
    "cliquebot": _NoParams,
    **{name: _NoParams for name in ("titfortat", "grimtrigger", "pavlov", "titfortwotats", "alternator")},
    "axelrod": _AxelrodParams,
    "uniform": _NoParams,
    "lbf_heuristic": _HeuristicParams,
}

STRATEGY_DOCS = {
    "cooperate": "Always plays the game's cooperative (default) action. Never simulates.",
    "defect": "Always plays the game's defect action. Never simulates.",
    "random": "Plays the cooperative action with probability p, else another action uniformly. Never simulates.",
    "fairbot": (
        "Epsilon-grounded FairBot: with probability epsilon (or at the depth cap) plays the cooperative "
        "action without simulating (in a repeated game, from the second round on: the opponent's last "
        "action, as TitForTat); otherwise simulates the opponent playing against it and plays whatever the "
        "simulated opponent played."
    ),
    "cliquebot": "Plays the cooperative action if the opponent's source is identical to its own, else defects. Never simulates.",
    "titfortat": "Repeated games: cooperates first, then plays the opponent's last action. Never simulates.",
    "grimtrigger": ("Repeated games: cooperates until the opponent plays the defect action once (in the rounds it "
                    "is shown), then defects for ever. Never simulates."),
    "pavlov": ("Repeated games, win-stay lose-shift (Axelrod's WinStayLoseShift): cooperates first, then "
               "cooperates when both played the same action last round, else defects. Never simulates."),
    "titfortwotats": ("Repeated games: cooperates unless the opponent played the defect action in each of the last "
                      "two rounds. Never simulates."),
    "alternator": "Repeated games: cooperates first, then plays the other action than its own last one (C, D, C, D...). "
                  "Never simulates.",
    "axelrod": ("Repeated 2-action games: one of the strategies of the Axelrod library (Axelrod-Python), named by its "
                "class name; C is the game's cooperative (default) action, D its defect action. Never simulates."),
    "uniform": "Plays each of the game's actions with the same probability. Never simulates.",
    "lbf_heuristic": (
        "Level-Based Foraging: the lbforaging package's heuristic agent H<h> (H1: the closest food; H2: the food "
        "closest to the centre of the visible agents; H3: the closest food whose level is at most its own; H4: the "
        "food closest to the centre among those the visible agents' levels together can load): loads when next to "
        "it, else steps towards it (north, south, east, west, in that order of preference, among its valid "
        "moves), else a uniformly random valid action. Never simulates."),
}


class BuiltinProgram(_ProgramBase):
    kind: Literal["builtin"]
    strategy: Literal["cooperate", "defect", "random", "fairbot", "cliquebot", "titfortat", "grimtrigger", "pavlov",
                      "titfortwotats", "alternator", "axelrod", "uniform", "lbf_heuristic"]
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _check_params(cls, v: dict, info: ValidationInfo) -> dict:
        strategy = info.data.get("strategy")
        if strategy is None:
            return v
        model = PARAMS[strategy]
        try:
            checked = model.model_validate(v)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
            allowed = ", ".join(model.model_fields) or "none"
            raise ValueError(f"strategy '{strategy}' parameter '{key}': {msg} (allowed: {allowed})") from None
        return checked.model_dump(exclude_none=True)

    def source(self) -> str:
        """What an opponent is shown: the algorithm, its parameters and epsilon (not the id)."""
        lines = [f"Built-in program, strategy '{self.strategy}'.", STRATEGY_DOCS[self.strategy]]
        if self.strategy == "axelrod":
            lines.append(summary(self.params["name"]))
        if self.params:
            lines.append("Parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())))
        if self.epsilon is not None:
            lines.append(f"Its own epsilon: {self.epsilon:g}")
        return "\n".join(lines)

    @property
    def label(self) -> str:
        return f"builtin:{self.strategy}"


class LLMProgram(_ProgramBase):
    kind: Literal["llm"]
    model: str = Field(pattern=r"^[a-z0-9_-]+/.+$", description="provider/model, e.g. local/qwen2.5-coder-0.5b")
    temperature: float = Field(0.7, ge=0, le=2, allow_inf_nan=False)
    system_prompt: str = Field(min_length=1, max_length=20_000)
    max_tokens: int = Field(400, ge=16, le=8192)

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def model_name(self) -> str:
        return self.model.split("/", 1)[1]

    def source(self) -> str:
        text = f"Model: {self.model}\nTemperature: {self.temperature:g}\n"
        if self.epsilon is not None:
            text += f"Epsilon: {self.epsilon:g}\n"
        return text + "System prompt:\n" + self.system_prompt.rstrip("\n")

    @property
    def label(self) -> str:
        return self.model


MAX_TIME_MS = 2000  # hard caps on a code program's own limits (per decision)
MAX_MEMORY_MB = 256


class CodeProgram(_ProgramBase):
    """A policy written as Python source: `decide(ctx)` runs in the sandbox at every node it occupies."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["code"]
    simulates: bool = Field(True, description="false: acts directly (one node, no recursion), like DefectBot")
    code: str = Field(alias="source", min_length=1, max_length=50_000, description="Python defining decide(ctx)")
    time_limit_ms: int = Field(200, ge=1, le=MAX_TIME_MS, description="per decision")
    memory_mb: int = Field(64, ge=8, le=MAX_MEMORY_MB)
    games: list[Identifier] | None = Field(None, description="the games it is written for (a paper's policy for one "
                                                             "game): smoke-tested in those only; None: every game")

    @cached_property
    def content_hash(self) -> str:
        data = self.model_dump(mode="json")
        if data.get("games") is None:  # (a program without `games` hashes as if the field did not exist)
            data.pop("games", None)
        return content_hash(data)

    @property
    def label(self) -> str:
        return "code"

    def source(self) -> str:
        """What an opponent is shown: the code itself (CliqueBot-style programs compare it)."""
        return self.code


Program = Annotated[Union[BuiltinProgram, LLMProgram, CodeProgram], Field(discriminator="kind")]
_PROGRAM = TypeAdapter(Program)


@dataclass(frozen=True)
class ProgramEntry:
    """A program and where it was defined (for editing and error messages)."""

    program: BuiltinProgram | LLMProgram | CodeProgram
    file: Path
    index: int | None
    line: int
    source_line: int | None = None  # a code program: the file line of its source's first line
    group: str = ""  # the subfolder of the library it comes from ("code", "papers/pibr"); "" at its top


def parse_program(doc: Document) -> BuiltinProgram | LLMProgram | CodeProgram:
    data = plain(doc.data)
    if isinstance(data, dict) and "kind" not in data:
        raise ConfigError([Problem(doc.file, doc.line, "kind", "required field is missing (llm, builtin or code)")])
    if isinstance(data, dict) and data.get("kind") not in ("llm", "builtin", "code"):
        raise ConfigError([Problem(doc.file, line_of(doc, "kind"), "kind",
                                   f"must be 'llm', 'builtin' or 'code', got {data.get('kind')!r}")])
    secret = [k for k in data if k.lower() in SECRET_FIELDS]
    if secret:
        raise ConfigError([Problem(doc.file, line_of(doc, secret[0]), secret[0],
                                   "API keys never go in program files: set the provider's key variable in the "
                                   "environment (see `arena providers list`)")])
    model = {"builtin": BuiltinProgram, "llm": LLMProgram, "code": CodeProgram}[data["kind"]]  # no union tag in paths
    try:
        prog = model.model_validate(data)
        if isinstance(prog, CodeProgram):
            check_code(prog, doc)
        return prog
    except ValidationError as exc:
        problems = problems_from(exc, doc, allowed=model.model_fields)
    # A bad parameter is reported where it is (params.p, its own line), not on the params mapping.
    strategy, params = data.get("strategy"), data.get("params")
    if model is BuiltinProgram and strategy in PARAMS and isinstance(params, dict):
        detailed = [p for p in problems if p.field != "params"]
        try:
            PARAMS[strategy].model_validate(params)
        except ValidationError as exc:
            allowed = list(PARAMS[strategy].model_fields)
            takes = (f"strategy '{strategy}' takes: {', '.join(allowed)}" if allowed
                     else f"strategy '{strategy}' takes no parameters")
            detailed += problems_from(exc, doc, prefix=("params",), unknown=takes)
            problems = detailed
    raise ConfigError(problems)


def source_line(doc: Document, line: int) -> int:
    """The file line of line `line` (1-based) of a program's `source`: a block scalar (`source: |`)
    starts on the line after the key."""
    first = line_of(doc, "source")
    block = "\n" in str(plain(doc.data).get("source", ""))
    return first + line - (0 if block else 1)


def check_code(prog: CodeProgram, doc: Document) -> None:
    """Refuse a code program whose source does not parse or uses a refused construct (file:line)."""
    findings = check_source(prog.code)
    if findings:
        raise ConfigError([Problem(doc.file, source_line(doc, f.line), "source", f.message) for f in findings])


def parse_program_text(text: str, name: str = "<program>") -> BuiltinProgram | LLMProgram | CodeProgram:
    """Validate YAML text holding exactly one program (used by the editor)."""
    docs = read_documents(Path(name), text=text)
    if len(docs) != 1:
        raise ConfigError([Problem(name, None, None, "expected exactly one program")])
    return parse_program(docs[0])


def group_of(file: Path, root: Path | None) -> str:
    """The library group of a file under `root`: its subfolder as a/b, "" for a file at the top (or with
    no root: a file given on its own)."""
    if root is None:
        return ""
    try:
        rel = Path(file).parent.resolve().relative_to(Path(root).resolve())
    except ValueError:
        return ""
    return "" if rel == Path(".") else rel.as_posix()


def load_program_entries(paths: list[Path], root: Path | None = None) -> dict[str, ProgramEntry]:
    """Programs from YAML files and directories (a directory with its subfolders, each a group); every
    problem is reported, a program id defined twice with both files. `root`: the folder groups are
    named from (default: each directory given)."""
    entries: dict[str, ProgramEntry] = {}
    problems: list[Problem] = []
    files: list[tuple[Path, Path | None]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend((f, root or p) for f in iter_yaml_files(p, recursive=True))
        elif p.exists():
            files.append((p, root))
        else:
            problems.append(Problem(str(p), None, None, "no such file or directory"))
    for f, top in files:
        try:
            for doc in read_documents(f):
                try:
                    prog = parse_program(doc)
                except ConfigError as exc:
                    problems.extend(exc.problems)
                    continue
                if prog.id in entries:
                    other = entries[prog.id]
                    problems.append(
                        Problem(doc.file, doc.line, "id", f"duplicate program id '{prog.id}' (first defined in {other.file}:{other.line})")
                    )
                    continue
                first = source_line(doc, 1) if isinstance(prog, CodeProgram) else None
                entries[prog.id] = ProgramEntry(prog, f, doc.index, doc.line, first, group_of(f, top))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return entries


def load_programs(paths: list[Path]) -> dict[str, BuiltinProgram | LLMProgram | CodeProgram]:
    return {k: e.program for k, e in load_program_entries(paths).items()}


def pick(programs: dict[str, BuiltinProgram | LLMProgram | CodeProgram], ids: list[str]) -> list[BuiltinProgram | LLMProgram | CodeProgram]:
    programs = with_axelrod(programs, ids)
    missing = [p for p in ids if p not in programs]
    if missing:
        raise LookupFailed(f"unknown program(s): {', '.join(missing)}{did_you_mean(missing, programs)}. "
                           f"Known: {', '.join(sorted(programs))}")
    return [programs[p] for p in ids]


def axelrod_program(pid: str) -> BuiltinProgram:
    """The program `axelrod:NAME`: Axelrod's strategy NAME (LookupFailed, with a did-you-mean, for a name the
    axelrod package does not have; AxelrodMissing without the package)."""
    name = pid[len(AXELROD_PREFIX):]
    strategy_class(name)
    return BuiltinProgram(id=pid, kind="builtin", strategy="axelrod", params={"name": name})


def with_axelrod(programs: dict, ids: Iterable[str]) -> dict:
    """`programs` plus the `axelrod:NAME` programs among `ids` that it does not define (the same dict when
    there are none): what makes `axelrod:NAME` a program id wherever one is accepted."""
    wanted = [p for p in ids if p.startswith(AXELROD_PREFIX) and p not in programs]
    if not wanted:
        return programs
    made, unknown = {}, []
    for p in dict.fromkeys(wanted):
        try:
            made[p] = axelrod_program(p)
        except LookupFailed as exc:
            unknown.append(str(exc))
    if unknown:
        raise LookupFailed("; ".join(unknown))
    return {**programs, **made}


def program_from_json(data: dict) -> BuiltinProgram | LLMProgram | CodeProgram:
    return _PROGRAM.validate_python(data)
