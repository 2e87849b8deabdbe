"""Where a bug in Arena itself is recorded: its traceback, in a log file next to the database.

A bug in Arena's own code (KeyError, TypeError, ...) is never a program's failure: the run stops, the
tournament is marked failed with a one-line reason that names this log, and the traceback goes here.
"""

from __future__ import annotations

import datetime as dt
import traceback
from pathlib import Path

from arena.llm.redaction import redact


def log_path(db_path: Path) -> Path:
    """The log of a database: arena.db -> arena.log beside it."""
    return db_path.with_suffix(".log")


def record_internal_error(db_path: Path, exc: BaseException, secrets: list[str] = ()) -> str:
    """Append exc's traceback (keys removed) to the database's log; return the reason to show and store."""
    path = log_path(db_path)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    where = str(path)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"--- {stamp}: internal error\n{redact(text, list(secrets))}\n")
    except OSError as err:
        where = f"(not written: {err.strerror})"
    return redact(f"internal error in Arena (a bug, not a program's failure): {type(exc).__name__}: {exc}; "
                  f"traceback in {where}", list(secrets)) or ""
