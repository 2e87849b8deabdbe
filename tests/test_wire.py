"""The runner's wire (arena/runner/stream.py) carries every field of the records, with non-default values.

The wire models are derived from the record dataclasses; these tests fail when a record gains a field the
wire does not carry (the fixtures must give every field a value other than its default, so a new field
fails `test_the_fixtures_give_every_field_a_non_default_value` until it is set, and then the round trips
check it travels)."""

from __future__ import annotations

import dataclasses

import pytest

from arena.engine import events as ev
from arena.engine.disclosure import Disclosure
from arena.engine.records import CallRecord, MatchRules, Node, Play, RoundRecord, TrialResult, TrialSpec
from arena.runner import stream

RULES = MatchRules(rounds=3, continuation=0.9, noise=0.1, recall=2, max_rounds=50, hidden=True, discount=0.95)
R0 = RoundRecord(1, "cooperate", "defect", "defect", "defect", 1.0, 1.5, True, ({"step": 1}, {"step": 1}))
R1 = RoundRecord(2, "defect", "cooperate", "defect", "cooperate", 5.0, 0.5, True)
PLAY = Play(round=2, rules=RULES, history=(R0, R1), state=({"step": 2, "max_steps": 50}, {"step": 2, "max_steps": 50}))
SHOWN = Disclosure("obfuscated", "none")
SPEC = TrialSpec(7, "prisoners_dilemma", "prob", "fair-llm", 0.5, 3, 0.7, 2, 99, RULES, PLAY, SHOWN)
CALL = CallRecord("custom", "fake-8b", [{"role": "user", "content": "hi"}], "ACTION: defect", "defect", attempt=2,
                  status="refusal", error="no action", latency_ms=12.5, prompt_tokens=10, completion_tokens=3,
                  cached=True, params={"temperature": 0.7}, started_at=1.25, replica="http://127.0.0.1:9/v1")
NODE = Node(1, 0, "col", 1, "prob", 0.25, mode="simulated", action="defect", error="boom", calls=[CALL],
            code={"value": [0.3, 0.7], "output": "hi\n"}, round=2)


def result(spec: TrialSpec = SPEC) -> TrialResult:
    return TrialResult(spec, [dataclasses.replace(NODE, index=0, parent=None, calls=[CALL]), NODE], "defect",
                       "cooperate", 2.5, 0.75, 0.5, "error", "row depth 0 prob: boom", 3.5, [R0, R1])


def _defaults(rtype) -> dict:
    out = {}
    for f in dataclasses.fields(rtype):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


RECORDS = [RULES, R0, PLAY, SHOWN, SPEC, CALL, NODE, result()]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_the_fixtures_give_every_field_a_non_default_value(record):
    defaults = _defaults(type(record))
    same = [k for k, v in defaults.items() if getattr(record, k) == v]
    assert not same, f"{type(record).__name__}: give {same} a non-default value here, so that the wire is tested"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips_its_wire_model(record):
    model = stream.wire_model(type(record))
    assert set(model.model_fields) == {f.name for f in dataclasses.fields(record)}
    back = model.model_validate_json(model.of(record).model_dump_json()).record()
    assert back == record and type(back) is type(record)


def test_the_wire_messages_have_the_records_fields():
    """One definition: each wire model has exactly its record's fields; the event messages their events'."""
    pairs = [(stream.SpecMsg, TrialSpec), (stream.NodeMsg, Node), (stream.CallMsg, CallRecord),
             (stream.ResultMsg, TrialResult), (stream.PlayMsg, Play), (stream.MatchMsg, MatchRules),
             (stream.RoundMsg, RoundRecord)]
    for model, rtype in pairs:
        assert set(model.model_fields) == {f.name for f in dataclasses.fields(rtype)}, model
    for msg, event in [(stream.Started, ev.TournamentStarted), (stream.Finished, ev.TournamentFinished),
                       (stream.NoticeMsg, ev.Notice)]:
        assert set(msg.model_fields) - {"kind"} == {f.name for f in dataclasses.fields(event)}, msg


def _wire(event, **kw):
    return stream.parse(stream.encode(event, **kw))


