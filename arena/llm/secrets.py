"""Cleaning any text that leaves Arena (an error message, the app's last-resort message) of secrets.

`providers.redact` removes the secrets a run knows; `clean` is for paths that hold no run: it gathers
every known key value from the environment and the provider registry itself, then removes those values,
`Bearer ...`/`Basic ...` tokens, `api_key=...` pairs and passwords in URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from arena.errors import ArenaError
from arena.llm.providers import BUILTIN, load_providers, redact, secret_values


def known_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Every key value this process could hold: provider keys, *_KEY/*_TOKEN variables, URL passwords."""
    env = os.environ if env is None else env
    try:
        registry = load_providers(env=env)
    except (ArenaError, OSError):  # a broken providers.yaml must not hide a key in the message about it
        registry = dict(BUILTIN)
    return secret_values(registry, env)


def clean(text: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """`text` without any known key value, bearer token, api_key=... or URL password."""
    return redact(text, known_secrets(env))
