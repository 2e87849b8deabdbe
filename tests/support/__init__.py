"""Test and benchmark helpers for Arena: a fake OpenAI-compatible server.

Names are re-exported lazily from :mod:`tests.support.fake_llm` so that
``python -m tests.support.fake_llm`` does not import the module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "FAULT_KINDS",
    "ChatRequest",
    "Delay",
    "Empty",
    "FakeLLMServer",
    "FaultPlan",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Responder",
    "Script",
    "Status",
    "Text",
    "Truncated",
    "action_responder",
]

if TYPE_CHECKING:
    from tests.support.fake_llm import (
        FAULT_KINDS,
        ChatRequest,
        Delay,
        Empty,
        FakeLLMServer,
        FaultPlan,
        Malformed,
        RecordedRequest,
        Reply,
        Reset,
        Responder,
        Script,
        Status,
        Text,
        Truncated,
        action_responder,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tests.support import fake_llm

        return getattr(fake_llm, name)
    raise AttributeError(f"module 'tests.support' has no attribute {name!r}")
