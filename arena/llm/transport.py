"""The HTTP request of one chat completion, on one endpoint: `LeanTransport` (aiohttp with a kept connection
pool, pre-built URL and headers, orjson both ways) and `SdkTransport` (the openai SDK's client), behind one
`chat(body) -> Completion` call.

Both raise the openai SDK's exception classes with the SDK's messages, so that retries, Retry-After, error
kinds and stored error texts do not depend on the transport: `openai.APIStatusError` subclasses for a 4xx
or 5xx (`.response.headers` holds the server's headers, `str(exc)` is "Error code: N - message"),
`openai.APITimeoutError` for a timeout, `openai.APIConnectionError` (caused by the client's own exception)
for a connection that failed or dropped, and `json.JSONDecodeError` for a 200 whose body is not JSON.
A ProviderSpec's `transport` chooses one; `lean` is the default.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from arena import __version__


@dataclass(frozen=True)
class Completion:
    """What Arena reads of a chat completion: the first choice's content and the token counts."""

    content: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def parse_completion(raw: bytes) -> Completion:
    """A completion from a 200 response's body. An undecodable body raises json.JSONDecodeError (the
    standard library's, with its message); JSON that is not a completion raises ValueError."""
    import orjson

    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = json.loads(raw.decode("utf-8", "replace"))  # raises the standard library's error and message
    if not isinstance(data, dict):
        raise ValueError(f"the response body is not a chat completion (JSON {type(data).__name__})")
    choices = data.get("choices")
    content = None
    if choices:
        first = choices[0] if isinstance(choices, list) else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict):
            raise ValueError("the response body is not a chat completion (no choices[0].message)")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise ValueError(f"the response's content is not text (JSON {type(content).__name__})")
    usage = data.get("usage")
    if isinstance(usage, dict):
        return Completion(content, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))
    return Completion(content)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def status_error(status: int, headers: list[tuple[str, str]], body: bytes, url: str):
    """The openai exception the SDK raises for this 4xx/5xx response, with the SDK's message."""
    import httpx2

    import openai

    request = httpx2.Request("POST", url)
    response = httpx2.Response(status, headers=headers, content=body, request=request)
    err_msg = f"Error code: {status}"
    text = body.decode("utf-8", "replace").strip()
    data: object = text
    try:
        data = json.loads(text)
    except ValueError:
        pass
    else:
        error = data.get("error", data) if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str) and message:
            err_msg += f" - {message}"
    detail = data.get("error", data) if isinstance(data, dict) else data
    cls = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
           404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError,
           429: openai.RateLimitError}.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(err_msg, response=response, body=detail)


class LeanTransport:
    """One endpoint's chat completions over aiohttp: one session (a pool of kept-alive connections, no
    limit of its own: the provider's gates limit calls in flight), made on first use in the running loop."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": f"arena/{__version__}"}
        self._session = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._target = None
        self._proxy: dict = {}

    def _open(self):
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session
        import aiohttp
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        self._target = URL(self.url, encoded=True)
        # the environment's proxy for this URL (HTTPS_PROXY, NO_PROXY, ...), looked up once: a session that
        # trusts the environment reads ~/.netrc in a thread on every request
        try:
            proxy, proxy_auth = get_env_proxy_for_url(self._target)
            self._proxy = {"proxy": proxy, "proxy_auth": proxy_auth}
        except LookupError:
            self._proxy = {}
        # a session belongs to one loop: another loop (a second asyncio.run) gets its own (the provider closes
        # its transports at the end of each run, so a session left on a finished loop is only a caller's
        # that never closed it)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout),
            trust_env=False, skip_auto_headers=("User-Agent",), headers=self.headers)  # sent with every request
        self._loop = loop
        return self._session

    async def chat(self, body: dict) -> Completion:
        import aiohttp
        import orjson

        import openai

        session = self._open()
        try:
            async with session.post(self._target, data=orjson.dumps(body), **self._proxy) as resp:
                raw = await resp.read()
                status = resp.status
                if status >= 400:
                    raise status_error(status, list(resp.headers.items()), raw, self.url)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise openai.APITimeoutError(request=_request(self.url)) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(request=_request(self.url)) from exc
        return parse_completion(raw)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            try:
                await self._session.close()
                await asyncio.sleep(0)  # the connections' transports close on the next pass of the loop
            except RuntimeError:  # its loop is gone (closed by an earlier asyncio.run): nothing left to close
                pass
        self._session = None


class SdkTransport:
    """The openai SDK's client (`AsyncOpenAI.post` with the parsed ChatCompletion), the SDK's retries off."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float):
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def chat(self, body: dict) -> Completion:
        from openai.types.chat import ChatCompletion

        # `post` rather than `chat.completions.create`: the same request and parsed reply without create()'s
        # walk of every message against the typed params
        resp = await self.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        content = resp.choices[0].message.content if resp.choices else None
        if resp.usage is None:
            return Completion(content)
        return Completion(content, resp.usage.prompt_tokens, resp.usage.completion_tokens)

    async def aclose(self) -> None:
        await self.client.close()


def _request(url: str):
    import httpx2

    return httpx2.Request("POST", url)


TRANSPORTS = {"lean": LeanTransport, "sdk": SdkTransport}
