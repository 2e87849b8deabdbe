from __future__ import annotations

import pytest

from arena.errors import ArenaError, ConfigError
from arena.llm.redaction import redact
from arena.llm.registry import BUILTIN, load_providers, resolve


def test_resolve_native_and_alias():
    assert resolve("local/qwen2.5-coder-0.5b", BUILTIN).model == "qwen2.5-coder-0.5b"
    r = resolve("nvidia/llama-3.1-8b", BUILTIN)
    assert (r.provider, r.model) == ("nvidia", "meta/llama-3.1-8b-instruct")
    assert resolve("nvidia/some/other-model", BUILTIN).model == "some/other-model"


def test_provider_override_maps_through_aliases():
    # the same library on another provider: local's default model becomes each provider's default
    assert resolve("local/qwen2.5-coder-0.5b", BUILTIN, "groq").model == "llama-3.1-8b-instant"
    assert resolve("nvidia/meta/llama-3.1-70b-instruct", BUILTIN, "cerebras").model == "llama-3.3-70b"
    assert resolve("groq/llama-3.1-8b", BUILTIN, "ollama").model == "llama3.1:8b"
    with pytest.raises(ArenaError, match="provider 'cerebras' has no model for 'phi-4'"):
        resolve("nvidia/phi-4", BUILTIN, "cerebras")


def test_unknown_provider():
    with pytest.raises(ArenaError, match="unknown provider 'acme'"):
        resolve("acme/x", BUILTIN)
    with pytest.raises(ArenaError, match="unknown provider 'acme'"):
        resolve("local/x", BUILTIN, "acme")


def test_providers_yaml_overrides_and_refuses_keys(tmp_path):
    f = tmp_path / "providers.yaml"
    f.write_text("nvidia:\n  concurrency: 2\n  rpm: 10\nmine:\n  base_url: http://127.0.0.1:9/v1\n")
    reg = load_providers(f, env={})
    assert (reg["nvidia"].concurrency, reg["nvidia"].rpm, reg["nvidia"].key_env) == (2, 10, "NVIDIA_API_KEY")
    assert reg["mine"].base_url == "http://127.0.0.1:9/v1"
    f.write_text("nvidia:\n  api_key: abc\n")
    with pytest.raises(ConfigError, match="keys never go in files"):
        load_providers(f, env={})
    f.write_text("nvidia:\n  concurency: 2\n")
    with pytest.raises(ConfigError, match="concurency"):
        load_providers(f, env={})


def test_redact():
    secret = "sk-canary-1234567890"
    text = f"GET https://user:pw@api.example.com/v1 failed, key {secret}, header Authorization: Bearer abcdefghij"
    out = redact(text, [secret])
    assert secret not in out and "user:pw" not in out and "abcdefghij" not in out
    assert "https://***@api.example.com/v1" in out
