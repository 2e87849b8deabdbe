"""Axelrod's strategies as programs: `axelrod:NAME` is the strategy NAME of the Axelrod library
(Axelrod-Python, `pip install 'arena[axelrod]'`), any of `axelrod.strategies` (those that obey Axelrod's
rules: no reading or changing the opponent's source or state), named by its class name.

Such a program is a BuiltinProgram (`strategy: axelrod`, `params: {name: NAME}`) made on demand wherever a
program id is accepted (programs.with_axelrod; no YAML file needed, and a YAML file may define one under its
own id too). The
package is imported only when such a program is used (it takes seconds: it builds all its strategies), so
Arena starts without it; the agent that plays it is engine/axelrod_agent.py.
"""

from __future__ import annotations

import functools
import re
import warnings

from arena.errors import ArenaError, LookupFailed

AXELROD_PREFIX = "axelrod:"  # `axelrod:NAME`: Axelrod's strategy NAME
EXTRA = "pip install 'arena[axelrod]'"


class AxelrodMissing(ArenaError):
    """The optional axelrod package is not installed (or does not import)."""


@functools.cache
def axelrod():
    """The axelrod package, imported on first use; AxelrodMissing names the extra when it is not there."""
    try:
        with warnings.catch_warnings():  # e.g. "Human strategy not available" (prompt_toolkit): not ours to say
            warnings.simplefilter("ignore")
            import axelrod as axl
    except ImportError as exc:
        raise AxelrodMissing(f"Axelrod programs need the optional axelrod package ({exc}): install it with "
                             f"{EXTRA}") from None
    return axl


def available() -> bool:
    """Whether the axelrod package can be imported (without importing it when it is not there)."""
    import importlib.util

    return importlib.util.find_spec("axelrod") is not None


@functools.cache
def strategies() -> dict[str, type]:
    """Axelrod's strategies that obey its rules (`axelrod.strategies`), by class name."""
    return {cls.__name__: cls for cls in axelrod().strategies}


def strategy_class(name: str) -> type:
    """The Axelrod strategy NAME; LookupFailed (with a did-you-mean) for a name it does not have."""
    known = strategies()
    if name in known:
        return known[name]
    from arena.library.yamlio import did_you_mean

    hint = did_you_mean([name], known)
    if not hint:  # a name in another case (titfortat) or a display name (Tit For Tat)
        folded = {k.lower(): k for k in known}
        close = folded.get(re.sub(r"[^a-z0-9]", "", name.lower()))
        hint = f" (did you mean {close}?)" if close else ""
    raise LookupFailed(f"unknown Axelrod strategy '{name}'{hint}: `arena programs list --axelrod` lists its "
                       f"{len(known)} strategies")


@functools.cache
def doc_line(name: str) -> str:
    """The first sentence of the strategy's docstring (its first paragraph when it has no full stop)."""
    doc = (strategy_class(name).__doc__ or "").strip()
    para = " ".join(doc.split("\n\n", 1)[0].split())
    m = re.match(r"(.+?[.!?])(\s|$)", para)
    text = m.group(1) if m else para
    return text if len(text) <= 200 else text[:199] + "…"


@functools.cache
def summary(name: str) -> str:
    """'Axelrod's TitForTat (Tit For Tat): A player starts by cooperating...', what opponents and lists show;
    without the package, the name alone."""
    try:
        cls = strategy_class(name)
    except AxelrodMissing:
        return f"Axelrod's {name} (the axelrod package is needed to play it: {EXTRA})"
    except LookupFailed:
        return f"Axelrod's {name} (not a strategy of the installed axelrod package)"
    shown = name if cls.name.replace(" ", "") == name else f"{name} ({cls.name})"
    return f"Axelrod's {shown}: {doc_line(name)}"
