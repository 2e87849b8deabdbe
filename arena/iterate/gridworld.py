"""The writer's text for a grid world (Level-Based Foraging, engine/lbf.py) and its utilities.

A grid world's episode is a match of steps: the writer is shown the env's rules (the game's description and
parameters), the observation layout (ctx["state"]: the package's vector and its parsed form) and the
`decide` contract, or the PIBR paper's `history_dependent_policy_0/1(game_history)`; its feedback is the
episodes' trajectories (joint actions and rewards per step, runs of the same step folded into one line;
the first DETAILED episodes step by step, a long one's tail as its rewarded lines only; the rest one line each); an episode's utility is a seat's return (the sum of
its rewards over the steps), and the welfare is the sum of both seats' returns.
"""

from __future__ import annotations

from arena.engine.records import TrialResult
from arena.iterate.meanlines import mean_lines
from arena.library.codecheck import ALLOWED_MODULES
from arena.library.games import Game

DETAILED = 3  # episodes whose trajectory the feedback shows step by step
SEGMENTS = 16  # folded lines of one trajectory shown; the rest is counted
LISTED = 20  # episodes with a line each (beyond DETAILED)

CONTRACT = """\
Your program is Python source defining `decide(ctx)`, called at every step of an episode when your agent must
act (and when a simulation of you is run). It runs in a sandbox: no files, no network; you may import only
MODULES. `ctx` is a dict:
  ctx["game"]["actions"]: ["none", "north", "south", "west", "east", "load"] (the package's codes 0..5;
               north is row - 1, south row + 1, west column - 1, east column + 1; load collects a food in a
               cell next to you, up, down, left or right; ctx["game"]["payoffs"] is unused here: rewards come
               from the environment)
  ctx["seat"]: "row" (the package's agent 0) or "col" (agent 1)
  ctx["state"]: what your agent sees now:
      "obs": the package's observation vector of your agent: for each food (row, col, level), then for each
             agent (row, col, level), yourself first; -1, -1, 0 for what is not seen or gone
      "agents": [{"pos": [row, col], "level": l, "me": true or false}, ...]
      "foods": [{"pos": [row, col], "level": l}, ...] (the food still on the field)
      "field_size": [rows, cols], "step": steps taken so far, "max_steps": the episode's longest length,
      "valid_actions": the actions the environment accepts from your agent now
  ctx["round"]: the step (0-based); ctx["rounds"]: max_steps
  ctx["history"]: the steps so far, oldest first: {"me", "opponent" (actions as played), "my_payoff",
               "opponent_payoff" (that step's rewards), "state" (the state you decided that step on)}
  ctx["me"], ctx["opponent"]: both programs' sources; ctx["opponent_kind"]: "code", "llm" or "builtin"
  ctx["opponent_action"]: what a simulation of the opponent at this same step chose, or None when you act
               without simulating (grounded with probability epsilon, or at the depth cap)
  ctx["depth"], ctx["epsilon"], ctx["u"]: simulation depth, grounding probability, a uniform draw in [0, 1)
`decide` returns an action name, or a list of six probabilities over the actions.
Instead of `decide`, you may define the PIBR paper's `history_dependent_policy_0(game_history)` (the row
agent) and/or `history_dependent_policy_1(game_history)` (the column agent), returning six probabilities:
game_history = {"state": [observation vectors so far, the current one last], "action": [[a0, a1], ...]} with
the past joint actions as codes 0..5 in seat order.""".replace("MODULES", ", ".join(sorted(ALLOWED_MODULES)))


def rules_text(game: Game) -> str:
    """The env's rules and parameters, as the writer is shown them."""
    k = game.env_kwargs()
    h, w = k["field_size"]
    lines = [f"Game '{game.id}' ({game.name}): a grid world (Level-Based Foraging, the lbforaging package), "
             "played as an episode of steps.", game.description.strip(),
             f"Parameters: a {h}x{w} field, 2 agents of level {k['min_player_level']} to {k['max_player_level']}, "
             f"up to {k['max_num_food']} foods, sight {k['sight']} cells, at most {k['max_episode_steps']} steps; "
             + ("every food needs both agents loading at the same step (force_coop)" if k["force_coop"] else
                "a food is collected when the levels of the agents loading it add up to its level")
             + (f"; a failed load costs {k['penalty']:g}" if k["penalty"] else "") + "."]
    c = getattr(game, "terminal_penalty", None)
    if c:
        lines.append(f"At the episode's last step each agent's reward is lowered by {c:g} x L / {game.horizon} "
                     "(L the episode's length): finishing faster is worth more.")
    lines.append("Your utility is your agent's return: the sum of its rewards over the episode. Both agents "
                 "together (the social welfare) can earn at most 1 from the food.")
    return "\n".join(lines)


def system_text(kind: str) -> str:
    """The writer's system message in a grid world."""
    if kind == "code":
        return ("You are an expert in multi-agent reinforcement learning and a Python programmer. You write the "
                "policy program of one agent of a grid world played against (and with) another agent's program, "
                "whose source you can read. Aim for the highest expected return for your agent.\n\n" + CONTRACT
                + "\n\nReply with the whole program in one ```python fenced block: its functions and helpers "
                "only, no example usage.")
    return ("You are an expert in multi-agent reinforcement learning. You write the system prompt of an LLM that "
            "plays one agent of a grid world against another agent's program whose source it can read. At each "
            "step the LLM is shown the field as a text grid with the agents' and foods' positions and levels and "
            "the six actions. Aim for the highest expected return for your agent. Reply with the whole system "
            "prompt in one ``` fenced block.")


