"""Every kind of program through every function that dispatches on a program's kind: a kind added to the
library's Program union without a sample here fails the first test, and then every function below runs on it
(the code kind once crashed Setup's estimate: it was treated as a built-in bot)."""

from __future__ import annotations

import typing

import pytest

from arena.library.programs import Program, parse_program_text

SAMPLES = {
    "builtin": "id: s-fair\nkind: builtin\nstrategy: fairbot\n",
    "llm": "id: s-llm\nkind: llm\nmodel: custom/fake-8b\nsystem_prompt: Mirror the simulated opponent.\n",
    "code": ("id: s-code\nkind: code\nsource: |\n  def decide(ctx):\n"
             "      return ctx['opponent_action'] or ctx['game']['default_action']\n"),
    "code-direct": ("id: s-direct\nkind: code\nsimulates: false\nsource: |\n  def decide(ctx):\n"
                    "      return ctx['game']['defect_action']\n"),
}
# whether each sample simulates in a tournament with simulation 'run' and with 'imagine'
SIMULATES = {"builtin": (True, True), "llm": (True, False), "code": (True, True), "code-direct": (False, False)}


def _kinds() -> set[str]:
    union = typing.get_args(Program)[0]
    return {typing.get_args(cls.model_fields["kind"].annotation)[0] for cls in typing.get_args(union)}


def _programs() -> dict:
    return {name: parse_program_text(text) for name, text in SAMPLES.items()}


def test_every_kind_of_program_has_a_sample():
    assert {p.kind for p in _programs().values()} == _kinds() == {"builtin", "llm", "code"}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_simulates_knows_every_kind(name):
    from arena.engine.estimate import simulates
    from arena.engine.grid import TournamentConfig

    p = _programs()[name]
    got = tuple(simulates(p, TournamentConfig(programs=[p.id], games=["prisoners_dilemma"], epsilons=[0.5],
                                              max_depths=[3], trials=1, simulation=mode))
                for mode in ("run", "imagine"))
    assert got == SIMULATES[name]


def test_estimate_over_every_kind():
    """Expected nodes and LLM calls with ε = 0.5 and a cap far away (the closed forms below)."""
    from arena.engine.estimate import estimate
    from arena.engine.grid import TournamentConfig

    progs = {p.id: p for p in _programs().values()}
    config = TournamentConfig(programs=list(progs), games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[60],
                              trials=1)
    e = estimate(config, progs)
    assert e.trials == 16 and e.llm_trials == 7  # the pairs with s-llm in them: 4 + 4 - 1
    # a decision's expected nodes (its own, the opponent's): both simulate, the chain alternates and stops with
    # probability ε = 0.5 at each node: 4/3 and 2/3; against a program that acts directly: 1 and 1 - ε; a
    # program acting directly: its one node
    sim = {"s-fair", "s-llm", "s-code"}

    def split(me, opp):
        return (1.0, 0.0) if me not in sim else (1.0, 0.5) if opp not in sim else (4 / 3, 2 / 3)

    decisions = [(me, opp) for a in progs for b in progs for me, opp in ((a, b), (b, a))]
    assert e.nodes == pytest.approx(sum(sum(split(me, opp)) for me, opp in decisions))
    assert e.llm_calls == pytest.approx(sum(split(me, opp)[0] * (me == "s-llm") + split(me, opp)[1] * (opp == "s-llm")
                                            for me, opp in decisions))


@pytest.mark.parametrize("name", list(SAMPLES))
def test_library_label_names_every_kind(name):
    from arena.tui.screens.library import program_label

    p = _programs()[name]
    what = {"builtin": "fairbot", "llm": "fake-8b", "code": "code", "code-direct": "code"}[name]
    assert program_label(p, 40).plain == f"{p.id} {what}"
    assert program_label(p, 40, "papers").plain == f"{p.id} papers/ · {what}"
    assert program_label(p, 40, "code").plain == (f"{p.id} code/" if what == "code" else f"{p.id} code/ · {what}")


def test_programs_command_lists_every_kind(tmp_path):
    from typer.testing import CliRunner

    from arena.cli.main import app

    d = tmp_path / "programs"
    (d / "sub").mkdir(parents=True)
    for name, text in SAMPLES.items():
        (d / "sub" if name.startswith("code") else d).joinpath(f"{name}.yaml").write_text(text)
    out = CliRunner().invoke(app, ["programs", "list"], env={"ARENA_PROGRAMS": str(d), "COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for p in _programs().values():
        assert p.id in out.output
