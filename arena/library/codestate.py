"""What a code program's source can carry from one decision to the next, read statically (`ast`, `symtable`,
`tokenize`: the source is never executed in Arena's process).

Each decision starts from the program's freshly loaded module state: `reload_form` gives the source as the body
of `_arena_fresh()`, which the sandbox calls before each decision. Facts that let the sandbox skip work
without changing an answer: `constant_module` (no decision can change the module's state: no fresh load
needed), `calls_at_load` (loading draws nothing from `random`: no seeding first), `reads_only` (decide reads
only immutable leaves of its ctx: no copy of the ctx's shared lists and dicts).
"""

from __future__ import annotations

import ast
import io
import symtable
import tokenize


def module_names(source: str) -> set[str] | None:
    """The names the source binds at module level (assignments, defs, classes, imports, loop targets...),
    from its symbol table (compiled, never run); None when Python's compiler refuses the source."""
    try:
        table = symtable.symtable(source, "<program>", "exec")
    except (SyntaxError, ValueError):
        return None
    return {s.get_name() for s in table.get_symbols() if s.is_local()}


def constant_module(source: str) -> bool:
    """Whether no decision can change the module's state, so that loading it afresh before each decision would
    change nothing: a module of imports, plain defs whose defaults are constants, names bound to constants
    (numbers, strings, tuples of them) and docstrings, with no `global` statement anywhere. (A module's and a
    function's attributes cannot be set in the sandbox, and `random` is seeded before each decision.)"""
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError:
        return False
    if any(isinstance(n, ast.Global) for n in ast.walk(tree)):
        return False
    return all(_constant_statement(node) for node in tree.body)


def _constant_statement(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):
        return _constant(node.value)
    if isinstance(node, ast.FunctionDef):
        args = node.args
        return not node.decorator_list and all(_constant(d) for d in [*args.defaults, *args.kw_defaults] if d)
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _constant(node.value)
    return False


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    return False


def calls_at_load(source: str) -> bool:
    """Whether loading the source may call anything (and so draw from `random`): a call outside the bodies of
    its functions (in a default or a class body too), a decorator, or a class (whose methods an operator or
    a subscript at load could call)."""
    try:
        todo: list[ast.AST] = [ast.parse(source, mode="exec")]
    except SyntaxError:
        return True
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Call, ast.ClassDef)) or getattr(node, "decorator_list", None):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.extend([*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)])
        elif isinstance(node, ast.Lambda):
            todo.extend([*node.args.defaults, *(d for d in node.args.kw_defaults if d)])
        else:
            todo.extend(ast.iter_child_nodes(node))
    return False


RELOAD_NAME = "_arena_fresh"
RELOAD_HEADER = 2  # lines of the reload form before the source's first line


def reload_form(source: str, keep_out: frozenset[str] = frozenset()) -> str | None:
    """The source as the body of `_arena_fresh()`, which binds every module-level name of the source (but
    those in keep_out and Arena's `_arena` names) as a global: calling it loads the program afresh (new
    objects for every list, dict, class, function and default the source makes). Each line is indented by
    one tab (a tab first keeps any mix of tabs and spaces consistent), but for the lines inside a multi-line
    string, which are left as they are; the source's line n is the form's line n + RELOAD_HEADER. None when
    the source cannot be read so."""
    names = module_names(source)
    if names is None:
        return None
    inside: set[int] = set()  # 1-based rows that start within a string
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return None
    declared = sorted(n for n in names - keep_out if not n.startswith("_arena"))  # Arena's helpers stay its own
    lines = [f"def {RELOAD_NAME}():", "\tglobal " + ", ".join(declared) if declared else "\tpass"]
    for row, line in enumerate(source.split("\n"), start=1):
        lines.append(line if row in inside else "\t" + line)
    return "\n".join(lines) + "\n"


ANY = "*"  # a path step of `reads_only`: any index (not a slice)


