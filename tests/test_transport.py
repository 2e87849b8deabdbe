"""The lean call path (arena/llm/transport.py) against the openai SDK's, on the loopback server: the same
exceptions and messages for every reply the server can give, and the same stored tournament."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import openai
import pytest

from arena.engine.grid import TournamentConfig
from arena.library.programs import LLMProgram
from arena.llm.registry import BUILTIN
from arena.llm.service import LLMService
from arena.llm.transport import Completion, LeanTransport, SdkTransport, parse_completion
from arena.runner.tournament import TournamentRunner
from arena.store.database import Store
from tests.support.fake_llm import (
    Delay,
    Empty,
    FakeLLMServer,
    Malformed,
    Reset,
    Script,
    Status,
    Text,
    Truncated,
    action_responder,
)
from llm_policies import mirror_policy

BODY = {"model": "fake-8b", "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 8}


async def outcome(transport, body=BODY):
    """What one chat call gives: the Completion, or (exception type, str, retry-after header, status)."""
    try:
        return await transport.chat(body)
    except Exception as exc:  # noqa: BLE001 - the test compares whatever each path raises
        response = getattr(exc, "response", None)
        return (type(exc), str(exc), None if response is None else response.headers.get("retry-after"),
                getattr(exc, "status_code", None), type(exc.__cause__).__mro__[-2] if exc.__cause__ else None)
    finally:
        await transport.aclose()


REPLIES = [
    Text("ACTION: cooperate"),
    Status(429, headers={"Retry-After": "7"}),
    Status(500),
    Status(503, body="upstream down"),
    Status(400, body={"error": {"message": "'response_format' is not supported", "type": "invalid_request_error"}}),
    Status(401),
    Status(404, body={"detail": "no such model"}),
    Status(422, body={"error": {"message": "Unknown field Response_Format"}}),
    Malformed(),
    Empty(""),
    Empty(None),
    Truncated(drop_connection=False),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__ + str(getattr(r, "code", "")))
def test_each_reply_gives_what_the_sdk_gives(reply):
    with FakeLLMServer(Script([], fallback=reply)) as srv:
        sdk = asyncio.run(outcome(SdkTransport(srv.base_url, "k", timeout=5)))
        lean = asyncio.run(outcome(LeanTransport(srv.base_url, "k", timeout=5)))
    assert lean == sdk


def test_completion_fields():
    with FakeLLMServer(Script([], fallback=Text("ACTION: defect"))) as srv:
        got = asyncio.run(outcome(LeanTransport(srv.base_url, "k", timeout=5)))
    assert isinstance(got, Completion) and got.content == "ACTION: defect"
    assert got.prompt_tokens is not None and got.prompt_tokens > 0 and got.completion_tokens > 0


@pytest.mark.parametrize("reply,kind", [(Delay(2.0), openai.APITimeoutError), (Reset(), openai.APIConnectionError),
                                        (Truncated(), openai.APIConnectionError)])
def test_timeout_and_connection_errors_are_the_sdks_classes(reply, kind):
    with FakeLLMServer(Script([], fallback=reply)) as srv:
        got = asyncio.run(outcome(LeanTransport(srv.base_url, "k", timeout=0.5)))
    assert got[0] is kind and got[1] == ("Request timed out." if kind is openai.APITimeoutError else "Connection error.")


def test_the_key_goes_as_a_bearer_token_only():
    with FakeLLMServer(action_responder("cooperate"), require_key="sk-lean-0123456789") as srv:
        good = asyncio.run(outcome(LeanTransport(srv.base_url, "sk-lean-0123456789", timeout=5)))
        bad = asyncio.run(outcome(LeanTransport(srv.base_url, "sk-wrong", timeout=5)))
        assert srv.authorized == 1
    assert good.content.endswith("\nACTION: cooperate")
    assert bad[0] is openai.AuthenticationError and bad[3] == 401


def test_a_body_that_is_not_a_completion():
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        parse_completion(b"<html>")
    with pytest.raises(ValueError, match=r"not a chat completion \(JSON list\)"):
        parse_completion(b"[1, 2]")
    with pytest.raises(ValueError, match=r"no choices\[0\]\.message"):
        parse_completion(b'{"choices": [{"text": "hi"}]}')
    with pytest.raises(ValueError, match=r"content is not text \(JSON int\)"):
        parse_completion(b'{"choices": [{"message": {"content": 3}}]}')
    assert parse_completion(b'{"choices": []}') == Completion(None)
    assert parse_completion(b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 5, '
                            b'"completion_tokens": true}}') == Completion("x", 5, None)


def test_a_second_event_loop_gets_its_own_session():
    with FakeLLMServer(action_responder("cooperate")) as srv:
        t = LeanTransport(srv.base_url, "k", timeout=5)
        first = asyncio.run(t.chat(BODY))
        second = asyncio.run(t.chat(BODY))  # the first loop (and its session's connections) is gone
        asyncio.run(t.aclose())
    assert first.content == second.content and first.content.endswith("\nACTION: cooperate")


# --- the same tournament through either path --------------------------------------------------------------
FAIR = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You are fair: mirror what the simulated opponent did.")
MEAN = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7, system_prompt="You always defect.")


def responder(req):
    """By content alone (calls arrive in any order): the column player facing DefectBot always gets a 503
    (its calls fail after their attempts), a first answer to 'mean' as the row player has no action (it is
    asked again), every other call answers as the mirror policy."""
    text = req.messages[1]["content"]
    if "Built-in program, strategy 'defect'" in text and "You are the column player" in text:
        return Status(503, body={"error": {"message": "overloaded"}})
    if "always defect" in req.messages[0]["content"] and "You are the row player" in text and len(req.messages) == 2:
        return Text("I would rather not say.")
    return action_responder(mirror_policy)(req)


def run_with(path, url: str, transport: str, games, defectbot) -> None:
    registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(
        base_url=url, transport=transport, backoff_initial=0.0, backoff_max=0.0, timeout=5.0, max_attempts=2,
        structured="none", outage_after=1000))}
    config = TournamentConfig(programs=["fair", "mean", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.3],
                              max_depths=[4], trials=4, seed=5, concurrency=8)
    with Store(path) as store:
        runner = TournamentRunner.create(store, config, {"fair": FAIR, "mean": MEAN, "defectbot": defectbot}, games,
                                         backend=LLMService(store, registry, {"LLM_API_KEY": "sk-same-0123456789"}))
        done = asyncio.run(runner.run())
    assert done.status == "finished"


def stored(path) -> dict[str, list[tuple]]:
    """The stored rows without ids, timestamps or latencies; nodes and calls by (trial seq, node idx, attempt)."""
    con = sqlite3.connect(path)
    trials = con.execute(
        "SELECT seq, game, row_program, col_program, epsilon, max_depth, trial_index, seed, row_action, col_action, "
        "row_payoff, col_payoff, cooperative, status, error, n_nodes, n_calls, row_depth, col_depth FROM trials "
        "ORDER BY seq").fetchall()
    nodes = con.execute(
        "SELECT t.seq, n.idx, p.idx, n.side, n.depth, n.program, n.mode, n.grounded, n.action, n.error, n.round "
        "FROM nodes n JOIN trials t ON t.id = n.trial_id LEFT JOIN nodes p ON p.id = n.parent_id "
        "ORDER BY t.seq, n.idx").fetchall()
    calls = con.execute(
        "SELECT t.seq, n.idx, c.attempt, c.program, c.provider, c.model, c.messages, c.params, c.response, "
        "c.parsed_action, c.status, c.error, c.prompt_tokens, c.completion_tokens, c.cached, c.replica "
        "FROM llm_calls c JOIN trials t ON t.id = c.trial_id JOIN nodes n ON n.id = c.node_id "
        "ORDER BY t.seq, n.idx, c.id").fetchall()
    cache = con.execute("SELECT key, endpoint, provider, model, response FROM response_cache ORDER BY key").fetchall()
    con.close()
    return {"trials": trials, "nodes": nodes, "calls": calls, "cache": cache}


def test_lean_and_sdk_paths_store_the_same_tournament(tmp_path, games, programs):
    with FakeLLMServer(responder) as srv:
        run_with(tmp_path / "sdk.db", srv.base_url, "sdk", games, programs["defectbot"])
        run_with(tmp_path / "lean.db", srv.base_url, "lean", games, programs["defectbot"])
    sdk, lean = stored(tmp_path / "sdk.db"), stored(tmp_path / "lean.db")
    assert lean == sdk
    # the run exercised every kind of row: answers, refusals asked again, failures with the SDK's message
    assert len(sdk["trials"]) == 9 * 4 and {t[13] for t in sdk["trials"]} == {"ok", "error"}
    errors = {c[11] for c in sdk["calls"] if c[10] == "error"}
    assert errors == {"HTTP 503: Error code: 503 - overloaded"}
    assert any(c[2] == 1 and c[9] is None and c[10] == "refusal" for c in sdk["calls"]) or \
        any(len(json.loads(c[6])) > 2 for c in sdk["calls"])
    assert len(sdk["calls"]) > 40 and len(sdk["cache"]) > 20
