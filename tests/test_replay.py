"""`arena replay` rebuilds every LLM node's messages from the stored programs and compares them with the
stored calls (issue 24): a changed prompt is a divergence, not "N/N trials identical".

The tournaments run over real HTTP against the loopback server (tests.support.fake_llm); the replay
contacts nothing.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from arena.cli.main import app
from arena.llm import prompts
from arena.store.database import Store
from tests.support.fake_llm import FakeLLMServer, Text, action_responder
from tests.test_integrity import run


def replay(path, tid=1):
    return CliRunner().invoke(app, ["replay", str(tid), "--db", str(path), "--display", "none"])


def prose_then_action(request):
    """Prose (no ACTION line) to every third first question, so that node gets a corrective retry; the retry,
    and every other question, gets its action: the replay must rebuild the correction's four messages too."""
    if len(request.messages) == 2 and request.index % 3 == 0:
        return Text("I would rather not say.")
    return "defect" if "always defect" in request.messages[0]["content"] else "cooperate"


@pytest.fixture
def stored(tmp_path, games):
    path = tmp_path / "x.db"
    with Store(path) as store, FakeLLMServer(action_responder(prose_then_action)) as srv:
        run(store, srv.base_url, games)
        assert len([r for r in srv.chat_requests if len(r.body["messages"]) == 4]) > 0  # some corrections were asked
    return path


def calls(path, where="1=1"):
    with Store(path) as store:
        return store.query(f"SELECT id, messages, params, response FROM llm_calls WHERE tournament_id=1 AND {where} "
                           "ORDER BY id")


def test_replay_rebuilds_answers_and_corrections(stored):
    out = replay(stored)
    assert out.exit_code == 0, out.output
    assert "Replay 2 of tournament 1: 12/12 trials identical, no provider contacted" in out.output
    purposes = [json.loads(c["params"])["purpose"] for c in calls(stored)]
    assert purposes.count("correction") > 0 and purposes.count("answer") > 0
    # every call records the layout its messages were built in
    assert {json.loads(c["params"])["prompt"] for c in calls(stored)} == {prompts.PROMPT_VERSION} == {2}


def test_a_tournament_stored_before_prompt_versions_replays_exactly(tmp_path):
    """tests/fixtures/arena-v1.db (schema 1): its 49 calls record no prompt version; the replay rebuilds them in
    version 1's layout, and every trial comes out the same."""
    import shutil
    from pathlib import Path

    path = tmp_path / "v1.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "arena-v1.db", path)
    with Store(path) as store:
        stored = store.query("SELECT params FROM llm_calls")
    assert len(stored) == 49 and not [c for c in stored if "prompt" in json.loads(c["params"])]
    out = replay(path)
    assert out.exit_code == 0, out.output
    assert "180/180 trials identical, no provider contacted" in out.output


def test_a_version_1_call_is_rebuilt_in_version_1(stored):
    """A call stored with `prompt: 1` in its params (or none) is compared with version 1's messages: an older
    tournament whose prompts were built in that layout still replays."""
    with Store(stored) as store:
        for c in calls(stored):
            params = json.loads(c["params"])
            params["prompt"] = 1
            msgs = json.loads(c["messages"])
            store.conn.execute("UPDATE llm_calls SET params=?, messages=? WHERE id=?",
                               (json.dumps(params), json.dumps(_as_version_1(msgs)), c["id"]))
        store.conn.commit()
    out = replay(stored)
    assert out.exit_code == 0, out.output
    assert "12/12 trials identical" in out.output


def _as_version_1(msgs: list[dict]) -> list[dict]:
    """A stored version-2 prompt of the `stored` tournament (prisoner's dilemma, full disclosure) in version 1."""
    from arena.library.catalog import load_library

    pd = load_library().games["prisoners_dilemma"]
    user = msgs[1]["content"]
    side = "row" if "You are the row player." in user.rpartition("\n\n")[2] else "col"
    last = user.rpartition("\n\n")[2]
    mode = (prompts.RESPOND if "chose:" in last else prompts.GROUND if "No simulation" in last else prompts.IMAGINE)
    action = last.split("chose: ")[1].split(".")[0] if mode == prompts.RESPOND else None
    begin = user.index("<<<BEGIN ")
    fenced = user[begin:user.index(">>>", begin) + 3]
    intro = user[user.rindex("\n\n", 0, begin) + 2:begin]
    structured = '"action": "<your action>"' in user
    v1 = prompts.messages(msgs[0]["content"], pd, side, "", mode, action, structured, opponent=intro + fenced,
                          version=1)
    return v1 + msgs[2:]


