"""The writer's messages (seat-aware, with the game, the opponent's source and the ctx contract), the shape
its answer is constrained to, and reading a candidate out of its reply.

Two versions of the writer's prompt (`WRITER_V1`, `WRITER_V2`); a run records its own in its config, so a
resumed run asks exactly what it asked before:

- version 1: the long contract, a free-text answer (the last fenced python block);
- version 2 (code programs): a compact prompt (the game from the seat as a small table with the best reply
  to each opponent action, the opponent's code, the short contract, one example answer) and a constrained
  answer: a short reasoning first, then `def decide(ctx):` with an indented body and nothing after it
  (a llama.cpp GBNF grammar, or a JSON schema {"reasoning", "code"} whose code must start with the
  definition; free text with stop sequences where the endpoint takes neither).
"""

from __future__ import annotations

import json
import re

from arena.engine.code import game_view
from arena.iterate import gridworld
from arena.library.codecheck import ALLOWED_MODULES
from arena.library.games import Game

CODE = "code"
PROMPT = "prompt"
WRITER_V1, WRITER_V2 = 1, 2
WRITER_VERSION = WRITER_V2  # what a new run asks with
REASONING_CHARS = 300  # the longest reasoning a constrained answer may give
BODY_LINES = 40  # the longest body of decide a constrained answer may give
LINE_CHARS = 160  # the longest line of it
# where a free-text answer stops: after the function's closing fence, or where example usage begins
STOPS = ["\n```\n", "\nif __name__", "\nprint(", "\n# Example", "\n# Test"]

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


# -- version 2: compact, constrained ---------------------------------------------------------------------
SHORT_CONTRACT = """\
Your program is one Python function, called each time your player must act:
def decide(ctx):
    ...
    return "ACTION"
It returns one of the game's action names (a string). ctx["opponent_action"] is the action a simulation of
the opponent chose when playing against your program, or None (no simulation this time). ctx["game"]["actions"]
lists the actions. Only the function: no code after it, no prints, no example usage. You may import only:
MODULES.""".replace("MODULES", ", ".join(sorted(ALLOWED_MODULES)))


RANDOM_PLAY = "at random"  # what a reasoning may say the opponent plays, besides one of its actions


def answer_shape(mode: str) -> str:
    """How the answer must look, with one short example (for a game whose actions are x, y, z)."""
    if mode == "json_schema":
        example = json.dumps({"reasoning": "The opponent plays x, so I play y.",
                              "code": 'def decide(ctx):\n    return "y"\n'})
        return ('Answer with a JSON object {"reasoning": "<one short sentence>", "code": "<the function>"}. '
                f"Example answer (for another game, whose actions are x, y, z):\n{example}")
    return ("Answer with one line: what the opponent plays (one of its actions, or at random) and your best reply "
            "to it; then the function in a ```python block, and stop. Example answer (for another game, whose "
            'actions are x, y, z):\nThe opponent plays x, so I play y.\n```python\ndef decide(ctx):\n'
            '    return "y"\n```')


def payoff_table(game: Game, seat: str) -> str:
    """The game from the seat as a small table: a row per own action, a column per opponent action, each cell
    (your payoff, the opponent's), then the best reply to each opponent action."""
    view = game_view(game, seat)
    acts = view["actions"]
    pay = view["payoffs"]
    cells = [[f"{pay[i][j][0]:g}, {pay[i][j][1]:g}" for j in range(len(acts))] for i in range(len(acts))]
    width = max(max(len(c) for row in cells for c in row), max(len(a) for a in acts) + 5)
    label = max(len(a) for a in acts) + 6  # "you <action>" and two spaces
    head = " " * label + " | ".join(f"they {b}".ljust(width) for b in acts)
    lines = [f"Payoffs (you, opponent). You are the {'row' if seat == 'row' else 'column'} player.", head.rstrip()]
    lines += [(f"you {a}".ljust(label) + " | ".join(c.ljust(width) for c in cells[i])).rstrip()
              for i, a in enumerate(acts)]
    best = []
    for j, b in enumerate(acts):
        top = max(pay[i][j][0] for i in range(len(acts)))
        best.append(f"to {b}, play {' or '.join(a for i, a in enumerate(acts) if pay[i][j][0] == top)} ({top:g})")
    lines.append("Your best reply: " + "; ".join(best) + ".")
    mean = [sum(pay[i][j][0] for j in range(len(acts))) / len(acts) for i in range(len(acts))]
    lines.append("Against an opponent choosing uniformly at random, your mean payoff: "
                 + ", ".join(f"{a} {m:.3g}" for a, m in zip(acts, mean)) + ".")
    return "\n".join(lines)


