from __future__ import annotations

import pytest

from arena.errors import ConfigError
from arena.library.programs import BuiltinProgram, LLMProgram, load_program_entries, parse_program_text


def test_shipped_builtins(programs):
    for pid, strategy in [("cooperatebot", "cooperate"), ("defectbot", "defect"), ("randombot", "random"),
                          ("fairbot", "fairbot"), ("cliquebot", "cliquebot")]:
        assert programs[pid].strategy == strategy
    assert programs["randombot"].params == {"p": 0.5}


def test_llm_program_parses_and_exposes_source():
    p = parse_program_text(
        "id: fair-llama\nkind: llm\nmodel: nvidia/meta/llama-3.1-8b-instruct\ntemperature: 0.7\nepsilon: 0.1\n"
        "system_prompt: |\n  Cooperate with cooperators.\n"
    )
    assert isinstance(p, LLMProgram)
    assert (p.provider, p.model_name) == ("nvidia", "meta/llama-3.1-8b-instruct")
    assert p.source() == (
        "Model: nvidia/meta/llama-3.1-8b-instruct\nTemperature: 0.7\nEpsilon: 0.1\nSystem prompt:\nCooperate with cooperators."
    )


@pytest.mark.parametrize("text,line,field,message", [
    ("id: x\nkind: builtin\nstrategy: fairbot\nparams:\n  q: 1\n", 5, "params.q",
     "unknown field; strategy 'fairbot' takes no parameters"),
    ("id: x\nkind: builtin\nstrategy: random\nparams:\n  p: 2\n", 5, "params.p", "less than or equal to 1"),
    ("id: x\nkind: builtin\nstrategy: tit_for_tat\n", 3, "strategy", "Input should be 'cooperate'"),
    ("id: x\nkind: robot\n", 2, "kind", "must be 'llm', 'builtin' or 'code'"),
    ("id: x\nstrategy: fairbot\n", 1, "kind", "required field is missing"),
    ("id: x\nkind: llm\nmodel: local/m\nsystem_prompt: hi\ntemperature: hot\n", 5, "temperature", "valid number"),
    ("id: x\nkind: llm\nmodel: nomodel\nsystem_prompt: hi\n", 3, "model", "'nomodel' is not allowed here: write provider/model"),
    ("id: x\nkind: llm\nmodel: local/m\n", 1, "system_prompt", "required field is missing"),
    ("id: x\nkind: builtin\nstrategy: fairbot\nepsilon: 0\n", 4, "epsilon", "greater than 0"),
    ("id: x\nkind: builtin\nstrategy: fairbot\nepsilon: 1.5\n", 4, "epsilon", "less than or equal to 1"),
    ("id: Bad Id\nkind: builtin\nstrategy: fairbot\n", 1, "id", "'Bad Id' is not allowed here: use lowercase letters"),
    ("id: x\nkind: builtin\nstrategy: fairbot\ncolour: red\n", 4, "colour", "unknown field"),
    ("id: x\nkind: builtin\nstrategy: fairbot\nzzzzzz: 1\n", 4, "zzzzzz", "allowed: id, description, epsilon, kind, strategy, params"),
    ("id: x\nkind: builtin\nstrategy: [fairbot\n", 4, None, "YAML syntax error"),
    ("id: x\nid: y\nkind: builtin\nstrategy: fairbot\n", 2, None, "YAML syntax error"),
])
def test_bad_programs_name_file_line_field(tmp_path, text, line, field, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_program_entries([f])
    (p,) = e.value.problems
    assert (p.line, p.field) == (line, field)
    assert message in p.message
    assert str(p).startswith(f"{f}:{line}: ")


def test_a_file_may_hold_a_list_and_duplicates_are_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("- id: one\n  kind: builtin\n  strategy: fairbot\n- id: two\n  kind: builtin\n  strategy: defect\n")
    (tmp_path / "b.yaml").write_text("id: two\nkind: builtin\nstrategy: cooperate\n")
    with pytest.raises(ConfigError) as e:
        load_program_entries([tmp_path])
    (p,) = e.value.problems
    assert "duplicate program id 'two'" in p.message and "a.yaml:4" in p.message
    entries = load_program_entries([tmp_path / "a.yaml"])
    assert [(k, e.index, e.line) for k, e in entries.items()] == [("one", 0, 1), ("two", 1, 4)]


def test_source_excludes_id_but_includes_behaviour():
    a = BuiltinProgram(id="a", kind="builtin", strategy="random", params={"p": 0.2})
    b = BuiltinProgram(id="b", kind="builtin", strategy="random", params={"p": 0.2})
    c = BuiltinProgram(id="c", kind="builtin", strategy="random", params={"p": 0.3})
    assert a.source() == b.source() != c.source()
    assert a.content_hash != b.content_hash