@pytest.mark.parametrize("server,modes", [("honour", {"json_schema"}), ("reject", {"json_schema", "none"})])
def test_replay_rebuilds_json_schema_prompts_and_fallbacks(tmp_path, games, server, modes):
    """An endpoint that honours the JSON schema is asked in JSON form; one that rejects it once, then in free
    text (a fallback): the replay rebuilds each form."""
    path = tmp_path / "x.db"
    with Store(path) as store, FakeLLMServer(action_responder("cooperate"), response_format=server) as srv:
        run(store, srv.base_url, games)
    assert {json.loads(c["params"]).get("structured") for c in calls(path)} == modes
    out = replay(path)
    assert out.exit_code == 0 and "12/12 trials identical" in out.output, out.output


def test_an_edited_stored_prompt_is_a_divergence(stored):
    """The stored messages of one call no longer are what its program would be sent: the replay says where."""
    (first, *_) = calls(stored, "json_extract(params, '$.purpose') = 'answer' AND json_extract(messages, '$[0].content') LIKE '%mirror%'")
    msgs = json.loads(first["messages"])
    msgs[0]["content"] = msgs[0]["content"].replace("mirror", "copy")
    with Store(stored) as store:
        store.conn.execute("UPDATE llm_calls SET messages=? WHERE id=?", (json.dumps(msgs), first["id"]))
    out = replay(stored)
    assert out.exit_code == 1, out.output
    text = " ".join(out.output.split())
    assert "diverged at trial" in text and "the prompt of call 1 of" in text
    assert "message 1 (system) differs at character 14: stored 'copy" in text and "rebuilt 'mirror" in text


def test_a_changed_prompt_template_is_a_divergence(stored, monkeypatch):
    """Arena's own wording changed since the tournament ran (here: how an opponent's source is introduced)."""
    monkeypatch.setattr(prompts, "_DEFAULT_INTRO", "Below is the other program's source.")
    out = replay(stored)
    assert out.exit_code == 1, out.output
    text = " ".join(out.output.split())
    assert "diverged at trial" in text and "message 2 (user) differs at character" in text
    assert 'stored "your opponent\'s source' in text and 'rebuilt "the other program\'s source' in text


def test_an_edited_correction_is_a_divergence(stored):
    (corr, *_) = calls(stored, "json_extract(params, '$.purpose') = 'correction'")
    msgs = json.loads(corr["messages"])
    msgs[2]["content"] = "ACTION: defect"  # the model's own first answer, as the correction quotes it
    with Store(stored) as store:
        store.conn.execute("UPDATE llm_calls SET messages=? WHERE id=?", (json.dumps(msgs), corr["id"]))
    out = replay(stored)
    assert out.exit_code == 1 and "message 3 (assistant) differs at character 0" in " ".join(out.output.split())


def test_expected_messages_and_their_difference():
    """The pure parts: an answer in JSON mode, then in free text after a fallback, then a correction quoting
    the free-text reply; and how a difference is described."""
    from arena.runner.replay import expected_messages, prompt_difference

    build = lambda structured, version=1: [{"role": "system", "content": "S"},  # noqa: E731
                                           {"role": "user", "content": f"U{structured}"}]
    stored = [{"params": json.dumps({"purpose": "answer", "structured": "json_schema"}), "response": None},
              {"params": json.dumps({"purpose": "answer", "structured": "none"}), "response": "hmm"},
              {"params": json.dumps({"purpose": "correction", "structured": "none"}), "response": "ACTION: defect"}]
    assert expected_messages(stored, build, ["cooperate", "defect"]) == [
        build(True), build(False),
        [*build(False), {"role": "assistant", "content": "hmm"},
         {"role": "user", "content": prompts.correction(["cooperate", "defect"])}]]
    assert prompt_difference(build(True), build(True)) is None
    assert prompt_difference(build(True), build(False)) == (
        "message 2 (user) differs at character 1: stored 'True', rebuilt 'False'")
    assert prompt_difference(build(True), build(True)[:1]) == "2 messages stored, 1 rebuilt"
