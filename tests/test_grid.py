from __future__ import annotations

import pytest
from pydantic import ValidationError

from arena.engine.grid import PRESETS, TournamentConfig, from_preset, trial_seed


def cfg(**kw):
    base = dict(programs=["a", "b", "c"], games=["g1", "g2"], epsilons=[0.1, 0.5], max_depths=[3, 9], trials=4, seed=5)
    return TournamentConfig(**{**base, **kw})


def test_ordered_pairs_including_self_play():
    c = cfg()
    assert c.pairs[:4] == [("a", "a"), ("a", "b"), ("a", "c"), ("b", "a")]
    assert len(c.pairs) == 9
    assert c.total_trials == 4 * 2 * 2 * 2 * 9 == len(list(c.iter_specs()))


def test_spec_at_agrees_with_iteration_order():
    c = cfg(temperatures=[None, 0.5])
    specs = list(c.iter_specs())
    assert [s.seq for s in specs] == list(range(c.total_trials))
    assert all(c.spec_at(s.seq) == s for s in specs)
    # trial index is outermost: the first cells x conditions are all trial 0
    assert {s.index for s in specs[: c.cells]} == {0}


def test_skip_map_leaves_out_done_positions():
    c = cfg()
    skip = bytearray(c.total_trials)
    skip[0] = skip[7] = 1
    assert [s.seq for s in c.iter_specs(skip)][:7] == [1, 2, 3, 4, 5, 6, 8]


def test_seed_depends_only_on_coordinates():
    assert trial_seed(1, "g", "a", "b", 0.1, 3, None, 0) == trial_seed(1, "g", "a", "b", 0.1, 3, None, 0)
    assert trial_seed(1, "g", "a", "b", 0.1, 3, None, 0) != trial_seed(1, "g", "b", "a", 0.1, 3, None, 0)
    assert 0 <= trial_seed(2, "g", "a", "b", 0.1, 3, None, 0) < 2**63


@pytest.mark.parametrize("field,value,msg", [
    ("epsilons", [0.0], "greater than 0"),
    ("epsilons", [1.5], "less than or equal to 1"),
    ("trials", 0, "greater than or equal to 1"),
    ("programs", [], "at least 1"),
    ("max_depths", [-1], "greater than or equal to 0"),
    ("games", ["g1", "g1"], "games repeats g1"),
])
def test_bad_grids_are_rejected(field, value, msg):
    with pytest.raises(ValidationError, match=msg):
        cfg(**{field: value})


def test_impossible_grid_size_rejected():
    with pytest.raises(ValidationError, match="the limit is 100,000,000"):
        cfg(programs=[f"p{i}" for i in range(100)], trials=10_000)


def test_presets():
    assert set(PRESETS) == {"bots", "smoke", "headline", "full", "disclosure"}
    f = from_preset("bots", trials=3, games=None)
    assert f["trials"] == 3 and f["games"] == ["prisoners_dilemma"]
