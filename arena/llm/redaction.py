"""Keys out of every text Arena stores or shows: URL credentials, query values, bearer tokens, and the
secret values a run knows (`redact`); the URL forms that may be stored or shown (`public_url`)."""

from __future__ import annotations

import re

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_BEARER = re.compile(r"(?i)(bearer\s+|basic\s+|api[_-]?key[\"'=:\s]+)[A-Za-z0-9._~+/=-]{6,}")
_QUERY_KEY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|auth)=)[^&\s\"']+")
# what each of the three patterns above needs somewhere in a text to match at all
_ANY = re.compile(r"(?i)://|[?&]|bearer|basic|api")


def split_credentials(url: str | None) -> tuple[str | None, str | None]:
    """A base URL without its user:password@ part, and that password (or a lone user part) if any."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if not url or "@" not in url:
        return url, None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    secret = parts.password if parts.password is not None else parts.username
    return urlunsplit(parts._replace(netloc=netloc)), unquote(secret) if secret else None


def public_url(url: str | None) -> str | None:
    """A base URL as it may be stored, shown or used as an identity: no user:password@, every query value
    and the fragment replaced by *** (`?api_key=...` or `#token` would carry a key); the parameter names
    stay, so that two endpoints told apart by them stay apart."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    url = split_credentials(url)[0]
    if not url or ("?" not in url and "#" not in url):
        return url
    parts = urlsplit(url)
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query=query, fragment="***" if parts.fragment else ""))


def redact(text: str | None, secrets: list[str] = ()) -> str | None:
    """Remove keys, bearer tokens and URL credentials from a text that may be stored or shown."""
    if not text:
        return text
    for s in secrets:
        text = text.replace(s, "***")
    if _ANY.search(text) is None:  # no pattern can match (most model answers)
        return text
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    text = _QUERY_KEY.sub(r"\1***", text)
    return _BEARER.sub(r"\1***", text)
