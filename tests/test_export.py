"""Exports as a user gets them: `arena export` (CliRunner, and a real process for start-up), files that
open cleanly (CSV parses, JSON validates against its schema, LaTeX escapes and compiles, plots are
images), stable column names."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arena.cli.main import app
from arena.analysis import export as ex
from arena.store.database import Store
from stored import fdc_trial, make_tournament

ROOT = Path(__file__).resolve().parents[1]

COLUMNS = {
    "summary": "game,epsilon,max_depth,temperature,programs,trials,valid,cooperative,cooperation,cooperation_low,"
               "cooperation_high,wald_low,wald_high,"
               "wilson_low,wilson_high,mean_payoff,refusal_rate,error_rate,calls_per_trial,depth_mean,depth_max,best,"
               "nash_equilibria,degenerate,program_equilibria,uncertain_equilibria,equilibria_basis",
    "pairs": "game,epsilon,max_depth,temperature,row_program,col_program,trials,valid,cooperation,wald_low,wald_high,"
             "wilson_low,wilson_high,row_payoff,col_payoff,refusal_rate,error_rate,calls_per_trial,cooperative,"
             "row_payoff_low,row_payoff_high,col_payoff_low,col_payoff_high,row_actions.cooperate,row_actions.defect,"
             "col_actions.cooperate,col_actions.defect,row_actions_low.cooperate,row_actions_low.defect,"
             "row_actions_high.cooperate,row_actions_high.defect,col_actions_low.cooperate,col_actions_low.defect,"
             "col_actions_high.cooperate,col_actions_high.defect,calls_max,row_depth_mean,row_depth_max,col_depth_mean,"
             "col_depth_max",
    "programs": "game,epsilon,max_depth,temperature,rank,program,opponents,trials,valid,mean_payoff,payoff_low,"
                "payoff_high,median_payoff,cooperation_rating,wins,trial_wins,actions.cooperate,actions.defect,"
                "actions_low.cooperate,actions_low.defect,actions_high.cooperate,actions_high.defect,initial_rate,"
                "initial_actions.cooperate,initial_actions.defect,cc,cd,dc,dd",
    "matrix": "game,epsilon,max_depth,temperature,program,opponent,payoff,opponent_payoff,trials,program_equilibrium,"
              "margin,margin_low,margin_high,strict_margin,strict_margin_low,strict_margin_high,verdict",
    "equilibria": "game,epsilon,max_depth,temperature,index,row_strategy.fairbot,row_strategy.defectbot,"
                  "row_strategy.cooperatebot,col_strategy.fairbot,col_strategy.defectbot,col_strategy.cooperatebot,"
                  "row_payoff,col_payoff,pure,symmetric,method,support_frequency",
    "supports": "game,epsilon,max_depth,temperature,row_support,col_support,frequency,resamples,estimated",
    "depths": "game,epsilon,max_depth,temperature,program,opponent,seat,depth,decisions",
    "replicator": "game,epsilon,max_depth,temperature,step,program,share,fitness,rest,converged",
    "moran": "game,epsilon,max_depth,temperature,invader,resident,population,intensity,fixation,neutral,favoured",
    "calls": "provider,model,program,calls,attempts,retries,failures,refusals,unparsed,cached,bare_words,prose,"
             "invalid,empty,latency_ms_mean,"
             "prompt_tokens,completion_tokens,replica",
}


@pytest.fixture
def db(tmp_path, programs, games):
    """FairBot / DefectBot / CooperateBot at ε = 0.1, trials written by hand (see stored.py)."""
    path = tmp_path / "fdc.db"
    with Store(path) as store:
        tid, cfg = make_tournament(store, programs, games, name="FDC & friends: 100% #1")
        store.write_trials(tid, [fdc_trial(s, games["prisoners_dilemma"]) for s in cfg.iter_specs()])
    return path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# --- CSV -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", list(COLUMNS))
def test_csv_has_the_documented_columns_and_parses(db, table):
    r = invoke("export", "--db", db, "--format", "csv", "--table", table)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.stdout.splitlines()[0] == COLUMNS[table]
    # depths, per opponent: FairBot's chains against itself reach 0..9 (row and column seat: 10 each), against
    # each bot 0 or 1 (2 × 2 × 2); the two bots' only 0 (2 × 2 seats × 3 opponents);
    # replicator: the 83 recorded steps 0..82 of three programs; moran: the 6 ordered pairs of distinct programs
    expected = {"summary": 1, "pairs": 9, "programs": 3, "matrix": 9, "equilibria": 6, "supports": 6, "depths": 40,
                "replicator": 249, "moran": 6, "calls": 0}[table]
    assert len(rows) == expected


def test_csv_values(db):
    rows = list(csv.DictReader(io.StringIO(invoke("export", "--db", db, "-f", "csv").stdout)))  # pairs by default
    fd = next(r for r in rows if (r["row_program"], r["col_program"]) == ("fairbot", "defectbot"))
    assert (fd["temperature"], fd["trials"], fd["cooperative"], fd["row_actions.cooperate"]) == ("", "10", "0", "0.1")
    assert float(fd["row_payoff"]) == pytest.approx(0.9)
    summary = next(csv.DictReader(io.StringIO(invoke("export", "--db", db, "-f", "csv", "--table", "summary").stdout)))
    assert summary["program_equilibria"] == "fairbot/fairbot; defectbot/defectbot" and summary["degenerate"] == "true"
    assert (summary["uncertain_equilibria"], summary["equilibria_basis"]) == ("", "bootstrap")
    matrix = list(csv.DictReader(io.StringIO(invoke("export", "--db", db, "-f", "csv", "--table", "matrix").stdout)))
    dd = next(r for r in matrix if r["program"] == r["opponent"] == "defectbot")
    assert (dd["program_equilibrium"], float(dd["margin"])) == ("true", pytest.approx(0.1))


# --- JSON ------------------------------------------------------------------------------------------------
def test_json_validates_against_the_documented_schema(db):
    import jsonschema

    r = invoke("export", "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    schema = json.loads(invoke("export", "--schema").stdout)
    jsonschema.validate(doc, schema)
    assert schema == ex.json_schema()
    assert (doc["format"], doc["version"]) == ("arena-export", 1)
    assert set(doc) == {"format", "version", "tournament", "tables"}
    assert set(doc["tables"]) == set(ex.TABLES)
    t = doc["tournament"]
    assert (t["id"], t["name"], t["status"], t["done"], t["total_trials"]) == (1, "FDC & friends: 100% #1", "running", 90, 90)
    assert t["config"]["programs"] == ["fairbot", "defectbot", "cooperatebot"]
    pairs = doc["tables"]["pairs"]
    assert pairs[0]["row_actions"] == {"cooperate": 1.0, "defect": 0.0} and pairs[0]["temperature"] is None
    eq = doc["tables"]["equilibria"][0]
    assert eq["row_strategy"] == {"fairbot": 1.0, "defectbot": 0.0, "cooperatebot": 0.0} and eq["pure"] is True
    one = json.loads(invoke("export", "--db", db, "-f", "json", "--table", "programs").stdout)
    jsonschema.validate(one, schema)
    assert list(one["tables"]) == ["programs"] and one["tables"]["programs"][0]["program"] == "defectbot"


def test_json_of_an_empty_tournament_has_null_not_nan(tmp_path, programs, games):
    import jsonschema

    path = tmp_path / "e.db"
    with Store(path) as store:
        tid, cfg = make_tournament(store, programs, games)
        from stored import make_trial

        spec = next(cfg.iter_specs())
        store.write_trials(tid, [make_trial(spec, games["prisoners_dilemma"], None, "cooperate", status="refused")])
    r = invoke("export", "--db", path, "-f", "json")
    doc = json.loads(r.stdout)  # strict JSON: NaN would not parse with a standard parser's allow_nan=False
    jsonschema.validate(doc, ex.json_schema())
    (row,) = doc["tables"]["pairs"]
    assert (row["valid"], row["cooperation"], row["row_payoff"], row["refusal_rate"]) == (0, None, None, 1.0)
    assert "NaN" not in r.stdout


# --- Markdown and LaTeX ------------------------------------------------------------------------------------
def test_markdown_is_a_github_pipe_table(db):
    r = invoke("export", "--db", db, "-f", "markdown", "--table", "programs")
    lines = r.stdout.strip().splitlines()
    assert lines[0] == ("| game | ε | cap | rank | program | mean payoff | 95% CI | median | coop rating | wins | "
                        "initial | CC | CD | DC | DD |")
    assert lines[1] == "|:---|---:|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    # DefectBot: mean 148/60; stratified: only its two cells with FairBot vary (each 10 trials: one 5, nine 1,
    # s² = 1.6), each weighing 10/60: half width 1.96·√(2·(1/6)²·1.6/10) = 0.1848
    assert lines[2] == ("| prisoners_dilemma | 0.1 | 10 | 1 | defectbot | 2.47 | [2.28, 2.65] | 1.00 | 0.0% | 2 | "
                        "100.0% | 0.0% | 0.0% | 36.7% | 63.3% |")
    assert all(line.startswith("| ") and line.endswith(" |") and line.count("|") == 16 for line in lines if line[1] != ":")
    full = invoke("export", "--db", db, "-f", "markdown").stdout
    assert full.startswith("# Arena tournament 1: FDC & friends: 100% #1\n")
    assert "| fairbot | 3.00* | 0.90 | 3.00 |" in full  # the matrix, with FairBot/FairBot a program equilibrium
    assert ex.markdown_escape("a|b") == "a\\|b"


def test_latex_escaping():
    assert ex.latex_escape("prisoners_dilemma & 50% #1 $x") == r"prisoners\_dilemma \& 50\% \#1 \$x"
    assert ex.latex_escape("{a}~^\\") == r"\{a\}\textasciitilde{}\textasciicircum{}\textbackslash{}"
    assert ex.latex_escape("ε = 0.1 – 3") == r"$\varepsilon$ = 0.1 -- 3"
    assert ex.latex_escape("naïve\nline") == "na?ve line"


def test_latex_uses_only_tabular(db):
    text = invoke("export", "--db", db, "-f", "latex").stdout
    envs = {line.split("{")[1].rstrip("}") for line in text.splitlines() if line.startswith("\\begin{")}
    # ten tables, the matrix with its program-equilibria table beside it
    assert envs == {"tabular"} and text.count("\\begin{tabular}") == text.count("\\end{tabular}") == 11
    assert "prisoners\\_dilemma" in text and "prisoners_dilemma" not in text.replace("prisoners\\_dilemma", "")
    assert "% Arena tournament 1: FDC & friends: 100% #1" in text  # a comment line, left as written
    assert "\\multicolumn{4}{l}{prisoners\\_dilemma, $\\varepsilon$ = 0.1, cap 10} \\\\" in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(db, tmp_path):
    (tmp_path / "tables.tex").write_text(invoke("export", "--db", db, "-f", "latex").stdout)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\input{tables.tex}\n\\end{document}\n")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


# --- files, plots --------------------------------------------------------------------------------------------
def test_out_file_and_default_names(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("export", "--db", db, "-f", "markdown", "--table", "summary", "--out", "s.md")
    assert r.exit_code == 0 and (tmp_path / "s.md").read_text().startswith("| game |")
    assert "wrote s.md" in r.stderr
    assert invoke("export", "--db", db, "-f", "csv", "--out", "-").stdout.startswith("game,")
    assert ex.default_path(1, "csv") == Path("arena-tournament-1.csv")
    assert ex.default_path(1, "latex", "programs") == Path("arena-tournament-1-programs.tex")
    assert ex.default_path(1, "png", "depth-hist") == Path("arena-tournament-1-depth-hist.png")


def test_plots_as_png_and_svg(db, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    r = invoke("export", "--db", db, "-f", "png")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["arena-tournament-1-coop-vs-eps.png", "arena-tournament-1-depth-hist.png",
                     "arena-tournament-1-payoff-heatmap.png", "arena-tournament-1-replicator.png"]
    for n in names:
        with Image.open(tmp_path / n) as im:
            assert im.format == "PNG" and im.size[0] >= 480 and im.size[1] >= 300
    r = invoke("export", "--db", db, "-f", "svg", "--plot", "payoff-heatmap", "--out", tmp_path / "heat.svg")
    assert r.exit_code == 0
    svg = (tmp_path / "heat.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "3.00*" in svg and "1.00*" in svg and "cooperatebot" in svg  # text kept as text; equilibria marked
    invoke("export", "--db", db, "-f", "svg", "--plot", "payoff-heatmap", "--out", tmp_path / "again.svg")
    assert (tmp_path / "again.svg").read_text() == svg  # reproducible
    r = invoke("export", "--db", db, "-f", "svg", "--out", tmp_path / "plots")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [n.replace(".png", ".svg") for n in names]


@pytest.mark.parametrize("args,message", [
    (["-f", "xls"], "Invalid value for '--format'"),
    (["-f", "csv", "--table", "everything"], "Invalid value for '--table'"),
    (["-f", "csv", "--table", "all"], "CSV holds one table: choose --table"),
    (["-f", "csv", "--tournament", "7"], "no tournament 7"),
    (["-f", "png", "--out", "-"], "png plots need a file"),
    (["-f", "png", "--table", "pairs"], "--table goes with --format csv, json, markdown or latex"),
    (["-f", "json", "--plot", "depth-hist"], "--plot goes with --format png or svg"),
    (["-f", "png", "--plot", "all", "--out", "x.png"], "every plot goes into a directory"),
    ([], "--format is required"),
])
def test_bad_export_requests_exit_2(db, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("export", "--db", db, *args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_no_tournament_yet(tmp_path):
    r = invoke("export", "--db", tmp_path / "new.db", "-f", "csv")
    assert r.exit_code == 2 and "no tournaments in" in r.output


def test_start_up_imports_no_plotting_or_numerics():
    """`arena --help` stays fast: neither the CLI nor core modules the TUI starts with import
    matplotlib, numpy or nashpy (they load when a plot or the meta-game is computed)."""
    code = ("import sys\nfrom arena import cli\nimport arena.analysis.export, arena.analysis.tables, arena.analysis.plots\n"
            "import arena.tui.app, arena.tui.exporting\n"
            "print(sorted(m for m in ('matplotlib', 'numpy', 'nashpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    assert subprocess.run([sys.executable, "-m", "arena.cli.main", "export", "--help"], capture_output=True, text=True,
                          cwd=ROOT).stdout.count("--format") >= 1
