"""Disclosure: what a program is shown of its opponent (a condition axis, `--disclosure`; docs/disclosure.md).

| level        | an LLM opponent                         | a code opponent           | a built-in bot            |
|--------------|-----------------------------------------|---------------------------|---------------------------|
| `full`       | model, temperature, (ε), system prompt  | its code                  | its description / YAML    |
| `prompt`     | (ε,) system prompt                      | its code                  | its description / YAML    |
| `model`      | model and temperature                   | `kind: code`              | `kind: builtin`           |
| `none`       | "an opponent program"                   | "an opponent program"     | "an opponent program"     |
| `obfuscated` | model, temperature, (ε), the prompt's   | the code with identifiers | its description / YAML    |
|              | sentences shuffled (or kept: `none`)    | renamed, comments and     | (a bot has no code)       |
|              |                                         | docstrings removed        |                           |

A code program's ctx["opponent_id"] is the opponent's id only under `full` (elsewhere the anonymous
"opponent": an id names the program), ctx["opponent_kind"] its kind except under `none` ("program").
ctx["me"] is always the program's own source as written. Simulation is another channel: what a simulated
opponent does is told at every level.

Obfuscation is a transform of the source *text* (ast.parse and ast.unparse; nothing is run here),
deterministic from the trial's seed: names bound in the program (functions other than `decide`, their
parameters, variables) are renamed consistently to `v0, v1, ...` in a seeded order; a name that is also used
as an attribute or a keyword argument, imported, a builtin or a dunder keeps its name, so behaviour is
preserved (tests run both versions in the sandbox on the same ctx).
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from functools import lru_cache
from random import Random

from arena.library.codecheck import ENTRY_POINTS

FULL, PROMPT, MODEL, NONE, OBFUSCATED = "full", "prompt", "model", "none", "obfuscated"
LEVELS = (FULL, PROMPT, MODEL, NONE, OBFUSCATED)
SHUFFLE, KEEP = "shuffle", "none"  # --obfuscate-prompts: an LLM prompt's sentences shuffled, or unchanged
PROMPT_OBFUSCATIONS = (SHUFFLE, KEEP)

NOTHING = "an opponent program"  # all that is shown under `none`
ANONYMOUS_ID = "opponent"  # ctx["opponent_id"] at every level but `full`
ANONYMOUS_KIND = "program"  # ctx["opponent_kind"] under `none`


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What a trial's programs are shown of each other: the level, and how `obfuscated` treats LLM prompts."""

    level: str = FULL
    prompts: str = SHUFFLE

    @property
    def full(self) -> bool:
        return self.level == FULL

    def label(self) -> str:
        """'' for `full`, else e.g. 'disclosure none' (a condition's game carries it)."""
        return "" if self.level == FULL else f"disclosure {self.level}"


FULL_DISCLOSURE = Disclosure()


def opponent_source(program) -> str:
    """What a code program sees of another program under `full`: its code, an LLM program's model,
    temperature and prompt, or a bot's YAML."""
    if program.kind == "builtin":
        lines = ["kind: builtin", f"strategy: {program.strategy}"]
        if program.params:
            lines.append("params: {" + ", ".join(f"{k}: {v}" for k, v in sorted(program.params.items())) + "}")
        if program.epsilon is not None:
            lines.append(f"epsilon: {program.epsilon:g}")
        if program.strategy == "axelrod":  # what the strategy is: its name and Axelrod's first sentence of it
            from arena.library.axelrod_programs import summary

            lines.append(f"# {summary(program.params['name'])}")
        return "\n".join(lines) + "\n"
    return program.source()


def shown(program, d: Disclosure, seed: int, for_code: bool) -> str:
    """What a program is shown of `program` under `d`: the text in an LLM's prompt (`for_code` false: a bot's
    description) or a code program's ctx["opponent"] (`for_code`: a bot's YAML)."""
    level = d.level
    full = opponent_source(program) if for_code else program.source()
    if level == FULL:
        return full
    if level == NONE:
        return NOTHING
    kind = program.kind
    if level == MODEL:
        if kind == "llm":
            return f"Model: {program.model}\nTemperature: {program.temperature:g}\n"
        return f"kind: {kind}\n"
    if kind == "builtin":  # a bot's description is its whole source, and it is not code
        return full
    if level == PROMPT:
        if kind == "code":
            return full
        eps = f"Epsilon: {program.epsilon:g}\n" if program.epsilon is not None else ""
        return eps + "System prompt:\n" + program.system_prompt.rstrip("\n")
    # OBFUSCATED
    if kind == "code":
        return obfuscate_code(program.code, seed)
    prompt = program.system_prompt.rstrip("\n")
    if d.prompts == SHUFFLE:
        prompt = shuffle_sentences(prompt, seed)
    head = full[: full.index("System prompt:\n")]
    return head + "System prompt:\n" + prompt


