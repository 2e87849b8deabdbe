"""Level-Based Foraging: the `lbforaging` package's ForagingEnv, stepped (never reimplemented) as a match's
environment (docs/markov-games.md).

`Environment` is what the match engine needs of a game with a state: `reset()` → state, `step(a, b)` →
(state, rewards, done). The env is seeded from the trial's seed (`env_seed`), so a stored episode replays
through the package itself: `replay(game, seed, actions)` does it with nothing of Arena's but the
wrapper's terminal penalty (the PIBR variant, `terminal_penalty`).

A state is the pair of the two seats' views (row = the package's agent 0, column = agent 1), each what a
program is shown as `ctx["state"]`: the package's observation vector of that agent (`obs`: foods then
agents as (row, col, level), the agent itself first, -1/-1/0 for what it does not see) and its parsed form
in absolute coordinates (`agents`, `foods`, `field_size`, `step`, `max_steps`, and `valid_actions`: the
package's valid actions of that agent, by name).

The package imports pyglet only to render; nothing here renders, so pyglet is never imported.
"""

from __future__ import annotations

import hashlib
import json

from arena.library.games import LBF_ACTIONS, LBFGame

CODES = {name: i for i, name in enumerate(LBF_ACTIONS)}


def env_seed(seed: int) -> int:
    """The seed of a trial's env (ForagingEnv.reset(seed=...)), derived from the trial's seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}|env".encode(), digest_size=8).digest(), "big") >> 1


def make_env(game: LBFGame):
    """The package's ForagingEnv with the game's parameters (a registered id's own kwargs), unwrapped."""
    from lbforaging.foraging.environment import ForagingEnv

    return ForagingEnv(**game.env_kwargs())


def terminal_penalty(game: LBFGame, length: int) -> float:
    """What the PIBR variant takes from each agent's reward at the episode's last step: c·L/T (0 without)."""
    c = game.terminal_penalty
    return 0.0 if not c else c * length / game.horizon


class Environment:
    """One episode of an LBF game: the package's env, its seat views, the PIBR wrapper's penalty."""

    __slots__ = ("game", "env", "seed", "horizon", "_names")

    def __init__(self, game: LBFGame, seed: int):
        self.game = game
        self.env = make_env(game)
        self.seed = env_seed(seed)
        self.horizon = game.horizon
        self._names = _names_by_id()

    def reset(self) -> tuple[dict, dict]:
        obs, _ = self.env.reset(seed=self.seed)
        return self._views(obs)

    def step(self, row: str, col: str) -> tuple[tuple[dict, dict], tuple[float, float], bool]:
        """Both seats' actions by name → (next state, (row reward, column reward), episode over)."""
        obs, rewards, done, truncated, _ = self.env.step((CODES[row], CODES[col]))
        r0, r1 = float(rewards[0]), float(rewards[1])
        done = bool(done or truncated)
        if done and self.game.terminal_penalty:
            p = terminal_penalty(self.game, self.env.current_step)
            r0 -= p
            r1 -= p
        return self._views(obs), (r0, r1), done

    def _views(self, obs) -> tuple[dict, dict]:
        env = self.env
        h, w = env.field_size
        sight = env.sight
        step, names = int(env.current_step), self._names
        nf3 = 3 * env.max_num_food
        end = nf3 + 3 * len(env.players)
        valid = env._valid_actions
        out = []
        for i, player in enumerate(env.players):
            vec = obs[i].tolist()  # Python floats, as float() of each item gives
            pr, pc = int(player.position[0]), int(player.position[1])
            dr, dc = pr - min(sight, pr), pc - min(sight, pc)  # the observed neighbourhood's corner
            foods = [{"pos": [int(vec[k]) + dr, int(vec[k + 1]) + dc], "level": int(vec[k + 2])}
                     for k in range(0, nf3, 3) if vec[k + 2] > 0]
            agents = [{"pos": [int(vec[j]) + dr, int(vec[j + 1]) + dc], "level": int(vec[j + 2]), "me": j == nf3}
                      for j in range(nf3, end, 3) if vec[j] >= 0]
            out.append(View(obs=vec, agents=agents, foods=foods, field_size=[int(h), int(w)], step=step,
                            max_steps=self.horizon, valid_actions=[names[id(a)] for a in valid[player]]))
        return out[0], out[1]


VIEW_KEYS = ["obs", "agents", "foods", "field_size", "step", "max_steps", "valid_actions"]


class View(dict):
    """A seat's view of a step (the dict a program is shown as ctx["state"]), with its JSON text made once, when
    first asked for (view_text, state_text)."""

    __slots__ = ("_text",)

    def text(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text = _encode(self) if list(self) == VIEW_KEYS else json.dumps(self, separators=(",", ":"))
            return self._text


def _encode(v: View) -> str:
    """json.dumps(v, separators=(",", ":")) of a view as Environment makes it, written out: ints, bools, ASCII
    action names and finite floats, whose repr is json's (faster than json.dumps walking it)."""
    agents = ",".join(f'{{"pos":[{a["pos"][0]},{a["pos"][1]}],"level":{a["level"]},"me":{"true" if a["me"] else "false"}}}'
                      for a in v["agents"])
    foods = ",".join(f'{{"pos":[{f["pos"][0]},{f["pos"][1]}],"level":{f["level"]}}}' for f in v["foods"])
    size, acts = v["field_size"], v["valid_actions"]
    return (f'{{"obs":[{",".join(map(repr, v["obs"]))}],"agents":[{agents}],"foods":[{foods}],'
            f'"field_size":[{size[0]},{size[1]}],"step":{v["step"]},"max_steps":{v["max_steps"]},"valid_actions":'
            + ('["' + '","'.join(acts) + '"]' if acts else "[]") + "}")


def state_text(state) -> str:
    """A state (both seats' views) as the JSON text stored with its step: json.dumps(state, separators=(",",
    ":")), the views' own texts where they have them."""
    a, b = state
    if isinstance(a, View) and isinstance(b, View):
        return f"[{a.text()},{b.text()}]"
    return json.dumps(state, separators=(",", ":"))


def view_text(view: dict) -> str:
    """A view as JSON text (what crosses into the sandbox): made once per View, else each time."""
    return view.text() if isinstance(view, View) else json.dumps(view, separators=(",", ":"))


def _names_by_id() -> dict[int, str]:
    """The package's Action members by id (they are singletons; an Enum's hash is a Python-level call) → name."""
    from lbforaging.foraging.environment import Action

    return {id(a): a.name.lower() for a in Action}


def replay(game: LBFGame, seed: int, actions: list[tuple[str, str]]) -> tuple[list, list[tuple[float, float]]]:
    """A stored episode through the package directly (its env, seeded as Arena seeds it, gymnasium.make for
    a registered id): (the observation pairs before each step and after the last, the rewards of each step,
    the PIBR penalty applied at the last as the wrapper does)."""
    import gymnasium
    import lbforaging  # noqa: F401 (registers the ids)
    from lbforaging.foraging.environment import ForagingEnv

    env = gymnasium.make(game.env_id) if game.env_id is not None else ForagingEnv(**game.env_kwargs())
    obs, _ = env.reset(seed=env_seed(seed))
    states = [[list(map(float, o)) for o in obs]]
    rewards = []
    for t, (a, b) in enumerate(actions):
        obs, r, done, truncated, _ = env.step((CODES[a], CODES[b]))
        r0, r1 = float(r[0]), float(r[1])
        if (done or truncated) and game.terminal_penalty:
            p = terminal_penalty(game, t + 1)
            r0, r1 = r0 - p, r1 - p
        states.append([list(map(float, o)) for o in obs])
        rewards.append((r0, r1))
    return states, rewards


def grid_text(view: dict) -> str:
    """A seat's view as a small text grid: '.' empty, a digit a food's level, 'A'/'B' me/the other agent
    (their levels in the legend). Rows top (row 0) to bottom."""
    h, w = view["field_size"]
    cells = [["." for _ in range(w)] for _ in range(h)]
    for f in view["foods"]:
        cells[f["pos"][0]][f["pos"][1]] = str(f["level"]) if f["level"] < 10 else "+"
    legend = []
    for a in view["agents"]:
        mark = "A" if a["me"] else "B"
        cells[a["pos"][0]][a["pos"][1]] = mark
        legend.append(f"{mark} = {'you' if a['me'] else 'the other agent'} (level {a['level']}) at {a['pos']}")
    return "\n".join(" ".join(row) for row in cells) + "\n" + "\n".join(legend)
