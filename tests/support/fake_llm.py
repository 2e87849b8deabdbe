"""A real, local HTTP server that speaks the OpenAI chat-completions API.

Used by Arena's tests (LLM code paths run against a real socket, never against
mocks of our own functions) and by benchmarks (fixed injected latency, to
measure how well the harness overlaps requests).

Standard library only. Typical use::

    with FakeLLMServer(Script([Text("ACTION: cooperate"), Status(429)])) as srv:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x")
        ...

    async with FakeLLMServer(action_responder("defect"), latency=0.1) as srv:
        ...

A *responder* is any callable ``responder(request: ChatRequest) -> Reply``
(a plain ``str`` is accepted as ``Text(str)``). Replies are small frozen
dataclasses: :class:`Text`, :class:`Status`, :class:`Delay`, :class:`Reset`,
:class:`Malformed`, :class:`Empty`, :class:`Truncated`.

What the real ``openai`` client (max_retries=0) raises for each reply:

* ``Text``                       -> a normal ``ChatCompletion``
* ``Status(429, headers=...)``   -> ``openai.RateLimitError`` (headers on ``.response``)
* ``Status(500)`` / ``Status(503)`` -> ``openai.InternalServerError``
* ``Status(400/401/404/...)``    -> the matching ``openai.APIStatusError`` subclass
* ``Delay(s)`` with s > client timeout -> ``openai.APITimeoutError``
* ``Reset()``                    -> ``openai.APIConnectionError`` (TCP RST)
* ``Truncated()``                -> ``openai.APIConnectionError`` (body cut, connection dropped)
* ``Truncated(drop_connection=False)`` / ``Malformed()`` -> ``json.JSONDecodeError``
  (a complete 200 response whose JSON body does not parse; openai does not wrap it)
* ``Empty()``                    -> a normal ``ChatCompletion`` whose content is ``""`` (or ``None``)
* ``Echo(500)``                  -> ``openai.InternalServerError`` whose message holds the request's headers

``FakeLLMServer(response_format="reject")`` answers every request carrying a ``response_format`` with a
400 whose message names it (as servers without constrained output do); ``"ignore"`` hands the responder
the request without it (its reply is free text, as from a server that drops the field); the default
``"honour"`` passes it on.

``FakeLLMServer(require_key=K)`` answers 401 to a chat request without ``Authorization: Bearer K``
(and counts those with it in ``.authorized``), as a real provider does.

Run ``python -m tests.support.fake_llm --help`` for a stand-alone demo server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Callable, Iterable, Mapping, Sequence, Union
from urllib.parse import urlsplit

__all__ = [
    "Text",
    "Status",
    "Delay",
    "Reset",
    "Malformed",
    "Empty",
    "Truncated",
    "Echo",
    "Reply",
    "Responder",
    "ChatRequest",
    "RecordedRequest",
    "Script",
    "FaultPlan",
    "FAULT_KINDS",
    "action_responder",
    "FakeLLMServer",
    "main",
]

# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Text:
    """A normal completion with ``content``; ``delay`` seconds before answering."""

    content: str
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Status:
    """An HTTP error (or any status). ``body``: dict (sent as JSON), str/bytes (raw) or
    None (an OpenAI-shaped error object for ``code``)."""

    code: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds``, then answer with ``then`` (default ``Text("OK")``)."""

    seconds: float
    then: "Reply | None" = None


@dataclass(frozen=True)
class Reset:
    """Close the connection with a TCP RST, without any HTTP response."""

    delay: float = 0.0


@dataclass(frozen=True)
class Malformed:
    """200, ``Content-Type: application/json``, but a body that is not JSON."""

    body: bytes = b"<html><body>502 Bad Gateway</body></html>"
    delay: float = 0.0


@dataclass(frozen=True)
class Empty:
    """200 with a valid completion whose message content is ``content`` ("" or None)."""

    content: str | None = ""
    delay: float = 0.0


