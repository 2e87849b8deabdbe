"""The writer's messages (seat-aware, with the game, the opponent's source and the ctx contract) and
reading a candidate out of its reply."""

from __future__ import annotations

import re

from arena.engine.code import game_view
from arena.iterate import gridworld
from arena.library.codecheck import ALLOWED_MODULES
from arena.library.games import Game

CODE = "code"
PROMPT = "prompt"

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)

CTX_CONTRACT = """\
Your program is Python source defining `decide(ctx)`, called every time your program must act. It runs in
a sandbox: no files, no network; you may import only MODULES. `ctx` is a dict:
  ctx["game"]: {"id", "actions": [action names], "payoffs": payoffs[i][j] = [mine, theirs] when I play
               actions[i] and the opponent plays actions[j], "default_action", "defect_action",
               "cooperative": [[my action, their action], ...]}
  ctx["seat"]: "row" or "col" (the payoffs above are already from your seat)
  ctx["me"]: your own source; ctx["opponent"]: the opponent's source (text)
  ctx["opponent_kind"]: "code", "llm" or "builtin"
  ctx["opponent_action"]: what a simulation of the opponent playing against you chose, or None when you
               act without simulating (grounded with probability epsilon, or at the depth cap)
  ctx["depth"], ctx["epsilon"], ctx["u"]: simulation depth, grounding probability, a uniform draw in [0, 1)
  ctx["round"], ctx["rounds"], ctx["continuation"], ctx["history"], ctx["state"]: where a repeated game is
               (here a one-shot game: 0, 1, None, [], None)
`decide` returns an action name from ctx["game"]["actions"], or a list of probabilities over them.""".replace(
    "MODULES", ", ".join(sorted(ALLOWED_MODULES)))  # the static check's own list (library/codecheck.py)


def seat_game_text(game: Game, seat: str) -> str:
    view = game_view(game, seat)
    acts = view["actions"]
    lines = [f"Game '{game.id}' ({game.name}). You are the {'row' if seat == 'row' else 'column'} player. "
             f"Actions: {', '.join(acts)}. Payoffs (you, opponent):"]
    for i, a in enumerate(acts):
        cells = ", ".join(f"they {b}: ({view['payoffs'][i][j][0]:g}, {view['payoffs'][i][j][1]:g})"
                          for j, b in enumerate(acts))
        lines.append(f"  you {a}: {cells}")
    return "\n".join(lines)


def system_message(kind: str, game: Game | None = None) -> str:
    if game is not None and game.markov:
        return gridworld.system_text(kind)
    if kind == CODE:
        return ("You are an expert game theorist and Python programmer. You write a policy program for one "
                "player of a one-shot game against an opponent program whose source you can read. Aim for the "
                "highest expected payoff for your player.\n\n" + CTX_CONTRACT + "\n\nReply with the whole "
                "program in one ```python fenced block: `decide` and its helpers only, no example usage.")
    return ("You are an expert game theorist. You write the system prompt of an LLM that plays one player of a "
            "one-shot game against an opponent program whose source it can read (and may be told what a "
            "simulation of the opponent chose). Aim for the highest expected payoff for your player. Reply "
            "with the whole system prompt in one ``` fenced block.")


def task_message(kind: str, game: Game, seat: str, opponent_source: str, episodes: int) -> str:
    if game.markov:
        return gridworld.task_text(kind, game, seat, opponent_source, episodes)
    what = "program" if kind == CODE else "system prompt"
    return (f"{seat_game_text(game, seat)}\n\nThe opponent's current program (fixed while you improve yours):\n"
            f"```\n{opponent_source.rstrip()}\n```\n\nWrite your {what}. It will be unit-tested, then played "
            f"{episodes} times against this opponent; you will see the results and may improve it.")


def extract(reply: str) -> str:
    """The candidate in a reply: the last fenced block (a python one preferred), else the whole reply."""
    blocks = _FENCE.findall(reply)
    if reply.count("```") % 2:  # an answer cut off inside its last block (the length cap): the block so far
        tail = reply[reply.rindex("```") + 3:]
        lang, _, body = tail.partition("\n")
        blocks.append((lang.strip(), body))
    if not blocks:
        return reply.strip() + "\n"
    python = [body for lang, body in blocks if lang.lower() in ("python", "py")]
    return (python or [body for _lang, body in blocks])[-1].strip("\n") + "\n"
