"""YAML reading with positions, so that validation errors name the file, line and field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from arena.errors import ConfigError, Problem

T = TypeVar("T")


@dataclass(frozen=True)
class Document:
    """One record read from a YAML file (a file may hold one mapping or a list of them)."""

    file: str
    data: Any
    index: int | None  # position in a top-level list, None for a single mapping
    line: int  # 1-based line where the record starts
    text: str  # the YAML text of the whole file


MAX_FILE_BYTES = 4 * 1024 * 1024  # a program or game file larger than this is refused unread
SECRET_FIELDS = ("api_key", "apikey", "key", "token", "password", "secret")  # never accepted in a file
MAX_DEPTH = 100  # nesting of [ ] and { } (a program or game needs 4)
MAX_VALUES = 100_000  # values a file may hold once YAML aliases are expanded (an alias bomb holds billions)


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _line_of(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return None if lc is None or lc.line is None else lc.line + 1


def read_text(path: Path) -> str:
    """A YAML file's text: refused if too large or not UTF-8 (with the line of the first bad byte)."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([Problem(name, None, None, f"file is too large ({size:,} bytes; the limit is "
                                                         f"{MAX_FILE_BYTES:,}): is it really a program or game?")])
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(name, None, None, f"cannot read file: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([Problem(name, line, None, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column "
                                                     f"{column} (save the file as UTF-8)")]) from None


def read_documents(path: Path, text: str | None = None) -> list[Document]:
    """Parse a YAML file into records; a syntax error becomes a ConfigError with its line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    name = str(path)
    if text is None:
        text = read_text(path)
    elif len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise ConfigError([Problem(name, None, None, f"text is too large (the limit is {MAX_FILE_BYTES:,} bytes)")])
    try:
        deep = _too_deep(text, MAX_DEPTH)
        if deep is not None:  # refused before the composer recurses into it (slowly, then RecursionError)
            raise ConfigError([Problem(name, deep, None, f"YAML is nested too deeply (more than {MAX_DEPTH} levels)")])
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        start = exc.context_mark
        if start is not None and mark is not None and start.line != mark.line and "scanning" in str(exc.context):
            msg += f" (it starts on line {start.line + 1})"
        raise ConfigError([Problem(name, line, None, f"YAML syntax error: {msg}")]) from None
    except ReaderError as exc:  # a control character (NUL, ...) that YAML does not allow
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ConfigError([Problem(name, line, None, f"YAML syntax error: character U+{char:04X} is not allowed "
                                                     f"in YAML ({exc.reason})")]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(name, None, None, f"YAML error: {exc}")]) from None
    except RecursionError:
        raise ConfigError([Problem(name, None, None, "YAML is nested too deeply")]) from None
    if data is None:
        raise ConfigError([Problem(name, None, None, "file is empty")])
    _check_expansion(name, data)
    if isinstance(data, list):
        docs = []
        for i, item in enumerate(data):
            line = (data.lc.item(i)[0] + 1) if hasattr(data, "lc") else 1
            if not isinstance(item, dict):
                raise ConfigError([Problem(name, line, None, f"list item {i + 1} is not a mapping")])
            docs.append(Document(name, item, i, line, text))
        if not docs:
            raise ConfigError([Problem(name, None, None, "file holds an empty list")])
        return docs
    if not isinstance(data, dict):
        first = next((i for i, x in enumerate(text.splitlines(), 1) if x.strip() and not x.lstrip().startswith("#")), 1)
        raise ConfigError([Problem(name, first, None, "expected a mapping (key: value) or a list of them")])
    return [Document(name, data, None, _line_of(data) or 1, text)]


def _too_deep(text: str, depth: int) -> int | None:
    """The line where collections nest deeper than `depth`, from the parser's events (strings and
    block scalars do not count); the events stop being read there."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    level = 0
    for event in _yaml().parse(text):
        if isinstance(event, CollectionStartEvent):
            level += 1
            if level > depth:
                return event.start_mark.line + 1
        elif isinstance(event, CollectionEndEvent):
            level -= 1
    return None


class _TooBig(Exception):
    pass


class _Cycle(Exception):
    pass


def _check_expansion(name: str, data: Any, limit: int = MAX_VALUES) -> None:
    """Refuse YAML whose aliases expand into a huge (billion laughs) or recursive structure.

    The parser itself shares aliased nodes, so it stays small; everything after it (validation,
    hashing, JSON) would walk the expanded tree. Sizes are counted per shared node, once.
    """
    sizes: dict[int, int] = {}
    path: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in path:
            raise _Cycle
        path.add(key)
        n = 1 + sum(size(v) for v in (node.values() if isinstance(node, dict) else node))
        path.discard(key)
        sizes[key] = n
        if n > limit:
            raise _TooBig
        return n

    try:
        size(data)
    except (_TooBig, _Cycle) as exc:
        field, line = _culprit(data, sizes, limit)
        what = ("a YAML alias refers to itself (a recursive structure)" if isinstance(exc, _Cycle) else
                f"YAML aliases expand to more than {limit:,} values (an alias bomb?)")
        raise ConfigError([Problem(name, line, field, what)]) from None
    except RecursionError:
        raise ConfigError([Problem(name, None, None, "YAML is nested too deeply")]) from None


