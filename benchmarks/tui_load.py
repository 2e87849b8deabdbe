"""TUI under load: key presses answered in < 100 ms while 10,000 node events/s arrive.

    python benchmarks/tui_load.py [--quick] [--seconds S] [--json rows.json]

The real ArenaApp runs headless (Textual's run_test, 120x40) with the real LiveSession. Two loads:

- flood: a load generator in the session's thread (in place of the TournamentRunner: no endpoint
  answers this fast) emits the core's own events, TrialPlanned / NodeResolved (each node with an LLM
  call record) / TrialsFinished, for 64 LLM trials in flight with deep trees (epsilon 0.05, cap 30:
  ~20 nodes a decision), at >= 10,000 node events/s (11,000 asked), stored as they finish like the runner does;
- huge trees: the real TournamentRunner on FairBot self-play with epsilon 0.0005 (chains of ~2,000
  nodes, trees of ~4,000), so the Live tree shows a new, huge trial every two seconds.

Meanwhile the benchmark presses keys: switch screens (4 Results, 5 History, 3 Live), focus the tree
and move its cursor (t, down, down, up). Latency = from posting the key until the end of the first compositor
pass that began with its effect holding (the mode switched, the cursor moved: the paint that shows it; what
the headless driver leaves out is only the terminal write). p50 / p95 / max per load.
Reported beside it, without a target: the time until the screen is also clean of every other widget's
pending update (under a flood other widgets are dirtied all the time, so this waits for a lull, not for
the key).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Row, arg_parser, library, machine, run, to_fake  # noqa: E402

from arena.engine.events import (
    NodeResolved,
    TournamentFinished,
    TournamentStarted,
    TrialPlanned,
    TrialsFinished,
)  # noqa: E402
from arena.engine.grid import TournamentConfig  # noqa: E402
from arena.engine.records import CallRecord, TrialResult  # noqa: E402
from arena.engine.simulator import plan  # noqa: E402

TARGET_S = 0.1
PROGRAMS = ["fair-llm", "exploit-llm"]


class Flood:
    """Emits a running LLM tournament's events at `rate` node events/s into a sink (the session), in the
    session's thread, and stores finished trials as the runner would. Control methods like the runner's."""

    def __init__(self, store, tid: int, config: TournamentConfig, lib, sink=None, rate: float = 11_000,
                 in_flight: int = 64):
        self.store, self.tournament_id, self.config = store, tid, config
        self.programs, self.games = lib.programs, lib.games
        self.sink, self.rate, self.in_flight = sink, rate, in_flight
        self.backend = None
        self.reused = False
        self.paused = False
        self._stop = threading.Event()
        self.emitted = 0
        self.elapsed = 0.0

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False

    def cancel(self) -> None:
        self._stop.set()

    async def run(self) -> TournamentFinished:
        game = self.games["prisoners_dilemma"]
        llm = SimpleNamespace(simulates=True, epsilon=None)
        agents = {p: llm for p in self.config.programs}
        specs = self.config.iter_specs()
        tid, total = self.tournament_id, self.config.total_trials
        self.sink(TournamentStarted(tid, total, 0, self.config.model_dump(mode="json")))
        live: list[tuple] = []  # (spec, nodes, order of resolution, next position)
        done = 0
        t0 = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.005)
            due = int(self.rate * (time.perf_counter() - t0)) - self.emitted
            while due > 0 and not self._stop.is_set():
                while len(live) < self.in_flight:
                    spec = next(specs, None)
                    if spec is None:
                        break
                    nodes, row, col = plan(spec, agents)
                    order = [n for pair in zip(reversed(row), reversed(col)) for n in pair]
                    order += list(reversed(row))[len(col):] + list(reversed(col))[len(row):]
                    live.append((spec, nodes, row, col, order, [0]))
                    self.sink(TrialPlanned(tid, spec, nodes))
                if not live:
                    self._stop.set()
                    break
                k = self.emitted % len(live)
                spec, nodes, row, col, order, pos = live[k]
                node = order[pos[0]]
                pos[0] += 1
                below = next((c for c in nodes if c.parent == node.index), None)
                node.action = "cooperate" if below is None else below.action
                node.calls.append(CallRecord("custom", "fake-8b", [{"role": "user", "content": f"node {node.index}"}],
                                             response=f"ACTION: {node.action}", parsed_action=node.action,
                                             latency_ms=100.0))
                self.sink(NodeResolved(tid, spec, node))
                self.emitted += 1
                due -= 1
                if pos[0] == len(order):
                    live.pop(k)
                    r = TrialResult(spec, nodes, row[0].action, col[0].action)
                    r.row_payoff, r.col_payoff = game.payoff_table[(r.row_action, r.col_action)]
                    r.cooperative = (r.row_action, r.col_action) in game.cooperative_set
                    done += self.store.write_trials(tid, [r])
                    self.sink(TrialsFinished(tid, [r], done, total))
        self.elapsed = time.perf_counter() - t0
        status = "finished" if done == total else "cancelled"
        self.store.set_status(tid, status)
        event = TournamentFinished(tid, status, done, total, {"ok": done, "node_events": self.emitted}, self.elapsed)
        self.sink(event)
        return event


def _count_paints() -> None:
    """Counts the compositor's updates (each one a paint of the screen) in `Compositor.paints`, and ends a
    watched key's wait (`Compositor.watch`: its effect and a list) at the end of the first paint that began
    with the effect holding: the benchmark's own wrapper of Textual's Compositor.render_update (the app
    is not changed)."""
    from textual._compositor import Compositor

    if hasattr(Compositor, "paints"):
        return
    Compositor.paints = 0
    Compositor.watch = None
    original = Compositor.render_update

    def render_update(self, *args, **kwargs):
        watch = Compositor.watch
        shows = watch is not None and not watch[1] and watch[0]()  # this paint draws the effect
        Compositor.paints += 1
        out = original(self, *args, **kwargs)
        if shows:
            watch[1].append(time.perf_counter())
        return out

    Compositor.render_update = render_update


async def press_and_measure(app, key: str, effect, clean: list[float] | None = None) -> float:
    """Post `key` as the terminal driver does; seconds until the end of the first compositor pass that
    began with `effect()` holding (the paint that shows it; what the headless driver leaves out is only the
    terminal write), or until the effect holds with nothing left to paint. With `clean`, also appends the
    seconds until the screen has no widget left to lay out or paint. (Pilot.press is not used: it waits for
    the whole process to go idle, which a process under load never does. The paint is seen from inside it,
    not by polling after the effect: a poller that wakes after the paint which showed the effect would
    count the next one.)"""
    from textual._compositor import Compositor
    from textual import events
    from textual.keys import _get_unicode_name_from_key

    import unicodedata

    try:
        char = unicodedata.lookup(_get_unicode_name_from_key(key))
    except KeyError:
        char = key if len(key) == 1 else None
    _count_paints()
    painted: list[float] = []
    Compositor.watch = (effect, painted)
    t0 = time.perf_counter()
    try:
        app._driver.send_message(events.Key(key, char))
        while not effect():
            await asyncio.sleep(0.001)
        screen = app.screen

        def pending() -> bool:  # something left to lay out or paint
            return bool(screen._dirty_widgets or screen._layout_required or screen._repaint_required)

        while not painted and pending():  # (nothing pending: the effect is painted already)
            await asyncio.sleep(0.001)
        latency = (painted[0] if painted else time.perf_counter()) - t0
    finally:
        Compositor.watch = None
    if clean is not None:
        while pending():
            await asyncio.sleep(0.001)
        clean.append(time.perf_counter() - t0)
    return latency


async def drive(app, pilot, seconds: float) -> list[tuple[str, float, float]]:
    """Press keys for `seconds`; (key, latency to the paint, latency to a clean screen) each."""
    from arena.tui.widgets import SimTree

    out: list[tuple[str, float, float]] = []
    visited = {app.current_mode}
    t_end = time.perf_counter() + seconds

    async def press(name: str, key: str, effect) -> None:
        clean: list[float] = []
        painted = await press_and_measure(app, key, effect, clean)
        out.append((name, painted, clean[0]))

    while time.perf_counter() < t_end:
        for key, mode in (("4", "results"), ("5", "history"), ("3", "live")):
            # (a first visit builds the screen)
            await press(key if mode in visited else "first:" + key, key, lambda m=mode: app.current_mode == m)
            visited.add(mode)
            await asyncio.sleep(0.15)
        tree = app.screen.query_one(SimTree)
        await asyncio.sleep(0.3)
        await press("t", "t", lambda: tree.has_focus)
        for key, step in (("down", 1), ("down", 1), ("up", -1)):
            before = tree.cursor_line
            want = max(0, min(before + step, tree.last_line))
            await press(key, key, lambda w=want: tree.cursor_line == w)
            await asyncio.sleep(0.1)
        app.screen.set_focus(None)
        await asyncio.sleep(0.2)
    return out


def serve_flood(db: str, tid: int, rate: float) -> int:
    """The flood's runner process: the flood in place of a TournamentRunner, served like one
    (arena/runner/process.py); prints the ready line `spawn_flood` waits for."""
    import json

    from arena.runner.process import Hub, runtime_dir, serve
    from arena.runner.tournament import load_stored
    from arena.store.database import Store

    store = Store(db)
    stored = load_stored(store, tid)
    flood = Flood(store, tid, stored.config, library(), rate=rate)
    hub = Hub(store, flood)
    flood.sink = hub.publish
    path = runtime_dir() / f"{os.getpid()}.sock"

    def ready() -> None:
        sys.stdout.write(json.dumps({"pid": os.getpid(), "socket": str(path)}) + "\n")
        sys.stdout.close()

    asyncio.run(serve(store, flood, hub, path, ready))
    store.close()
    return 0


def spawn_flood(db: Path, tid: int, rate: float):
    """The flood's runner process started: (its socket, the process)."""
    import json
    import subprocess

    proc = subprocess.Popen([sys.executable, __file__, "--serve-flood", str(db), str(tid), str(rate)],
                            stdout=subprocess.PIPE, start_new_session=True)
    said = json.loads(proc.stdout.readline())
    proc.stdout.close()
    return said["socket"], proc