@dataclass(frozen=True)
class Truncated:
    """A valid completion cut after ``fraction`` of its bytes.

    ``drop_connection=True`` (default): Content-Length announces the full body, the
    connection is closed mid-body (client sees a protocol/connection error).
    ``drop_connection=False``: a complete response whose body is cut JSON.
    In streaming mode: only part of the SSE events are sent.
    """

    fraction: float = 0.5
    drop_connection: bool = True
    delay: float = 0.0


@dataclass(frozen=True)
class Echo:
    """An error (``code``) whose body echoes the request line and *all* its headers, credentials
    included: a misbehaving proxy, for checking that a client never stores what such a body holds."""

    code: int = 500
    delay: float = 0.0


Reply = Union[Text, Status, Delay, Reset, Malformed, Empty, Truncated, Echo]
REPLY_TYPES = (Text, Status, Delay, Reset, Malformed, Empty, Truncated, Echo)


def _coerce(reply: Any) -> Reply:
    if isinstance(reply, REPLY_TYPES):
        return reply
    if isinstance(reply, str):
        return Text(reply)
    raise TypeError(f"responder returned {type(reply).__name__}, expected a Reply or str")


# --------------------------------------------------------------------------- requests

_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "openai-api-key"}
)
REDACTED = "<redacted>"
_KNOWN_FIELDS = frozenset(
    {"messages", "model", "temperature", "response_format", "stream"}
)


