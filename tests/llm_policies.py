"""What the loopback LLM server answers in the tests of LLM programs (used with action_responder)."""

from __future__ import annotations


def mirror_policy(req) -> str:
    """A program told to 'always defect' defects; any other mirrors its simulated opponent's action
    (and cooperates when grounded)."""
    if "always defect" in req.messages[0]["content"]:
        return "defect"
    told = req.last_user_text  # prompt version 2's wording, or version 1's (stored calls)
    simulated_defect = ("(your own program) chose: defect." in told or "your opponent chose: defect." in told)
    return "defect" if simulated_defect else "cooperate"
