"""How the app shows code programs: their source (highlighted, with line numbers) and a code node's
ctx, return value, printed output and error (where an LLM node shows its transcript)."""

from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from textual.content import Content
from textual.widgets import Static

OUTPUT_SHOWN = 2000  # characters of a node's printed output shown (the store keeps at most as many)


def highlighted(source: str) -> Syntax:
    return Syntax(source.rstrip("\n"), "python", line_numbers=True, word_wrap=True, theme="ansi_dark",
                  background_color="default")


def ctx_text(ctx: dict) -> str:
    """The ctx one key a line (`game.payoffs: [[[3, 3], ...]]`), sources shortened to their first line."""
    lines = []
    for key, value in ctx.items():
        if key == "game" and isinstance(value, dict):
            lines += [f"game.{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()]
            continue
        if key in ("me", "opponent") and isinstance(value, str):
            first, *rest = value.splitlines() or [""]
            lines.append(f"{key}: {json.dumps(first, ensure_ascii=False)}" + (f" … ({len(rest) + 1} lines)" if rest else ""))
            continue
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def code_node_widgets(node: Any, ctx: dict | None) -> list[Static]:
    """The boxes for a code node: ctx, returned value, printed output, error."""
    out: list[Static] = []
    if ctx is not None:
        w = Static(Content(ctx_text(ctx)), classes="tx-msg -user")
        w.border_title = "ctx"
        out.append(w)
    code = getattr(node, "code", None) or {}
    if node.action is not None:
        value = code.get("value", node.action)
        shown = json.dumps(value) if not isinstance(value, str) else repr(value)
        line = f"returned {shown}" + (f" → sampled with u: {node.action}" if "value" in code else "")
        out.append(Static(Content(line), classes="tx-parsed"))
    if code.get("output"):
        w = Static(Content(code["output"][:OUTPUT_SHOWN].rstrip()), classes="tx-msg -answer")
        w.border_title = "printed"
        out.append(w)
    if node.error:
        out.append(Static(Content.from_markup("[$error]error:[/] $e", e=node.error), classes="tx-parsed"))
    if not out:
        out.append(Static("Not run yet.", classes="hint"))
    return out