def _culprit(data: Any, sizes: dict[int, int], limit: int) -> tuple[str | None, int | None]:
    """The first top-level field (of the first record) whose value is too big or recursive."""
    record = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else data
    if isinstance(record, dict):
        for k, v in record.items():
            if isinstance(v, (dict, list)) and (id(v) not in sizes or sizes[id(v)] > limit):
                try:
                    line = record.lc.key(k)[0] + 1
                except (AttributeError, KeyError, TypeError):
                    line = None
                return str(k), line
    return None, _line_of(data)


def _locate(data: Any, loc: tuple[Any, ...], default: int) -> int:
    """Line of the deepest element of `loc` that exists in the parsed YAML."""
    line = default
    node = data
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                try:
                    line = lc.key(part)[0] + 1
                except (KeyError, TypeError):
                    pass
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                try:
                    line = lc.item(part)[0] + 1
                except (KeyError, TypeError, IndexError):
                    pass
            node = node[part]
        else:
            break
    return line


def line_of(doc: Document, *loc: Any) -> int:
    """The line of a field (a path of keys and indexes) in a record, or the record's own line."""
    return _locate(doc.data, loc, doc.line)


def _field_name(loc: tuple[Any, ...]) -> str | None:
    # pydantic puts discriminator tags and function names in loc; keep the user's field path.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p))]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out += f"[{p}]" if p.isdigit() else f".{p}"
    return out


# What the identifier patterns of the models mean, in words (pydantic only shows the regex).
PATTERN_HINTS = {
    r"^[a-z0-9][a-z0-9_.-]*$": "use lowercase letters, digits, '_', '.' or '-', starting with a letter or digit",
    r"^(?:[a-z0-9][a-z0-9_.-]*|axelrod:[A-Za-z][A-Za-z0-9_]*)$": (
        "use lowercase letters, digits, '_', '.' or '-', starting with a letter or digit (or axelrod:NAME, "
        "an Axelrod strategy)"),
    r"^[A-Za-z][A-Za-z0-9_]*$": "write the class name of an Axelrod strategy, e.g. TitForTat",
    r"^[a-z][a-z0-9_-]*$": "use lowercase letters, digits, '_' or '-', starting with a letter",
    r"^[a-z0-9_-]+/.+$": "write provider/model, e.g. local/qwen2.5-coder-0.5b or nvidia/meta/llama-3.1-8b-instruct",
}


def problems_from(exc: ValidationError, doc: Document, prefix: tuple = (), allowed: Iterable[str] | None = None,
                  unknown: str | None = None) -> list[Problem]:
    """Pydantic errors as problems with lines; `prefix` is where the validated mapping sits in the file.

    `allowed` (the model's field names) lets an unknown field be answered with the likely intended
    one; `unknown` replaces that answer altogether.
    """
    import difflib

    problems = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        kind = err.get("type")
        if kind == "extra_forbidden":
            name = str(loc[-1]) if loc else ""
            if unknown is not None:
                msg = f"unknown field; {unknown}"
            elif allowed is not None:
                fields = [f for f in allowed if f not in ("kind",)] or list(allowed)
                close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
                msg = (f"unknown field (did you mean '{close[0]}'?)" if close
                       else f"unknown field; allowed: {', '.join(allowed)}")
            else:
                msg = "unknown field (check the spelling; see the docs for allowed fields)"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "string_pattern_mismatch":
            hint = PATTERN_HINTS.get((err.get("ctx") or {}).get("pattern", ""))
            if hint:
                msg = f"{err.get('input')!r} is not allowed here: {hint}"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        problems.append(Problem(doc.file, _locate(doc.data, loc, doc.line), _field_name(loc), msg))
    return problems


def plain(data: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def validate(doc: Document, model: type[T] | TypeAdapter) -> T:
    """Validate one YAML record against a pydantic model (or TypeAdapter), positions kept."""
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    allowed = None if isinstance(model, TypeAdapter) else getattr(model, "model_fields", None)
    try:
        return adapter.validate_python(plain(doc.data))
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, doc, allowed=allowed)) from None


def iter_yaml_files(directory: Path, recursive: bool = False) -> Iterator[Path]:
    """A folder's YAML files by name; with `recursive`, then each subfolder's the same way (folders whose
    name starts with '.' or '_' are skipped)."""
    entries = sorted(Path(directory).iterdir())
    yield from (p for p in entries if p.suffix in (".yaml", ".yml") and p.is_file())
    if recursive:
        for sub in entries:
            if sub.is_dir() and not sub.name.startswith((".", "_")):
                yield from iter_yaml_files(sub, recursive=True)


def dump_yaml(data: Any) -> str:
    """Serialise plain data as block-style YAML (multi-line strings as literal blocks)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    def literal(v: Any) -> Any:
        if isinstance(v, str) and "\n" in v:
            return LiteralScalarString(v if v.endswith("\n") else v + "\n")
        if isinstance(v, dict):
            return {k: literal(x) for k, x in v.items()}
        if isinstance(v, list):
            return [literal(x) for x in v]
        return v

    y = YAML(typ="rt")
    y.default_flow_style = False
    y.width = 100
    buf = io.StringIO()
    y.dump(literal(data), buf)
    return buf.getvalue()


__all__ = ["Document", "read_text", "read_documents", "line_of", "validate", "problems_from", "plain", "iter_yaml_files", "dump_yaml"]


def did_you_mean(missing: Iterable[str], known: Iterable[str]) -> str:
    """' (did you mean prisoners_dilemma?)' for ids close to known ones, else ''."""
    import difflib

    known = list(known)
    close = [m[0] for x in missing if (m := difflib.get_close_matches(x, known, n=1, cutoff=0.6))]
    return f" (did you mean {', '.join(close)}?)" if close else ""
