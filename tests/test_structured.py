"""Constrained output per endpoint (arena/llm/structured.py) and the forms of answers, against a real
HTTP server on 127.0.0.1 (tests.support.fake_llm) that honours, rejects (400) or ignores response_format."""

from __future__ import annotations

import asyncio
import json

import pytest

from arena.analysis.tables import call_rows
from arena.engine.events import Notice
from arena.engine.grid import TournamentConfig
from arena.library.programs import LLMProgram
from arena.llm.registry import BUILTIN
from arena.llm.stats import stats_line
from arena.llm.service import LLMService
from arena.llm.structured import StructuredModes, rejects_format
from arena.runner.tournament import TournamentRunner
from llm_policies import mirror_policy as policy
from tests.support.decisions import one_decision as decide_once
from tests.support.fake_llm import FakeLLMServer, Status, Text, action_responder

ENV = {"LLM_API_KEY": "test-key-not-secret"}
FAIR = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You are fair: mirror what the simulated opponent did.")
MEAN = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You always defect.")


def service(store, url, notices=None, **over):
    fast = dict(base_url=url, backoff_initial=0.01, backoff_max=0.05, timeout=2.0, max_attempts=3)
    registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update={**fast, **over})}
    sink = notices.append if notices is not None else None
    return LLMService(store, registry, ENV, sink=sink)


def tournament(store, games, url, notices, concurrency=1, **over):
    config = TournamentConfig(programs=["fair", "mean"], games=["prisoners_dilemma"], epsilons=[0.5],
                              max_depths=[2], trials=2, seed=5, concurrency=concurrency)
    runner = TournamentRunner.create(store, config, {"fair": FAIR, "mean": MEAN}, games,
                                     backend=service(store, url, notices, **over))
    return runner, asyncio.run(runner.run())


def stored_params(store, tid):
    return [(r["status"], json.loads(r["params"])) for r in
            store.query("SELECT status, params FROM llm_calls WHERE tournament_id = ? ORDER BY id", (tid,))]


def test_custom_and_ollama_default_to_auto_and_hosted_ones_do_not():
    assert (BUILTIN["custom"].structured, BUILTIN["ollama"].structured) == ("auto", "auto")
    assert (BUILTIN["local"].structured, BUILTIN["openai"].structured) == ("json_schema", "json_schema")
    assert {BUILTIN[n].structured for n in ("nvidia", "cerebras", "groq")} == {"none"}


def test_an_endpoint_that_rejects_response_format_falls_back_once_and_every_trial_is_stored(store, games):
    notices: list = []
    with FakeLLMServer(action_responder(policy), response_format="reject") as srv:
        runner, done = tournament(store, games, srv.base_url, notices)
        bodies = [r.body for r in srv.chat_requests]
        url = srv.base_url
    assert done.status == "finished" and done.counts == {"ok": 8} and done.done == 8
    # one request asked for the schema and got a 400; every other one is free text
    assert [("response_format" in b) for b in bodies] == [True] + [False] * (len(bodies) - 1)
    assert [r.status for r in srv.chat_requests].count(400) == 1
    warnings = [n.message for n in notices if isinstance(n, Notice)]
    assert warnings == [f"provider 'custom': endpoint rejected response_format at {url}; "
                        "its calls use free text (ACTION: line) from now on"]
    rows = stored_params(store, runner.tournament_id)
    assert rows[0][0] == "fallback" and rows[0][1]["structured"] == "json_schema"
    assert rows[0][1]["constraint"] == "json_schema"
    assert {(status, p["structured"], p["answer"]) for status, p in rows[1:]} == {("ok", "none", "action line")}
    assert len(rows) == len(bodies)
    s = done.providers["custom"]
    assert s["structured"] == {f"custom {url}": "none (auto: fell back, endpoint rejected response_format)"}
    assert s["failed"] == 0 and s["answers"] == {"action line": len(bodies) - 1}
    assert stats_line("custom", s).endswith(
        f"; first answers: {len(bodies) - 1} action line; structured output at custom {url}: "
        "none (auto: fell back, endpoint rejected response_format)")
    (row,) = [r for r in call_rows(store, runner.tournament_id) if r.program == "fair"] or [None]
    assert row is not None and row.failures == 0


def test_concurrent_calls_wait_for_one_probe(store, games):
    """With 4 calls in flight and a slow server, still one request asks for the schema: the others wait
    for its verdict."""
    notices: list = []
    with FakeLLMServer(action_responder(policy), response_format="reject", latency=0.05) as srv:
        runner, done = tournament(store, games, srv.base_url, notices, concurrency=4)
        statuses = [r.status for r in srv.chat_requests]
        peak = srv.max_concurrency
    assert done.counts == {"ok": 8}
    assert statuses[0] == 400 and statuses.count(400) == 1 and peak > 1
    assert len([n for n in notices if isinstance(n, Notice)]) == 1
    rows = stored_params(store, runner.tournament_id)
    assert [s for s, _ in rows].count("fallback") == 1
    assert done.providers["custom"]["failed"] == 0


