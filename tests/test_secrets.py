"""Canary keys: API keys never reach arena.db (any table, column, WAL page), exports, outputs, logs or
screens, even when a provider echoes them back in error bodies or replies.

Every provider key variable holds a unique canary; the loopback server *requires* the custom
provider's key (a 401 otherwise), so a run that completes proves the key was sent, and it echoes the
request's headers (Authorization included) into some error bodies and the key into some replies.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.fake_llm import Echo, FakeLLMServer, FaultPlan, Text, action_responder
from llm_policies import mirror_policy as policy

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "LLM_API_KEY": "CANARYcustomKey7f3a9c1d",
    "NVIDIA_API_KEY": "nvapi-CANARYnvidia5e8b2a",
    "OPENAI_API_KEY": "sk-CANARYopenai91c4d7e0",
    "GROQ_API_KEY": "gsk_CANARYgroq2b6f81aa",
    "CEREBRAS_API_KEY": "csk-CANARYcerebras0d3e",
    "HF_TOKEN": "hf_CANARYhuggingface4411",
}
URL_USER, URL_PASSWORD = "CANARYuser", "CANARY:pass@word9"  # a password that needs URL-encoding


def canaries() -> list[str]:
    basic = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
    return [*KEYS.values(), URL_PASSWORD, quote(URL_PASSWORD, safe=""), basic, URL_USER, "CANARY"]


def assert_clean(what: str, data: str | bytes) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    found = [c for c in canaries() if c in text]
    assert not found, f"{what} holds {found}"


@pytest.fixture
def setup(tmp_path):
    d = tmp_path / "programs"
    d.mkdir()
    (d / "fairbot.yaml").write_text((ROOT / "programs" / "fairbot.yaml").read_text())
    (d / "fair-llm.yaml").write_text('id: fair-llm\nkind: llm\nmodel: custom/fake-8b\nsystem_prompt: "You are fair: '
                                     'mirror what the simulated opponent did."\n')
    (d / "mean-llm.yaml").write_text("id: mean-llm\nkind: llm\nmodel: custom/fake-8b\nsystem_prompt: You always defect.\n")
    (tmp_path / "providers.yaml").write_text("custom:\n  timeout: 2\n  max_attempts: 3\n  backoff_initial: 0.01\n"
                                             "  backoff_max: 0.02\n  retry_after_max: 0.1\n")
    plan = FaultPlan(0.35, [Echo(500), Echo(503), Echo(429),
                            Text(f"My key is {KEYS['LLM_API_KEY']}, really.\nACTION: defect"),
                            "reset", "malformed"], seed=5, responder=action_responder(policy))
    with FakeLLMServer(plan, require_key=KEYS["LLM_API_KEY"]) as srv:
        host = srv.base_url.removeprefix("http://")
        env = {**os.environ, **KEYS, "ARENA_PROGRAMS": str(d), "ARENA_PROVIDERS": str(tmp_path / "providers.yaml"),
               "ARENA_CACHE_DIR": str(tmp_path / "cache"),
               "LLM_BASE_URL": f"http://{URL_USER}:{quote(URL_PASSWORD, safe='')}@{host}"}
        yield tmp_path, srv, plan, env


def arena(env, *args, cwd):
    return subprocess.run([sys.executable, "-m", "arena.cli.main", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=240)


def test_canary_keys_reach_no_database_export_output_or_log(setup):
    tmp, srv, plan, env = setup
    db = tmp / "arena.db"
    run_args = ["run", "-p", "fair-llm", "-p", "mean-llm", "-p", "fairbot", "-e", "0.3", "-d", "3", "-n", "6",
                "--seed", "2", "--db", str(db), "--display", "plain"]
    outputs = []
    # a reader holds the database open, so that the WAL file is still there to be read afterwards
    assert arena(env, "run", "-p", "fairbot", "-n", "1", "--db", str(db), "--display", "none", cwd=tmp).returncode == 0
    keeper = sqlite3.connect(db)
    keeper.execute("SELECT count(*) FROM trials").fetchone()
    out = arena(env, *run_args, cwd=tmp)
    assert out.returncode == 0, out.stderr
    outputs.append(out)

    # the key was used: every chat request carried it (the server answers 401 otherwise) ...
    assert srv.authorized == srv.count > 100
    # ... and the server did echo it: in error bodies and in replies
    injected = plan.fault_counts()
    assert injected["Echo"] >= 5 and injected["Text"] >= 2
    con = sqlite3.connect(db)
    echoed = con.execute("SELECT count(*) FROM llm_calls WHERE error LIKE '%upstream rejected the request%'").fetchone()[0]
    assert echoed == injected["Echo"]
    assert con.execute("SELECT count(*) FROM llm_calls WHERE error LIKE '%Bearer ***%'").fetchone()[0] == echoed
    assert con.execute("SELECT count(*) FROM llm_calls WHERE response LIKE 'My key is ***, really.%'").fetchone()[0] \
        == injected["Text"]

    # a run whose key is refused (401 with the headers echoed) fails with a message, still without the key
    bad = {**env, "LLM_API_KEY": "CANARYwrongKey0000"}
    srv.require_key = None
    plan_responder = srv.responder
    srv.responder = lambda req: Echo(401)
    refused = arena(bad, *run_args, "--new", cwd=tmp)
    srv.responder = plan_responder
    assert refused.returncode == 1 and "refused model 'fake-8b': HTTP 401" in refused.stderr
    assert "Bearer ***" in refused.stderr
    outputs.append(refused)

    # every other command a user might run
    for args in (["tournaments", "list", "--db", str(db)], ["tournaments", "show", "--db", str(db)],
                 ["resume", "--db", str(db), "--display", "plain"], ["providers", "list"],
                 ["providers", "check", "custom"]):
        outputs.append(arena(env, *args, cwd=tmp))
    check = outputs[-1]
    assert check.returncode in (0, 1) and "custom" in check.stdout
    assert "(credentials hidden)" in outputs[-2].stdout
    for o in outputs:
        assert_clean(f"output of {o.args[3:]}", o.stdout + o.stderr)

    # the database: every column of every row of every table, then the raw file, WAL and shm bytes
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"tournaments", "programs", "games", "trials", "nodes", "llm_calls", "response_cache"} <= set(tables)
    for t in tables:
        for row in con.execute(f"SELECT * FROM {t}"):
            assert_clean(f"table {t}", " ".join(map(str, row)))
    con.close()
    wal = Path(f"{db}-wal")
    assert wal.exists() and wal.stat().st_size > 0
    for f in (db, wal, Path(f"{db}-shm")):
        assert_clean(f.name, f.read_bytes())
    keeper.close()

    # exports (whatever formats this build has) and any log Arena wrote
    from arena.analysis import export
    from arena.store.database import Store

    with Store(db) as store:
        for tid in (1, 2, 3):
            written = []
            for fmt in export.TEXT_FORMATS:  # every table, the LLM call statistics included
                written += export.export(store, tid, fmt, tmp / f"export-{tid}.{fmt}", table="all" if fmt != "csv" else None)
                written += export.export(store, tid, fmt, tmp / f"calls-{tid}.{fmt}", table="calls")
            for fmt in export.PLOT_FORMATS:
                written += export.export(store, tid, fmt, tmp / f"plots-{tid}-{fmt}")
            assert len(written) == 4 * 2 + 2 * len(export.PLOTS)
            for path in written:
                assert_clean(path.name, path.read_bytes())
    for f in tmp.rglob("*.log"):
        assert_clean(str(f), f.read_bytes())


def test_redact_handles_every_form_of_a_secret():
    from arena.llm.client import clip
    from arena.llm.redaction import redact
    from arena.llm.registry import BUILTIN
    from arena.llm.secrets import secret_values

    env = {**KEYS, "LLM_BASE_URL": f"http://{URL_USER}:{quote(URL_PASSWORD, safe='')}@127.0.0.1:9/v1"}
    secrets = secret_values(BUILTIN, env)
    basic = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
    text = (f"Authorization: Bearer {KEYS['LLM_API_KEY']} / Basic {basic} / {env['LLM_BASE_URL']} / "
            f"?api_key={KEYS['OPENAI_API_KEY']}&x=1 / {KEYS['HF_TOKEN']} / {URL_PASSWORD}")
    cleaned = redact(text, secrets)
    assert_clean("redacted text", cleaned)
    assert cleaned == "Authorization: Bearer *** / Basic *** / http://***@127.0.0.1:9/v1 / ?api_key=***&x=1 / *** / ***"
    # clipping happens after redaction: a key cut in half is never left behind
    long = "x" * 490 + KEYS["NVIDIA_API_KEY"]
    assert_clean("clipped", clip(redact(long, secrets)))


def test_screens_never_show_a_key(tmp_path, monkeypatch, setup):
    """The TUI: an LLM tournament with echoed keys, its transcripts (errors included) and screens."""
    import asyncio

    tmp, srv, plan, env = setup
    for k in ("ARENA_PROGRAMS", "ARENA_PROVIDERS", "LLM_BASE_URL", *KEYS):
        monkeypatch.setenv(k, env[k])

    async def go() -> list[str]:
        from arena.engine.grid import TournamentConfig
        from arena.tui.app import ArenaApp
        from arena.tui.widgets import SimTree, Transcript

        sys.path.insert(0, str(ROOT / "tests" / "tui"))
        from tui_helpers import live_drawn, transcript_shows, transcript_text, wait_for

        shown = []
        app = ArenaApp(db=tmp_path / "tui.db", programs_path=tmp / "programs", games_path=ROOT / "games")
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            app.start_tournament(TournamentConfig(programs=["fair-llm", "mean-llm"], games=["prisoners_dilemma"],
                                                  epsilons=[0.5], max_depths=[2], trials=4, seed=1, concurrency=2))
            await wait_for(pilot, lambda: app.session.ended, timeout=60)
            # Live has drawn the end, and the app's tick has logged it (its notices come before)
            await wait_for(pilot, lambda: live_drawn(app) and any(m.startswith("tournament finished")
                                                                   for _, _, m in app.session_log))
            assert app.session.status == "finished"
            shown.append(app.export_screenshot())
            shown += [m for _, _, m in app.session_log]
            await pilot.press("t")
            await pilot.pause(0.1)
            live, tree = app.screen, app.screen.query_one(SimTree)
            # every finished LLM trial the session kept, every node's transcript (errors included)
            for trial in list(app.session._recent):
                live.follow, live.shown, live._shown_version = False, trial, -1
                live._tick(force=True)
                await pilot.pause(0.05)
                for node in list(tree._shown_nodes):
                    if tree.cursor_line == node.line:  # no highlight to come: shown as Live shows a highlighted node
                        live._tx_sig = None
                        live._refresh_transcript(node.data)
                    tree.cursor_line = node.line
                    # the node's pane follows the cursor on a later message: waited for, not slept on
                    await wait_for(pilot, lambda: transcript_shows(app.screen.query_one(Transcript), node.data))
                    shown.append(transcript_text(app.screen.query_one(Transcript)))
                    shown.append(app.export_screenshot())
            for mode in ("results", "history"):
                await pilot.press({"results": "4", "history": "5"}[mode])
                await pilot.pause()
                await app.workers.wait_for_complete()  # the screen's data loads in a worker
                await pilot.pause()
                shown.append(app.export_screenshot())
        return shown

    shown = asyncio.run(go())
    assert any("upstream rejected the request" in s or "***" in s for s in shown)
    for i, s in enumerate(shown):
        assert_clean(f"screen {i}", s)
    for svg in (ROOT / "tests" / "tui" / "__snapshots__").rglob("*.svg"):
        assert_clean(svg.name, svg.read_bytes())


def test_every_url_part_that_can_carry_a_key_is_hidden_in_labels_and_identities():
    """userinfo, query values and the fragment of a base URL never reach a stored or shown label (a pool
    replica's label is stored in llm_calls.replica; the endpoint identity is part of every cache key)."""
    from arena.llm.redaction import public_url
    from arena.llm.registry import ProviderSpec, endpoint_identity

    url = "https://u:pw-1234@gpu1:8000/v1?api_key=sk-canary-0001&api-version=2024#tok-canary-0002"
    assert public_url(url) == "https://gpu1:8000/v1?api_key=***&api-version=***#***"
    assert public_url("http://gpu2:8000/v1") == "http://gpu2:8000/v1"
    spec = ProviderSpec(name="lab", base_urls=[url, "http://gpu2:8000/v1"], concurrency=2)
    ident = endpoint_identity(spec, {})
    assert ident == "pool:http://gpu2:8000/v1,https://gpu1:8000/v1?api_key=***&api-version=***#***"
    assert "canary" not in ident and "pw-1234" not in ident
