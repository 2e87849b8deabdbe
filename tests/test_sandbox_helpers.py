"""Arena's helpers inside the sandbox (`_arena_run`, `_arena_one`, `_arena_random`, `_arena_out`, print) cannot
be shadowed by a program: every binding form of an `_arena` name is refused at load with its file:line, a
source that reaches the sandbox without the static check still gets Arena's helpers (they are loaded again
after the program), and an answer of the wrong shape is that program's error, never a skipped node."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from arena.errors import ConfigError
from arena.library.programs import CodeProgram, parse_program_text
from tests.test_code_hostile import yaml_of

DECIDE = "def decide(ctx):\n    return ctx['opponent_action'] or ctx['game']['default_action']\n"
# each binding form of an _arena name, and the source line (1-based) that binds it
BINDINGS = {
    "def": ("def _arena_run(b, c, s):\n    return ([], [], [])\n" + DECIDE, 1),
    "async def": ("async def _arena_one(c, s):\n    return None\n" + DECIDE, 1),
    "class": ("class _arena_out:\n    pass\n" + DECIDE, 1),
    "import alias": ("import json as _arena_random\n" + DECIDE, 1),
    "from-import alias": ("from math import floor as _arena_x\n" + DECIDE, 1),
    "assignment": ("_arena_size = [10 ** 9]\n" + DECIDE, 1),
    "tuple target": ("a, _arena_out = 1, []\n" + DECIDE, 1),
    "for target": ("for _arena_i in range(2):\n    pass\n" + DECIDE, 1),
    "comprehension": ("xs = [_arena_k for _arena_k in range(3)]\n" + DECIDE, 1),
    "argument": ("def helper(_arena_c):\n    return _arena_c\n" + DECIDE, 1),
    "lambda argument": ("f = lambda _arena_u: 0\n" + DECIDE, 1),
    "except as": ("try:\n    pass\nexcept Exception as _arena_e:\n    pass\n" + DECIDE, 3),
    "walrus": ("if (_arena_r := 1):\n    pass\n" + DECIDE, 1),
    "match capture": ("match 1:\n    case _arena_m:\n        pass\n" + DECIDE, 2),
    "global": ("def decide(ctx):\n    global _arena_out\n    return 'defect'\n", 2),
}


@pytest.mark.parametrize("form", list(BINDINGS))
def test_every_binding_form_of_an_arena_name_is_refused_at_load(form):
    source, line = BINDINGS[form]
    with pytest.raises(ConfigError) as e:
        parse_program_text(yaml_of(source), "hostile.yaml")
    p = e.value.problems[0]
    assert (p.file, p.line) == ("hostile.yaml", line + 3)  # the source starts on the file's 4th line
    assert "_arena" in p.message


@pytest.mark.parametrize("form", ["def", "async def", "class", "import alias", "assignment", "tuple target"])
def test_in_the_sandbox_arenas_helpers_win(form):
    """The same sources, put straight into the sandbox (no static check): decisions come back right."""
    from arena.engine.sandbox import Sandbox

    prog = CodeProgram(id="shadow", kind="code", source=BINDINGS[form][0] + "import random\n")
    base = {"game": {"default_action": "cooperate"}, "seat": "row"}
    requests = [(base, a, 1, 0.5, 0.25, None) for a in ("defect", None, "cooperate")]
    with Sandbox([prog], workers=1) as sb:
        many = sb.run_many(prog, requests)
        one = sb.run_one(prog, {**base, "opponent_action": "defect", "depth": 0, "epsilon": 0.5, "u": 0.1})
    assert [(o.value, o.error) for o in many] == [("defect", None), ("cooperate", None), ("cooperate", None)]
    assert (one.value, one.error) == ("defect", None)


@pytest.mark.parametrize("answer", [
    ([], [], []),  # too few values: zip would have skipped nodes
    (["cooperate"] * 4, [], []),  # too many
    (["cooperate"] * 3, [(7, "x")], []),  # an output for a decision that does not exist
    (["cooperate"] * 3, [], [-1]),  # a failed index out of range
    (["cooperate"] * 3, [], ["0"]),  # not an index
    "cooperate",  # not the helper's shape at all
    None,
])
def test_a_batch_answer_of_the_wrong_shape_is_refused(answer):
    from arena.engine.sandbox import _well_formed

    assert not _well_formed(answer, 3)
    assert _well_formed((["cooperate"] * 3, [(2, "printed")], [0]), 3)


def test_arena_run_refuses_programs_that_shadow_helpers_and_names_the_line(tmp_path):
    """`arena run` with a program defining _arena_run, and one importing json as _arena_x: exit 2 with each
    file:line, nothing run."""
    a = tmp_path / "shadow-run.yaml"
    a.write_text(yaml_of(BINDINGS["def"][0], "shadow-run"))
    b = tmp_path / "shadow-import.yaml"
    b.write_text(yaml_of("import json as _arena_x\n" + DECIDE, "shadow-import"))
    out = subprocess.run([sys.executable, "-m", "arena", "run", "-p", str(a), "-p", str(b), "-p", "defectbot",
                          "--db", str(tmp_path / "a.db"), "--display", "plain"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert f"{a}:4" in text and f"{b}:4" in text and "Traceback" not in text
    assert textwrap.dedent("'_arena_run' (Arena's own helper names start with _arena)") in text
