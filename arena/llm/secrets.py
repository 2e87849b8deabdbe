"""Cleaning any text that leaves Arena (an error message, the app's last-resort message) of secrets.

`redaction.redact` removes the secrets a run knows (`secret_values` lists them); `clean` is for paths that hold no run: it gathers
every known key value from the environment and the provider registry itself, then removes those values,
`Bearer ...`/`Basic ...` tokens, `api_key=...` pairs and passwords in URLs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from arena.errors import ArenaError
from arena.llm.redaction import redact
from arena.llm.registry import BUILTIN, ProviderSpec, load_providers

# Environment variables holding a secret even if no provider names them (HF_TOKEN, ANTHROPIC_API_KEY, ...)
_SECRET_ENV = re.compile(r"(?i)(^|_)(api_?key|key|token|secret|password|passwd)$")


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


def secret_values(registry: Mapping[str, ProviderSpec], env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret a run could see: provider keys, other *_KEY/*_TOKEN variables, passwords in base
    URLs (with their Basic-auth forms). Longest first, so that a key containing another is removed whole."""
    import base64
    from urllib.parse import quote, unquote, urlsplit

    env = os.environ if env is None else env
    found = {env[p.key_env] for p in registry.values() if p.key_env and env.get(p.key_env)}
    found |= {v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= 8}
    for p in registry.values():
        for url in (p.base_url, env.get(p.base_url_env) if p.base_url_env else None, *(p.base_urls or [])):
            if not url or "@" not in url:
                continue
            parts = urlsplit(url)
            user, password = parts.username or "", parts.password or ""
            for value in (password, unquote(password), user if not password else ""):
                if value:
                    found |= {value, quote(value, safe="")}
            if user or password:
                found.add(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode())
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)
