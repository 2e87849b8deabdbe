"""The response cache: a re-run of the same calls is served from arena.db, reproducible and free.

Keyed on (provider, model, messages, temperature, sample index, max tokens, constraint) and the endpoint
that answered (providers.endpoint_identity: a `custom` provider pointed at another server never gets the
first server's answers). The sample index tells apart the trials that ask the same question at a
temperature above zero (it is derived from the trial's seed and the node), so a cached re-run returns
each trial its own answer.

Append-only: the first answer stored for a key and endpoint stays. A `--no-cache` run neither reads nor
replaces it, so a later cached run reproduces the earlier tournament.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from arena.store.database import Store


@dataclass(frozen=True)
class Cached:
    response: str
    prompt_tokens: int | None
    completion_tokens: int | None


_KEY_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # holds no state


def key_json(value) -> str:
    """One value as the cache key writes it (sorted keys, no spaces, non-ASCII as is): json.dumps with
    those options."""
    return _KEY_JSON.encode(value)


def cache_key(provider: str, model: str, messages: list[dict], temperature: float, sample: str,
              max_tokens: int, constraint: dict | None, messages_json: str | None = None,
              constraint_json: str | None = None) -> str:
    """The SHA-256 of the JSON object {"c", "m", "msgs", "n", "p", "s", "t"} (key_json). `messages_json`,
    `constraint_json`: key_json(messages), key_json(constraint), when the caller holds them already (the
    same text either way)."""
    msgs = key_json(messages) if messages_json is None else messages_json
    c = key_json(constraint) if constraint_json is None else constraint_json
    # the object's members in sorted key order, each value as key_json writes it: key_json of the whole dict
    blob = (f'{{"c":{c},"m":{key_json(model)},"msgs":{msgs},"n":{key_json(max_tokens)},'
            f'"p":{key_json(provider)},"s":{key_json(sample)},"t":{key_json(temperature)}}}')
    return hashlib.sha256(blob.encode()).hexdigest()


_PUT = ("INSERT INTO response_cache (key, endpoint, provider, model, response, prompt_tokens, completion_tokens, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key, endpoint) DO NOTHING")


class ResponseCache:
    """The cache of one store. An answer is put as a deferred row (Store.defer: it shares the next
    transaction, within milliseconds); until that commits, `get` finds it in memory."""

    def __init__(self, store: Store, read: bool = True):
        self.store = store
        self.read = read
        self._pending: dict[tuple[str, str], Cached] = {}  # put, not yet committed
        self._commits = store.commits

    def get(self, key: str, endpoint: str) -> Cached | None:
        if not self.read:
            return None
        if self._pending:
            if self._commits != self.store.commits:  # committed since: the table has them
                self._pending.clear()
            elif (key, endpoint) in self._pending:
                return self._pending[key, endpoint]
        rows = self.store.query("SELECT response, prompt_tokens, completion_tokens FROM response_cache "
                                "WHERE key=? AND endpoint=?", (key, endpoint), deferred=False)
        return Cached(**rows[0]) if rows else None

    def put(self, key: str, endpoint: str, provider: str, model: str, response: str, prompt_tokens: int | None,
            completion_tokens: int | None) -> None:
        """Store an answer unless one is stored for this key and endpoint (never replaced)."""
        if self._commits != self.store.commits:
            self._pending.clear()
            self._commits = self.store.commits
        self._pending.setdefault((key, endpoint), Cached(response, prompt_tokens, completion_tokens))
        self.store.defer(_PUT, (key, endpoint, provider, model, response, prompt_tokens, completion_tokens,
                                time.time()))
