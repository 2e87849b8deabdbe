"""Axelrod's strategies as programs (`axelrod:NAME`): ids and files, the missing extra, the 2-action rule,
the match scores of a few strategies against `axelrod.Match`, and TitForTat three ways (built-in, code,
axelrod:TitForTat) match for match."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from arena.engine.bots import BotAgent
from arena.engine.records import MatchRules, TrialSpec
from arena.library import axelrod_programs
from arena.library.axelrod_programs import AxelrodMissing
from arena.library.catalog import load_library
from arena.library.programs import BuiltinProgram, parse_program_text

ROOT = Path(__file__).resolve().parents[1]
HAS_AXELROD = axelrod_programs.available()
needs_axelrod = pytest.mark.skipif(not HAS_AXELROD, reason="the axelrod extra is not installed "
                                                           "(pip install -e '.[axelrod]'; `make test` installs it)")
CODE_TFT = ('id: tft-code\nkind: code\nsimulates: false\nsource: |\n  def decide(ctx):\n'
            '      return ctx["history"][-1]["opponent"] if ctx["history"] else ctx["game"]["default_action"]\n')


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def arena(*args) -> Ran:
    """The command in this process (a new process would import axelrod again: ~12 s)."""
    from typer.testing import CliRunner

    from arena.cli.main import app

    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Ran(r.exit_code, r.stdout, r.stderr)


def ax(name: str, pid: str | None = None) -> BuiltinProgram:
    return BuiltinProgram(id=pid or f"axelrod:{name}", kind="builtin", strategy="axelrod", params={"name": name})


@pytest.fixture(scope="module")
def lib():
    return load_library()


# --- ids and files (no package needed) ----------------------------------------------------------------
def test_axelrod_ids_are_reserved_for_their_strategy():
    assert ax("TitForTat").id == "axelrod:TitForTat"
    with pytest.raises(ValidationError, match="reserved for Axelrod's strategy Grudger"):
        ax("TitForTat", "axelrod:Grudger")
    with pytest.raises(ValidationError, match="reserved for Axelrod's strategy TitForTat"):
        BuiltinProgram(id="axelrod:TitForTat", kind="builtin", strategy="titfortat")
    with pytest.raises(ValidationError, match="String should match pattern"):
        BuiltinProgram(id="Axelrod:TitForTat", kind="builtin", strategy="titfortat")


def test_a_yaml_file_defines_an_axelrod_program_under_its_own_id():
    p = parse_program_text("id: my-grudger\nkind: builtin\nstrategy: axelrod\nparams: {name: Grudger}\n")
    assert (p.id, p.strategy, p.params) == ("my-grudger", "axelrod", {"name": "Grudger"})


def test_a_yaml_file_with_a_bad_axelrod_name_or_parameter_is_refused_on_its_line():
    from arena.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        parse_program_text("id: g\nkind: builtin\nstrategy: axelrod\nparams:\n  name: Tit For Tat\n", "g.yaml")
    assert str(exc.value) == ("g.yaml:5: field 'params.name': 'Tit For Tat' is not allowed here: write the class "
                              "name of an Axelrod strategy, e.g. TitForTat")
    with pytest.raises(ConfigError) as exc:
        parse_program_text("id: g\nkind: builtin\nstrategy: axelrod\nparams: {}\n", "g.yaml")
    assert "field 'params.name'" in str(exc.value) and "required" in str(exc.value).lower()


def test_games_without_two_actions_are_refused_with_a_clear_message(lib):
    agent = BotAgent(ax("TitForTat"))
    assert agent.check_game(lib.games["climbing"]) == (
        "program 'axelrod:TitForTat' is Axelrod's TitForTat, which plays 2-action games only (C and D): game "
        "'climbing' has 3 actions ['a', 'b', 'c']")
    assert agent.simulates is False


def test_without_the_package_the_error_names_the_extra(monkeypatch, lib, tmp_path):
    monkeypatch.setitem(sys.modules, "axelrod", None)  # `import axelrod` raises ImportError
    for f in (axelrod_programs.axelrod, axelrod_programs.strategies, axelrod_programs.summary):
        f.cache_clear()
    monkeypatch.setattr(axelrod_programs, "available", lambda: False)
    try:
        with pytest.raises(AxelrodMissing, match=r"install it with pip install 'arena\[axelrod\]'"):
            axelrod_programs.strategies()
        assert BotAgent(ax("TitForTat")).check_game(lib.games["prisoners_dilemma"]).startswith(
            "program 'axelrod:TitForTat': Axelrod programs need the optional axelrod package")
        assert "pip install 'arena[axelrod]'" in ax("TitForTat").source()
        from typer.testing import CliRunner

        from arena.cli.main import app

        out = CliRunner().invoke(app, ["run", "-g", "prisoners_dilemma", "--rounds", "3", "-p", "axelrod:TitForTat",
                                       "-n", "1", "--db", str(tmp_path / "a.db"), "--display", "plain"])
        assert out.exit_code == 2 and isinstance(out.exception, SystemExit)  # a message, no traceback
        assert "Axelrod programs need the optional axelrod package" in out.output
        assert "pip install 'arena[axelrod]'" in out.output
    finally:
        for f in (axelrod_programs.axelrod, axelrod_programs.strategies, axelrod_programs.summary):
            f.cache_clear()


# --- with the package -------------------------------------------------------------------------------------
def _match(spec: TrialSpec, game, row, col):
    from arena.engine.match import run_match_sync

    programs = {spec.row: row, spec.col: col}
    agents = {k: BotAgent(p) for k, p in programs.items()}
    return run_match_sync(spec, game, agents, programs)


def _spec(rounds: int, seed: int, noise: float = 0.0, recall: int | None = None) -> TrialSpec:
    return TrialSpec(0, "prisoners_dilemma", "me", "them", 1.0, 0, None, 0, seed,
                     MatchRules(rounds=rounds, noise=noise, recall=recall))


# (BackStabber and DoubleCrosser read the match's length, FirstByDowning and SecondByTidemanAndChieruzzi its game,
# Adaptive its own scores; ZDExtort2 and Stalker are stochastic and read the game, Stalker the length too)
DETERMINISTIC = ["TitForTat", "Grudger", "TitFor2Tats", "WinStayLoseShift", "Alternator", "SuspiciousTitForTat",
                 "BackStabber", "DoubleCrosser", "FirstByDowning", "SecondByTidemanAndChieruzzi", "Adaptive"]
STOCHASTIC = ["Random", "GTFT", "FirstByJoss", "ZDExtort2", "SecondByChampion", "Stalker"]


def _axelrod_scores(r: str, c: str, turns: int, seed: int | None = None, seeds: list[int] | None = None):
    """Total scores of an axelrod.Match; `seeds`: the players' own seeds (axelrod draws them from the match's
    seed; here they are the ones Arena gives its players)."""
    import axelrod as axl

    cls = axelrod_programs.strategies()
    m = axl.Match((cls[r](), cls[c]()), turns=turns, seed=seed)
    if seeds is not None:
        given = iter(seeds)

        class Seeds:  # what Match.play asks its generator for, for each stochastic player in turn
            @staticmethod
            def random_seed_int():
                return next(given)

        stochastic = axl.Classifiers["stochastic"]
        if not stochastic(m.players[0]):
            next(given)  # (only stochastic players are given a seed)
        m._random = Seeds()
    m.play()
    return tuple(float(x) for x in m.final_score()), m.result


@needs_axelrod
@pytest.mark.parametrize("row", DETERMINISTIC)
def test_deterministic_strategies_score_as_in_axelrod_match(lib, row):
    game = lib.games["prisoners_dilemma"]
    for col in DETERMINISTIC:
        for turns in (1, 7, 30):
            res = _match(_spec(turns, 11), game, ax(row), ax(col))
            want, _ = _axelrod_scores(row, col, turns, seed=11)
            assert (sum(r.row_payoff for r in res.rounds), sum(r.col_payoff for r in res.rounds)) == want, (row, col, turns)


@needs_axelrod
def test_stochastic_strategies_play_axelrods_match_on_the_same_player_seeds(lib):
    from arena.engine.axelrod_agent import player_seed

    game = lib.games["prisoners_dilemma"]
    for row in STOCHASTIC:
        for col in (*STOCHASTIC, "TitForTat"):
            for seed in (1, 2):
                res = _match(_spec(40, seed), game, ax(row), ax(col))
                seeds = [player_seed(seed, "row", row), player_seed(seed, "col", col)]
                want, moves = _axelrod_scores(row, col, 40, seeds=seeds)
                got = [(r.row_action[0].upper(), r.col_action[0].upper()) for r in res.rounds]
                assert got == [(a.name, b.name) for a, b in moves], (row, col, seed)
                assert (sum(r.row_payoff for r in res.rounds), sum(r.col_payoff for r in res.rounds)) == want


@needs_axelrod
def test_carrying_a_player_on_equals_replaying_every_decision(lib, monkeypatch):
    import arena.engine.axelrod_agent as agent

    game = lib.games["prisoners_dilemma"]
    opp = BuiltinProgram(id="randombot", kind="builtin", strategy="random")
    carried = [_match(_spec(25, s, noise=0.1), game, ax(n), opp).rounds for n in STOCHASTIC + DETERMINISTIC
               for s in (3, 4)]
    monkeypatch.setattr(agent, "KEEP", 0)  # every decision replays the match from a fresh player
    replayed = [_match(_spec(25, s, noise=0.1), game, ax(n), opp).rounds for n in STOCHASTIC + DETERMINISTIC
                for s in (3, 4)]
    assert carried == replayed


@needs_axelrod
@pytest.mark.parametrize("recall", [None, 1, 3])
def test_axelrod_titfortat_and_grudger_equal_the_built_ins_under_noise_and_recall(lib, recall):
    game = lib.games["prisoners_dilemma"]
    opp = BuiltinProgram(id="randombot", kind="builtin", strategy="random")
    for mine, builtin in (("TitForTat", "titfortat"), ("Grudger", "grimtrigger"), ("WinStayLoseShift", "pavlov")):
        ours = BuiltinProgram(id=builtin, kind="builtin", strategy=builtin)
        for seed in range(5):
            spec = _spec(20, seed, noise=0.1, recall=recall)
            assert _match(spec, game, ax(mine), opp).rounds == _match(spec, game, ours, opp).rounds, (mine, seed)


@needs_axelrod
def test_axelrod_programs_map_c_and_d_to_the_games_actions(lib):
    game = lib.games["stag_hunt"]
    res = _match(_spec(4, 0), game, ax("Alternator"), ax("Defector"))
    assert [(r.row_action, r.col_action) for r in res.rounds] == [("stag", "hare"), ("hare", "hare"),
                                                                 ("stag", "hare"), ("hare", "hare")]


@needs_axelrod
def test_what_opponents_and_lists_are_shown():
    from arena.engine.code import opponent_source

    assert ax("TitForTat").source().splitlines()[2] == (
        "Axelrod's TitForTat: A player starts by cooperating and then mimics the previous action "
        "of the opponent.")
    assert opponent_source(ax("Grudger")) == (
        "kind: builtin\nstrategy: axelrod\nparams: {name: Grudger}\n"
        "# Axelrod's Grudger: A player starts by cooperating however will defect if at any point the opponent has "
        "defected.\n")
    out = arena("programs", "list", "--axelrod")
    assert out.returncode == 0, out.stderr
    import axelrod as axl

    assert "axelrod:TitForTat" in out.stdout and f"Axelrod's strategies (240, axelrod {axl.__version__})" in out.stdout


@needs_axelrod
def test_unknown_axelrod_names_exit_2_with_did_you_mean(tmp_path):
    out = arena("run", "-g", "prisoners_dilemma", "--rounds", "3", "-p", "axelrod:TitForTatt", "-p", "axelrod:grudger",
                "-n", "1", "--db", str(tmp_path / "a.db"), "--display", "plain")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == ("arena: error: unknown Axelrod strategy 'TitForTatt' (did you mean TitForTat?): `arena "
                          "programs list --axelrod` lists its 240 strategies; unknown Axelrod strategy 'grudger' "
                          "(did you mean Grudger?): `arena programs list --axelrod` lists its 240 strategies\n")
    out = arena("run", "-g", "climbing", "-p", "axelrod:TitForTat", "-n", "1", "--db", str(tmp_path / "a.db"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "which plays 2-action games only (C and D): game 'climbing' has 3 actions" in out.stderr


@needs_axelrod
def test_titfortat_three_ways_stores_9_and_14_against_defectbot_in_every_match(tmp_path):
    """`arena run -g prisoners_dilemma --rounds 10 -p titfortat -p defectbot -n 50`: TitForTat 9, DefectBot 14 in
    every match, and the same with the code TitForTat and with axelrod:TitForTat; the three are one program."""
    code = tmp_path / "tft-code.yaml"
    code.write_text(CODE_TFT)
    rows = {}
    for tft in ("titfortat", str(code), "axelrod:TitForTat"):
        db = tmp_path / f"{Path(tft).stem}.db"
        out = arena("run", "-g", "prisoners_dilemma", "--rounds", "10", "-p", tft, "-p", "defectbot", "-n", "50",
                    "--db", str(db), "--display", "plain")
        assert out.returncode == 0, out.stderr
        assert "200/200 trials stored" in out.stdout
        con = sqlite3.connect(db)
        name = {"titfortat": "titfortat", str(code): "tft-code"}.get(tft, tft)
        vs_d = con.execute("SELECT DISTINCT row_total, col_total, n_rounds FROM trials WHERE row_program = ? AND "
                           "col_program = 'defectbot'", (name,)).fetchall()
        d_vs = con.execute("SELECT DISTINCT row_total, col_total FROM trials WHERE row_program = 'defectbot' AND "
                           "col_program = ?", (name,)).fetchall()
        assert (vs_d, d_vs) == ([(9.0, 14.0, 10)], [(14.0, 9.0)])
        assert con.execute("SELECT count(*) FROM trials WHERE status = 'ok' AND n_rounds = 10").fetchone() == (200,)
        rows[tft] = con.execute(
            "SELECT t.trial_index, replace(t.row_program, ?, 'T'), replace(t.col_program, ?, 'T'), r.round, "
            "r.row_action, r.col_action, r.row_payoff, r.col_payoff FROM trials t JOIN rounds r ON r.trial_id = t.id "
            "ORDER BY 1, 2, 3, 4", (name, name)).fetchall()
    assert len(rows["titfortat"]) == 200 * 10
    assert rows["titfortat"] == rows[str(code)] == rows["axelrod:TitForTat"]


@needs_axelrod
def test_a_yaml_axelrod_program_runs_as_its_id_and_a_stored_one_resumes(tmp_path):
    mine = tmp_path / "my-grudger.yaml"
    mine.write_text("id: my-grudger\nkind: builtin\nstrategy: axelrod\nparams: {name: Grudger}\n")
    db = str(tmp_path / "a.db")
    out = arena("run", "-g", "stag_hunt", "--rounds", "5", "-p", str(mine), "-p", "axelrod:Grudger", "-p", "defectbot",
                "-n", "2", "--db", db, "--display", "plain")
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(db)
    totals = dict(con.execute("SELECT row_program, group_concat(row_total || '/' || col_total) FROM trials WHERE "
                              "col_program = 'defectbot' GROUP BY row_program"))
    # Grudger stag, then hare for ever, against hare: 0+3+3+3+3 and 3+3+3+3+3
    assert totals["my-grudger"] == totals["axelrod:Grudger"] == "12.0/15.0,12.0/15.0"
    assert con.execute("SELECT DISTINCT mode FROM nodes").fetchall() == [("direct",)]
    out = arena("resume", "--db", db, "--display", "plain")
    assert out.returncode == 0, out.stderr