def end_flood(proc) -> None:
    """The flood's runner process ended: it should have ended on the cancel; one that did not (its client lost
    the stream first) is terminated, so that it does not load the next scenario, and said so."""
    import subprocess

    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        print(f"  (the flood's runner process {proc.pid} outlived its cancel: terminated)", file=sys.stderr)
        proc.terminate()
        proc.wait(10)


async def scenario(load: str, seconds: float, rate: float, tmp: Path, in_process: bool = False) -> dict:
    from arena.tui.app import ArenaApp
    from arena.tui.session import LiveSession

    app = ArenaApp(db=tmp / f"{load}.db", programs_path=ROOT / "programs", games_path=ROOT / "games",
                   runner_process=not in_process, quiet_gc=True)  # (as `arena` runs it)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        lib = app.library
        session = runner = flood_proc = None
        if load == "idle":  # no tournament: Textual's own cost of each key, the baseline
            await pilot.press("3")
        elif load == "flood":
            from arena.store.database import Store

            config = TournamentConfig(programs=PROGRAMS, games=["prisoners_dilemma"], epsilons=[0.05],
                                      max_depths=[30], trials=100_000, seed=5, models=to_fake(PROGRAMS))
            store = Store(app.db_path)  # the runner's own connection, as ArenaApp.start_tournament does
            tid = store.create_tournament(config, [lib.programs[p] for p in PROGRAMS], [lib.games["prisoners_dilemma"]],
                                          config.total_trials, "bench", f"bench-{time.time()}")
            session = LiveSession(app.store, clock=app.clock)
            if in_process:
                runner = Flood(store, tid, config, lib, session.on_event, rate)
            else:  # the flood runs in a runner process; this one reads its stream
                from arena.runner.process import RemoteRunner

                store.close()
                socket, flood_proc = spawn_flood(app.db_path, tid, rate)
                runner = RemoteRunner(app.store, tid, socket, sink=session.on_event)
            app._run(session, runner)
        else:  # the real thing, as the Setup screen starts it
            config = TournamentConfig(programs=["fairbot"], games=["prisoners_dilemma"], epsilons=[0.0005],
                                      max_depths=[100_000], trials=1_000_000, seed=5)
            app.start_tournament(config)
            session, runner = app.session, app.session.runner
        await asyncio.sleep(1.0)  # let the load build up
        latencies = await drive(app, pilot, seconds)
        stats = {"trials": session.done if session else 0}
        if session is not None:
            session.cancel()
            await asyncio.to_thread(session.join, 120)  # (a client behind the stream reads it to the end)
        if flood_proc is not None:
            await asyncio.to_thread(end_flood, flood_proc)
        if in_process or session is None or session.result is None:
            stats["emitted"], stats["elapsed"] = getattr(runner, "emitted", 0), getattr(runner, "elapsed", 0.0)
        else:  # (the flood's own count, from its runner process)
            stats["emitted"] = session.result.counts.get("node_events", 0)
            stats["elapsed"] = session.result.elapsed_s
        await pilot.pause()
    return {"latencies": latencies, **stats}