def opponent_label(program, d: Disclosure) -> tuple[str, str]:
    """ctx["opponent_id"] and ctx["opponent_kind"] under `d`."""
    if d.level == FULL:
        return program.id, program.kind
    return ANONYMOUS_ID, ANONYMOUS_KIND if d.level == NONE else program.kind


# --- prompts: sentences shuffled ----------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def sentences(text: str) -> list[str]:
    """A prompt's sentences: its lines joined into paragraphs (a blank line or a list item starts a new one),
    each split after '.', '!' or '?' followed by white space."""
    units: list[str] = []
    joined = False
    for line in text.splitlines():
        if not line.strip():
            joined = False
            continue
        if joined and not _BULLET.match(line):
            units[-1] += " " + line.strip()
        else:
            units.append(line.strip())
        joined = True
    return [s.strip() for u in units for s in _SENTENCE_END.split(u) if s.strip()]


def shuffle_sentences(text: str, seed: int) -> str:
    """The prompt's sentences in an order drawn from `seed`, one per line."""
    parts = sentences(text)
    Random(f"{seed}|sentences").shuffle(parts)
    return "\n".join(parts)


# --- code: identifiers renamed, comments and docstrings removed --------------------------------------
# the entry points the harness calls (decide, or a paper's policy function: library/codecheck.py)
KEPT = frozenset(name for names in ENTRY_POINTS.values() for name, _ in names)
_BUILTINS = frozenset(dir(builtins))


class _Names(ast.NodeVisitor):
    """The names a program binds, and those that must keep their names."""

    def __init__(self):
        self.bound: set[str] = set()
        self.fixed: set[str] = set()
        self.all: set[str] = set()

    def visit_Name(self, node: ast.Name):
        self.all.add(node.id)
        if not isinstance(node.ctx, ast.Load):
            self.bound.add(node.id)

    def visit_FunctionDef(self, node):
        self.bound.add(node.name)
        self.all.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef):
        self.bound.add(node.name)
        self.all.add(node.name)
        for stmt in node.body:  # class attributes are read as attributes: they keep their names
            for n in ast.walk(stmt):
                if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                    self.fixed.add(n.id)
                elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.fixed.add(n.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg):
        self.bound.add(node.arg)
        self.all.add(node.arg)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute):
        self.fixed.add(node.attr)
        self.all.add(node.attr)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword):
        if node.arg is not None:
            self.fixed.add(node.arg)
            self.all.add(node.arg)
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias):
        self.fixed.add((node.asname or node.name).split(".")[0])
        self.all.add((node.asname or node.name).split(".")[0])

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        if node.name:
            self.bound.add(node.name)
            self.all.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node):
        self.all.update(node.names)

    visit_Nonlocal = visit_Global

    def visit_MatchAs(self, node):  # pattern captures keep their names
        for name in (getattr(node, "name", None), getattr(node, "rest", None)):
            if name:
                self.fixed.add(name)
                self.all.add(name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchMapping = visit_MatchAs


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def visit_Name(self, node: ast.Name):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_FunctionDef(self, node):
        node.name = self.names.get(node.name, node.name)
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef):
        node.name = self.names.get(node.name, node.name)
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    def visit_arg(self, node: ast.arg):
        node.arg = self.names.get(node.arg, node.arg)
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        if node.name:
            node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_Global(self, node):
        node.names = [self.names.get(n, n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global


def _drop_docstring(node) -> None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        del body[0]
        if not body:
            body.append(ast.Pass())


UNREADABLE = "[the opponent's source could not be obfuscated]"


@lru_cache(maxsize=4096)
def obfuscate_code(source: str, seed: int) -> str:
    """`source` with its own identifiers renamed (in an order drawn from `seed`), comments and docstrings
    removed, statements kept (see the module)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # a stored program always parses (codecheck); never show it raw
        return UNREADABLE
    names = _Names()
    names.visit(tree)
    renamed = sorted(n for n in names.bound - names.fixed - KEPT - _BUILTINS if not n.startswith("__"))
    Random(f"{seed}|names").shuffle(renamed)
    fresh = []
    i = 0
    while len(fresh) < len(renamed):
        if f"v{i}" not in names.all:
            fresh.append(f"v{i}")
        i += 1
    _drop_docstring(tree)
    tree = _Rename(dict(zip(renamed, fresh))).visit(tree)
    return ast.unparse(tree) + "\n"
