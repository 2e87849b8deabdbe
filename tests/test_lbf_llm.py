"""LLM programs in a grid world (llm/gridtext.py): the prompt draws the step's field as a text grid with the parsed
lists and the action names; an LLM program plays foraging episodes against the loopback server, its stored
requests show the grid, replays rebuild them exactly, and unreadable answers are handled as in matrix games."""

from __future__ import annotations

import asyncio
import json
import re

from arena.engine.grid import TournamentConfig
from arena.engine.lbf import Environment, replay
from arena.engine.records import MatchRules, Play, RoundRecord
from arena.library.programs import LLMProgram
from arena.llm import gridtext, prompts
from arena.llm.registry import BUILTIN
from arena.llm.service import LLMService
from arena.runner.replay import compare, replay_runner
from arena.runner.tournament import TournamentRunner
from tests.support.fake_llm import FakeLLMServer, Text, action_responder

FORAGER = LLMProgram(id="forager", kind="llm", model="custom/fake-8b", temperature=0.7,
                     system_prompt="You forage: walk to the nearest food and load it together with the other agent.")
DATA = re.compile(r"The same state as data \(positions are \[row, column\]\): (\{.*\})")


def nearest_food_policy(request) -> str:
    """What a sensible forager answers: load next to a food, else step towards the nearest one (read from the
    prompt's parsed state, the request's own text)."""
    state = json.loads(DATA.search(request.messages[1]["content"]).group(1))
    me = next(a for a in state["agents"] if a["me"])["pos"]
    foods = sorted(state["foods"], key=lambda f: abs(f["pos"][0] - me[0]) + abs(f["pos"][1] - me[1]))
    if not foods:
        return "none"
    (fr, fc), (r, c) = foods[0]["pos"], me
    if abs(fr - r) + abs(fc - c) == 1:
        return "load"
    if fr != r and (fr - r) ** 2 > 1 or fc == c:
        return "south" if fr > r else "north"
    return "east" if fc > c else "west"


def short_game(games, steps=8):
    return games["foraging_pibr"].model_copy(update={"id": "foraging_short", "max_episode_steps": steps})


def run(store, programs, games, responder, ids, trials=2, structured="auto", **cfg):
    g = short_game(games)
    with FakeLLMServer(responder) as srv:
        reg = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(base_url=srv.base_url, timeout=5.0,
                                                                              structured=structured))}
        config = TournamentConfig(**{"programs": ids, "games": [g.id], "epsilons": [1.0], "max_depths": [0],
                                     "trials": trials, **cfg})
        runner = TournamentRunner.create(store, config, {**programs, FORAGER.id: FORAGER}, {**games, g.id: g},
                                         backend=LLMService(store, reg, {"LLM_API_KEY": "k"}))
        done = asyncio.run(runner.run())
        requests = list(srv.chat_requests)
    return runner.tournament_id, done, requests, g


def test_step_text_draws_the_grid_with_the_parsed_lists(games):
    g = games["foraging_pibr"]
    env = Environment(g, 7)
    s0 = env.reset()
    s1, (a, b), _ = env.step("north", "east")
    play = Play(1, MatchRules(), (RoundRecord(0, "north", "east", "north", "east", a, b, False, s0),), s1)
    text = gridtext.step_text(play, "col")
    assert text == (
        "This is step 2 of at most 50 (the episode ends earlier when all the food is collected). The field now, "
        "row 0 at the top and column 0 at the left ('.' empty, a digit a food of that level, A you, B the other "
        "agent):\n"
        ". . . A B\n. 4 . . .\n. . . . .\n. . 4 . .\n. . . . .\n"
        "A = you (level 2) at [0, 3]\nB = the other agent (level 2) at [0, 4]\n"
        'The same state as data (positions are [row, column]): {"agents": [{"pos": [0, 3], "level": 2, "me": true}, '
        '{"pos": [0, 4], "level": 2, "me": false}], "foods": [{"pos": [1, 1], "level": 4}, {"pos": [3, 2], '
        '"level": 4}], "field_size": [5, 5], "step": 1, "max_steps": 50}\n'
        "Actions: none: stay where you are; north: move up (row - 1); south: move down (row + 1); west: move left "
        "(column - 1); east: move right (column + 1); load: collect a food in a cell next to you (up, down, left "
        "or right).\n"
        "Valid for you now: none, south, west, east (an invalid action does nothing).\n"
        "The last 1 step(s), oldest first (actions as played):\n"
        "step | you | other agent | your reward | other's reward\n"
        "1 | east | north | 0 | 0")
    # the row seat sees itself as A
    assert "A = you (level 2) at [0, 4]" in gridtext.step_text(play, "row")
    # the payoff table's place holds the rewards' rule (no 36 lines of zeros)
    user = prompts.user_message(g, "row", "src", prompts.GROUND, play=play)
    assert "you play none, the opponent plays" not in user
    assert "each agent loses 0.5 x (steps taken / 50)" in user
    assert "Your possible actions: none, north, south, west, east, load." in user


