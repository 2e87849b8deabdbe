"""A grid world's states as they are stored, and the built-in runner's batches of episodes."""

from __future__ import annotations

import asyncio
import json

from arena.engine.bots import BotAgent
from arena.engine.events import TrialsFinished
from arena.engine.grid import TournamentConfig
from arena.engine.lbf import View, state_text
from arena.engine.match import run_match_sync
from arena.engine.records import TrialSpec
from arena.library.games import parse_game
from arena.runner.tournament import BATCH_NODES, STATE_NODES, TournamentRunner, held


def test_a_views_text_is_its_json_in_full_and_partial_sight(programs, games):
    """Each view's JSON text (written out by lbf._encode) is json.dumps of the view, and a state's stored text is
    json.dumps of the pair: on the two games and on a 7x7 field seen through sight 1 (unseen food and agents left out, levels
    up to 12), for random and heuristic foragers."""
    partial = parse_game({"id": "lbf_sight1", "kind": "lbf", "name": "sight 1", "description": "7x7, sight 1",
                          "field_size": 7, "max_num_food": 3, "sight": 1,
                          "max_food_level": 12, "max_episode_steps": 30})
    agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
    views = unseen = 0
    for g in (games["foraging_pibr"], games["foraging_5x5_2p_2f_coop"], partial):
        for row in ("lbf-random", "lbf-h1", "lbf-h4"):
            for i in range(8):
                r = run_match_sync(TrialSpec(i, g.id, row, "lbf-random", 0.2, 10, None, i, 7 * i), g, agents,
                                   programs)
                for x in r.rounds:
                    assert state_text(x.state) == json.dumps(x.state, separators=(",", ":"))
                    for v in x.state:
                        assert isinstance(v, View) and v.text() == json.dumps(dict(v), separators=(",", ":"))
                        assert json.loads(v.text()) == v
                        views += 1
                        unseen += len(v["agents"]) < 2
    assert views > 2000 and unseen > 0  # (partial sight did hide an agent)
    plain = ({"obs": [1.0], "agents": []}, {"obs": [-1.0], "agents": []})  # dicts, as json.loads gives them
    assert state_text(plain) == '[{"obs":[1.0],"agents":[]},{"obs":[-1.0],"agents":[]}]'
    odd = View(obs=[0.5], agents=[], foods=[], field_size=[3, 3], step=0, max_steps=1, valid_actions=[])
    assert odd.text() == json.dumps(dict(odd), separators=(",", ":"))  # (no valid action: an empty list)
    assert View(obs=[0.1], extra=True).text() == '{"obs":[0.1],"extra":true}'  # another layout: json.dumps


def test_a_batch_of_episodes_is_bounded_by_the_states_it_holds(store, programs, games):
    """Two always-load foragers play 50 steps an episode: 100 nodes and 50 states, which weigh
    100 + 50 x STATE_NODES = 850 in a batch; a batch is written once it reaches BATCH_NODES, so 30 episodes are
    written as 24 (20,400) and then 6."""
    sizes = []

    def sink(event):
        if isinstance(event, TrialsFinished):
            sizes.append(len(event.results))
            assert all(held(r) == 100 + 50 * STATE_NODES for r in event.results)

    config = TournamentConfig(programs=["lbf-load"], games=["foraging_pibr"], epsilons=[0.2], max_depths=[10],
                              trials=30)
    runner = TournamentRunner.create(store, config, programs, games, sink=sink)
    assert asyncio.run(runner.run()).status == "finished"
    assert (BATCH_NODES, STATE_NODES) == (20_000, 15) and sizes == [24, 6]
    assert store.query("SELECT count(*) AS n FROM rounds")[0]["n"] == 30 * 50


def test_the_estimate_counts_an_episode_at_its_horizon(programs, games):
    """Neither forager simulates: one node a decision, two decisions a step, at most 50 steps an episode; 4
    cells x 2 episodes x 50 x 2 = 800 nodes (without the games: one round a trial, 16). A matrix game beside it
    keeps its rounds."""
    from arena.engine.estimate import estimate

    config = TournamentConfig(programs=["lbf-h1", "pibr-lbf-shared-food"], games=["foraging_pibr"], epsilons=[0.5],
                              max_depths=[1], trials=2)
    assert (estimate(config, programs, games).nodes, estimate(config, programs).nodes) == (800.0, 16.0)
    both = config.model_copy(update={"games": ["foraging_pibr", "prisoners_dilemma"], "rounds": [3]})
    assert estimate(both, programs, games).nodes == 800.0 + 4 * 2 * 3 * 2
