"""Metrics of a code program's source: size, complexity and how much of its opponent's source it uses.

- `sloc`: radon's source lines of code (lines holding code: no blank lines, no comment-only lines, no
  docstring lines).
- `complexity`: radon's cyclomatic complexity summed over the program's functions (nested ones included)
  and methods: each starts at 1 and adds 1 per `if`/`elif`, `for`/`while` (and their `else`), `except`,
  `assert`, conditional expression, comprehension `for` and `if`, and per boolean operator (`a and b or
  c` adds 2); 0 for a source without functions.
- `halstead_volume`: radon's Halstead volume of the whole module, N·log2(η) over its operators and
  operands.
- `opponent_use` and `ctx_fields`: an `ast` data-flow measure (`ctx_flow`). Every read of a field of
  `ctx` (`ctx["F"]` or `ctx.get("F")`, through any name bound to ctx, a helper's parameter included)
  is a *site* (a parameter of the papers' entry points is a site of the field it is given:
  `strategy_function`'s histories are `history`, its codes `me` and `opponent`; the PIBR policies'
  history `history`; a field named by a non-constant key is `*`). A site *reaches the return value*
  when the value it reads flows into an expression returned by the policy function (`decide`, or the
  other entry points of library/codecheck.py):
  through assignments, augmented assignments, `for` targets, comprehensions, method calls on a name
  (`xs.append(v)` taints `xs`), calls of the module's own functions (argument to parameter, return
  to call), and control: a `return` inside an `if`, `while` or `for` whose test (or iterable) a site
  reaches counts that site too. The analysis is flow-insensitive (a name holds every value it is ever
  bound to) and runs to a fixed point. `ctx_fields` are the fields with a site that reaches the return
  value; `opponent_use` is the number of sites reading `ctx["opponent"]` (the opponent's source) that
  reach it: 0 for a program that never reads the opponent's source (or reads it and ignores it).

Pure functions of the source: nothing is run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from pydantic import BaseModel

WHOLE_CTX = "<ctx>"  # the taint of ctx itself (or a name bound to it), before a field is read
# What each policy function's parameters are, as ctx fields (None: ctx itself); the sandbox calls the papers'
# entry points with these (engine/sandbox.py): a parameter read is a site of its field at the parameter.
ENTRY_PARAMS: dict[str, tuple[str | None, ...]] = {
    "decide": (None,),
    "history_dependent_policy_0": ("history",),
    "history_dependent_policy_1": ("history",),
    "strategy_function": ("history", "history", "me", "opponent"),
}


class CodeMetrics(BaseModel):
    """A source's metrics (see the module docstring for exactly what each counts)."""

    sloc: int
    complexity: int
    halstead_volume: float
    opponent_use: int
    ctx_fields: list[str]


def sloc(source: str) -> int:
    from radon.raw import analyze

    return analyze(source).sloc


def complexity(source: str) -> int:
    from radon.complexity import cc_visit

    def total(function) -> int:
        return function.complexity + sum(total(c) for c in function.closures)

    # radon lists a class and, separately, each of its methods: the functions and methods are counted
    return sum(total(b) for b in cc_visit(source) if hasattr(b, "closures"))


def halstead_volume(source: str) -> float:
    from radon.metrics import h_visit

    return float(h_visit(source).total.volume or 0.0)


def metrics(source: str) -> CodeMetrics | None:
    """Every metric of a source; None for a source that does not parse (or nests too deeply to analyse)."""
    try:
        tree = ast.parse(source)
        flow = ctx_flow(tree)
        return CodeMetrics(sloc=sloc(source), complexity=complexity(source),
                           halstead_volume=halstead_volume(source),
                           opponent_use=sum(1 for f, _line, _col in flow if f == "opponent"),
                           ctx_fields=sorted({f for f, _line, _col in flow}))
    except (SyntaxError, ValueError, RecursionError):
        return None


# -- the data-flow measure ---------------------------------------------------------------------------------
Site = tuple[str, int, int]  # (field, line, column) of a read of ctx[field]


@dataclass
class _Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    params: list[str]
    names: dict[str, set] = field(default_factory=dict)  # name -> sites (and WHOLE_CTX markers)
    returns: set = field(default_factory=set)