def reads_only(source: str, leaves: frozenset[tuple]) -> bool:
    """Whether `decide(ctx)` only reads immutable leaves of its ctx, so that it may be given a ctx sharing its
    fixed part with other decisions: every use of its argument, or of a name bound once to a part of it
    (`game = ctx["game"]`), starts a chain of subscripts (or `.get(key)`) that ends, read, at one of `leaves`
    (paths of keys; ANY: an index), or unpacks, iterates or tests membership (`in`) of a list of leaves.
    False whenever in doubt (the argument passed on, printed, assigned to, a method called on a part of it)."""
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError:
        return False
    decide = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "decide"]
    if not decide or len(decide[-1].args.args) != 1:
        return False
    fn = decide[-1]
    arg = fn.args.args[0].arg
    parent = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
    names = [n for n in ast.walk(fn) if isinstance(n, ast.Name)]
    stores: dict[str, int] = {}
    for n in names:
        if not isinstance(n.ctx, ast.Load):
            stores[n.id] = stores.get(n.id, 0) + 1
    elsewhere = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg) and a is not fn.args.args[0]}
    elsewhere |= {g for n in ast.walk(fn) if isinstance(n, (ast.Global, ast.Nonlocal)) for g in n.names}
    if arg in elsewhere or arg in stores:
        return False
    prefix: dict[str, tuple] = {arg: ()}  # the names bound to a part of ctx, and the part's path
    grew = True
    while grew:  # aliases, and aliases of aliases
        grew = False
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            name, root = node.targets[0].id, _root(node.value)
            if name in prefix or stores.get(name) != 1 or name in elsewhere or root is None or root.id not in prefix:
                continue
            path, top = _chain(root, parent)
            if path is not None and top is node.value:
                prefix[name], grew = prefix[root.id] + tuple(path), True
    for node in names:
        if node.id not in prefix:
            continue
        if not isinstance(node.ctx, ast.Load):
            continue  # an alias's one binding (the argument is never assigned to: checked above)
        path, top = _chain(node, parent)
        if path is None:
            return False
        full = prefix[node.id] + tuple(path)
        if _leaf(full, leaves):
            if isinstance(top, ast.Subscript) and not isinstance(top.ctx, ast.Load):
                return False
            continue
        if not _reading_use(top, parent.get(top), full, leaves, prefix):
            return False
    return True


def _reading_use(top: ast.AST, use: ast.AST | None, full: tuple, leaves: frozenset, prefix: dict) -> bool:
    """Whether a part of ctx that is not a leaf is only read where it is used: bound to an alias, unpacked
    or iterated into names when its items are leaves, or the right side of `in` / `not in`."""
    def plain(target: ast.AST) -> bool:
        return isinstance(target, ast.Name) or (isinstance(target, ast.Tuple)
                                                 and all(isinstance(e, ast.Name) for e in target.elts))
    if isinstance(use, ast.Assign) and use.value is top and len(use.targets) == 1:
        target = use.targets[0]
        if isinstance(target, ast.Name) and target.id in prefix:
            return True
        return isinstance(target, ast.Tuple) and plain(target) and _leaf(full + (ANY,), leaves)
    if isinstance(use, (ast.For, ast.comprehension)) and use.iter is top:
        return plain(use.target) and _leaf(full + (ANY,), leaves)
    if isinstance(use, ast.Compare) and top in use.comparators:
        return isinstance(use.ops[use.comparators.index(top)], (ast.In, ast.NotIn))
    return False


def _leaf(path: tuple, leaves: frozenset) -> bool:
    """Whether a path is one of the leaves, ANY in a leaf matching any step (a key or an index)."""
    return any(len(leaf) == len(path) and all(a == ANY or a == b for a, b in zip(leaf, path)) for leaf in leaves)


def _root(node: ast.expr) -> ast.Name | None:
    """The name a chain of subscripts and `.get` calls starts from."""
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            node = node.func.value
        else:
            return node if isinstance(node, ast.Name) else None


def _chain(node: ast.expr, parent: dict) -> tuple[list | None, ast.AST]:
    """The keys a chain of subscripts and `.get(constant)` calls applies to `node`, and its outermost node."""
    path: list = []
    while True:
        up = parent.get(node)
        if isinstance(up, ast.Subscript) and up.value is node:
            if isinstance(up.slice, ast.Slice):
                return None, up
            key = up.slice
            path.append(key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ANY)
            node = up
        elif isinstance(up, ast.Attribute) and up.value is node and up.attr == "get":
            call = parent.get(up)
            if not (isinstance(call, ast.Call) and call.func is up and call.args and not call.keywords
                    and len(call.args) <= 2 and isinstance(call.args[0], ast.Constant)
                    and isinstance(call.args[0].value, str)):
                return None, up
            path.append(call.args[0].value)
            node = call
        else:
            return path, node