@dataclass(frozen=True)
class ChatRequest:
    """What a responder sees: one parsed chat-completions request (no credentials)."""

    index: int  # 0-based arrival order among chat-completion requests
    model: str | None
    messages: list[dict[str, Any]]
    temperature: float | None
    response_format: Any
    stream: bool
    extra: dict[str, Any]  # every other body field (max_tokens, seed, tools, ...)
    headers: dict[str, str]  # lower-cased names, authorization-like headers removed
    body: dict[str, Any]

    @property
    def last_user_text(self) -> str:
        """Text of the last user message ("" if none)."""
        for m in reversed(self.messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return _message_text(m)
        return ""

    @property
    def wants_json(self) -> bool:
        rf = self.response_format
        return isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object")


@dataclass
class RecordedRequest:
    """One request as the server saw it. Times are ``time.monotonic()`` seconds;
    ``answered_at``/``status`` are set just before the response's first byte is written."""

    index: int  # 0-based arrival order among all requests
    method: str
    path: str
    received_at: float
    headers: dict[str, str]  # authorization-like headers replaced by "<redacted>"
    body: Any = None  # parsed JSON, or None if absent/unparseable
    reply: Reply | None = None  # what the responder chose (None for non-chat paths)
    status: int | None = None  # HTTP status sent; None for Reset / aborted
    answered_at: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.received_at


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _approx_tokens(text: str | None) -> int:
    return 0 if not text else max(1, (len(text) + 3) // 4)


Responder = Callable[[ChatRequest], "Reply | str"]

# --------------------------------------------------------------------------- responders


def action_responder(
    policy: Callable[[ChatRequest], Any] | str,
    *,
    reasoning: Callable[[ChatRequest, str], str] | str | None = None,
) -> Responder:
    """Responder answering with an action chosen by ``policy(request) -> name``.

    ``policy`` may also be a plain action name (constant policy), and may return a
    Reply instead of a name to pass it through. Content is a short reasoning line and
    a final line ``ACTION: <name>``; if the request's response_format is json_schema
    (or json_object) the content is ``{"reasoning": "...", "action": "<name>"}``.
    """

    def respond(request: ChatRequest) -> Reply:
        result = policy(request) if callable(policy) else policy
        if isinstance(result, REPLY_TYPES):
            return result
        name = str(result)
        if reasoning is None:
            why = f"Considering the situation, I choose {name}."
        elif callable(reasoning):
            why = reasoning(request, name)
        else:
            why = reasoning
        if request.wants_json:
            return Text(json.dumps({"reasoning": why, "action": name}))
        return Text(f"{why}\nACTION: {name}")

    return respond


class Script:
    """Responder returning ``replies`` in order (str -> Text), then ``fallback``.

    ``fallback`` is a Reply, a responder, or None (then: 500 "script exhausted").
    Thread-safe; the n-th request to arrive gets the n-th reply.
    """

    def __init__(self, replies: Iterable[Reply | str], fallback: Reply | Responder | None = None):
        self.replies: list[Reply] = [_coerce(r) for r in replies]
        self.fallback = fallback
        self._next = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return min(self._next, len(self.replies))

    @property
    def remaining(self) -> int:
        return len(self.replies) - self.used

    def __call__(self, request: ChatRequest) -> Reply:
        with self._lock:
            i = self._next
            self._next += 1
        if i < len(self.replies):
            return self.replies[i]
        fb = self.fallback
        if fb is None:
            return Status(500, _error_body(500, "fake_llm: Script exhausted"))
        if isinstance(fb, REPLY_TYPES):
            return fb
        return _coerce(fb(request))


FAULT_KINDS: tuple[str, ...] = (
    "rate_limit",  # 429 + Retry-After      -> openai.RateLimitError
    "server_error",  # 500                   -> openai.InternalServerError
    "unavailable",  # 503                    -> openai.InternalServerError
    "timeout",  # Delay(timeout_delay)       -> openai.APITimeoutError (if client timeout shorter)
    "reset",  # TCP RST                      -> openai.APIConnectionError
    "malformed",  # 200, body not JSON       -> json.JSONDecodeError
    "empty",  # 200, content ""              -> no error
    "truncated",  # body cut, conn dropped   -> openai.APIConnectionError
)


class FaultPlan:
    """Responder wrapper replacing a share ``rate`` of replies with faults.

    Deterministic: the i-th request to arrive gets the i-th draw of
    ``random.Random(seed)``; a faulted request gets a kind drawn from ``kinds``
    (names from FAULT_KINDS, or Reply instances used as-is). The wrapped
    ``responder`` (default ``action_responder("cooperate")``) is not called for a
    faulted request, except for "timeout" (it is the answer sent after the delay).
    """

    def __init__(
        self,
        rate: float,
        kinds: Sequence[str | Reply] = FAULT_KINDS,
        seed: int = 0,
        responder: Responder | None = None,
        *,
        retry_after: float = 0.05,
        timeout_delay: float = 10.0,
    ):
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        kinds = tuple(kinds)
        if not kinds:
            raise ValueError("kinds must not be empty")
        for k in kinds:
            if not isinstance(k, REPLY_TYPES) and k not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {k!r}; known: {', '.join(FAULT_KINDS)}")
        self.rate = rate
        self.kinds = kinds
        self.seed = seed
        self.responder = responder if responder is not None else action_responder("cooperate")
        self.retry_after = retry_after
        self.timeout_delay = timeout_delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls = 0
        self.injected: list[tuple[int, str | Reply]] = []  # (call index, kind)

    @property
    def faults_injected(self) -> int:
        return len(self.injected)

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, k in self.injected:
            key = k if isinstance(k, str) else type(k).__name__
            counts[key] = counts.get(key, 0) + 1
        return counts

    def decide(self) -> str | Reply | None:
        """Next draw: a fault kind, or None for a normal reply."""
        with self._lock:
            i = self.calls
            self.calls += 1
            if self._rng.random() >= self.rate:
                return None
            kind = self.kinds[self._rng.randrange(len(self.kinds))]
            self.injected.append((i, kind))
            return kind

    def fault_reply(self, kind: str | Reply, request: ChatRequest) -> Reply:
        if isinstance(kind, REPLY_TYPES):
            return kind
        if kind == "rate_limit":
            ra = self.retry_after
            return Status(
                429,
                headers={"Retry-After": str(max(0, int(-(-ra // 1)))), "retry-after-ms": str(int(ra * 1000))},
            )
        if kind == "server_error":
            return Status(500)
        if kind == "unavailable":
            return Status(503)
        if kind == "timeout":
            return Delay(self.timeout_delay, then=_coerce(self.responder(request)))
        if kind == "reset":
            return Reset()
        if kind == "malformed":
            return Malformed()
        if kind == "empty":
            return Empty()
        if kind == "truncated":
            return Truncated()
        raise ValueError(kind)  # pragma: no cover - validated in __init__

    def __call__(self, request: ChatRequest) -> Reply:
        kind = self.decide()
        if kind is None:
            return _coerce(self.responder(request))
        return self.fault_reply(kind, request)


# --------------------------------------------------------------------------- HTTP layer

_ERROR_DEFAULTS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "Forbidden."),
    404: ("invalid_request_error", "unknown_url", "Not found."),
    405: ("invalid_request_error", None, "Method not allowed."),
    408: ("timeout", None, "Request timed out."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (fake). Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _error_body(code: int, message: str | None = None, *, param: Any = None) -> dict[str, Any]:
    etype, ecode, default = _ERROR_DEFAULTS.get(
        code, ("server_error" if code >= 500 else "invalid_request_error", None, f"HTTP {code}")
    )
    return {"error": {"message": message or default, "type": etype, "param": param, "code": ecode}}


class _Aborted(Exception):
    """The server is stopping while a handler sleeps."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    fake: "FakeLLMServer"

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn() (can block on DNS).
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def handle_error(self, request: Any, client_address: Any) -> None:  # silence tracebacks
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: Nagle would hold the body ~40 ms
    server_version = "FakeLLM/1.0"
    sys_version = ""
    server: _HTTPServer

    # -- plumbing ---------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ValueError, _Aborted):
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass
        finally:
            self.server.fake._untrack(self.connection)

    def _sleep(self, seconds: float) -> None:
        if seconds and seconds > 0 and self.server.fake._stopping.wait(seconds):
            self._reset()
            raise _Aborted

    def _begin(self, rec: RecordedRequest, in_flight: bool = False) -> None:
        self._rec: RecordedRequest | None = rec
        self._in_flight = in_flight
        if in_flight:
            self.server.fake._enter()

    def _answered(self, status: int | None) -> None:
        """Mark the current request answered, *before* its bytes go out, so a client
        that has its response always sees the record complete and in-flight decreased."""
        rec = getattr(self, "_rec", None)
        if rec is None:
            return
        self._rec = None
        rec.status = status
        rec.answered_at = time.monotonic()
        if self._in_flight:
            self._in_flight = False
            self.server.fake._exit()

    def _reset(self) -> None:
        """Abort the connection with an RST (SO_LINGER 0, then close)."""
        self._answered(None)
        self.close_connection = True
        conn = self.connection
        self.server.fake._untrack(conn)
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drop the makefile() reference so close() really closes
        except OSError:
            pass
        try:
            conn.close()
        except OSError:
            pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None, content_length: int | None = None) -> None:
        self._answered(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        self.send_header("x-request-id", f"req_fake_{id(self):x}")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, code: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), headers=headers)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return b""
        return self.rfile.read(n) if n > 0 else b""

    def _route(self) -> str:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        return path

    def _headers_for_record(self) -> dict[str, str]:
        return {
            k.lower(): (REDACTED if k.lower() in _SENSITIVE_HEADERS else v) for k, v in self.headers.items()
        }

    # -- verbs ------------------------------------------------------------
    def do_GET(self) -> None:
        fake = self.server.fake
        path = self._route()
        self._begin(fake._record(self.command, path, self._headers_for_record(), None))
        try:
            if path in ("/v1/models", "/models"):
                model = fake.model
                self._send_json(
                    200,
                    {"object": "list",
                     "data": [{"id": model, "object": "model", "created": 0, "owned_by": "fake-llm"}]},
                )
            elif path in ("/health", "/v1/health"):
                self._send_json(200, {"status": "ok"})
            elif path in ("/v1/chat/completions", "/chat/completions"):
                self._send_json(405, _error_body(405, "Use POST for chat completions."))
            else:
                self._send_json(404, _error_body(404, f"Unknown path: {path}"))
        finally:
            self._answered(None)  # no-op unless nothing could be sent

    def do_POST(self) -> None:
        fake = self.server.fake
        path = self._route()
        raw = self._read_body()
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._begin(fake._record(self.command, path, self._headers_for_record(), None))
            self._send_json(404, _error_body(404, f"Unknown path: {path}"))
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
            bad = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)"
        else:
            bad = None
            if not isinstance(body, dict):
                bad = "The request body must be a JSON object."
            elif not isinstance(body.get("messages"), list):
                bad = "Missing required parameter: 'messages'."
        rec = fake._record(self.command, path, self._headers_for_record(), body, chat=True)
        if bad is None and fake.require_key is not None:
            if self.headers.get("Authorization") == f"Bearer {fake.require_key}":
                fake._authorized()
            else:
                self._begin(rec)
                self._send_json(401, _error_body(401))
                return
        if bad is not None:
            self._begin(rec)
            self._send_json(400, _error_body(400, bad, param="messages" if "messages" in bad else None))
            return
        self._begin(rec, in_flight=True)
        try:
            self._chat(fake, body, rec)
        finally:
            self._answered(None)  # no-op unless nothing could be sent

    def do_PUT(self) -> None:
        self._read_body()
        self._send_json(405, _error_body(405))

    do_DELETE = do_PATCH = do_PUT

    # -- chat completions ----------------------------------------------------
    def _chat(self, fake: "FakeLLMServer", body: dict[str, Any], rec: RecordedRequest) -> None:
        if body.get("response_format") is not None and fake.response_format == "reject":
            fake._next_chat_index()
            rec.reply = Status(400, _error_body(400, "'response_format' is not supported by this server",
                                                param="response_format"))
            self._sleep(fake.latency)
            self._deliver(rec.reply, None, fake)  # type: ignore[arg-type]
            return
        request = ChatRequest(
            index=fake._next_chat_index(),
            model=body.get("model"),
            messages=body["messages"],
            temperature=body.get("temperature"),
            response_format=None if fake.response_format == "ignore" else body.get("response_format"),
            stream=bool(body.get("stream")),
            extra={k: v for k, v in body.items() if k not in _KNOWN_FIELDS},
            headers={k.lower(): v for k, v in self.headers.items() if k.lower() not in _SENSITIVE_HEADERS},
            body=body,
        )
        try:
            reply = _coerce(fake.responder(request))
        except Exception as exc:  # a bug in a test's responder: answer 500, keep it for the test
            fake._errors.append(exc)
            reply = Status(500, _error_body(500, f"fake_llm responder raised {type(exc).__name__}: {exc}"))
        rec.reply = reply
        self._sleep(fake.latency)
        while isinstance(reply, Delay):
            self._sleep(reply.seconds)
            reply = reply.then if reply.then is not None else Text("OK")
        self._sleep(reply.delay)
        self._deliver(reply, request, fake)

    def _deliver(self, reply: Reply, request: ChatRequest, fake: "FakeLLMServer") -> None:
        if isinstance(reply, Reset):
            self._reset()
            return
        if isinstance(reply, Echo):
            echoed = f"{self.command} {self.path} " + json.dumps(dict(self.headers.items()))
            self._send_json(reply.code, _error_body(reply.code, f"upstream rejected the request: {echoed}"))
            return
        if isinstance(reply, Status):
            body = reply.body
            if body is None:
                data = json.dumps(_error_body(reply.code)).encode()
                ctype = "application/json"
            elif isinstance(body, (bytes, bytearray)):
                data, ctype = bytes(body), "application/json"
            elif isinstance(body, str):
                data, ctype = body.encode(), "text/plain; charset=utf-8"
            else:
                data, ctype = json.dumps(body).encode(), "application/json"
            self._send(reply.code, data, ctype, headers=reply.headers)
            return
        if isinstance(reply, Malformed):
            if request.stream:
                self._stream_events([reply.body.decode("utf-8", "replace")], done=False)
            else:
                self._send(200, reply.body)
            return
        if isinstance(reply, Text):
            content, finish = reply.content, reply.finish_reason
        elif isinstance(reply, Empty):
            content, finish = reply.content, "stop"
        elif isinstance(reply, Truncated):
            return self._truncated(reply, request, fake)
        else:  # pragma: no cover
            raise TypeError(reply)
        if request.stream:
            self._stream_events(self._chunks(request, fake, content, finish))
        else:
            self._send_json(200, self._completion(request, fake, content, finish))

    def _truncated(self, reply: Truncated, request: ChatRequest, fake: "FakeLLMServer") -> None:
        frac = min(max(reply.fraction, 0.0), 1.0)
        if request.stream:
            events = self._chunks(request, fake, "This reply is cut off before it ends ACTION: x", "stop")
            events = events[: max(1, int(len(events) * frac))]
            if reply.drop_connection:
                self._stream_events(events, done=False, terminate=False)
                self.wfile.flush()
                self._reset()
                return
            self._stream_events(events, done=False)
            return
        full = json.dumps(self._completion(request, fake, "This reply is cut off. ACTION: cooperate", "stop")).encode()
        cut = full[: min(len(full) - 1, int(len(full) * frac))]
        if reply.drop_connection:
            self._send(200, cut, content_length=len(full))
            self.close_connection = True  # FIN after a short body: incomplete message
            return
        self._send(200, cut)

    # -- payloads ----------------------------------------------------------
    def _usage(self, request: ChatRequest, content: str | None) -> dict[str, int]:
        prompt = sum(_approx_tokens(_message_text(m)) for m in request.messages if isinstance(m, dict))
        completion = _approx_tokens(content)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, request: ChatRequest, fake: "FakeLLMServer", content: str | None,
                    finish: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{request.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or fake.model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": self._usage(request, content),
        }

    def _chunks(self, request: ChatRequest, fake: "FakeLLMServer", content: str | None,
                finish: str) -> list[str]:
        base = {
            "id": f"chatcmpl-fake{request.index}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model or fake.model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            return json.dumps(
                {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            )

        events = [chunk({"role": "assistant", "content": ""})]
        text = content or ""
        for i in range(0, len(text), 16):
            events.append(chunk({"content": text[i : i + 16]}))
        events.append(chunk({}, finish))
        opts = request.extra.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            events.append(json.dumps({**base, "choices": [], "usage": self._usage(request, content)}))
        return events

    def _stream_events(self, events: Sequence[str], *, done: bool = True, terminate: bool = True) -> None:
        self._answered(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write_chunk(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        for ev in events:
            write_chunk(f"data: {ev}\n\n".encode())
        if done:
            write_chunk(b"data: [DONE]\n\n")
        if terminate:
            self.wfile.write(b"0\r\n\r\n")


# --------------------------------------------------------------------------- server


class FakeLLMServer:
    """OpenAI-compatible chat-completions server on 127.0.0.1 (ephemeral port by default).

    ``responder``: callable(ChatRequest) -> Reply (default: always "cooperate").
    ``latency``: seconds added to every chat reply (each request sleeps in its own
    thread, so concurrent requests overlap). Both are plain attributes and may be
    changed while running.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "fake-model",
        require_key: str | None = None,
        response_format: str = "honour",
    ):
        if response_format not in ("honour", "reject", "ignore"):
            raise ValueError(f"response_format must be honour, reject or ignore, not {response_format!r}")
        self.response_format = response_format  # what the server does with a request's response_format
        self.responder: Responder = responder if responder is not None else action_responder("cooperate")
        self.require_key = require_key  # chat requests without "Authorization: Bearer <it>" get a 401
        self.authorized = 0  # chat requests that carried it
        self.latency = latency
        self.model = model
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._records: list[RecordedRequest] = []
        self._chat_records: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._chat_index = 0
        self._in_flight = 0
        self._max_concurrency = 0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "FakeLLMServer":
        if self._httpd is not None:
            return self
        self._stopping = threading.Event()
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in latency / delays
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:  # unblock keep-alive handlers waiting for a next request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> "FakeLLMServer":
        return self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url``, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- recording -------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (all paths), in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Chat-completion requests only, in arrival order (a copy)."""
        with self._lock:
            return list(self._chat_records)

    @property
    def count(self) -> int:
        """Number of chat-completion requests received (incl. rejected ones)."""
        with self._lock:
            return len(self._chat_records)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_concurrency(self) -> int:
        """Peak number of chat-completion requests being handled at once."""
        with self._lock:
            return self._max_concurrency

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the responder (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    def reset_stats(self) -> None:
        with self._lock:
            self._records.clear()
            self._chat_records.clear()
            self._errors.clear()
            self._chat_index = 0
            self._max_concurrency = self._in_flight

    # -- internals used by the handler ------------------------------------------
    def _record(self, method: str, path: str, headers: dict[str, str], body: Any,
                chat: bool = False) -> RecordedRequest:
        with self._lock:
            rec = RecordedRequest(len(self._records), method, path, time.monotonic(), headers, body)
            self._records.append(rec)
            if chat:
                self._chat_records.append(rec)
            return rec

    def _authorized(self) -> None:
        with self._lock:
            self.authorized += 1

    def _next_chat_index(self) -> int:
        with self._lock:
            i = self._chat_index
            self._chat_index += 1
            return i

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            if self._in_flight > self._max_concurrency:
                self._max_concurrency = self._in_flight

    def _exit(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.support.fake_llm",
        description="Fake OpenAI-compatible chat-completions server (for demos and benchmarks).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099, help="0 = any free port (default 8099)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    p.add_argument("--action", default="cooperate", help="action every reply chooses (default cooperate)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of replies replaced by faults")
    p.add_argument("--fault-kinds", default=",".join(FAULT_KINDS),
                   help=f"comma-separated subset of: {','.join(FAULT_KINDS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    p.add_argument("--model", default="fake-model")
    p.add_argument("--response-format", choices=("honour", "reject", "ignore"), default="honour",
                   help="what to do with a request's response_format (reject: HTTP 400 naming it)")
    p.add_argument("-v", "--verbose", action="store_true", help="print one line per chat request")
    args = p.parse_args(argv)

    base = action_responder(args.action)
    responder: Responder = base
    if args.fault_rate > 0:
        kinds = [k.strip() for k in args.fault_kinds.split(",") if k.strip()]
        responder = FaultPlan(args.fault_rate, kinds, args.seed, base)
    if args.verbose:
        inner = responder

        def responder(request: ChatRequest) -> Reply:  # type: ignore[no-redef]
            reply = _coerce(inner(request))
            print(f"#{request.index} model={request.model} -> {reply}", file=sys.stderr, flush=True)
            return reply

    server = FakeLLMServer(responder, latency=args.latency, host=args.host, port=args.port, model=args.model,
                           response_format=args.response_format)
    server.start()
    print(f"fake LLM serving at {server.base_url}  (action={args.action}, latency={args.latency}s, "
          f"fault-rate={args.fault_rate}, seed={args.seed}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print(f"stopped after {server.count} chat requests (peak concurrency {server.max_concurrency})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
