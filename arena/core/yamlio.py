"""YAML reading with positions, so that validation errors name the file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from .errors import ConfigError, Problem

T = TypeVar("T")


@dataclass(frozen=True)
class Document:
    """One record read from a YAML file (a file may hold one mapping or a list of them)."""

    file: str
    data: Any
    index: int | None  # position in a top-level list, None for a single mapping
    line: int  # 1-based line where the record starts
    text: str  # the YAML text of the whole file


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _line_of(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return None if lc is None or lc.line is None else lc.line + 1


def read_documents(path: Path, text: str | None = None) -> list[Document]:
    """Parse a YAML file into records; a syntax error becomes a ConfigError with its line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Problem(name, None, None, f"cannot read file: {exc}")]) from exc
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError([Problem(name, line, None, f"YAML syntax error: {msg}")]) from exc
    except YAMLError as exc:
        raise ConfigError([Problem(name, None, None, f"YAML error: {exc}")]) from exc
    if data is None:
        raise ConfigError([Problem(name, None, None, "file is empty")])
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
        raise ConfigError([Problem(name, 1, None, "expected a mapping (key: value) or a list of them")])
    return [Document(name, data, None, _line_of(data) or 1, text)]


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


def _field_name(loc: tuple[Any, ...]) -> str | None:
    # pydantic puts discriminator tags and function names in loc; keep the user's field path.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p))]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out += f"[{p}]" if p.isdigit() else f".{p}"
    return out


def problems_from(exc: ValidationError, doc: Document, prefix: tuple = ()) -> list[Problem]:
    """Pydantic errors as problems with lines; `prefix` is where the validated mapping sits in the file."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err.get("loc", ()))
        msg = err.get("msg", "invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (check the spelling; see the docs for allowed fields)"
        elif err.get("type") == "missing":
            msg = "required field is missing"
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
    try:
        return adapter.validate_python(plain(doc.data))
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, doc)) from None


def iter_yaml_files(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


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


__all__ = ["Document", "read_documents", "validate", "problems_from", "plain", "iter_yaml_files", "dump_yaml"]