def writer_system(kind: str, mode: str) -> str:
    if kind != CODE:
        return system_message(kind)
    return ("You write the program of one player of a one-shot game against an opponent program whose code you "
            "can read. Aim for the highest payoff for your player.\n\n" + SHORT_CONTRACT + "\n\n" + answer_shape(mode))


def writer_task(kind: str, game: Game, seat: str, opponent_source: str, episodes: int) -> str:
    if kind != CODE:
        return task_message(kind, game, seat, opponent_source, episodes)
    return (f"Game '{game.id}' ({game.name}). Actions: {', '.join(game.actions)}.\n{payoff_table(game, seat)}\n\n"
            f"The opponent's program (fixed while you write yours):\n```python\n{opponent_source.rstrip()}\n```\n\n"
            "Work out what the opponent's program plays, then write decide(ctx) returning your best reply to it. "
            f"It will be tested, then played {episodes} times against this opponent.")


def writer_messages(version: int, kind: str, mode: str, game: Game, seat: str, opponent_source: str,
                    episodes: int) -> list[dict]:
    """The first two messages of a turn's conversation (system, task) in the run's writer version."""
    if version == WRITER_V1 or kind != CODE or game.markov:  # a grid world's writer text has one version
        return [{"role": "system", "content": system_message(kind, game)},
                {"role": "user", "content": task_message(kind, game, seat, opponent_source, episodes)}]
    return [{"role": "system", "content": writer_system(kind, mode)},
            {"role": "user", "content": writer_task(kind, game, seat, opponent_source, episodes)}]


def writer_grammar(actions: list[str]) -> str:
    """A llama.cpp GBNF grammar for version 2's text answer: the line `The opponent plays X, so I play Y.`
    (X one of the actions or `at random`, Y an action), then a python block holding `def decide(ctx):` and an
    indented body (blank lines allowed), closed right after it."""
    acts = " | ".join(json.dumps(a) for a in actions)
    return ('root ::= "The opponent plays " opp ", so I play " act ".\\n```python\\ndef decide(ctx):\\n" body "```"\n'
            f"opp ::= {acts} | {json.dumps(RANDOM_PLAY)}\n"
            f"act ::= {acts}\n"
            f"body ::= line{{1,{BODY_LINES}}}\n"
            f'line ::= "    " [^\\n]{{1,{LINE_CHARS}}} "\\n" | "\\n"\n')


def writer_schema() -> dict:
    """OpenAI-style response_format for version 2: {"reasoning", "code"}, the code a definition of decide."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "program",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string", "maxLength": REASONING_CHARS},
                    "code": {"type": "string", "pattern": r"^def decide\(ctx\):\n"},
                },
                "required": ["reasoning", "code"],
                "additionalProperties": False,
            },
        },
    }


def writer_request(version: int, kind: str, mode: str, game: Game) -> dict:
    """The constraint of a writer call as LLMService.ask takes it: fmt, grammar, structured and extra (the
    stop sequences of a free-text answer). Version 1, prompt writers and grid worlds: none."""
    if version == WRITER_V1 or kind != CODE or game.markov:
        return {}
    if mode == "grammar":
        return {"grammar": writer_grammar(game.actions), "structured": "grammar"}
    if mode == "json_schema":
        return {"fmt": writer_schema(), "structured": "json_schema"}
    return {"extra": {"stop": STOPS}}


def extract_answer(reply: str) -> str:
    """The candidate in any writer answer: the `code` of a JSON answer, else as `extract`."""
    text = reply.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            return data["code"].strip("\n") + "\n"
    return extract(reply)
