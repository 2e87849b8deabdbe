"""What the exports of an iterate run share, whatever its protocol (analysis/iterate.py: best response's
steps; analysis/metarounds.py: meta-rounds): the run's JSON document and its table as CSV, Markdown or LaTeX.
Its plots are written by export.write_figure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel

from arena.analysis.export import PLOT_FORMATS, TEXT_FORMATS, ExportError, latex_table, markdown_table, to_csv

RUN_FIELDS = ("id", "config", "tournament_id", "status")


def run_json(run: dict, **parts: Sequence[BaseModel] | BaseModel) -> str:
    """`{"run": the run's id, config, tournament and status, then each part by its name}`: a list of rows or
    one model, as JSON."""
    doc: dict = {"run": {k: run[k] for k in RUN_FIELDS}}
    for name, part in parts.items():
        doc[name] = part.model_dump(mode="json") if isinstance(part, BaseModel) else [
            r.model_dump(mode="json") for r in part]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def run_table(fmt: str, rows: Sequence[BaseModel], model: type[BaseModel], headers: Sequence[str],
              body: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """The run's table as `fmt`: CSV (every field of `model`), Markdown or LaTeX (`headers` over `body`, the
    columns `right` aligned right); ExportError for any other format."""
    if fmt == "csv":
        return to_csv(rows, model)
    if fmt == "markdown":
        return markdown_table(headers, body, right) + "\n"
    if fmt == "latex":
        return latex_table(headers, body, right) + "\n"
    raise ExportError(f"unknown format '{fmt}'; formats: {', '.join(TEXT_FORMATS + PLOT_FORMATS)}")
