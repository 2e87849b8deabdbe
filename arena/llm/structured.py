"""Constrained output, per endpoint: which mode each endpoint's calls use, and the fallback to free text.

A provider's `structured` setting:

- `json_schema`: every call asks for `response_format` = the decision's JSON schema (prompts.json_schema);
- `grammar`: every call sends a llama.cpp GBNF `grammar` that ends the reply with the `ACTION:` line;
- `none`: free text (the `ACTION:` line, or a bare action word);
- `auto`: the first call to an endpoint asks for the JSON schema, and the endpoint's other calls wait for
  its answer (a *probe*: one request per endpoint learns what it does with the schema). It *honours* it
  (a JSON object comes back): the endpoint stays on `json_schema`. It *rejects* it (a 4xx naming
  `response_format`) or *ignores* it (a reply that is not a JSON object): the endpoint falls back to free
  text (`none`) for the rest of the run, once, with the reason kept for the provider summary.

State is keyed by an endpoint string (a provider and one base URL), so a provider with several replicas
keeps one mode per replica. One instance per run (LLMService); nothing here is global.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

Setting = Literal["auto", "json_schema", "grammar", "none"]
JSON_SCHEMA, GRAMMAR, NONE = "json_schema", "grammar", "none"


@dataclass
class EndpointMode:
    setting: str  # the provider's setting (auto | json_schema | grammar | none)
    mode: str  # what calls use now: json_schema | grammar | none
    settled: bool  # auto only: the endpoint has shown whether it honours the schema
    reason: str | None = None  # why an auto endpoint fell back to free text
    probing: bool = False  # a call is asking for the schema now; the others wait for its verdict
    verdict: asyncio.Event = field(default_factory=asyncio.Event)  # set when settled or the probe gave up

    def describe(self) -> str:
        if self.setting != "auto":
            return self.mode
        if self.reason:
            return f"{self.mode} (auto: fell back, {self.reason})"
        return f"{self.mode} (auto{'' if self.settled else ', not yet confirmed'})"


class StructuredModes:
    """The constrained-output mode of every endpoint a run has called."""

    def __init__(self) -> None:
        self._endpoints: dict[str, EndpointMode] = {}

    def _state(self, endpoint: str, setting: str) -> EndpointMode:
        state = self._endpoints.get(endpoint)
        if state is None:
            mode = JSON_SCHEMA if setting == "auto" else setting
            state = self._endpoints[endpoint] = EndpointMode(setting, mode, settled=setting != "auto")
        return state

    def mode(self, endpoint: str, setting: str) -> str:
        """The mode calls to `endpoint` use now (json_schema | grammar | none)."""
        return self._state(endpoint, setting).mode

    def settled_mode(self, endpoint: str) -> str | None:
        """The mode an endpoint's calls settled on (None: not called yet, or an auto probe has not answered)."""
        state = self._endpoints.get(endpoint)
        return state.mode if state is not None and state.settled else None

    async def acquire(self, endpoint: str, setting: str) -> tuple[str, bool]:
        """(the mode of the next call, whether it is the probe). While an auto endpoint is unsettled, one
        call probes and the others wait; the probe ends with `honoured`, `fall_back` or `release`."""
        state = self._state(endpoint, setting)
        while not state.settled:
            if not state.probing:
                state.probing = True
                return JSON_SCHEMA, True
            await state.verdict.wait()
        return state.mode, False

    def release(self, endpoint: str) -> None:
        """The probe ended without a verdict (the call failed): another call probes."""
        state = self._endpoints.get(endpoint)
        if state is not None and state.probing and not state.settled:
            state.probing = False
            state.verdict.set()
            state.verdict = asyncio.Event()

    def honoured(self, endpoint: str) -> None:
        state = self._endpoints.get(endpoint)
        if state is not None and not state.settled:
            state.settled, state.probing = True, False
            state.verdict.set()

    def fall_back(self, endpoint: str, reason: str) -> bool:
        """An auto endpoint rejected or ignored the schema: free text from now on. True the first time
        (the caller says so once); False when it already fell back or is not on auto."""
        state = self._endpoints.get(endpoint)
        if state is None or state.setting != "auto" or state.reason is not None:
            return False
        state.mode, state.settled, state.reason, state.probing = NONE, True, reason, False
        state.verdict.set()
        return True

    def summary(self, prefix: str = "") -> dict[str, str]:
        """{endpoint: description} of the endpoints whose name starts with `prefix`."""
        return {e: s.describe() for e, s in sorted(self._endpoints.items()) if e.startswith(prefix)}


def rejects_format(exc: BaseException) -> bool:
    """A 4xx whose message names response_format: the endpoint does not take the JSON schema."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (401, 403, 404, 429) \
        and "response_format" in str(exc).lower()
