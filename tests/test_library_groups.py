"""The program library is `programs/` with its subfolders: each subfolder a group, ids unique across all."""

from __future__ import annotations

import pytest

from arena.errors import ConfigError
from arena.library.catalog import load_lenient, load_library
from tests.conftest import ROOT

FAIR = "id: {id}\nkind: builtin\nstrategy: fairbot\n"


def test_subfolders_are_groups_and_hidden_folders_are_skipped(tmp_path):
    d = tmp_path / "programs"
    (d / "code").mkdir(parents=True)
    (d / "papers" / "pibr").mkdir(parents=True)
    (d / ".git").mkdir()
    (d / "_drafts").mkdir()
    (d / "top.yaml").write_text(FAIR.format(id="top"))
    (d / "code" / "c.yaml").write_text(FAIR.format(id="in-code"))
    (d / "papers" / "pibr" / "p.yaml").write_text(FAIR.format(id="in-pibr"))
    (d / ".git" / "x.yaml").write_text(FAIR.format(id="hidden"))
    (d / "_drafts" / "x.yaml").write_text(FAIR.format(id="draft"))
    lib = load_library(d, ROOT / "games")
    assert {k: e.group for k, e in lib.entries.items()} == {"top": "", "in-code": "code", "in-pibr": "papers/pibr"}
    assert list(lib.entries) == ["top", "in-code", "in-pibr"]  # the top folder first, then each subfolder


def test_an_id_defined_in_two_folders_names_both_files(tmp_path):
    d = tmp_path / "programs"
    (d / "code").mkdir(parents=True)
    (d / "fair.yaml").write_text(FAIR.format(id="twice"))
    (d / "code" / "fair.yaml").write_text("# the same id again\n" + FAIR.format(id="twice"))
    with pytest.raises(ConfigError) as e:
        load_library(d, ROOT / "games")
    (p,) = e.value.problems
    assert (p.file, p.line) == (str(d / "code" / "fair.yaml"), 2)
    assert f"duplicate program id 'twice' (first defined in {d / 'fair.yaml'}:1)" in p.message
    lib, problems = load_lenient(d, ROOT / "games")  # the app: the first one kept, the problem listed
    assert list(lib.entries) == ["twice"] and lib.entries["twice"].group == "" and len(problems) == 1


def test_the_shipped_library_holds_the_code_programs():
    lib = load_library(ROOT / "programs", ROOT / "games")
    code = sorted(k for k, e in lib.entries.items() if e.group == "code")
    assert code == ["clique-code", "cooperate-code", "defect-code", "fair-code", "seat-coordinator", "simulator-club"]
    assert all(lib.entries[k].program.kind == "code" for k in code)


def test_a_broken_file_is_left_out_and_the_rest_loads(tmp_path):
    """The app's lenient load: a file with a problem (here, bad YAML and an unknown strategy) is left out and
    its problem listed with file:line; the other programs load."""
    d = tmp_path / "programs"
    (d / "code").mkdir(parents=True)
    (d / "ok.yaml").write_text(FAIR.format(id="ok"))
    (d / "bad.yaml").write_text("id: bad\nkind: builtin\nstrategy: nosuch\n")
    (d / "code" / "broken.yaml").write_text("id: [unclosed\n")
    lib, problems = load_lenient(d, ROOT / "games")
    assert list(lib.entries) == ["ok"]
    assert sorted(p.file for p in problems) == [str(d / "bad.yaml"), str(d / "code" / "broken.yaml")]
    assert all(p.line for p in problems)
