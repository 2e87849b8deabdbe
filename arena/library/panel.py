"""The seed harness's open-weight panel: LLM programs made of model x prompt x temperature.

A panel program is a prompt program of the library (its system prompt) on one model alias at one
temperature. Its model is `local/<alias>`: on the embedded provider every alias maps to the one embedded
model, and `--provider P` maps each alias to P's own model (providers.yaml `aliases`).
"""

from __future__ import annotations

from collections.abc import Mapping

from arena.errors import LookupFailed

# The seed's panel: Llama 3.1 8B and 70B, Llama 3.2 3B, Phi-4, Mixtral 8x7B (aliases every provider maps).
PANEL = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.2-3b", "phi-4", "mixtral-8x7b")


def panel_id(prompt: str, alias: str, temperature: float) -> str:
    """e.g. fair-llm.llama-3.1-8b.t0.7"""
    return f"{prompt}.{alias}.t{temperature:g}"


def panel_programs(library: Mapping[str, object], prompts: list[str], aliases: list[str],
                   temperatures: list[float]) -> dict[str, object]:
    """Every prompt x alias x temperature program, built from the library's LLM prompt programs."""
    from arena.library.programs import LLMProgram

    out: dict[str, object] = {}
    for prompt in prompts:
        base = library.get(prompt)
        if not isinstance(base, LLMProgram):
            raise LookupFailed(f"the panel's prompt program '{prompt}' is not an LLM program in the library")
        for alias in aliases:
            for t in temperatures:
                pid = panel_id(prompt, alias, t)
                out[pid] = base.model_copy(update={"id": pid, "model": f"local/{alias}", "temperature": t})
    return out