def summary(lat: list[float]) -> tuple[float, float, float]:
    lat = sorted(lat)
    return statistics.median(lat), lat[min(len(lat) - 1, int(0.95 * len(lat)))], lat[-1]


SWITCH = {"4", "5", "3"}


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds of key presses per load")
    ap.add_argument("--rate", type=float, default=11_000, help="node events per second asked of the flood (it reaches a little less under load)")
    ap.add_argument("--in-process", action="store_true",
                    help="run the loads in a thread of the app's process (as before runner processes), for comparison")
    ap.add_argument("--serve-flood", nargs=3, metavar=("DB", "TID", "RATE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_flood:
        db, tid, rate = args.serve_flood
        sys.exit(serve_flood(db, int(tid), float(rate)))
    seconds = 2.5 if args.quick else args.seconds
    library()  # fail early if the library does not load
    where = "in a thread of the app's process" if args.in_process else "in a runner process"
    print(f"TUI under load, {machine()}; tournaments {where}; latency in ms")
    print(f"  {'load':<12} {'what':<44} {'keys':>4}  {'in-screen p50/p95/max':>22}  {'screen switch p50/p95/max':>26}"
          f"  {'first visit max':>16}")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("idle", "flood", "huge trees"):
            out = asyncio.run(scenario(load, seconds, args.rate, Path(tmp), args.in_process))
            inside = [x for k, x, _ in out["latencies"] if k not in SWITCH and not k.startswith("first:")]
            switch = [x for k, x, _ in out["latencies"] if k in SWITCH]
            first = [x for k, x, _ in out["latencies"] if k.startswith("first:")]
            clean = ([c for k, _, c in out["latencies"] if k not in SWITCH and not k.startswith("first:")],
                     [c for k, _, c in out["latencies"] if k in SWITCH])
            if load == "flood":
                rate = out["emitted"] / out["elapsed"] if out["elapsed"] else 0.0
                what = (f"{rate:,.0f} node events/s, {out['trials']:,} trials stored" if rate else
                        f"node events/s not reported, {out['trials']:,} trials seen")
            elif load == "huge trees":
                what = f"{out['trials']:,} FairBot trials of ~4,000 nodes stored"
            else:
                what = "no tournament running"
            results[load] = (summary(inside), summary(switch), what, max(first, default=0.0),
                             summary(clean[0]), summary(clean[1]))
            print(f"  {load:<12} {what:<44} {len(out['latencies']):>4}  {ms(summary(inside)):>22}  "
                  f"{ms(summary(switch)):>26}  {max(first, default=0.0) * 1000:>16.0f}")
            print(f"  {'':<12} {'  until the screen is clean (no target)':<44} {'':>4}  {ms(summary(clean[0])):>22}  "
                  f"{ms(summary(clean[1])):>26}")
    idle_switch = results["idle"][1][0]
    for load in ("flood", "huge trees"):
        (i50, i95, imax), (s50, s95, smax), what, first, clean_in, clean_switch = results[load]
        rows.append(Row("tui_load", f"in-screen keys (tree focus, cursor) p50 / p95 / max, {load}: {what}",
                        f"{i50 * 1000:.0f} / {i95 * 1000:.0f} / {imax * 1000:.0f} ms", "< 100 ms", i95 < TARGET_S))
        rows.append(Row("tui_load", f"screen switch keys p50 / p95 / max, {load} (idle p50 {idle_switch * 1000:.0f} ms; "
                        f"first visits, which build the screen, apart: max {first * 1000:.0f} ms)",
                        f"{s50 * 1000:.0f} / {s95 * 1000:.0f} / {smax * 1000:.0f} ms", "< 100 ms", s95 < TARGET_S))
        rows.append(Row("tui_load", f"in-screen / switch keys until the screen is also clean of other updates, {load}",
                        f"{ms(clean_in, ' / ')} ms · {ms(clean_switch, ' / ')} ms"))
    return rows


def ms(t: tuple[float, ...], sep: str = "/") -> str:
    """Seconds as whole milliseconds, joined by `sep` (p50/p95/max)."""
    return sep.join(f"{x * 1000:.0f}" for x in t)


if __name__ == "__main__":
    run(main)
