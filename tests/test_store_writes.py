"""The store's write path: deferred rows share the next transaction, the response cache's answers are found
before they commit, and the public writes other modules use (store/iterate.py's LLM calls)."""

from __future__ import annotations

import asyncio
import sqlite3

from arena.engine.records import CallRecord
from arena.llm.cache import ResponseCache
from arena.store.database import Store
from arena.store.writes import insert_calls

PUT = ("INSERT INTO response_cache (key, endpoint, provider, model, response, created_at) "
       "VALUES (?, 'e', 'p', 'm', ?, 0)")


def others_see(path) -> list[tuple]:
    """What another connection (another process) reads of the cache table."""
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT key, response FROM response_cache ORDER BY key").fetchall()
    finally:
        con.close()


def test_outside_an_event_loop_a_deferred_row_is_written_at_once(tmp_path):
    with Store(tmp_path / "a.db") as store:
        store.defer(PUT, ("k1", "r1"))
        assert others_see(tmp_path / "a.db") == [("k1", "r1")] and store.commits == 1


def test_in_a_loop_deferred_rows_share_the_next_transaction(tmp_path):
    path = tmp_path / "a.db"

    async def go(store: Store) -> list:
        seen = []
        for i in range(5):
            store.defer(PUT, (f"k{i}", f"r{i}"))
        seen.append((others_see(path), store.commits))  # nothing committed yet
        store.write(lambda cur: cur.execute("UPDATE meta SET value=value WHERE key='schema_version'"))
        seen.append((len(others_see(path)), store.commits))  # the five rows and the write: one commit
        store.defer(PUT, ("k9", "r9"))
        await asyncio.sleep(0.2)  # the loop runs the store's timer: the row goes out on its own
        seen.append((len(others_see(path)), store.commits))
        return seen

    with Store(path) as store:
        assert asyncio.run(go(store)) == [([], 0), (5, 1), (6, 2)]


def test_a_failed_transaction_keeps_the_deferred_rows_for_the_next(tmp_path):
    with Store(tmp_path / "a.db") as store:
        async def go():
            store.defer(PUT, ("k1", "r1"))
            try:
                store.write(lambda cur: cur.execute("INSERT INTO no_such_table VALUES (1)"))
            except Exception as exc:  # noqa: BLE001
                return type(exc).__name__
        assert asyncio.run(go()) == "StoreError"
        assert others_see(tmp_path / "a.db") == []
        assert store.query("SELECT key FROM response_cache") == [{"key": "k1"}]  # a read writes them first


def test_close_writes_what_is_deferred(tmp_path):
    async def go(store):
        store.defer(PUT, ("k1", "r1"))

    store = Store(tmp_path / "a.db")
    asyncio.run(go(store))  # the loop ends before the store's timer fires
    assert others_see(tmp_path / "a.db") == []
    store.close()
    assert others_see(tmp_path / "a.db") == [("k1", "r1")]


def test_the_cache_finds_an_answer_before_it_commits_and_keeps_the_first(tmp_path):
    async def go(cache: ResponseCache):
        cache.put("k", "e", "p", "m", "first", 3, 4)
        before = cache.get("k", "e")
        cache.put("k", "e", "p", "m", "second", 5, 6)
        return before, cache.get("k", "e"), cache.get("other", "e")

    with Store(tmp_path / "a.db") as store:
        cache = ResponseCache(store)
        before, again, missing = asyncio.run(go(cache))
        assert before.response == again.response == "first" and (before.prompt_tokens, before.completion_tokens) == (3, 4)
        assert missing is None
        store.flush()
        assert store.query("SELECT response FROM response_cache") == [{"response": "first"}]
        assert cache.get("k", "e").response == "first"  # from the table now


def test_insert_calls_numbers_after_the_stored_calls(tmp_path):
    with Store(tmp_path / "a.db") as store:
        calls = [CallRecord("custom", "m", [{"role": "user", "content": "é"}], attempt=a, response="ACTION: defect")
                 for a in (1, 2)]
        store.write(insert_calls, 7, 0, 0, "writer", calls)
        store.write(insert_calls, 7, 0, 0, "writer", calls[:1])
        rows = store.query("SELECT id, tournament_id, trial_id, node_id, program, attempt, messages FROM llm_calls")
    assert rows == [{"id": i, "tournament_id": 7, "trial_id": 0, "node_id": 0, "program": "writer", "attempt": a,
                     "messages": '[{"role": "user", "content": "é"}]'} for i, a in ((1, 1), (2, 2), (3, 1))]
