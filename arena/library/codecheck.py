"""Static checks of a code program's source, before it ever reaches the sandbox.

Parsing uses `ast` and `symtable` only (the source is never executed in Arena's process). What
is refused here is what the sandbox would refuse anyway or what has no business in a game policy: imports
other than a few pure modules, `eval`/`exec`/`compile`/`__import__`, dunder attribute walks
(`x.__class__...`), and state a decision could leave to the next one that a fresh load would not undo (a
`global` name the source never binds at module level). Each finding names the source line (1-based) and
quotes it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from arena.library.codestate import module_names

# the pure modules a program may import: those the Monty sandbox (pydantic-monty 1.4.0) provides
# (statistics, string and fractions are not among them: a program importing them failed in the sandbox)
ALLOWED_MODULES = frozenset({"math", "random", "re", "json", "itertools", "functools", "collections", "typing",
                             "dataclasses", "decimal"})
REFUSED_NAMES = frozenset({"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr",
                           "setattr", "delattr", "__builtins__", "breakpoint", "input"})


@dataclass(frozen=True)
class SourceFinding:
    line: int  # 1-based line within the source
    message: str


def quote(source: str, line: int) -> str:
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _bound_name(node: ast.AST) -> str | None:
    """The name a node binds or reads, for every form that has one: names (any assignment target, loop or
    comprehension variable, `del`), def and class names, arguments (lambda's too), import aliases, `except
    ... as`, match captures and `**rest`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.alias):
        return (node.asname or node.name).split(".")[0]
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return node.name
    if isinstance(node, ast.MatchMapping):
        return node.rest
    return None


def check_source(source: str) -> list[SourceFinding]:
    """Problems of a code program's source: a syntax error, refused constructs, no `decide(ctx)`."""
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        line = exc.lineno or 1
        return [SourceFinding(line, f"syntax error: {exc.msg}: `{quote(source, line)}`")]
    found: list[SourceFinding] = []

    def refuse(node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 1)
        found.append(SourceFinding(line, f"{what} is not allowed in a code program: `{quote(source, line)}`"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_MODULES:
                    refuse(node, f"import of '{alias.name}' (allowed: {', '.join(sorted(ALLOWED_MODULES))})")
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if node.level or mod not in ALLOWED_MODULES:
                refuse(node, f"import from '{node.module or '.'}' (allowed: {', '.join(sorted(ALLOWED_MODULES))})")
        elif isinstance(node, ast.Name) and node.id in REFUSED_NAMES:
            refuse(node, f"'{node.id}'")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            refuse(node, f"dunder attribute '{node.attr}'")
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and any(n.startswith("_arena") for n in node.names):
            refuse(node, "touching Arena's helpers")
        elif (bound := _bound_name(node)) is not None and bound.startswith("_arena"):
            refuse(node, f"'{bound}' (Arena's own helper names start with _arena)")
    found.extend(_state_findings(tree, source))
    if found:
        return sorted(found, key=lambda f: f.line)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    entry = _entry(defs)
    if entry is None:
        return [SourceFinding(1, "the source must define a top-level function `decide(ctx)` (or the papers' "
                                 "`history_dependent_policy_0/1(game_history)` or `strategy_function(my_history, "
                                 "opp_history, my_program_code, opponent_program_code)`)")]
    for name, n_args in ENTRY_POINTS[entry]:
        fn = defs.get(name)
        if fn is None:
            continue
        args = fn.args
        if len(args.posonlyargs) + len(args.args) != n_args or args.vararg or args.kwonlyargs or args.kwarg:
            what = {"decide": "exactly one argument, ctx", "strategy_function": "exactly four arguments"}.get(
                name, "exactly one argument, game_history")
            return [SourceFinding(fn.lineno, f"`{name}` must take {what}: `{quote(source, fn.lineno)}`")]
    return []


def _state_findings(tree: ast.Module, source: str) -> list[SourceFinding]:
    """A `global` statement at module level (it means nothing there, and the reload form declares every module
    name itself), and a `global` name that no module-level statement binds: a fresh load could not undo it."""
    found = []
    bound = module_names(source)
    for node in _module_scope(tree):
        if isinstance(node, ast.Global):
            found.append(SourceFinding(node.lineno, f"a `global` statement at module level is not allowed in a "
                                                    f"code program: `{quote(source, node.lineno)}`"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global) and bound is not None:
            for name in node.names:
                if name not in bound:
                    found.append(SourceFinding(node.lineno, (
                        f"`global {name}` needs `{name}` set at the top of the source (each decision starts from "
                        f"the freshly loaded source, so state kept by a decision alone would leak): "
                        f"`{quote(source, node.lineno)}`")))
    return found


def _module_scope(tree: ast.Module):
    """The nodes of the module's own scope (not inside a def, lambda or class)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


# The functions a code program may define as its policy, with their number of arguments: Arena's own, the
# PIBR paper's (one policy per seat; a program may define either or both) and Sistla & Kleiman-Weiner's.
ENTRY_POINTS = {"decide": [("decide", 1)],
                "pibr": [("history_dependent_policy_0", 1), ("history_dependent_policy_1", 1)],
                "strategy_function": [("strategy_function", 4)]}


def _entry(defs: dict) -> str | None:
    if "decide" in defs:
        return "decide"
    if "history_dependent_policy_0" in defs or "history_dependent_policy_1" in defs:
        return "pibr"
    if "strategy_function" in defs:
        return "strategy_function"
    return None


def entry_point(source: str) -> str:
    """Which policy function a (checked) source defines: 'decide', 'pibr' or 'strategy_function'."""
    tree = ast.parse(source, mode="exec")
    return _entry({n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}) or "decide"


def uses_random(source: str) -> bool:
    """Whether the program may draw from `random` (the sandbox then seeds it from each node's draw)."""
    return "random" in source

