"""What the loopback LLM server answers in the tests of LLM programs (used with action_responder)."""

from __future__ import annotations


def mirror_policy(req) -> str:
    """A program told to 'always defect' defects; any other mirrors its simulated opponent's action
    (and cooperates when grounded)."""
    if "always defect" in req.messages[0]["content"]:
        return "defect"
    return "defect" if "your opponent chose: defect" in req.last_user_text else "cooperate"
