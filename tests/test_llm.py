"""LLM programs end to end against a real HTTP server on 127.0.0.1 (tests.support.fake_llm).

Nothing of Arena's own is mocked: requests go through openai.AsyncOpenAI and httpx to a socket.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from arena.errors import ArenaError
from arena.engine.grid import TournamentConfig
from arena.llm.service import LLMService
from arena.library.programs import LLMProgram
from arena.llm.registry import BUILTIN
from arena.engine.records import CAPPED, GROUNDED, SIMULATED
from arena.runner.tournament import TournamentRunner
from tests.support.fake_llm import (
    Delay,
    Empty,
    FakeLLMServer,
    FaultPlan,
    Malformed,
    Reset,
    Script,
    Status,
    Text,
    action_responder,
)
from llm_policies import mirror_policy as policy
from tests.support.decisions import one_decision as decide_once

ENV = {"LLM_API_KEY": "test-key-not-secret"}
FAIR = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You are fair: mirror what the simulated opponent did.")
MEAN = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You always defect.")


def registry(url: str, **over):
    fast = dict(base_url=url, backoff_initial=0.01, backoff_max=0.05, timeout=1.0, max_attempts=4, retry_after_max=2)
    return {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update={**fast, **over})}


def service(store, url, **over):
    return LLMService(store, registry(url, **over), ENV)


def run(store, url, programs, games, new=False, provider=None, **cfg):
    config = TournamentConfig(**{"programs": [p.id for p in programs], "games": ["prisoners_dilemma"],
                                 "epsilons": [0.5], "max_depths": [4], "trials": 3, "seed": 11, "concurrency": 4, **cfg})
    lib = {p.id: p for p in programs}
    runner = TournamentRunner.create(store, config, lib, games, backend=service(store, url, **(provider or {})), new=new)
    return runner, asyncio.run(runner.run())


def test_tournament_of_llm_programs_stores_calls_actions_and_tree(store, programs, games):
    with FakeLLMServer(action_responder(policy)) as srv:
        runner, done = run(store, srv.base_url, [FAIR, MEAN, programs["defectbot"]], games)
    assert done.status == "finished" and done.done == 27 and done.counts == {"ok": 27}
    trials = store.trial_rows(runner.tournament_id)
    for t in trials:
        nodes = store.nodes(t["id"])
        calls = store.calls(trial_id=t["id"])
        llm_nodes = [n for n in nodes if n["program"] in ("fair", "mean")]
        assert t["n_calls"] == len(calls) == len(llm_nodes)  # one clean call per LLM node
        by_node = {c["node_id"]: c for c in calls}
        for n in llm_nodes:
            c = by_node[n["id"]]
            assert (c["parsed_action"], c["status"], c["attempt"], c["cached"]) == (n["action"], "ok", 1, 0)
            assert c["messages"][0]["content"] == (FAIR if n["program"] == "fair" else MEAN).system_prompt
            user = c["messages"][1]["content"]
            if n["mode"] == SIMULATED:  # told what its simulated opponent (the child node) did
                child = next(x for x in nodes if x["parent_id"] == n["id"])
                assert user.endswith(f"A simulation of your opponent playing against you (your own program) "
                                     f"chose: {child['action']}. Decide your action.")
            else:
                assert n["mode"] in (GROUNDED, CAPPED) and "No simulation of your opponent is available" in user
        # the fair program cooperates with the defector exactly when it was grounded at the top
        if t["row_program"] == "fair" and t["col_program"] in ("mean", "defectbot"):
            assert (t["row_action"] == "cooperate") == (nodes[0]["mode"] == GROUNDED)
        if t["row_program"] == t["col_program"] == "fair":
            assert t["cooperative"] == 1
    assert srv.count == store.query("SELECT count(*) AS n FROM llm_calls")[0]["n"]


def one_decision(store, srv, pd, script_replies, **over):
    """Drive one LLM decision through the service (real HTTP) and return its move."""
    return decide_once(lambda: service(store, srv.base_url, **over), srv, FAIR, pd, script_replies,
                       action_responder("cooperate"))


@pytest.fixture
def pd(games):
    return games["prisoners_dilemma"]


@pytest.mark.parametrize("fault,error", [
    (Status(500), "HTTP 500"),
    (Status(503), "HTTP 503"),
    (Delay(3.0), "timeout"),
    (Reset(), "connection error"),
    (Malformed(), "JSONDecodeError"),
    (Empty(), "empty answer"),
])
def test_each_fault_is_retried_and_every_attempt_recorded(store, pd, fault, error):
    with FakeLLMServer(Script([])) as srv:
        move, stats = one_decision(store, srv, pd, [fault, fault])
    assert move.action == "cooperate"
    assert [(c.attempt, c.status) for c in move.calls] == [(1, "error"), (2, "error"), (3, "ok")]
    assert all(error in c.error for c in move.calls[:2])
    assert stats["custom"]["retries"] == 2 and stats["custom"]["failed"] == 0


def test_429_honours_retry_after(store, pd):
    with FakeLLMServer(Script([])) as srv:
        move, _ = one_decision(store, srv, pd, [Status(429, headers={"Retry-After": "0.4"})])
        first, second = srv.requests[0], srv.requests[1]
    assert move.action == "cooperate" and "HTTP 429" in move.calls[0].error
    assert second.received_at - first.received_at >= 0.4


def test_bounded_retries_then_the_failure_is_recorded(store, pd):
    with FakeLLMServer(Script([])) as srv:
        move, stats = one_decision(store, srv, pd, [Status(500)] * 10)
    assert move.action is None and not move.refused
    assert len(move.calls) == 4 and "failed after 4 attempt(s)" in move.error
    assert stats["custom"]["failed"] == 1


def test_garbage_answer_gets_one_corrective_retry(store, pd):
    with FakeLLMServer(Script([])) as srv:
        move, _ = one_decision(store, srv, pd, [Text("I like turtles."), Text("ACTION: defect")])
        correction = srv.requests[1].body["messages"]
    assert move.action == "defect"
    assert [c.status for c in move.calls] == ["unparsed", "ok"]
    assert correction[-2] == {"role": "assistant", "content": "I like turtles."}
    assert correction[-1]["content"] == (
        "Your reply above did not end with a valid action line, so it could not be read. "
        "Reply with exactly one of these lines and nothing else:\nACTION: cooperate\nACTION: defect")
    assert [c.params["answer"] for c in move.calls] == ["prose", "action line"]


def test_garbage_twice_is_a_refusal_never_a_default(store, pd):
    with FakeLLMServer(Script([])) as srv:
        move, _ = one_decision(store, srv, pd, [Text("ACTION: banana"), Text("no")])
    assert (move.action, move.refused) == (None, True)
    assert [(c.status, c.parsed_action) for c in move.calls] == [("unparsed", None), ("refusal", None)]


def test_refusals_are_counted_in_the_tournament(store, games):
    def stubborn(req):
        return "I will not play." if "always defect" in req.messages[0]["content"] else action_responder(policy)(req)

    with FakeLLMServer(stubborn) as srv:
        runner, done = run(store, srv.base_url, [FAIR, MEAN], games, epsilons=[1.0])
    assert done.status == "finished" and done.counts == {"ok": 3, "refused": 9}
    refused = store.trial_rows(runner.tournament_id, "status = 'refused'")
    assert all(t["row_action"] is None or t["col_action"] is None for t in refused)
    assert all("even after a corrective retry" in t["error"] for t in refused)


def test_auth_failure_stops_the_run_with_a_clear_message(store, games):
    with FakeLLMServer(lambda req: Status(401)) as srv:
        runner, done = run(store, srv.base_url, [FAIR], games)
    assert done.status == "failed" and "refused model 'fake-8b'" in done.error and "HTTP 401" in done.error
    assert store.count_trials(runner.tournament_id) == 0


def test_missing_key_is_reported_before_anything_is_recorded(store, games):
    config = TournamentConfig(programs=["fair"], games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[2], trials=1)
    with pytest.raises(ArenaError, match="provider 'custom' needs the environment variable LLM_API_KEY"):
        TournamentRunner.create(store, config, {"fair": FAIR}, games, backend=LLMService(store, registry("http://x/v1"), {}))
    assert store.tournaments() == []


def test_cache_replays_a_tournament_for_free(store, games):
    with FakeLLMServer(action_responder(policy)) as srv:
        first, a = run(store, srv.base_url, [FAIR, MEAN], games)
        calls_first = srv.count
        second, b = run(store, srv.base_url, [FAIR, MEAN], games, new=True)
        assert srv.count == calls_first  # not one request: all from the cache
        third, c = run(store, srv.base_url, [FAIR, MEAN], games, new=True, cache=False)
        assert srv.count == 2 * calls_first
    assert b.providers["custom"]["cached"] == calls_first and b.providers["custom"]["attempts"] == 0
    cols = "seq, row_action, col_action, row_payoff, col_payoff, n_nodes, n_calls"
    table = lambda tid: store.query(f"SELECT {cols} FROM trials WHERE tournament_id=? ORDER BY seq", (tid,))
    assert table(first.tournament_id) == table(second.tournament_id) == table(third.tournament_id)
    assert {r["cached"] for r in store.query("SELECT cached FROM llm_calls WHERE tournament_id=?", (second.tournament_id,))} == {1}


def test_structured_provider_requests_and_reads_json(store, pd):
    with FakeLLMServer(Script([])) as srv:
        move, _ = one_decision(store, srv, pd, [], structured="json_schema")
        fmt = srv.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["properties"]["action"]["enum"] == ["cooperate", "defect"]
    assert move.action == "cooperate" and json.loads(move.calls[0].response)["action"] == "cooperate"


def test_imagine_mode_runs_no_simulations(store, games):
    with FakeLLMServer(action_responder(policy)) as srv:
        runner, done = run(store, srv.base_url, [FAIR, MEAN], games, simulation="imagine")
    modes = {r["mode"] for r in store.query("SELECT mode FROM nodes")}
    assert done.status == "finished" and modes == {"direct"}
    assert all("You cannot run your opponent" in c["messages"][1]["content"]
               for t in store.trial_rows(runner.tournament_id) for c in store.calls(trial_id=t["id"]))


def test_mixed_faults_never_lose_a_trial(store, games):
    plan = FaultPlan(0.25, ["rate_limit", "server_error", "reset", "malformed", "empty"], seed=3,
                     responder=action_responder(policy))
    with FakeLLMServer(plan) as srv:
        runner, done = run(store, srv.base_url, [FAIR, MEAN], games, trials=8, provider={"max_attempts": 3})
        requests = srv.count
    assert done.status == "finished" and done.done == 32
    stored = store.query("SELECT count(*) AS n, sum(status = 'error') AS err FROM llm_calls")[0]
    assert stored["n"] == requests  # every attempt is in llm_calls
    assert stored["err"] >= 1 and done.providers["custom"]["retries"] >= 1


@pytest.mark.parametrize("concurrency, provider_limit", [(3, 8), (8, 2)])
def test_calls_in_flight_are_capped_by_the_tournament_and_by_the_provider(store, games, concurrency, provider_limit):
    # Deep trees (each level waits for the one below) with more decisions in flight than slots: the
    # slots stay full, no more calls than the lower limit ever reach the server, nothing deadlocks.
    with FakeLLMServer(action_responder(policy), latency=0.05) as srv:
        runner, done = run(store, srv.base_url, [FAIR, MEAN], games, provider={"concurrency": provider_limit},
                           concurrency=concurrency, epsilons=[0.2], max_depths=[6], trials=3)
        assert srv.max_concurrency == min(concurrency, provider_limit)
        calls = srv.count
    assert done.status == "finished" and done.done == 12 and done.counts == {"ok": 12}
    assert sum(t["n_calls"] for t in store.trial_rows(runner.tournament_id)) == calls
