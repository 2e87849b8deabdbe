"""The LLM call path's shortcuts give exactly what the long way gives: the cache key built from its parts
(and from JSON the caller holds), redact's early return, a one-shot question's messages built once."""

from __future__ import annotations

import hashlib
import json

import pytest

from arena.llm.cache import cache_key, key_json
from arena.llm.redaction import redact

MESSAGES = [{"role": "system", "content": "Bé \"fair\" ☃\n\t\u2028\x00 </fence>"},
            {"role": "user", "content": "Payoffs: 3, 0.5; ACTION: <one of: cooperate, defect>"}]
CASES = [
    ("custom", "fake-8b", MESSAGES, 0.7, "7:3", 400, None),
    ("local", "qwen2.5-coder-0.5b", MESSAGES[:1], 0, "0", 16, {"grammar": 'root ::= "ACTION: " ("a")', "stop": ["\n"]}),
    ("p", "m", [], 1e-7, "s", 8192, {"type": "json_schema", "json_schema": {"strict": True, "name": "d",
                                                                        "schema": {"b": [1, 2.5, None], "a": {}}}}),
]


def whole(provider, model, messages, temperature, sample, max_tokens, constraint) -> str:
    """The key as one json.dumps of the whole object (how every stored key was made)."""
    blob = json.dumps({"p": provider, "m": model, "msgs": messages, "t": temperature, "s": sample, "n": max_tokens,
                       "c": constraint}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@pytest.mark.parametrize("case", CASES, ids=["free text", "grammar and stop", "json schema"])
def test_the_cache_key_from_its_parts_is_the_key_of_the_whole_object(case):
    msgs, constraint = case[2], case[6]
    expected = whole(*case)
    assert cache_key(*case) == expected
    assert cache_key(*case, messages_json=key_json(msgs), constraint_json=key_json(constraint)) == expected


def test_a_known_key_stays_the_same():
    """A key stored before keeps being found: the text hashed is the same, byte for byte."""
    assert cache_key("custom", "m", [{"role": "user", "content": "hi"}], 0.5, "1:0", 16, None) == hashlib.sha256(
        b'{"c":null,"m":"m","msgs":[{"content":"hi","role":"user"}],"n":16,"p":"custom","s":"1:0","t":0.5}'
    ).hexdigest()


@pytest.mark.parametrize("text, expected", [
    ("I cooperate.\nACTION: cooperate", "I cooperate.\nACTION: cooperate"),  # nothing to find: as it was
    ("my key is KEY123456 really", "my key is *** really"),  # a known secret, nothing else
    ("Authorization: Bearer abcdefghijkl", "Authorization: Bearer ***"),
    ("BASIC dXNlcjpwYXNz", "BASIC ***"),
    ("see https://user:pw@host.example/v1", "see https://***@host.example/v1"),
    ("GET /v1?api_key=zzz&x=1", "GET /v1?api_key=***&x=1"),
    ("why? & how", "why? & how"),  # a pattern's marks, no match
    ("api_key: 'abcdef12'", "api_key: '***'"),
])
def test_redact_gives_what_the_three_patterns_give(text, expected):
    assert redact(text, ["KEY123456"]) == expected
