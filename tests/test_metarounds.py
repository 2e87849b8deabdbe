"""`arena iterate --protocol meta-rounds` against scripted writers on the loopback server, the code metrics,
the personas, the exports and the dynamics over a population of persona × model types."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from arena.iterate import metaprompts as mp
from arena.library.codemetrics import metrics
from arena.library.personas import BUILTIN, load_persona
from arena.errors import ConfigError
from tests.support.fake_llm import FakeLLMServer, Status, Text
from tests.support.cli import arena

ROOT = Path(__file__).resolve().parents[1]


def writer_env(srv) -> dict:
    return {"LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "sk-meta-test"}


def fenced(src: str) -> str:
    return f"Here is my program.\n```python\n{src}```\n"


# The scripted writers: the seat is told apart by its persona (in the system message), the meta-round by
# the task's "meta-round k of K"; a retry (the last user message says the checks failed) gets the fix.
ROW = {
    1: 'def decide(ctx):\n    return "cooperate"\n',
    2: ('def decide(ctx):\n    if "defect" in ctx["opponent"] and ctx["history"]:\n'
        '        return ctx["history"][-1]["opponent"]\n    return "cooperate"\n'),
    3: 'def decide(ctx):\n    return "defect"\n',
}
ROW_BROKEN_3 = 'def decide(ctx)\n    return "defect"\n'
COL = {
    1: 'def decide(ctx):\n    return "defect"\n',
    2: ('def decide(ctx):\n    if not ctx["history"]:\n        return "cooperate"\n'
        '    return ctx["history"][-1]["opponent"]\n'),
    3: 'def decide(ctx):\n    return [0.5, 0.5]   # a coin\n',
}


class Writers:
    """Both writers, keyed on the request; meta-round 1's two requests wait for each other (a barrier): the
    run fails unless both are in flight at once."""

    def __init__(self, broken_row_3: bool = True):
        self.barrier = threading.Barrier(2, timeout=60)
        self.broken_row_3 = broken_row_3

    def __call__(self, request) -> Text:
        system = request.messages[0]["content"]
        task = request.messages[1]["content"]
        k = int(re.search(r"This is meta-round (\d+) of", task)[1])
        seat = "row" if "cooperative payoff-maximiser" in system else "col"
        if k == 1 and len(request.messages) == 2:
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return Status(500)
        if seat == "row" and k == 3 and self.broken_row_3 and len(request.messages) == 2:
            return Text(fenced(ROW_BROKEN_3))
        return Text(fenced((ROW if seat == "row" else COL)[k]))


MUST_SHOW = ["iterate", "--protocol", "meta-rounds", "--game", "prisoners_dilemma", "--model", "custom/writer",
             "--rounds", "10", "--meta-rounds", "3", "--persona-row", "cpm", "--persona-col", "dpm", "--episodes",
             "3", "--seed", "5"]


def _programs(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT seed, meta_round, seat, attempt, program_id, valid, source FROM meta_programs ORDER BY id").fetchall()


def test_must_show_three_meta_rounds(tmp_path):
    db, out = tmp_path / "m.db", tmp_path / "final"
    with FakeLLMServer(Writers()) as srv:
        res = arena(*MUST_SHOW, "--db", str(db), "--out", str(out), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        reqs = [r.body["messages"] for r in srv.chat_requests]
    con = sqlite3.connect(db)
    progs = _programs(db)
    valid = [(k, seat, src) for _s, k, seat, _a, _pid, v, src in progs if v]
    assert len(valid) == 6  # 3 meta-rounds × 2 seats
    assert sorted((k, seat) for k, seat, _src in valid) == [(k, s) for k in (1, 2, 3) for s in ("col", "row")]
    assert {(k, seat): src for k, seat, src in valid} == {**{(k, "row"): s for k, s in ROW.items()},
                                                          **{(k, "col"): s for k, s in COL.items()}}
    # the row's meta-round-3 program failed its static check once and was rewritten (attempt 1)
    failed = [p for p in progs if not p[5]]
    assert [(p[1], p[2], p[3], p[4]) for p in failed] == [(3, "row", 0, "mr1-s5-m3-row")]
    retry = next(m for m in reqs if len(m) == 4)
    assert "candidate.py:1: syntax error" in retry[3]["content"] and "2 rewrite(s) left" in retry[3]["content"]
    assert len(reqs) == 7
    # the row writer's meta-round-2 request: the column's meta-round-1 source (fenced as data) and both scores
    row2 = next(m for m in reqs if "This is meta-round 2 of 3" in m[1]["content"]
                and "cooperative payoff-maximiser" in m[0]["content"])
    task = row2[1]["content"]
    assert f"```\n{COL[1].rstrip()}\n```" in task and "It is data to read" in task
    # meta-round 1: cooperate vs defect for 10 rounds: row 0, column 5 × 10 = 50
    assert "Scores so far (the sum over past meta-rounds of the mean match total): you 0, opponent 50." in task
    assert "meta-round 1: you mr1-s5-m1-row (" in task and "scores you 0, opponent 50" in task
    assert "This is meta-round 2 of 3" in task and "You are the row player" in task
    assert BUILTIN["cpm"] in row2[0]["content"] and "history lists the rounds so far" in row2[0]["content"]
    col2 = next(m for m in reqs if "This is meta-round 2 of 3" in m[1]["content"] and m is not row2)
    assert "you 50, opponent 0" in col2[1]["content"] and f"```\n{ROW[1].rstrip()}\n```" in col2[1]["content"]
    rounds = con.execute("SELECT meta_round, row_program, col_program, row_failed, col_failed, row_payoff, col_payoff, "
                         "row_total, col_total FROM meta_rounds ORDER BY meta_round").fetchall()
    assert rounds[0] == (1, "mr1-s5-m1-row", "mr1-s5-m1-col", 0, 0, 0.0, 5.0, 0.0, 50.0)
    # meta-round 2: the row reads "defect" in the column's source: from round 1 it copies the column's last
    # action; the column (tit for tat) cooperates first: both cooperate throughout (3 × 10)
    assert rounds[1] == (2, "mr1-s5-m2-row", "mr1-s5-m2-col", 0, 0, 3.0, 3.0, 30.0, 30.0)
    assert rounds[2][:5] == (3, "mr1-s5-m3-row-a1", "mr1-s5-m3-col", 0, 0)
    # the persona texts are stored with the run
    config = json.loads(con.execute("SELECT config FROM iterate_runs").fetchone()[0])
    assert config["protocol"] == "meta-rounds" and config["persona_row"]["text"] == BUILTIN["cpm"]
    assert config["persona_col"]["name"] == "dpm" and config["rounds"] == 10
    # every writer call is stored with its program, without the key
    calls = con.execute("SELECT program FROM llm_calls ORDER BY id").fetchall()
    assert sorted(c[0] for c in calls) == sorted(["mr1-s5-m1-row", "mr1-s5-m1-col", "mr1-s5-m2-row", "mr1-s5-m2-col",
                                                  "mr1-s5-m3-row", "mr1-s5-m3-row-a1", "mr1-s5-m3-col"])
    assert not any("sk-meta-test" in str(r) for r in con.execute("SELECT * FROM llm_calls"))
    assert "seed 5 meta-round 2: row 3, col 3 per round" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["mr1-s5-col.yaml", "mr1-s5-row.yaml"]

    # each meta-round's matches equal a plain `arena run` of the stored pair with the same seed
    for k, row_id, col_id, *_ in rounds:
        paths = [out / "mr1-s5-row.yaml", out / "mr1-s5-col.yaml"] if k == 3 else []  # the last pair: --out's
        for pid in (row_id, col_id) if k < 3 else ():
            src = con.execute("SELECT source FROM meta_programs WHERE program_id=?", (pid,)).fetchone()[0]
            path = tmp_path / f"{pid}.yaml"
            path.write_text(f"id: {pid}\nkind: code\nsource: |\n" + "".join(f"  {line}\n" for line in src.splitlines()))
            paths.append(path)
        rdb = tmp_path / f"run{k}.db"
        played = arena("run", "--program", str(paths[0]), "--program", str(paths[1]), "--game", "prisoners_dilemma",
                       "--rounds", "10", "--epsilon", "0.2", "--max-depth", "5", "--trials", "3", "--seed", "5",
                       "--db", str(rdb), "--display", "none")
        assert played.returncode == 0, played.stderr
        q = ("SELECT seed, row_action, col_action, row_payoff, col_payoff, row_total, col_total, n_rounds FROM trials "
             "WHERE row_program=? AND col_program=? ORDER BY {} ")
        plain = sqlite3.connect(rdb).execute(q.format("trial_index"), (row_id, col_id)).fetchall()
        meta = con.execute(q.format("seq"), (row_id, col_id)).fetchall()
        assert len(meta) == 3 and meta == plain
    # the coin of meta-round 3 makes the three matches differ
    assert len({t for t in con.execute("SELECT col_total FROM trials WHERE col_program='mr1-s5-m3-col'")}) > 1


def test_resume_of_a_cut_run_gives_the_same_rows(tmp_path):
    whole, cut = tmp_path / "whole.db", tmp_path / "cut.db"
    args = [*MUST_SHOW[:MUST_SHOW.index("--meta-rounds") + 1], "2", *MUST_SHOW[MUST_SHOW.index("--meta-rounds") + 2:]]
    with FakeLLMServer(Writers()) as srv:
        assert arena(*args, "--db", str(whole), env=writer_env(srv)).returncode == 0

    class Cut(Writers):
        def __call__(self, request):
            if "This is meta-round 2 of" in request.messages[1]["content"]:
                return Status(404)
            return super().__call__(request)

    with FakeLLMServer(Cut()) as srv:
        res = arena(*args, "--db", str(cut), env=writer_env(srv))
    assert res.returncode == 2 and "refused model" in res.stderr
    con = sqlite3.connect(cut)
    assert con.execute("SELECT status FROM iterate_runs").fetchone() == ("failed",)
    assert con.execute("SELECT count(*) FROM meta_rounds").fetchone() == (1,)
    with FakeLLMServer(Writers()) as srv:
        srv.responder.barrier = threading.Barrier(1)  # meta-round 1 is stored: no pair of requests to wait for
        res = arena("iterate", "--resume", "1", "--db", str(cut), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        assert all("This is meta-round 2 of 2" in r.body["messages"][1]["content"] for r in srv.chat_requests)
    q = ("SELECT seed, meta_round, row_program, col_program, row_hash, col_hash, row_payoff, col_payoff, row_total, "
         "col_total FROM meta_rounds ORDER BY id")
    assert con.execute(q).fetchall() == sqlite3.connect(whole).execute(q).fetchall()
    t = "SELECT seq, row_program, col_program, seed, row_total, col_total FROM trials ORDER BY seq"
    assert con.execute(t).fetchall() == sqlite3.connect(whole).execute(t).fetchall()
    assert con.execute("SELECT status FROM iterate_runs").fetchone() == ("finished",)


# -- metrics ---------------------------------------------------------------------------------------------------
PLAIN = '''def decide(ctx):
    # always cooperate
    return "cooperate"
'''
READER = '''def decide(ctx):
    """Defect against a source that defects."""
    src = ctx["opponent"]
    hist = ctx["history"]
    if "defect" in src and len(hist) > 0:
        return "defect"
    for r in hist:
        if r["opponent"] == "defect":
            return "defect"
    return "cooperate"
'''
HELPER = '''def count(c):
    return c.get("opponent").count("defect")

def decide(ctx):
    unused = ctx["opponent"]
    n = count(ctx)
    return ["cooperate", "defect"][min(n, 1)]
'''


def test_metrics_of_known_sources():
    m = metrics(PLAIN)
    # SLOC: the def and the return (the comment line is not code); one function, no branch: complexity 1
    assert (m.sloc, m.complexity, m.opponent_use, m.ctx_fields) == (2, 1, 0, [])
    assert m.halstead_volume == 0.0  # no operators
    r = metrics(READER)
    # 9 lines of code (the docstring is not counted); complexity 1 + if + `and` + for + if = 5
    assert (r.sloc, r.complexity) == (9, 5)
    # ctx["opponent"] (line 3) reaches the returns through the if's test; so does ctx["history"]
    assert (r.opponent_use, r.ctx_fields) == (1, ["history", "opponent"])
    h = metrics(HELPER)
    # the helper's c.get("opponent") reaches decide's return through the call; `unused` does not count
    assert (h.sloc, h.complexity, h.opponent_use, h.ctx_fields) == (6, 2, 1, ["opponent"])
    # a read that never reaches the return value: 0
    assert metrics('def decide(ctx):\n    s = ctx["opponent"]\n    return "cooperate"\n').opponent_use == 0
    assert metrics("def decide(ctx)\n    return 1\n") is None  # does not parse
    assert metrics("def decide(ctx):\n    return " + "-" * 5000 + "1\n") is None  # too deep to analyse
    # the papers' entry points: strategy_function's fourth parameter is the opponent's code
    skw = "def strategy_function(a, b, c, d):\n    return 'D' if 'D' in d else 'C'\n"
    assert (metrics(skw).opponent_use, metrics(skw).ctx_fields) == (1, ["opponent"])
    tft = "def strategy_function(mine, theirs, me, opp):\n    return theirs[-1] if theirs else 'C'\n"
    assert (metrics(tft).opponent_use, metrics(tft).ctx_fields) == (0, ["history"])
    assert metrics('def decide(ctx):\n    k = "opponent"\n    return ctx[k]\n').ctx_fields == ["*"]
    # complexity counts nested functions and methods once each, a class adds nothing of its own
    from arena.library.codemetrics import complexity

    assert complexity("def f(x):\n    def g(y):\n        if y:\n            return 1\n    return g\n") == 3
    assert complexity("class A:\n    def m(self, x):\n        if x:\n            return 1\n"
                      "    def n(self):\n        return 2\n") == 3
    assert complexity("def f(x, y, z):\n    assert x\n    return [a for a in y if a] if x and y or z else 0\n") \
        == 1 + 1 + 2 + 1 + 2  # assert, the comprehension's for and if, the conditional, two boolean operators


# -- personas and the command's errors --------------------------------------------------------------------------
def test_personas_builtin_and_files(tmp_path):
    assert set(BUILTIN) == {"cpm", "dpm", "pm"}
    assert "deceptive" in BUILTIN["dpm"] and "cooperative" in BUILTIN["cpm"]
    (tmp_path / "mine.md").write_text("# Me\nBe kind.\n")
    p = load_persona(str(tmp_path / "mine.md"))
    assert (p.name, p.text) == ("mine", "# Me\nBe kind.")
    (tmp_path / "y.yaml").write_text("name: tough\ntext: Never forgive.\n")
    assert load_persona(str(tmp_path / "y.yaml")).text == "Never forgive."
    (tmp_path / "bad.yaml").write_text("name: x\ntxt: hi\n")
    with pytest.raises(ConfigError) as e:
        load_persona(str(tmp_path / "bad.yaml"))
    assert str(e.value) == (f"{tmp_path / 'bad.yaml'}:1: field 'text': required field is missing\n"
                            f"{tmp_path / 'bad.yaml'}:2: field 'txt': unknown field (did you mean 'text'?)")


def test_bad_persona_file_exits_2_with_its_path(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: [unclosed\n")
    res = arena(*MUST_SHOW[:MUST_SHOW.index("--persona-row")], "--persona-row", str(bad), "--db",
                str(tmp_path / "x.db"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"arena: error: {bad}:") and "YAML syntax error" in res.stderr
    res = arena(*MUST_SHOW[:MUST_SHOW.index("--persona-row")], "--persona-row", "kind", "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2
    assert "arena: error: --persona-row: 'kind' is neither a built-in persona (cpm, dpm, pm) nor a file" in res.stderr
    res = arena(*MUST_SHOW, "--seeds", "3-x", "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2 and "--seeds: '3-x' is not a range" in res.stderr
    res = arena(*MUST_SHOW, "--continuation", "0.9", "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2 and "rounds and continuation are alternatives" in res.stderr
    res = arena("iterate", "--game", "climbing", "--model", "custom/w", "--persona-row", "cpm", "--db",
                str(tmp_path / "x.db"))
    assert res.returncode == 2 and "arena: error: --persona-row goes with --protocol meta-rounds" in res.stderr
    res = arena(*MUST_SHOW, "--start-row", "defectbot", "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2 and "--start-row goes with --protocol best-response" in res.stderr


def test_a_writer_provider_without_its_key_or_url_exits_2_before_a_run_is_recorded(tmp_path):
    """Either protocol: the provider's missing key and URL said, exit 2, nothing stored (History would list a
    failed run that never started)."""
    db = tmp_path / "x.db"
    unset = {"LLM_API_KEY": "", "LLM_BASE_URL": ""}
    for args in (MUST_SHOW, ("iterate", "--game", "climbing", "--model", "custom/w", "--steps", "2")):
        res = arena(*args, "--db", str(db), env=unset)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr == ("arena: error: provider 'custom' needs the environment variable LLM_API_KEY; "
                              "provider 'custom' needs a base URL: set LLM_BASE_URL\n")
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM iterate_runs").fetchone() == (0,)
    assert con.execute("SELECT COUNT(*) FROM tournaments").fetchone() == (0,)


def test_judge_labels_parse():
    assert mp.parse_label("Thinking...\nLABEL: counter measure") == "counter measure"
    assert mp.parse_label("It looks like a feint, but LABEL: Direct imitation.") == "direct imitation"
    assert mp.parse_label("an exploitation attempt") == "exploitation attempt"
    assert mp.parse_label("no idea") is None


# -- seeds, the judge, the exports ---------------------------------------------------------------------------
class Judged(Writers):
    """The writers, and a judge that labels the row's rewrites 'counter measure' and the column's 'feint'."""

    def __init__(self):
        super().__init__(broken_row_3=False)
        self.judge_requests = []

    def __call__(self, request):
        if request.messages[0]["content"].startswith("You classify"):
            self.judge_requests.append(request.messages)
            row = "the row player" in request.messages[1]["content"]
            return Text("Reasoning.\nLABEL: " + ("counter measure" if row else "feint"))
        return super().__call__(request)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    db = tmp_path_factory.mktemp("judged") / "j.db"
    judge = Judged()
    with FakeLLMServer(judge) as srv:
        res = arena("iterate", "--protocol", "meta-rounds", "--game", "prisoners_dilemma", "--model", "custom/writer",
                    "--judge", "custom/judge", "--rounds", "10", "--meta-rounds", "2", "--persona-row", "cpm",
                    "--persona-col", "dpm", "--episodes", "2", "--seeds", "1-2", "--db", str(db), env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert ("seed 2 meta-round 2 col attempt 0: mr1-s2-m2-col: ok (SLOC 4, complexity 2, opponent use 0), judged: "
            "feint") in res.stderr
    return db, judge


def test_seeds_and_judge_labels(judged):
    db, judge = judged
    con = sqlite3.connect(db)
    assert con.execute("SELECT seed, meta_round, seat, label FROM meta_programs ORDER BY seed, meta_round, seat"
                       ).fetchall() == [(1, 1, "col", None), (1, 1, "row", None), (1, 2, "col", "feint"),
                                        (1, 2, "row", "counter measure"), (2, 1, "col", None), (2, 1, "row", None),
                                        (2, 2, "col", "feint"), (2, 2, "row", "counter measure")]
    # the judge saw the previous program, the opponent's previous one and the new one
    row_req = next(m for m in judge.judge_requests if "the row player" in m[1]["content"])
    assert all(f"```\n{src.rstrip()}\n```" in row_req[1]["content"] for src in (ROW[1], COL[1], ROW[2]))
    assert [l for l in mp.LABELS if l in row_req[0]["content"]] == list(mp.LABELS)
    # its prompts and answers are stored as calls of 'judge:' + the program
    judge_calls = con.execute("SELECT program, response FROM llm_calls WHERE program LIKE 'judge:%' ORDER BY program"
                              ).fetchall()
    assert [p for p, _ in judge_calls] == ["judge:mr1-s1-m2-col", "judge:mr1-s1-m2-row", "judge:mr1-s2-m2-col",
                                           "judge:mr1-s2-m2-row"]
    assert "LABEL: feint" in judge_calls[0][1]
    # one protocol per seed: 2 seeds × 2 meta-rounds, each seed's matches from its own seed
    assert con.execute("SELECT seed, meta_round, row_payoff, col_payoff FROM meta_rounds ORDER BY id").fetchall() == [
        (1, 1, 0.0, 5.0), (1, 2, 3.0, 3.0), (2, 1, 0.0, 5.0), (2, 2, 3.0, 3.0)]
    assert con.execute("SELECT status, welfare, best_welfare FROM iterate_runs").fetchone() == ("finished", 6.0, 6.0)


def test_exports_of_a_meta_rounds_run(judged, tmp_path):
    db, _ = judged
    res = arena("export", "--iterate", "1", "--format", "json", "--db", str(db))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    rows = doc["meta_rounds"]
    assert [(r["seed"], r["meta_round"], r["row_program"], r["col_program"]) for r in rows] == [
        (1, 1, "mr1-s1-m1-row", "mr1-s1-m1-col"), (1, 2, "mr1-s1-m2-row", "mr1-s1-m2-col"),
        (2, 1, "mr1-s2-m1-row", "mr1-s2-m1-col"), (2, 2, "mr1-s2-m2-row", "mr1-s2-m2-col")]
    m2 = rows[1]
    assert (m2["row_sloc"], m2["row_complexity"], m2["row_opponent_use"], m2["row_ctx_fields"]) == \
        (4, 3, 1, ["history", "opponent"])
    assert (m2["col_sloc"], m2["col_complexity"], m2["col_opponent_use"], m2["col_ctx_fields"]) == \
        (4, 2, 0, ["history"])
    assert (m2["row_label"], m2["col_label"]) == ("counter measure", "feint")
    assert rows[0]["row_opponent_use"] == 0 and rows[0]["row_label"] is None
    # payoffs over the seeds: the same each seed here, so the interval has no width
    assert doc["over_seeds"][:2] == [
        {"meta_round": 1, "seat": "row", "seeds": 2, "mean": 0.0, "ci_low": 0.0, "ci_high": 0.0},
        {"meta_round": 1, "seat": "col", "seeds": 2, "mean": 5.0, "ci_low": 5.0, "ci_high": 5.0}]
    assert {p["program"]: p["source"] for p in doc["programs"]}["mr1-s2-m2-col"] == COL[2]
    assert len(doc["programs"]) == 8
    # the population: cpm and dpm writers never met themselves, so no dynamics yet
    pop = doc["population"]
    assert pop["types"] == ["cpm × custom/writer", "dpm × custom/writer"]
    assert pop["payoffs"] == [[None, 1.5], [4.0, None]] and pop["replicator"] == []
    assert pop["missing"] == [["cpm × custom/writer", "cpm × custom/writer"], ["dpm × custom/writer", "dpm × custom/writer"]]
    csv = arena("export", "--iterate", "1", "--format", "csv", "--db", str(db)).stdout.splitlines()
    assert csv[0].startswith("run,seed,meta_round,row_program,col_program,row_hash,col_hash") and len(csv) == 5
    md = arena("export", "--iterate", "1", "--format", "markdown", "--db", str(db)).stdout
    assert "| 2 | 1 | mr1-s2-m1-row (" in md and "### mr1-s1-m2-row (seed 1, meta-round 2, row, attempt 0: valid)" in md
    assert f"```python\n{ROW[2].rstrip()}\n```" in md
    png = tmp_path / "p.png"
    res = arena("export", "--iterate", "1", "--format", "png", "--out", str(png), "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listed = arena("iterate", "--list", "--db", str(db)).stdout
    assert "meta   2×10×2" in listed


def test_population_dynamics_from_pairs():
    from arena.analysis.metarounds import population_matrix

    # PD payoffs per round: C meets C (3, 3), D exploits C (5, 0), D meets D (1, 1)
    entries = [("C", "C", 3.0, 3.0), ("C", "D", 0.0, 5.0), ("D", "D", 1.0, 1.0), ("D", "C", 5.0, 0.0)]
    types, U = population_matrix(entries)
    assert types == ["C", "D"] and U == [[3.0, 0.0], [5.0, 1.0]]
    from arena.analysis.dynamics import fixation, replicator

    assert replicator(U).shares[-1][1] > 0.999  # defectors take over
    assert fixation(U[1][1], U[1][0], U[0][1], U[0][0], 10) > 0.1  # one D invading C is favoured (> 1/N)


def test_runner_reports_a_view_per_program_and_meta_round(tmp_path, monkeypatch):
    """The headless protocol as the app calls it: MetaRoundsRunner with an on_step listener."""
    import asyncio

    from arena.iterate.loop import IterateConfig
    from arena.iterate.metarounds import MetaRoundView, MetaRoundsRunner, ProgramView
    from arena.library.catalog import load_library
    from arena.library.personas import builtin
    from arena.llm.service import LLMService
    from arena.store.database import Store

    views = []
    with FakeLLMServer(Writers()) as srv, Store(tmp_path / "v.db") as store:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)
        monkeypatch.setenv("LLM_API_KEY", "sk-meta-test")
        cfg = IterateConfig(game="prisoners_dilemma", model="custom/writer", rounds=10, steps=1, episodes=1, seed=5,
                            protocol="meta-rounds", meta_rounds=3, persona_row=builtin("cpm"),
                            persona_col=builtin("dpm"))
        runner = MetaRoundsRunner.create(store, cfg, load_library().games["prisoners_dilemma"], LLMService(store),
                                         on_step=views.append)
        result = asyncio.run(runner.run())
    assert result.status == "finished" and result.calls == 7 and len(result.rounds) == 3
    kinds = [(type(v).__name__, v.meta_round) for v in views]
    assert kinds == [("ProgramView", 1), ("ProgramView", 1), ("MetaRoundView", 1),
                     ("ProgramView", 2), ("ProgramView", 2), ("MetaRoundView", 2),
                     ("ProgramView", 3), ("ProgramView", 3), ("ProgramView", 3), ("MetaRoundView", 3)]
    broken = next(v for v in views if isinstance(v, ProgramView) and not v.valid)
    assert (broken.seat, broken.attempt, broken.metrics) == ("row", 0, None)
    assert broken.errors[0].startswith("candidate.py:1: syntax error")
    assert broken.reply == fenced(ROW_BROKEN_3) and "1 rewrite(s) left" not in broken.feedback
    assert broken.feedback.startswith("Your program failed its checks") and "2 rewrite(s) left" in broken.feedback
    first = next(v for v in views if isinstance(v, ProgramView) and v.seat == "col" and v.meta_round == 2)
    assert first.source == COL[2] and first.metrics["ctx_fields"] == ["history"]
    m1 = views[2]
    assert isinstance(m1, MetaRoundView)
    assert (m1.row_program, m1.col_program, m1.row_total, m1.col_total) == ("mr1-s5-m1-row", "mr1-s5-m1-col", 0.0,
                                                                            50.0)


def test_population_over_stored_runs(tmp_path):
    """Three finished runs of one condition (cpm-cpm, cpm-dpm, dpm-dpm) make a complete U; a run of another
    condition is left out."""
    from arena.analysis.metarounds import population
    from arena.iterate.loop import IterateConfig
    from arena.library.personas import builtin
    from arena.store import iterate as db
    from arena.store.database import Store

    def run(store, row, col, pays, rounds=10):
        cfg = IterateConfig(game="prisoners_dilemma", model="custom/w", rounds=rounds, steps=1, episodes=1,
                            protocol="meta-rounds", meta_rounds=len(pays), persona_row=builtin(row),
                            persona_col=builtin(col))
        rid, tid = db.create_run(store, cfg.stored(), "x", 0, "test")
        for k, (a, b) in enumerate(pays, 1):
            db.write_meta_round(store, rid, tid, {"seed": 0, "meta_round": k, "row_program": "r", "col_program": "c",
                                                  "row_hash": "h", "col_hash": "h", "row_failed": 0, "col_failed": 0,
                                                  "row_payoff": a, "col_payoff": b, "row_total": 10 * a,
                                                  "col_total": 10 * b, "episodes": 1, "first_seq": 0})
        db.finish_run(store, rid, tid, "finished")
        return rid

    with Store(tmp_path / "p.db") as store:
        run(store, "cpm", "cpm", [(3.0, 3.0), (3.0, 3.0)])
        mixed = run(store, "cpm", "dpm", [(0.0, 5.0), (1.0, 1.0)])
        run(store, "dpm", "dpm", [(1.0, 1.0), (2.0, 2.0)])
        run(store, "dpm", "dpm", [(0.0, 0.0)], rounds=5)  # another condition
        pop = population(store, mixed)
    assert pop.types == ["cpm × custom/w", "dpm × custom/w"] and pop.runs == [1, 2, 3]
    # cpm vs cpm: both seats' 3s; cpm vs dpm: 0 and 1 (mean 0.5), dpm vs cpm 5 and 1 (3); dpm vs dpm 1, 2, 1, 2
    assert pop.payoffs == [[3.0, 0.5], [3.0, 1.5]] and pop.missing == []
    # dpm does as well as cpm against cpm (3 = 3) and better against dpm (1.5 > 0.5): it takes over
    rest = [r for r in pop.replicator if r.rest]
    assert [r.program for r in rest] == pop.types and rest[1].share > 0.99
    moran = {(m.invader, m.resident): m for m in pop.moran}
    assert moran[("dpm × custom/w", "cpm × custom/w")].favoured
    assert not moran[("cpm × custom/w", "dpm × custom/w")].favoured


def test_schema_11_migrates_older_databases_and_old_configs(tmp_path):
    import shutil

    from arena.iterate.loop import IterateConfig
    from arena.store.database import SCHEMA_VERSION, Store

    db = tmp_path / "v7.db"
    shutil.copy(ROOT / "tests" / "fixtures" / "arena-v7.db", db)
    with Store(db) as store:
        assert store.query("SELECT value FROM meta WHERE key='schema_version'") == [{"value": str(SCHEMA_VERSION)}]
        assert SCHEMA_VERSION == 11
        names = {r["name"] for r in store.query("SELECT name FROM sqlite_master")}
        assert {"meta_programs", "meta_rounds", "meta_programs_key", "meta_rounds_key"} <= names
        assert store.query("SELECT count(*) AS n FROM trials")[0]["n"] > 0  # the old rows stay
    # a best-response run stored by the release before meta-rounds (`protocol: 2`) still validates (resume)
    old = {"game": "climbing", "model": "custom/w", "rounds": 2, "steps": 3, "episodes": 5, "protocol": 2}
    cfg = IterateConfig.model_validate(old)
    assert (cfg.protocol, cfg.revision) == ("best-response", 2)
    # and a new best-response run's stored config holds none of the meta-rounds fields
    assert set(cfg.stored()) == {"game", "model", "rounds", "steps", "episodes", "seed", "epsilon", "max_depth",
                                 "kind", "start_row", "start_col", "temperature", "max_tokens", "writer", "out", "protocol",
                                 "revision"}


def test_history_lines_say_whose_code_failed():
    h = {"meta_round": 1, "row_program": "a", "col_program": "b", "row_hash": "0123456789abcdef", "col_hash": "f" * 16,
         "row_total": 26.5, "col_total": 21.0, "row_failed": 1, "col_failed": 0}
    assert mp.history_lines("row", [h]) == [
        "  meta-round 1: you a (0123456789ab), opponent b (ffffffffffff): scores you 26.5, opponent 21; your code "
        "failed (the previous program played)"]
    assert mp.history_lines("col", [h])[0].endswith("scores you 21, opponent 26.5; the opponent's code failed (the "
                                                    "previous program played)")


def test_a_writer_that_never_writes_a_valid_program(tmp_path):
    """The column's writer always answers a syntax error: with --retries 0 it plays the uniformly random start,
    the meta-rounds record the failure, the row is told, the export measures the start program."""

    class BrokenCol(Writers):
        def __call__(self, request):
            reply = super().__call__(request)
            if "deceptive payoff-maximiser" in request.messages[0]["content"]:
                return Text(fenced(ROW_BROKEN_3))
            return reply

    db = tmp_path / "b.db"
    args = [*MUST_SHOW[:MUST_SHOW.index("--meta-rounds") + 1], "2", "--persona-row", "cpm", "--persona-col", "dpm",
            "--episodes", "1", "--retries", "0"]
    with FakeLLMServer(BrokenCol(broken_row_3=False)) as srv:
        res = arena(*args, "--db", str(db), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        row2 = next(r.body["messages"] for r in srv.chat_requests if "meta-round 2 of 2" in r.body["messages"][1]["content"]
                    and "cooperative payoff-maximiser" in r.body["messages"][0]["content"])
    con = sqlite3.connect(db)
    assert con.execute("SELECT meta_round, col_program, col_failed, row_failed FROM meta_rounds ORDER BY id").fetchall() \
        == [(1, "mr1-s0-start-col", 1, 0), (2, "mr1-s0-start-col", 1, 0)]
    assert "the opponent's code failed (the previous program played)" in row2[1]["content"]
    assert 'return [1 / n] * n   # uniformly at random' in row2[1]["content"]
    doc = json.loads(arena("export", "--iterate", "1", "--format", "json", "--db", str(db)).stdout)
    start = doc["meta_rounds"][0]
    assert (start["col_sloc"], start["col_complexity"], start["col_opponent_use"], start["col_label"]) == (3, 1, 0, None)

    # cut after meta-round 1 and resumed: the seat plays the same start program (same hash) in meta-round 2
    class Cut(BrokenCol):
        def __call__(self, request):
            if "meta-round 2 of" in request.messages[1]["content"]:
                return Status(404)
            return super().__call__(request)

    cut = tmp_path / "cut.db"
    with FakeLLMServer(Cut(broken_row_3=False)) as srv:
        assert arena(*args, "--db", str(cut), env=writer_env(srv)).returncode == 2
    with FakeLLMServer(BrokenCol(broken_row_3=False)) as srv:
        srv.responder.barrier = threading.Barrier(1)
        res = arena("resume", "--db", str(cut), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
    q = "SELECT meta_round, row_program, col_program, row_hash, col_hash, row_total, col_total FROM meta_rounds ORDER BY id"
    assert sqlite3.connect(cut).execute(q).fetchall() == con.execute(q).fetchall()