def test_a_probe_that_fails_hands_the_probe_to_the_next_call(store, games):
    """The first probe gets HTTP 500 on every attempt (no verdict): the next call probes and settles it."""
    failed = iter([Status(500)] * 3)

    def responder(req):
        return next(failed, None) or action_responder(policy)(req)

    with FakeLLMServer(responder) as srv:
        runner, done = tournament(store, games, srv.base_url, [], concurrency=4)
        url = srv.base_url
        bodies = [r.body for r in srv.chat_requests]
    assert all("response_format" in b for b in bodies) and sum(done.counts.values()) == 8
    assert done.providers["custom"]["failed"] == 1
    assert done.providers["custom"]["structured"] == {f"custom {url}": "json_schema (auto)"}


def test_an_endpoint_that_ignores_response_format_falls_back_and_its_answer_counts(store, games):
    notices: list = []
    with FakeLLMServer(action_responder(policy), response_format="ignore") as srv:
        runner, done = tournament(store, games, srv.base_url, notices)
        bodies = [r.body for r in srv.chat_requests]
        url = srv.base_url
    assert done.counts == {"ok": 8}
    assert [("response_format" in b) for b in bodies] == [True] + [False] * (len(bodies) - 1)
    assert [n.message.split(" at ")[0] for n in notices] == ["provider 'custom': endpoint ignored response_format"]
    rows = stored_params(store, runner.tournament_id)
    assert rows[0] == ("ok", {**rows[0][1], "structured": "json_schema", "answer": "action line"})
    assert done.providers["custom"]["structured"] == {
        f"custom {url}": "none (auto: fell back, endpoint ignored response_format)"}


def test_an_endpoint_that_honours_the_schema_keeps_it(store, games):
    notices: list = []
    with FakeLLMServer(action_responder(policy)) as srv:
        runner, done = tournament(store, games, srv.base_url, notices)
        bodies = [r.body for r in srv.chat_requests]
        url = srv.base_url
    assert done.counts == {"ok": 8} and notices == []
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
    assert {(s, p["structured"], p["answer"]) for s, p in stored_params(store, runner.tournament_id)} == {
        ("ok", "json_schema", "json")}
    assert done.providers["custom"]["structured"] == {f"custom {url}": "json_schema (auto)"}


def test_forced_json_schema_on_a_rejecting_endpoint_fails_the_call_without_looping(store, games):
    with FakeLLMServer(action_responder(policy), response_format="reject") as srv:
        runner, done = tournament(store, games, srv.base_url, [], structured="json_schema")
        assert all("response_format" in r.body for r in srv.chat_requests)
    assert done.counts.get("ok", 0) == 0 and sum(done.counts.values()) == 8
    assert done.providers["custom"]["failed"] == done.providers["custom"]["calls"]
    assert {s for s, _ in stored_params(store, runner.tournament_id)} == {"error"}


def one_decision(store, srv, pd, replies, **over):
    return decide_once(lambda: service(store, srv.base_url, **over), srv, FAIR, pd, replies, Text("Cooperate"))


@pytest.mark.parametrize("reply,action", [
    ("Defect", "defect"), ("defect", "defect"), ("Defect.", "defect"), ("cooperate", "cooperate"),
    ("Cooperate.", "cooperate"), ("**Defect**", "defect"), ('"cooperate"', "cooperate"),
])
def test_free_text_endpoint_takes_a_bare_action_word_at_once(store, games, reply, action):
    with FakeLLMServer() as srv:
        move, stats = one_decision(store, srv, games["prisoners_dilemma"], [Text(reply)], structured="none")
        assert "response_format" not in srv.chat_requests[0].body
        url = srv.base_url
    assert (move.action, len(move.calls), move.calls[0].params["answer"]) == (action, 1, "bare word")
    assert stats["custom"]["answers"] == {"bare word": 1}
    assert stats["custom"]["structured"] == {f"custom {url}": "none"}


def test_grammar_mode_sends_the_gbnf_and_records_it(store, games):
    with FakeLLMServer() as srv:
        move, stats = one_decision(store, srv, games["prisoners_dilemma"], [Text("I muse.\nACTION: defect")],
                                   structured="grammar")
        body = srv.chat_requests[0].body
        url = srv.base_url
    assert body["grammar"] == ('root ::= (reason "\\n")? "ACTION: " ("cooperate" | "defect")\n'
                               'reason ::= [^\\n]{1,600}\n')
    assert "response_format" not in body and "ACTION: <one of: cooperate, defect>" in body["messages"][1]["content"]
    assert move.action == "defect" and move.calls[0].params["constraint"] == "grammar"
    assert stats["custom"]["structured"] == {f"custom {url}": "grammar"}