def test_a_trial_of_a_match_round_trips_the_wire_with_every_field():
    """Planned, Resolved (in place, code answer included), Trials, a Batch's sample and a Hello's trees."""
    dec = stream.Decoder()
    pending = [Node(0, None, "row", 0, "prob", 0.5, round=2), Node(1, 0, "col", 1, "prob", 0.25, round=2)]
    [planned] = dec.events(_wire(ev.TrialPlanned(1, SPEC, pending)))
    assert planned.spec == SPEC and planned.nodes == pending
    [resolved] = dec.events(_wire(ev.NodeResolved(1, SPEC, NODE)))
    assert resolved.node is planned.nodes[1]  # the client's own tree, updated in place
    assert resolved.node == NODE  # every field: code (probabilities, printed output), round, calls' replica
    r = result()
    [done] = dec.events(_wire(ev.TrialsFinished(1, [r], 1, 4)))
    assert done.results == [r] and dec.inflight == {}
    other = result(dataclasses.replace(SPEC, seq=8, play=None))
    [batch] = dec.events(_wire(ev.TrialsFinished(1, [r, other], 2, 4), sample=1))
    assert isinstance(batch, stream.BatchStored) and batch.sample == other
    hello = stream.Hello(tournament_id=1, pid=2, total=4, done=1, paused=True, last_trial_id=3, config={},
                         inflight=[stream.PlannedMsg(spec=stream.SpecMsg.of(SPEC), nodes=[stream.NodeMsg.of(NODE)])])
    started, trial = stream.Decoder().events(stream.parse(stream.line(hello)))
    assert trial.spec == SPEC and trial.nodes == [NODE]
    fin = ev.TournamentFinished(1, "failed", 4, 5, {"ok": 4}, 1.5, "why", {"custom": {"calls": 2}})
    assert dec.events(_wire(fin)) == [fin]
    assert dec.events(_wire(ev.Notice("careful", "warning"))) == [ev.Notice("careful", "warning")]
    assert dec.events(_wire(ev.TournamentStarted(1, 5, 2, {"seed": 1}))) == [ev.TournamentStarted(1, 5, 2, {"seed": 1})]


def test_a_large_sample_tree_travels_as_lines_of_at_most_500_nodes_and_decodes_whole():
    """A built-in batch whose sample has 1,234 nodes: two SampleNodes lines of 500, then the Batch with the
    last 234; the client gets the tree whole, in order, once (the next Batch starts a tree of its own)."""
    nodes = [Node(i, i - 1 if i else None, "row" if i % 2 == 0 else "col", i, "fairbot", i / 1234,
                  mode="simulated", action="cooperate") for i in range(1234)]
    big = dataclasses.replace(result(), nodes=nodes)
    data = stream.encode(ev.TrialsFinished(1, [result(), big], 2, 4), sample=1)
    lines = data.splitlines(keepends=True)
    msgs = [stream.parse(x) for x in lines]
    assert [type(m).__name__ for m in msgs] == ["SampleNodes", "SampleNodes", "Batch"]
    assert [len(m.nodes) for m in msgs[:2]] + [len(msgs[2].sample.nodes)] == [500, 500, 234]
    dec = stream.Decoder()
    assert [dec.events(m) for m in msgs[:2]] == [[], []]
    [batch] = dec.events(msgs[2])
    assert batch.sample == big and batch.sample.nodes == nodes
    [small] = dec.events(_wire(ev.TrialsFinished(1, [big, result()], 4, 4), sample=1))
    assert small.sample == result()
    # (exactly 500 nodes: one line)
    five = dataclasses.replace(big, nodes=nodes[:500])
    assert stream.encode(ev.TrialsFinished(1, [five, five], 2, 4)).count(b"\n") == 1


def test_the_wire_refuses_an_unknown_field():
    data = stream.encode(ev.NodeResolved(1, SPEC, NODE)).replace(b'"round":2', b'"round":2,"bogus":1', 1)
    with pytest.raises(Exception):
        stream.parse(data)


def test_the_live_code_view_of_a_node_from_a_runner_shows_its_probabilities_and_printed_output():
    """The Live screen's code view of a node that came over the wire (the app always runs a runner process):
    the probabilities the program returned and what it printed, not just the sampled action."""
    from arena.tui.codeview import code_node_widgets

    dec = stream.Decoder()
    dec.events(_wire(ev.TrialPlanned(1, SPEC, [Node(0, None, "row", 0, "prob", 0.5), Node(1, 0, "col", 1, "prob", 0.25)])))
    node = dataclasses.replace(NODE, error=None)
    [resolved] = dec.events(_wire(ev.NodeResolved(1, SPEC, node)))
    shown = [str(w.content) for w in code_node_widgets(resolved.node, None)]
    assert shown == ["returned [0.3, 0.7] → sampled with u: defect", "hi"]


def test_only_the_fields_that_can_hold_a_record_are_walked_when_a_record_is_rebuilt():
    """The other fields pass as they are: the app decodes every node event of a runner process."""
    models = [stream.SpecMsg, stream.NodeMsg, stream.ResultMsg, stream.PlayMsg, stream.CallMsg, stream.RoundMsg,
              stream.MatchMsg]
    assert {m.__name__: m.__nested__ for m in models} == {
        "TrialSpecMsg": ("match", "play", "disclosure"), "NodeMsg": ("calls",),
        "TrialResultMsg": ("spec", "nodes", "rounds"), "PlayMsg": ("rules", "history"), "CallRecordMsg": (),
        "RoundRecordMsg": (), "MatchRulesMsg": ()}
    for m in models:  # every field once, on one side
        assert sorted(m.__plain__ + m.__nested__) == sorted(m.model_fields)
