"""The writer's version 2 (arena/iterate/prompts.py, feedback.py): the compact prompt, the answer's
constraint per endpoint mode, reading a constrained answer, actionable unit-test feedback, and a run stored
before the version field existing resuming as version 1."""

from __future__ import annotations

import json

import pytest

from arena.iterate import feedback as fb
from arena.iterate import prompts as P
from arena.library.catalog import load_library

LIB = load_library()
PD = LIB.games["prisoners_dilemma"]
BOS = LIB.games["battle_of_the_sexes"]


def test_the_payoff_table_is_the_game_from_the_seat_with_best_replies():
    assert P.payoff_table(BOS, "col").splitlines() == [
        "Payoffs (you, opponent). You are the column player.",
        "              they opera    | they football",
        "you opera     2, 3          | 0, 0",
        "you football  0, 0          | 3, 2",
        "Your best reply: to opera, play opera (2); to football, play football (3).",
        "Against an opponent choosing uniformly at random, your mean payoff: opera 1, football 1.5.",
    ]
    assert P.payoff_table(PD, "row").splitlines()[2:4] == ["you cooperate  3, 3           | 0, 5",
                                                          "you defect     5, 0           | 1, 1"]


def test_version_2_messages_hold_the_table_the_opponent_and_the_contract():
    system, task = P.writer_messages(2, P.CODE, "grammar", PD, "row", "def decide(ctx):\n    return 'defect'\n", 3)
    assert system["role"] == "system" and task["role"] == "user"
    assert "def decide(ctx):" in system["content"] and "You may import only:" in system["content"]
    assert "The opponent plays x, so I play y." in system["content"]  # the one example of the answer's shape
    assert task["content"] == (
        "Game 'prisoners_dilemma' (Prisoner's Dilemma). Actions: cooperate, defect.\n" + P.payoff_table(PD, "row")
        + "\n\nThe opponent's program (fixed while you write yours):\n```python\ndef decide(ctx):\n"
        "    return 'defect'\n```\n\nWork out what the opponent's program plays, then write decide(ctx) returning "
        "your best reply to it. It will be tested, then played 3 times against this opponent.")
    v1 = P.writer_messages(1, P.CODE, "grammar", PD, "row", "x", 3)
    assert v1 == [{"role": "system", "content": P.system_message(P.CODE, PD)},
                  {"role": "user", "content": P.task_message(P.CODE, PD, "row", "x", 3)}]
    grid = LIB.games["foraging_pibr"]  # a grid world's writer text has one version
    assert P.writer_messages(2, P.CODE, "grammar", grid, "row", "x", 3) == P.writer_messages(1, P.CODE, "grammar",
                                                                                           grid, "row", "x", 3)


def test_the_constraint_follows_the_endpoint_mode_and_version():
    assert P.writer_request(2, P.CODE, "grammar", PD) == {"grammar": P.writer_grammar(["cooperate", "defect"]),
                                                          "structured": "grammar"}
    assert P.writer_request(2, P.CODE, "json_schema", PD) == {"fmt": P.writer_schema(), "structured": "json_schema"}
    assert P.writer_request(2, P.CODE, "none", PD) == {"extra": {"stop": P.STOPS}}
    assert P.writer_request(1, P.CODE, "grammar", PD) == {} == P.writer_request(2, P.PROMPT, "grammar", PD)
    assert P.writer_request(2, P.CODE, "grammar", LIB.games["foraging_pibr"]) == {}


def test_the_grammar_allows_the_reasoning_line_then_one_function_and_stops():
    g = P.writer_grammar(["cooperate", "defect"])
    assert g.splitlines() == [
        'root ::= "The opponent plays " opp ", so I play " act ".\\n```python\\ndef decide(ctx):\\n" body "```"',
        'opp ::= "cooperate" | "defect" | "at random"',
        'act ::= "cooperate" | "defect"',
        f"body ::= line{{1,{P.BODY_LINES}}}",
        f'line ::= "    " [^\\n]{{1,{P.LINE_CHARS}}} "\\n" | "\\n"',
    ]
    schema = P.writer_schema()["json_schema"]["schema"]
    assert schema["required"] == ["reasoning", "code"] and schema["properties"]["code"]["pattern"] == \
        r"^def decide\(ctx\):\n"


@pytest.mark.parametrize("reply, code", [
    (json.dumps({"reasoning": "It defects.", "code": "def decide(ctx):\n    return 'defect'\n"}),
     "def decide(ctx):\n    return 'defect'\n"),
    ("The opponent plays defect, so I play defect.\n```python\ndef decide(ctx):\n    return \"defect\"\n```",
     'def decide(ctx):\n    return "defect"\n'),
    # cut off by the length cap inside the block: the block so far
    ("The opponent plays at random, so I play defect.\n```python\ndef decide(ctx):\n    return \"defect\"\n",
     'def decide(ctx):\n    return "defect"\n'),
    ('{"reasoning": "broken json', '{"reasoning": "broken json\n'),  # not JSON: the whole reply, as extract
])
def test_extract_answer_reads_every_shape_of_answer(reply, code):
    assert P.extract_answer(reply) == code


def test_version_2_feedback_quotes_the_failing_line_and_says_what_the_contract_expects():
    src = "def decide(ctx):\n    return x\n"
    text = fb.invalid_text(["candidate.py:2: NameError: name 'x' is not defined"], src, PD)
    assert text.splitlines() == [
        "Your program failed its unit tests, so it earns nothing:",
        "- candidate.py:2: NameError: name 'x' is not defined",
        "  line 2 is: return x",
        'Expected: only `def decide(ctx):` and its indented body, returning one of "cooperate", "defect" '
        "(a string); no code after the function. Write the whole function again.",
    ]
    assert fb.invalid_text(["no decide"]) == ("Your program failed its unit tests, so it earns nothing:\n"
                                              "- no decide\nFix it and reply with the whole program.")


def test_a_run_stored_without_the_writer_field_resumes_asking_version_1(tmp_path):
    """A run recorded before the writer's version was part of its config asked version 1's messages with no
    constraint: resumed, it goes on asking them (its stored conversation stays one conversation)."""
    import sqlite3

    from tests.support.fake_llm import FakeLLMServer, Script, Status
    from tests.test_iterate import BROKEN, ITERATE, PLAYS_A, PLAYS_B, PLAYS_C, arena, writer_env

    db = tmp_path / "old.db"
    answers = [PLAYS_B, BROKEN, PLAYS_C, PLAYS_C, PLAYS_B, PLAYS_A]
    with FakeLLMServer(Script(answers[:2], fallback=Status(404))) as srv:
        assert arena(*ITERATE, "--db", str(db), env=writer_env(srv)).returncode == 2
        assert P.WRITER_V1 != P.WRITER_VERSION and "response_format" not in srv.chat_requests[0].body
    con = sqlite3.connect(db)
    config = json.loads(con.execute("SELECT config FROM iterate_runs").fetchone()[0])
    assert config.pop("writer") == P.WRITER_VERSION
    with con:
        con.execute("UPDATE iterate_runs SET config = ?", (json.dumps(config),))
    con.close()
    game = LIB.games[config["game"]]
    with FakeLLMServer(Script(answers[2:])) as srv:
        res = arena("iterate", "--resume", "1", "--db", str(db), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        first = srv.chat_requests[0].body
    assert first["messages"][0] == {"role": "system", "content": P.system_message(P.CODE, game)}
    assert first["messages"][1]["content"].startswith(P.seat_game_text(game, "row"))
    assert "stop" not in first and "response_format" not in first
