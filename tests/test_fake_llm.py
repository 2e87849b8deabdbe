"""The fake OpenAI server, exercised with the real ``openai`` client over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fake_llm import (
    FAULT_KINDS,
    ChatRequest,
    Delay,
    Empty,
    FakeLLMServer,
    FaultPlan,
    Malformed,
    Reset,
    Script,
    Status,
    Text,
    Truncated,
    action_responder,
)

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-test-DO-NOT-STORE-0123456789"
MSGS = [{"role": "system", "content": "You play a game."}, {"role": "user", "content": "Choose an action."}]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    with FakeLLMServer() as srv:
        yield srv


def client(srv: FakeLLMServer, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.base_url, api_key=SECRET, max_retries=0, timeout=timeout)


async def ask(srv: FakeLLMServer, timeout: float = 5.0, **kw):
    async with client(srv, timeout) as c:
        return await c.chat.completions.create(model=kw.pop("model", "fake-1"), messages=kw.pop("messages", MSGS), **kw)


# --------------------------------------------------------------------------- happy path


async def test_text_reply_content_usage_and_recording(server):
    seen: list[ChatRequest] = []

    def responder(req: ChatRequest):
        seen.append(req)
        return Text("I cooperate.\nACTION: cooperate")

    server.responder = responder
    r = await ask(server, temperature=0.3, max_tokens=50)
    assert r.choices[0].message.content == "I cooperate.\nACTION: cooperate"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == "fake-1" and r.object == "chat.completion"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    (req,) = seen
    assert req.index == 0 and req.model == "fake-1" and req.messages == MSGS
    assert req.temperature == 0.3 and req.extra["max_tokens"] == 50 and req.stream is False
    assert req.last_user_text == "Choose an action."
    assert "authorization" not in req.headers and "user-agent" in req.headers

    assert server.count == 1
    (rec,) = server.requests
    assert rec.path == "/v1/chat/completions" and rec.method == "POST" and rec.status == 200
    assert rec.body["messages"] == MSGS and rec.reply == Text("I cooperate.\nACTION: cooperate")
    assert rec.answered_at is not None and rec.answered_at >= rec.received_at
    assert rec.headers["authorization"] == "<redacted>"


async def test_authorization_never_stored(server):
    server.responder = Script([Text("a"), Status(429), Reset()])
    async with client(server) as c:
        for _ in range(3):
            try:
                await c.chat.completions.create(model="m", messages=MSGS, extra_headers={"api-key": SECRET})
            except openai.OpenAIError:
                pass
    assert server.count == 3
    dump = repr(server.requests) + repr(server.chat_requests) + repr(vars(server))
    assert SECRET not in dump and "Bearer" not in dump


async def test_streaming_text(server):
    content = "Long enough reasoning to span several chunks.\nACTION: defect"
    server.responder = lambda req: Text(content)
    async with client(server) as c:
        stream = await c.chat.completions.create(
            model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == content
    assert len(chunks) > 3 and chunks[-1].usage.completion_tokens > 0
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


async def test_models_health_404_and_bad_body(server):
    async with client(server) as c:
        models = await c.models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    async with httpx.AsyncClient(base_url=server.url) as h:
        assert (await h.get("/health")).json() == {"status": "ok"}
        r = await h.get("/v1/nope")
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        r = await h.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "parse the JSON body" in r.json()["error"]["message"]
        r = await h.post("/v1/chat/completions", json={"model": "m"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    async with client(server) as c:  # the error is an openai.BadRequestError for the client
        with pytest.raises(openai.BadRequestError):
            await c.chat.completions.create(model="m", messages="oops")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- faults -> openai exceptions


async def test_429_with_retry_after_is_rate_limit_error(server):
    server.responder = lambda req: Status(429, headers={"Retry-After": "7"})
    with pytest.raises(openai.RateLimitError) as ei:
        await ask(server)
    assert ei.value.status_code == 429
    assert ei.value.response.headers["retry-after"] == "7"
    assert ei.value.body["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("code", [500, 503])
async def test_5xx_is_internal_server_error(server, code):
    server.responder = lambda req: Status(code)
    with pytest.raises(openai.InternalServerError) as ei:
        await ask(server)
    assert ei.value.status_code == code


async def test_custom_status_body(server):
    server.responder = lambda req: Status(400, {"error": {"message": "context too long", "type": "x", "code": "c"}})
    with pytest.raises(openai.BadRequestError, match="context too long"):
        await ask(server)


async def test_delay_beyond_timeout_is_api_timeout_error(server):
    server.responder = lambda req: Delay(5.0, then=Text("late"))
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await ask(server, timeout=0.3)
    assert time.monotonic() - t0 < 2.0


async def test_delay_within_timeout_answers(server):
    server.responder = lambda req: Delay(0.1, then=Text("late"))
    r = await ask(server, timeout=5)
    assert r.choices[0].message.content == "late"


async def test_reset_is_api_connection_error(server):
    server.responder = lambda req: Reset()
    with pytest.raises(openai.APIConnectionError) as ei:
        await ask(server)
    assert not isinstance(ei.value, openai.APITimeoutError)
    assert server.requests[-1].status is None


async def test_malformed_body_raises_json_decode_error(server):
    # openai (max_retries=0) does not wrap an undecodable JSON body: it surfaces the
    # json.JSONDecodeError from httpx's Response.json(). Arena must catch ValueError.
    server.responder = lambda req: Malformed()
    with pytest.raises(json.JSONDecodeError):
        await ask(server)


@pytest.mark.parametrize("content", ["", None])
async def test_empty(server, content):
    server.responder = lambda req: Empty(content)
    r = await ask(server)
    assert r.choices[0].message.content == content
    assert r.usage.completion_tokens == 0


async def test_truncated(server):
    server.responder = Script([Truncated(), Truncated(drop_connection=False)])
    with pytest.raises(openai.APIConnectionError) as ei:
        await ask(server)
    assert not isinstance(ei.value, openai.APITimeoutError)
    with pytest.raises(json.JSONDecodeError):
        await ask(server)


async def test_responder_exception_is_500_and_kept(server):
    def boom(req):
        raise RuntimeError("bug in policy")

    server.responder = boom
    with pytest.raises(openai.InternalServerError, match="bug in policy"):
        await ask(server)
    assert [type(e) for e in server.errors] == [RuntimeError]


async def test_faults_print_nothing_to_stderr(server, capfd):
    server.responder = Script([Reset(), Malformed(), Truncated(), Delay(5)])
    for _ in range(4):
        with pytest.raises(Exception):
            await ask(server, timeout=0.3)
    async with httpx.AsyncClient(base_url=server.url) as h:
        await h.post("/v1/chat/completions", content=b"\xff\xfe garbage")
    server.stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --------------------------------------------------------------------------- responders


async def test_script_in_order_then_fallback(server):
    server.responder = Script(["one", Text("two"), Status(503)], fallback=Text("rest"))
    got = []
    for _ in range(5):
        try:
            got.append((await ask(server)).choices[0].message.content)
        except openai.InternalServerError:
            got.append(503)
    assert got == ["one", "two", 503, "rest", "rest"]


async def test_script_exhausted_without_fallback(server):
    script = Script(["only"])
    server.responder = script
    assert (await ask(server)).choices[0].message.content == "only"
    assert script.remaining == 0
    with pytest.raises(openai.InternalServerError, match="exhausted"):
        await ask(server)


async def test_action_responder_text_and_json_schema(server):
    server.responder = action_responder(lambda req: "defect" if req.temperature == 0 else "cooperate")
    plain = (await ask(server, temperature=0)).choices[0].message.content
    assert plain.splitlines()[-1] == "ACTION: defect" and len(plain.splitlines()) == 2

    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "move",
            "schema": {
                "type": "object",
                "properties": {"reasoning": {"type": "string"}, "action": {"type": "string"}},
                "required": ["reasoning", "action"],
            },
        },
    }
    content = (await ask(server, temperature=1, response_format=schema)).choices[0].message.content
    data = json.loads(content)
    assert data["action"] == "cooperate" and isinstance(data["reasoning"], str) and data["reasoning"]


async def test_default_responder_cooperates(server):
    assert (await ask(server)).choices[0].message.content.endswith("\nACTION: cooperate")


def test_fault_plan_validation():
    with pytest.raises(ValueError):
        FaultPlan(1.5)
    with pytest.raises(ValueError):
        FaultPlan(0.1, kinds=["nope"])
    assert set(FaultPlan(0.1).kinds) == set(FAULT_KINDS)


def _classify(outcome) -> str:
    if isinstance(outcome, openai.RateLimitError):
        return "rate_limit"
    if isinstance(outcome, openai.InternalServerError):
        return "5xx"
    if isinstance(outcome, openai.APITimeoutError):
        return "timeout"
    if isinstance(outcome, openai.APIConnectionError):
        return "connection"
    if isinstance(outcome, json.JSONDecodeError):
        return "malformed"
    if isinstance(outcome, BaseException):
        return f"unexpected {type(outcome).__name__}: {outcome}"
    content = outcome.choices[0].message.content
    return "empty" if content == "" else ("ok" if content.endswith("ACTION: cooperate") else f"bad {content!r}")


async def _run_fault_plan(seed: int) -> tuple[FaultPlan, dict[str, int]]:
    plan = FaultPlan(0.25, seed=seed, timeout_delay=10.0, retry_after=0.01)
    sem = asyncio.Semaphore(25)
    # (the client timeout turns the plan's 10 s delays into timeouts; it leaves a loaded machine time to answer
    # the others: at 0.5 s, 4 of 200 plain requests timed out on a 2-core machine at load 8)
    async with FakeLLMServer(plan) as srv, client(srv, timeout=4.0) as c:

        async def one():
            async with sem:
                try:
                    return await c.chat.completions.create(model="m", messages=MSGS)
                except Exception as e:  # noqa: BLE001 - classified below
                    return e

        outcomes = await asyncio.gather(*(one() for _ in range(200)))
        assert srv.count == 200
    counts: dict[str, int] = {}
    for o in outcomes:
        k = _classify(o)
        counts[k] = counts.get(k, 0) + 1
    return plan, counts


async def test_fault_plan_deterministic_and_mapped():
    plan, counts = await _run_fault_plan(seed=7)
    plan2, counts2 = await _run_fault_plan(seed=7)
    assert plan.injected == plan2.injected and counts == counts2
    assert plan.calls == 200
    # Fixed by the seed (Mersenne Twister draws are stable across Python versions).
    assert plan.faults_injected == 61
    assert 0.15 * 200 < plan.faults_injected < 0.35 * 200
    by_kind = plan.fault_counts()
    assert len(by_kind) >= 5  # kinds are mixed
    # Every injected fault surfaced exactly as the mapping says.
    assert counts == {
        k: v
        for k, v in {
            "ok": 200 - plan.faults_injected,
            "rate_limit": by_kind.get("rate_limit", 0),
            "5xx": by_kind.get("server_error", 0) + by_kind.get("unavailable", 0),
            "timeout": by_kind.get("timeout", 0),
            "connection": by_kind.get("reset", 0) + by_kind.get("truncated", 0),
            "malformed": by_kind.get("malformed", 0),
            "empty": by_kind.get("empty", 0),
        }.items()
        if v
    }
    other = FaultPlan(0.25, seed=8)
    for _ in range(200):
        other.decide()
    assert other.injected != plan.injected


# --------------------------------------------------------------------------- latency, concurrency, lifecycle


async def test_latency_overlaps_across_32_concurrent_requests():
    async with FakeLLMServer(latency=0.2) as srv, client(srv, timeout=10) as c:
        await c.chat.completions.create(model="m", messages=MSGS)  # warm up imports / first connection
        srv.reset_stats()
        t0 = time.monotonic()
        results = await asyncio.gather(*(c.chat.completions.create(model="m", messages=MSGS) for _ in range(32)))
        elapsed = time.monotonic() - t0
    assert len(results) == 32 and srv.count == 32
    assert elapsed >= 0.2  # overlap is max_concurrency below (a wall-clock bound failed under load: 3.0 s)
    assert srv.max_concurrency >= 16
    assert all(r.duration >= 0.2 for r in srv.requests)


async def test_stop_is_quick_with_sleeping_requests():
    srv = FakeLLMServer(lambda req: Delay(30)).start()
    url = srv.url
    c = client(srv, timeout=60)
    task = asyncio.create_task(c.chat.completions.create(model="m", messages=MSGS))
    for _ in range(200):
        if srv.in_flight:
            break
        await asyncio.sleep(0.01)
    assert srv.in_flight == 1
    t0 = time.monotonic()
    await asyncio.to_thread(srv.stop)
    assert time.monotonic() - t0 < 1.5
    with pytest.raises(openai.APIConnectionError):
        await asyncio.wait_for(task, 5)
    await c.close()
    assert not srv.running
    with pytest.raises(httpx.ConnectError):  # the listening socket is closed
        httpx.get(f"{url}/health", timeout=1)


def test_sync_context_manager_and_keepalive_stop():
    with FakeLLMServer(action_responder("defect")) as srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1" and srv.url + "/v1" == srv.base_url
        sync = openai.OpenAI(base_url=srv.base_url, api_key=SECRET, max_retries=0, timeout=5)
        r = sync.chat.completions.create(model="m", messages=MSGS)
        assert r.choices[0].message.content.endswith("ACTION: defect")
        t0 = time.monotonic()
    # leaving the block stops the server even though the client holds a keep-alive connection
    assert time.monotonic() - t0 < 1.5
    sync.close()


async def test_reset_stats(server):
    await ask(server)
    server.reset_stats()
    assert server.count == 0 and server.requests == [] and server.max_concurrency == 0


def test_cli_serves_until_interrupted():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0", "--action", "defect", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        base_url = line.split()[line.split().index("at") + 1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        r = httpx.post(f"{base_url}/chat/completions", json={"model": "m", "messages": MSGS}, timeout=5)
        assert r.json()["choices"][0]["message"]["content"].endswith("ACTION: defect")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0 and "1 chat requests" in out and err == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_concurrent_recording_is_thread_safe(server):
    def worker():
        with httpx.Client(base_url=server.url) as h:
            for _ in range(10):
                h.post("/v1/chat/completions", json={"model": "m", "messages": MSGS})

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.count == 80
    assert sorted(r.index for r in server.requests) == list(range(80))