def ctx_flow(tree: ast.Module) -> set[Site]:
    """The ctx field reads (sites) that reach the policy function's return value (module docstring)."""
    funcs = {n.name: _Function(n, [a.arg for a in (*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs)])
             for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    entries = _entries(funcs)
    for f in entries:
        fields = ENTRY_PARAMS[f.node.name]
        for arg, field_ in zip((*f.node.args.posonlyargs, *f.node.args.args), fields):
            f.names[arg.arg] = {WHOLE_CTX} if field_ is None else {(field_, arg.lineno, arg.col_offset)}
    module = _Function(ast.FunctionDef(name="<module>", args=ast.arguments(), body=[], decorator_list=[]), [])
    analysis = _Flow(funcs, module)
    for _ in range(50):  # a fixed point: every pass only adds sites
        before = analysis.size()
        analysis.walk(tree.body, module, frozenset())
        for f in funcs.values():
            analysis.walk(f.node.body, f, frozenset())
        if analysis.size() == before:
            break
    return {s for f in entries for s in f.returns if isinstance(s, tuple)}


def _entries(funcs: dict[str, _Function]) -> list[_Function]:
    """The policy functions, by library/codecheck.py's precedence: decide, else the PIBR pair, else
    strategy_function."""
    if "decide" in funcs:
        return [funcs["decide"]]
    pibr = [funcs[n] for n in ("history_dependent_policy_0", "history_dependent_policy_1") if n in funcs]
    return pibr or ([funcs["strategy_function"]] if "strategy_function" in funcs else [])


class _Flow:
    def __init__(self, funcs: dict[str, _Function], module: _Function):
        self.funcs, self.module = funcs, module

    def size(self) -> int:
        fs = [*self.funcs.values(), self.module]
        return sum(len(v) for f in fs for v in f.names.values()) + sum(len(f.returns) for f in fs)

    def lookup(self, fn: _Function, name: str) -> set:
        if name in fn.names:
            return fn.names[name]
        return self.module.names.get(name, set())

    def bind(self, fn: _Function, target: ast.AST, taint: set) -> None:
        if isinstance(target, ast.Name):
            fn.names.setdefault(target.id, set()).update(taint)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.bind(fn, t, taint)
        elif isinstance(target, ast.Starred):
            self.bind(fn, target.value, taint)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            self.bind(fn, target.value, taint)  # xs[i] = v, obj.a = v: the container holds v

    def walk(self, body: list[ast.stmt], fn: _Function, control: frozenset) -> None:
        for st in body:
            self.stmt(st, fn, control)

    def stmt(self, st: ast.stmt, fn: _Function, control: frozenset) -> None:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # module-level functions are walked on their own; nested ones are not followed
        if isinstance(st, ast.Return):
            fn.returns.update(control)
            if st.value is not None:
                fn.returns.update(self.expr(st.value, fn))
        elif isinstance(st, ast.Assign):
            taint = self.expr(st.value, fn) | control
            for t in st.targets:
                self.bind(fn, t, taint)
        elif isinstance(st, (ast.AugAssign, ast.AnnAssign)):
            if st.value is not None:
                self.bind(fn, st.target, self.expr(st.value, fn) | control)
        elif isinstance(st, (ast.For, ast.AsyncFor)):
            it = self.expr(st.iter, fn)
            self.bind(fn, st.target, it | control)
            inner = control | it
            self.walk(st.body, fn, inner)
            self.walk(st.orelse, fn, inner)
        elif isinstance(st, (ast.If, ast.While)):
            inner = control | self.expr(st.test, fn)
            self.walk(st.body, fn, inner)
            self.walk(st.orelse, fn, inner)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                taint = self.expr(item.context_expr, fn)
                if item.optional_vars is not None:
                    self.bind(fn, item.optional_vars, taint | control)
            self.walk(st.body, fn, control)
        elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            self.walk(st.body, fn, control)
            for h in st.handlers:
                self.walk(h.body, fn, control)
            self.walk(st.orelse, fn, control)
            self.walk(st.finalbody, fn, control)
        elif isinstance(st, ast.Match):
            inner = control | self.expr(st.subject, fn)
            for case in st.cases:
                self.walk(case.body, fn, inner)
        elif isinstance(st, ast.Expr):
            self.expr(st.value, fn)  # method calls on a name (xs.append(v)) bind through expr
        elif isinstance(st, (ast.Global, ast.Nonlocal)):
            return
        else:
            for child in ast.iter_child_nodes(st):
                if isinstance(child, ast.expr):
                    self.expr(child, fn)

    def expr(self, e: ast.expr, fn: _Function) -> set:
        if isinstance(e, ast.Name):
            return set(self.lookup(fn, e.id))
        if isinstance(e, ast.Subscript):
            base = self.expr(e.value, fn)
            key = self.expr(e.slice, fn)
            if WHOLE_CTX in base:
                base = (base - {WHOLE_CTX}) | {self._site(e.slice, e)}
            return base | key
        if isinstance(e, ast.Call):
            return self.call(e, fn)
        if isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            taint: set = set()
            for gen in e.generators:
                it = self.expr(gen.iter, fn)
                self.bind(fn, gen.target, it)
                taint |= it
                for cond in gen.ifs:
                    taint |= self.expr(cond, fn)
            parts = [e.key, e.value] if isinstance(e, ast.DictComp) else [e.elt]
            for p in parts:
                taint |= self.expr(p, fn)
            return taint
        if isinstance(e, ast.Lambda):
            return self.expr(e.body, fn)
        if isinstance(e, ast.NamedExpr):
            taint = self.expr(e.value, fn)
            self.bind(fn, e.target, taint)
            return taint
        taint = set()
        for child in ast.iter_child_nodes(e):
            if isinstance(child, ast.expr):
                taint |= self.expr(child, fn)
            elif isinstance(child, ast.comprehension):
                taint |= self.expr(child.iter, fn)
        return taint

    def call(self, e: ast.Call, fn: _Function) -> set:
        args = [self.expr(a, fn) for a in e.args] + [self.expr(k.value, fn) for k in e.keywords]
        f = e.func
        if isinstance(f, ast.Attribute):
            obj = self.expr(f.value, fn)
            if WHOLE_CTX in obj and f.attr == "get" and e.args:
                return (obj - {WHOLE_CTX}) | {self._site(e.args[0], e)} | set().union(*args[1:])
            if isinstance(f.value, ast.Name) and args:  # xs.append(v), d.update(v): the object holds v
                self.bind(fn, f.value, set().union(*args))
            return obj | set().union(*args)
        if isinstance(f, ast.Name) and f.id in self.funcs:
            callee = self.funcs[f.id]
            for name, taint in zip(callee.params, args[:len(e.args)]):
                callee.names.setdefault(name, set()).update(taint)
            for k in e.keywords:
                if k.arg in callee.params:
                    callee.names.setdefault(k.arg, set()).update(self.expr(k.value, fn))
            return set(callee.returns)
        return self.expr(f, fn) | set().union(*args) if args else self.expr(f, fn)

    @staticmethod
    def _site(key: ast.expr, at: ast.expr) -> Site:
        name = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "*"
        return (name, at.lineno, at.col_offset)
