"""`arena providers`: where LLM programs' calls go (list, check)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from arena.cli.common import fail

providers_app = typer.Typer(help="LLM providers: where LLM programs' calls go.", no_args_is_help=True)


@providers_app.command("list")
def providers_list() -> None:
    """Providers, their endpoints, key variables (never the keys), limits and model aliases."""
    import os

    from rich.table import Table

    from arena.errors import ArenaError
    from arena.llm.redaction import public_url, split_credentials
    from arena.llm.registry import load_providers
    from arena.cli.progress import console

    try:
        registry = load_providers()
    except ArenaError as exc:
        fail(str(exc))
    t = Table("provider", "endpoint", "key", "concurrency", "rpm", "constraint", "aliases")
    for p in registry.values():
        key = "-" if not p.key_env else f"{p.key_env} ({'set' if os.environ.get(p.key_env) else 'NOT SET'})"
        raw = p.url(os.environ)
        url, secret = public_url(raw), split_credentials(raw)[1]
        url = (url + " (credentials hidden)" if secret else url) or (
            "embedded" if p.name == "local" else f"set {p.base_url_env}")
        if p.base_urls:  # an endpoint pool: its replicas, and concurrency per replica
            url = ", ".join(public_url(u) or "" for u in p.base_urls)
        n = len(p.base_urls or []) or p.replicas
        aliases = ", ".join(f"{a}={m}" for a, m in p.aliases.items() if a != m) or "-"
        t.add_row(p.name, url, key, f"{p.concurrency} x {n} replicas" if n > 1 else str(p.concurrency),
                  f"{p.rpm:g}" if p.rpm else "-", p.structured, aliases)
    console().print(t)


@providers_app.command("check")
def providers_check(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="PROVIDER...", help="providers to check (default: local and every provider whose key is set)")] = None,
) -> None:
    """Ask each provider one tiny question and report latency or the error."""
    import asyncio

    from arena.errors import ArenaError
    from arena.llm.service import check_providers

    try:
        results = asyncio.run(check_providers(names))
    except ArenaError as exc:
        fail(str(exc))
    bad = 0
    for name, ok, detail in results:
        typer.echo(f"{name:10} {'ok  ' if ok else 'FAIL'} {detail}")
        bad += not ok
    raise typer.Exit(1 if bad else 0)