def task_text(kind: str, game: Game, seat: str, opponent_source: str, episodes: int) -> str:
    """The writer's task in a grid world: the rules, its seat, the opponent's program."""
    what = "program" if kind == "code" else "system prompt"
    agent = "row agent (the package's agent 0)" if seat == "row" else "column agent (the package's agent 1)"
    return (f"{rules_text(game)}\n\nYou write the {agent}.\n\nThe other agent's current program (fixed while you "
            f"improve yours):\n```\n{opponent_source.rstrip()}\n```\n\nWrite your {what}. It will be "
            f"unit-tested, then played for {episodes} episodes with this other agent; you will see the "
            "trajectories and may improve it.")


def episode_returns(r: TrialResult) -> tuple[float, float] | None:
    """(row return, column return) of an episode: the sums of its steps' rewards; None if it ended in an error."""
    if r.row_payoff is None or r.col_payoff is None:
        return None
    return sum(x.row_payoff for x in r.rounds), sum(x.col_payoff for x in r.rounds)


def worst_returns(game: Game) -> tuple[float, float]:
    """Each seat's lowest return: a failed load at every step and the terminal penalty of a full-length
    episode (what an episode that ended in an error scores)."""
    k = game.env_kwargs()
    worst = -k["penalty"] * k["max_episode_steps"] - (getattr(game, "terminal_penalty", None) or 0.0)
    return worst, worst


def utilities(results: list[TrialResult], game: Game) -> tuple[float, float]:
    """Mean returns (row, col) over the episodes; an episode that ended in an error scores worst_returns."""
    n = max(len(results), 1)
    worst = worst_returns(game)
    rets = [episode_returns(r) or worst for r in results]
    return sum(a for a, _ in rets) / n, sum(b for _, b in rets) / n


def _segments(r: TrialResult, me: int) -> list[tuple[str, bool]]:
    """A trajectory folded: consecutive steps with the same joint action and rewards on one line (with
    whether it holds a reward)."""
    runs: list[list] = []
    for x in r.rounds:
        acts = (x.row_action, x.col_action)
        pays = (x.row_payoff, x.col_payoff)
        key = (acts[me], acts[1 - me], pays[me], pays[1 - me])
        if runs and runs[-1][0] == key:
            runs[-1][2] = x.round
        else:
            runs.append([key, x.round, x.round])
    out = []
    for (mine, theirs, pm, pt), a, b in runs:
        steps = f"step {a + 1}" if a == b else f"steps {a + 1}-{b + 1}"
        reward = (f": rewards you {pm:g}, other {pt:g}" + (" each step" if a != b else "")) if pm or pt else ""
        out.append((f"    {steps}: you {mine}, other {theirs}{reward}", bool(pm or pt)))
    return out


def trajectory_lines(r: TrialResult, me: int) -> list[str]:
    """An episode's folded trajectory: its first SEGMENTS lines, then only the lines with a reward (the others
    counted)."""
    segs = _segments(r, me)
    lines = [text for text, _ in segs[:SEGMENTS]]
    rest = segs[SEGMENTS:]
    rewarded = [text for text, paid in rest if paid]
    if len(rewarded) < len(rest):
        lines.append(f"    ... {len(rest) - len(rewarded)} more lines without a reward (up to step {len(r.rounds)})"
                     + ("; the lines with one:" if rewarded else ""))
    return lines + rewarded


def _start(r: TrialResult, me: int) -> str:
    view = r.rounds[0].state[me] if r.rounds and r.rounds[0].state else None
    if view is None:
        return ""
    you = next(a for a in view["agents"] if a["me"])
    others = [a for a in view["agents"] if not a["me"]]
    foods = ", ".join(f"{f['pos']} (level {f['level']})" for f in view["foods"])
    other = f", the other agent at {others[0]['pos']} (level {others[0]['level']})" if others else ""
    return f" Start: you at {you['pos']} (level {you['level']}){other}; food at {foods}."


def utility_text(results: list[TrialResult], game: Game, seat: str, best: float | None) -> str:
    """The utility feedback in a grid world: each episode's returns and length, the first episodes'
    trajectories, the mean returns and welfare."""
    me = 0 if seat == "row" else 1
    lines = [f"Your program passed its unit tests. It played {len(results)} episodes with the other agent's "
             "current program (through the epsilon-grounded simulator). Steps are numbered from 1; a line covers "
             "consecutive steps with the same actions and rewards:"]
    for k, r in enumerate(results, 1):
        rets = episode_returns(r)
        if rets is None:
            lines.append(f"  episode {k}: error after {len(r.rounds)} steps: {r.error}")
            continue
        food = sum(x.cooperative for x in r.rounds)
        head = (f"  episode {k}: {len(r.rounds)} steps, food collected at {food} step(s); return you {rets[me]:.3g}, "
                f"other {rets[1 - me]:.3g}, welfare {rets[0] + rets[1]:.3g}.")
        if k <= DETAILED:
            lines.append(head + _start(r, me))
            lines += trajectory_lines(r, me)
        elif k <= DETAILED + LISTED:
            lines.append(head)
        elif k == DETAILED + LISTED + 1:
            lines.append(f"  ... {len(results) - k + 1} more episodes (in the means below)")
    errors = any(episode_returns(r) is None for r in results)
    lines += mean_lines(utilities(results, game), worst_returns(game) if errors else None, me, best,
                        measure="return", other="other", worst_name="the worst return")
    return "\n".join(lines)