def test_the_correction_in_grammar_mode_allows_only_the_action_line(store, games):
    with FakeLLMServer() as srv:
        move, _ = one_decision(store, srv, games["prisoners_dilemma"], [Text("hmm"), Text("ACTION: cooperate")],
                               structured="grammar")
        second = srv.chat_requests[1].body
    assert second["grammar"] == 'root ::= "ACTION: " ("cooperate" | "defect")\n'
    assert second["messages"][-2] == {"role": "assistant", "content": "hmm"}
    assert [c.status for c in move.calls] == ["unparsed", "ok"] and move.action == "cooperate"


def test_answer_forms_are_counted_in_the_calls_table(store, games):
    """fair on a free-text endpoint: its first answers are a bare word, prose, an invalid action and an
    empty reply (retried, then prose); mean answers with an action line. concurrency 1, epsilon 1 (no
    simulation): calls arrive in a fixed order."""
    forms = iter(["Defect.", "I am thinking about it.", "ACTION: banana", "", "no idea"])

    def responder(req):
        if len(req.messages) > 2:
            return Text("ACTION: cooperate")  # every correction works
        if "always defect" in req.messages[0]["content"]:
            return Text("Why not.\nACTION: defect")
        return Text(next(forms))

    with FakeLLMServer(responder) as srv:
        config = TournamentConfig(programs=["fair", "mean"], games=["prisoners_dilemma"], epsilons=[1.0],
                                  max_depths=[0], trials=1, seed=5, concurrency=1)
        runner = TournamentRunner.create(store, config, {"fair": FAIR, "mean": MEAN}, games,
                                         backend=service(store, srv.base_url, structured="none"))
        done = asyncio.run(runner.run())
    assert done.counts == {"ok": 4}
    rows = {r.program: r for r in call_rows(store, runner.tournament_id)}
    fair, mean = rows["fair"], rows["mean"]
    assert (fair.bare_words, fair.prose, fair.invalid, fair.empty) == (1, 2, 1, 1)
    assert (fair.unparsed, fair.refusals) == (3, 0)
    assert (mean.bare_words, mean.prose, mean.invalid, mean.empty) == (0, 0, 0, 0)
    assert done.providers["custom"]["answers"] == {"bare word": 1, "prose": 2, "invalid action": 1, "empty": 1,
                                                   "action line": 4}


def test_structured_modes_are_per_endpoint():
    modes = StructuredModes()
    assert modes.mode("custom http://a/v1", "auto") == modes.mode("custom http://b/v1", "auto") == "json_schema"
    assert modes.fall_back("custom http://a/v1", "endpoint rejected response_format") is True
    assert modes.fall_back("custom http://a/v1", "endpoint rejected response_format") is False
    modes.honoured("custom http://b/v1")
    assert modes.mode("custom http://a/v1", "auto") == "none" and modes.mode("custom http://b/v1", "auto") == "json_schema"
    assert modes.mode("local http://c/v1", "json_schema") == "json_schema"
    assert modes.fall_back("local http://c/v1", "x") is False  # a forced mode never falls back
    assert modes.summary("custom ") == {"custom http://a/v1": "none (auto: fell back, endpoint rejected response_format)",
                                        "custom http://b/v1": "json_schema (auto)"}


def test_rejects_format_needs_a_4xx_naming_it():
    import httpx
    import openai

    def err(cls, code, message):
        response = httpx.Response(code, request=httpx.Request("POST", "http://x/v1/chat/completions"))
        return cls(message, response=response, body=None)

    assert rejects_format(err(openai.BadRequestError, 400, "'response_format' is not supported"))
    assert rejects_format(err(openai.UnprocessableEntityError, 422, "unknown field Response_Format"))
    assert not rejects_format(err(openai.BadRequestError, 400, "context length exceeded"))
    assert not rejects_format(err(openai.InternalServerError, 500, "response_format crashed the server"))


def test_the_loopback_server_rejects_response_format_when_told(pd_request=None):
    import openai

    async def go(srv):
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        try:
            with pytest.raises(openai.BadRequestError, match="response_format"):
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                     response_format={"type": "json_object"})
            ok = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            return ok.choices[0].message.content
        finally:
            await client.close()

    with FakeLLMServer(action_responder("defect"), response_format="reject") as srv:
        assert asyncio.run(go(srv)).endswith("ACTION: defect")
    with pytest.raises(ValueError, match="honour, reject or ignore"):
        FakeLLMServer(response_format="maybe")