def test_an_llm_forager_plays_episodes_and_its_requests_show_the_grid(store, programs, games):
    tid, done, requests, g = run(store, programs, games, action_responder(nearest_food_policy), ["forager", "lbf-h1"])
    assert done.status == "finished", done.error
    trials = {(t["row_program"], t["col_program"], t["trial_index"]): t for t in store.trial_rows(tid)}
    assert len(trials) == 8 and all(t["status"] == "ok" for t in trials.values())
    t = trials[("forager", "lbf-h1", 0)]
    rounds = store.rounds(t["id"])
    calls = store.calls(trial_id=t["id"])
    assert len(calls) == len(rounds) == t["n_rounds"]  # ε = 1: one grounded call a step, the forager's seat only
    for r, call in zip(rounds, calls):
        view = json.loads(r["state"])[0]
        user = call["messages"][1]["content"]
        grid = "\n".join(" ".join(row) for row in _cells(view))
        assert f"This is step {r['round'] + 1} of at most 8" in user and grid in user
        assert call["parsed_action"] == r["row_intended"] == nearest_food_policy(_Req(call["messages"]))
    # the episode is the package's: replayed through lbforaging with the stored seed and actions
    _, rewards = replay(g, t["seed"], [(r["row_action"], r["col_action"]) for r in rounds])
    assert [(r["row_payoff"], r["col_payoff"]) for r in rounds] == rewards
    # every request's user message ends with the step's part; the stable part before it is the same each step
    heads = {c["messages"][1]["content"].rsplit("\n\nThis is step", 1)[0] for c in calls}
    assert len(heads) == 1
    # the replay rebuilds every grid-world prompt from the stored states and answers it from the stored calls
    rep = replay_runner(store, tid)
    assert asyncio.run(rep.run()).status == "finished"
    assert compare(store, tid, rep.tournament_id) == []


class _Req:
    def __init__(self, messages):
        self.messages = messages


def _cells(view):
    h, w = view["field_size"]
    cells = [["."] * w for _ in range(h)]
    for f in view["foods"]:
        cells[f["pos"][0]][f["pos"][1]] = str(f["level"])
    for a in view["agents"]:
        cells[a["pos"][0]][a["pos"][1]] = "A" if a["me"] else "B"
    return cells


def test_unreadable_answers_get_the_correction_then_a_refusal(store, programs, games):
    """As in a matrix game: prose gets the correction turn (the six action lines), which is read; a reply that
    stays unreadable is a refusal, never a default action: the episode stops at that step, its earlier steps
    kept."""

    def responder(request):
        user = request.messages[1]["content"]
        corrected = request.messages[-1]["content"].startswith("Your reply above did not end with a valid action")
        step = int(re.search(r"This is step (\d+) of", user).group(1))
        if step == 2:
            return Text("ACTION: load" if corrected else "I would rather walk about the field for a while.")
        if step == 4:
            return Text("ACTION: fly") if not corrected else Text("I still cannot decide.")
        return Text("ACTION: none")

    tid, done, requests, g = run(store, programs, games, responder, ["forager", "lbf-load"], trials=1,
                                 structured="none")
    t = next(t for t in store.trial_rows(tid) if (t["row_program"], t["col_program"]) == ("forager", "lbf-load"))
    assert t["status"] == "refused" and "round 3" in t["error"]
    rounds = store.rounds(t["id"])
    assert [r["row_intended"] for r in rounds] == ["none", "load", "none"]
    calls = store.calls(trial_id=t["id"])
    assert [(c["status"], c["parsed_action"]) for c in calls] == [
        ("ok", "none"), ("unparsed", None), ("ok", "load"), ("ok", "none"), ("unparsed", None), ("refusal", None)]
    correction = calls[2]["messages"][-1]["content"]
    assert correction.endswith("\nACTION: none\nACTION: north\nACTION: south\nACTION: west\nACTION: east\n"
                               "ACTION: load")
