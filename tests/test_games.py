from __future__ import annotations

import pytest

from arena.errors import ConfigError
from arena.library.games import Game, load_games
from arena.library.yamlio import read_documents, validate

EXPECTED = {
    # game: {(row action, col action): (row payoff, col payoff)}
    "prisoners_dilemma": {("cooperate", "cooperate"): (3, 3), ("cooperate", "defect"): (0, 5),
                          ("defect", "cooperate"): (5, 0), ("defect", "defect"): (1, 1)},
    "stag_hunt": {("stag", "stag"): (4, 4), ("stag", "hare"): (0, 3), ("hare", "stag"): (3, 0), ("hare", "hare"): (3, 3)},
    "chicken": {("swerve", "swerve"): (3, 3), ("swerve", "straight"): (1, 5), ("straight", "swerve"): (5, 1),
                ("straight", "straight"): (0, 0)},
    "battle_of_the_sexes": {("opera", "opera"): (3, 2), ("opera", "football"): (0, 0),
                            ("football", "opera"): (0, 0), ("football", "football"): (2, 3)},
}
COMMON = {
    "vanilla_coordination": [[2, 0, 0], [0, 1, 0], [0, 0, 3]],
    "climbing": [[11, -30, 0], [-30, 7, 0], [0, 6, 5]],
    "penalty": [[-2, 0, 10], [0, 2, 0], [10, 0, -2]],
}


def test_all_seven_games_ship(games):
    """The seven matrix games, and the two Level-Based Foraging games (tests/test_lbf.py)."""
    assert sorted(games) == sorted([*EXPECTED, *COMMON, "foraging_5x5_2p_2f_coop", "foraging_pibr"])


@pytest.mark.parametrize("gid", list(EXPECTED))
def test_two_by_two_payoffs_exact(games, gid):
    g = games[gid]
    assert {k: g.payoff(*k) for k in EXPECTED[gid]} == EXPECTED[gid]
    assert len(g.payoff_table) == 4


@pytest.mark.parametrize("gid", list(COMMON))
def test_common_payoff_games_exact(games, gid):
    g = games[gid]
    assert g.actions == ["a", "b", "c"] and g.common_payoff
    assert [[g.payoff(a, b)[0] for b in g.actions] for a in g.actions] == COMMON[gid]
    best = max(max(r) for r in COMMON[gid])
    assert {o for o in g.cooperative_set} == {(a, b) for a in g.actions for b in g.actions if g.payoff(a, b)[0] == best}


def test_optima_are_3_11_10(games):
    assert [max(v[0] for v in games[g].payoff_table.values()) for g in COMMON] == [3, 11, 10]


def test_cooperative_sets(games):
    assert games["prisoners_dilemma"].is_cooperative("cooperate", "cooperate")
    assert not games["prisoners_dilemma"].is_cooperative("cooperate", "defect")
    assert games["battle_of_the_sexes"].cooperative_set == {("opera", "opera"), ("football", "football")}


def _load(tmp_path, text):
    p = tmp_path / "g.yaml"
    p.write_text(text)
    return validate(read_documents(p)[0], Game)


BASE = """id: g
name: G
description: d
actions: [x, y]
payoffs:
  - [[1, 1], [0, 2]]
  - [[2, 0], [1, 1]]
cooperative: [[x, x]]
default_action: x
defect_action: y
"""


def test_valid_minimal_game(tmp_path):
    assert _load(tmp_path, BASE).payoff("y", "x") == (2.0, 0.0)


@pytest.mark.parametrize("old,new,line,message", [
    ("  - [[2, 0], [1, 1]]\n", "", 5, "payoffs must be a 2x2 matrix"),
    ("actions: [x, y]", "actions: [x, x]", 4, "actions must be unique; repeated: x"),
    ("cooperative: [[x, x]]", "cooperative: [[x, z]]", 8, "cooperative outcome (x, z) uses an action not in"),
    ("default_action: x", "default_action: q", 9, "default_action 'q' is not one of the actions"),
    ("name: G\n", "name: G\ncolour: red\n", 3, "unknown field"),
    ("  - [[2, 0], [1, 1]]", "  - [[2, 0], [1, one]]", 7, "valid number"),
])
def test_invalid_games_name_line_and_problem(tmp_path, old, new, line, message):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, BASE.replace(old, new))
    (problem,) = e.value.problems
    assert message in problem.message
    assert problem.line == line
    assert problem.file.endswith("g.yaml")


def test_duplicate_game_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE)
    with pytest.raises(ConfigError) as e:
        load_games(tmp_path)
    assert "duplicate game id 'g'" in str(e.value) and "a.yaml" in str(e.value)


def test_seat_aware_default_action(tmp_path):
    g = _load(tmp_path, BASE.replace("default_action: x", "default_action: {row: x, col: y}"))
    assert (g.default_for("row"), g.default_for("col"), g.default_label) == ("x", "y", "row x, col y")
    plain = _load(tmp_path, BASE)
    assert (plain.default_for("row"), plain.default_for("col"), plain.default_label) == ("x", "x", "x")
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, BASE.replace("default_action: x", "default_action: {row: x, col: q}"))
    (problem,) = e.value.problems
    assert "default_action.col 'q' is not one of the actions" in problem.message and problem.line == 9
