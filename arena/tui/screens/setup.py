"""Setup: choose programs, games and the grid (or a preset), see what it will cost, start it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from .. import format as fmt
from ..widgets import MarkedCheckbox, MarkedSelectionList
from .base import ArenaScreen
from .library import program_label

PRESET_NONE = "custom"


def _labelled(*rows: tuple[str, Widget]) -> ComposeResult:
    """A form's rows: each widget after its label (the form's grid puts them side by side)."""
    for label, widget in rows:
        yield Label(label)
        yield widget


def _text(id: str, placeholder: str = "", *, value: str = "", type: str = "text") -> Input:
    return Input(value, id=id, placeholder=placeholder, type=type, compact=True)


class SetupScreen(ArenaScreen):
    MODE = "setup"
    BINDINGS = [
        Binding("ctrl+r", "start", "Run"),
        Binding("ctrl+a", "select_all", "All programs"),
        Binding("ctrl+l", "clear_programs", "Clear", show=False),
    ]

    _filled = False  # the form reacts to changes only once the library is in (after the first paint)

    def compose_body(self) -> ComposeResult:
        presets = [("bots", "bots")]  # the others are added after the first paint (importing core is slow)
        with Horizontal(id="setup"):
            with Vertical(id="setup-pick"):
                yield MarkedSelectionList(id="pick-programs", classes="panel")
                yield MarkedSelectionList(id="pick-games", classes="panel")
            with Vertical(id="setup-right"):
              with VerticalScroll(id="setup-form", classes="panel", can_focus=False):
                with Grid(classes="form"):
                    yield from _labelled(
                        ("Preset grid", Select([("custom (fields below)", PRESET_NONE), *presets], value="bots",
                                               allow_blank=False, id="preset", compact=True)),
                        ("ε values", _text("epsilons", "e.g. 0.1 0.2 0.5")),
                        ("Depth caps", _text("depths", "e.g. 10")),
                        ("Trials per cell", _text("trials", type="integer")),
                        ("Temperatures", _text("temps", "each program's own")),
                        ("Rounds", _text("rounds", "1 (one-shot); e.g. 10 200")),
                        ("Continuation", _text("continuations", "none; e.g. 0.9 (instead of rounds)")),
                        ("Noise", _text("noises", "0; e.g. 0.05")),
                        ("Recall", _text("recalls", "all rounds; e.g. 3")),
                        ("Disclosure", _text("disclosures", "full; e.g. full prompt model none obfuscated")),
                        ("Obfuscated prompts", Select([("sentences shuffled", "shuffle"), ("unchanged", "none")],
                                                      value="shuffle", allow_blank=False, id="obfuscate-prompts",
                                                      compact=True)),
                        ("Simulation", Select([("run the opponent (ε-grounded)", "run"), ("LLM imagines it", "imagine")],
                                              value="run", allow_blank=False, id="simulation", compact=True)),
                        ("Provider", Select([("each program's own", "")], value="", allow_blank=False, id="provider",
                                            compact=True)),
                        ("Model", _text("model", "each LLM program's own (provider/model)")),
                        ("Concurrency", _text("concurrency", value="8", type="integer")),
                        ("Seed", _text("seed", value="0", type="integer")),
                        ("Name", _text("name", "optional")),
                        ("Options", MarkedCheckbox("read the response cache", True, id="cache", compact=True)),
                        ("", MarkedCheckbox("always record a new tournament", False, id="new", compact=True)),
                    )
              with Horizontal(id="setup-bottom", classes="panel"):
                yield Static(id="summary")
                yield Button("Run ▶", id="start", variant="success")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#pick-programs").border_title = "Programs"
        self.query_one("#pick-games").border_title = "Games"
        self.query_one("#setup-form").border_title = "Grid"
        self.query_one("#setup-bottom").border_title = "This tournament"
        self.query_one("#pick-programs").focus()
        self.query_one("#summary", Static).update(Content.styled("loading the library…", "dim"))
        # Paint first, fill then (loading the library takes ~100 ms). While the app is still switching to
        # this screen, its after-refresh callbacks run before its first frame is drawn (measured in a
        # pty, benchmarks/startup.py); a short timer lets that frame out first.
        self.set_timer(0.01, self._fill_after_next_frame)

    def _fill_after_next_frame(self) -> None:
        self.call_after_refresh(self._first_fill)
        self.refresh()  # a frame to come after: nothing else may ask for one (an idle screen)

    def _first_fill(self) -> None:
        if self._filled:  # a key (ctrl+r) came first and filled the form already
            return
        from arena.errors import ArenaError
        from arena.engine.grid import PRESETS
        from arena.llm.registry import load_providers

        self.query_one("#preset", Select).set_options([("custom (fields below)", PRESET_NONE),
                                                       *[(name, name) for name, p in PRESETS.items() if not p.llm]])

        try:
            names = list(load_providers())
        except ArenaError:
            names = []
        self.query_one("#provider", Select).set_options([("each program's own", ""), *[(n, n) for n in names]])
        self._fill_lists()
        self._filled = True
        self._apply_preset("bots")
        from ..loading import run_query

        self._latencies: dict[str, tuple[float, int]] = {}  # provider -> measured mean latency (ms), calls
        run_query(self, "setup-latencies", lambda store: store.call_latencies(), self._latencies_loaded)

    def _latencies_loaded(self, value: dict) -> None:
        self._latencies = value
        self._update_summary()

    def _fill_lists(self) -> None:
        lib = self.app.library
        progs = self.query_one("#pick-programs", SelectionList)
        games = self.query_one("#pick-games", SelectionList)
        chosen_p, chosen_g = set(progs.selected), set(games.selected)
        progs.clear_options()
        games.clear_options()
        for pid, e in lib.entries.items():
            progs.add_option((program_label(e.program, 26, e.group), pid, pid in chosen_p))
        for gid, g in lib.games.items():
            games.add_option((Content.from_markup("$id", id=gid), gid, gid in chosen_g))
        for lst in (progs, games):  # a visible cursor from the start (space toggles the row under it)
            if lst.highlighted is None and lst.option_count:
                lst.highlighted = 0

    def on_resize(self) -> None:
        self.set_class(self.size.height < 34, "-short")

    def library_changed(self) -> None:
        if not self._filled:
            return
        self._fill_lists()
        self._update_summary()

    # -- presets ----------------------------------------------------------------------------------------
    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if not self._filled:
            return
        if event.value != PRESET_NONE and not self._matches(str(event.value)):
            self._apply_preset(str(event.value))

    def _apply_preset(self, name: str) -> None:
        from arena.engine.grid import PRESETS

        p = PRESETS[name]
        lib = self.app.library
        self.query_one("#preset", Select).value = name
        progs = self.query_one("#pick-programs", SelectionList)
        want = set(p.programs) if p.programs is not None else set(lib.entries)
        progs.deselect_all()
        for pid in lib.entries:
            if pid in want:
                progs.select(pid)
        games = self.query_one("#pick-games", SelectionList)
        games.deselect_all()
        for gid in p.games:
            if gid in lib.games:
                games.select(gid)
        self.query_one("#epsilons", Input).value = " ".join(f"{e:g}" for e in p.epsilons)
        self.query_one("#depths", Input).value = " ".join(str(d) for d in p.max_depths)
        self.query_one("#trials", Input).value = str(p.trials)
        self.query_one("#temps", Input).value = ""
        for axis in MATCH_INPUTS:  # the presets are one-shot games
            self.query_one(f"#{axis}", Input).value = ""
        self.query_one("#disclosures", Input).value = " ".join(p.disclosures or [])
        self._update_summary()

    def _matches(self, name: str) -> bool:
        """Whether the form still describes preset `name` (else the preset shows 'custom')."""
        from arena.engine.grid import PRESETS

        p = PRESETS.get(name)
        if p is None:
            return False
        lib = self.app.library
        q = self.query_one
        want = set(p.programs) if p.programs is not None else set(lib.entries)
        try:
            return (set(q("#pick-programs", SelectionList).selected) == want & set(lib.entries)
                    and set(q("#pick-games", SelectionList).selected) == set(p.games) & set(lib.games)
                    and fmt.floats(q("#epsilons", Input).value) == list(p.epsilons)
                    and fmt.ints(q("#depths", Input).value) == list(p.max_depths)
                    and q("#trials", Input).value.strip() == str(p.trials)
                    and not q("#temps", Input).value.strip()
                    and not any(q(f"#{axis}", Input).value.strip() for axis in MATCH_INPUTS)
                    and q("#disclosures", Input).value.split() == list(p.disclosures or []))
        except ValueError:
            return False

    # -- changes ------------------------------------------------------------------------------------------
    @on(SelectionList.SelectedChanged)
    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed, "#simulation, #provider, #obfuscate-prompts")
    def _changed(self, event) -> None:
        if not self._filled:
            return
        sel = self.query_one("#preset", Select)
        if sel.value != PRESET_NONE and not self._matches(str(sel.value)):
            sel.value = PRESET_NONE
        self._update_summary()

    def _update_summary(self) -> None:
        timer = getattr(self, "_summary_timer", None)
        if timer is not None:
            timer.stop()
        self._summary_timer = self.set_timer(0.15, self._show_summary)

    def build_config(self):
        """The TournamentConfig the form describes; raises ValueError with a readable message."""
        from pydantic import ValidationError

        from arena.engine.grid import TournamentConfig

        q = self.query_one
        problems = []

        def parse(widget: str, what: str, conv):
            text = q(f"#{widget}", Input).value
            try:
                return conv(text)
            except ValueError:
                problems.append(f"{what}: '{text}' is not a list of numbers")
                return []

        programs = list(q("#pick-programs", SelectionList).selected)
        games = list(q("#pick-games", SelectionList).selected)
        eps = parse("epsilons", "ε values", fmt.floats)
        depths = parse("depths", "depth caps", fmt.ints)
        temps = parse("temps", "temperatures", fmt.floats) or [None]
        match = {k: v for k, v in (("rounds", parse("rounds", "rounds", fmt.ints)),
                                   ("continuations", parse("continuations", "continuations", fmt.floats)),
                                   ("noises", parse("noises", "noises", fmt.floats)),
                                   ("recalls", parse("recalls", "recalls", fmt.ints))) if v}
        levels = q("#disclosures", Input).value.replace(",", " ").split()
        if levels:
            match["disclosures"] = levels
        if q("#obfuscate-prompts", Select).value != "shuffle":
            match["obfuscate_prompts"] = q("#obfuscate-prompts", Select).value
        # (a number may be written 40,000 or 40_000, as the summary writes it)
        trials = parse("trials", "trials per cell", lambda t: _int(t, 0))
        concurrency = parse("concurrency", "concurrency", lambda t: _int(t, 8))
        seed = parse("seed", "seed", lambda t: _int(t, 0))
        if not programs:
            problems.append("choose at least one program")
        if not games:
            problems.append("choose at least one game")
        if problems:
            raise ValueError("; ".join(problems))
        provider = q("#provider", Select).value or None
        model = q("#model", Input).value.strip()
        lib = self.app.library
        llm = [p for p in programs if p in lib.entries and lib.entries[p].program.kind == "llm"]
        preset = q("#preset", Select).value
        try:
            return TournamentConfig(
                name=q("#name", Input).value.strip(), preset=None if preset == PRESET_NONE else str(preset),
                programs=programs, games=games, epsilons=eps, max_depths=depths, temperatures=temps, trials=trials,
                seed=seed, concurrency=concurrency, simulation=q("#simulation", Select).value, provider=provider,
                models={p: model for p in llm} if model else {}, cache=q("#cache", Checkbox).value, **match,
            )
        except ValidationError as exc:
            msgs = []
            for e in exc.errors(include_url=False):
                loc = ".".join(str(x) for x in e["loc"][:1])
                msgs.append(f"{FIELD_NAMES.get(loc, loc)}: {e['msg'].removeprefix('Value error, ')}")
            raise ValueError("; ".join(msgs)) from None

    def _show_summary(self) -> None:
        box = self.query_one("#summary", Static)
        progs = self.query_one("#pick-programs", SelectionList)
        games = self.query_one("#pick-games", SelectionList)
        progs.border_title = f"Programs {len(progs.selected)}/{progs.option_count}"
        games.border_title = f"Games {len(games.selected)}/{games.option_count}"
        start = self.query_one("#start", Button)
        try:
            config = self.build_config()
        except ValueError as exc:
            box.update(Content.from_markup("[b $error]✗[/] $m", m=str(exc)))
            start.disabled = True
            return
        from arena.engine.estimate import estimate

        lib = self.app.library
        e = estimate(config, lib.programs, lib.games)
        n = len(config.programs)
        lines = [Content.from_markup(
            "[b]$total trials[/] = $cells cells ($np program$ps → $pairs ordered pairs × $ng game$gs × $ne ε × "
            "$nd cap$ds$nt) × $t per cell",
            total=f"{config.total_trials:,}", cells=f"{config.cells:,}", np=str(n), ps="s" if n != 1 else "",
            pairs=str(n * n), ng=str(len(config.games)), gs="s" if len(config.games) != 1 else "",
            ne=str(len(config.epsilons)), nd=str(len(config.max_depths)), ds="s" if len(config.max_depths) != 1 else "",
            nt=(f" × {len(config.temperatures)} temperatures" if len(config.temperatures) > 1 else "")
               + (f" × {len(config.matches)} match rules" if len(config.matches) > 1 else "")
               + (f" × {len(config.disclosures)} disclosure levels" if len(config.disclosures) > 1 else ""),
            t=f"{config.trials:,}")]
        if e.llm_trials:
            where = f"on {config.provider}" if config.provider else "on each program's provider"
            lines.append(Content.from_markup(
                "[b $warning]≈ $calls LLM calls[/] over $lt trials with an LLM program ($per per trial, first "
                "attempts) $where$time",
                lt=f"{e.llm_trials:,}", calls=fmt.count(e.llm_calls), per=f"{e.calls_per_llm_trial:.1f}", where=where,
                time=self._time_estimate(config, e.llm_calls)))
        else:
            lines.append(Content.from_markup("No LLM calls (no LLM program chosen) · [dim]≈ $nodes simulation nodes[/]",
                                             nodes=fmt.count(e.nodes)))
        stored = self._stored(config)
        if stored is not None:
            tid, done = stored
            if self.query_one("#new", Checkbox).value:
                lines.append(Content.from_markup("[dim]Identical to stored tournament $t: a fresh one will be recorded.[/]",
                                                 t=str(tid)))
            elif done >= config.total_trials:
                lines.append(Content.from_markup(
                    "[$warning]Identical to stored tournament $t, which is complete: running it adds nothing "
                    "(tick 'always record a new tournament' to re-sample).[/]", t=str(tid)))
            else:
                lines.append(Content.from_markup(
                    "[$accent]Identical to stored tournament $t ($d/$n stored): only the missing trials run.[/]",
                    t=str(tid), d=f"{done:,}", n=f"{config.total_trials:,}"))
        box.update(Content("\n").join(lines))
        start.disabled = False

    def _time_estimate(self, config, calls: float) -> str:
        """' · ≈ 12 min (measured latency: local 3.4 s)' from the latency measured on each provider the run
        uses (stored calls), its calls in flight (the provider's limit within the run's concurrency)."""
        from arena.engine.estimate import duration_s
        from arena.errors import ArenaError
        from arena.llm.registry import load_providers

        lib = self.app.library
        used = ({config.provider} if config.provider else
                {config.models.get(p, lib.programs[p].model).split("/", 1)[0] for p in config.programs
                 if p in lib.programs and lib.programs[p].kind == "llm"})
        try:
            registry = load_providers()
        except ArenaError:
            registry = {}
        measured = {name: (self._latencies[name][0], min(config.concurrency, getattr(registry.get(name), "concurrency",
                                                                                       config.concurrency)))
                    for name in used if name in getattr(self, "_latencies", {})}
        seconds = duration_s(calls, measured)
        if seconds is None:
            return " · time: no calls measured on it yet"
        lat = ", ".join(f"{n} {ms / 1000:.1f} s" for n, (ms, _) in sorted(measured.items()))
        return f" · ≈ {fmt.duration(seconds)} (measured latency: {lat})"

    def _stored(self, config) -> tuple[int, int] | None:
        from arena.runner.tournament import fingerprint

        lib = self.app.library
        try:
            fp = fingerprint(config, [lib.programs[p] for p in config.programs], [lib.games[g] for g in config.games])
            tid = self.app.store.find_tournament(fp)
        except Exception:
            return None
        return None if tid is None else (tid, self.app.store.count_trials(tid))

    # -- actions ------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        self._first_fill()  # (no-op once the form is filled)
        try:
            config = self.build_config()
        except ValueError as exc:
            self.notify(str(exc), severity="error", title="Cannot start")
            return
        new = self.query_one("#new", Checkbox).value
        reason = self._large_run(config)
        if reason is None:
            self._start(config, new)
            return
        from .dialogs import Confirm

        self.app.push_screen(Confirm(f"Run this large tournament? {reason}.",
                                     "It is far larger than the last one. Everything is stored as it runs; cancel it "
                                     "any time from Live (c).", "Run"),
                             lambda ok: self._start(config, new) if ok else None)

    def _large_run(self, config) -> str | None:
        from arena.engine.estimate import estimate
        from arena.errors import ArenaError

        from ..guards import large_run

        try:
            last = self.app.store.tournament().total_trials
        except ArenaError:  # no tournament yet
            last = None
        return large_run(config.total_trials, estimate(config, self.app.library.programs, self.app.library.games).llm_calls, last)

    def _start(self, config, new: bool) -> None:
        from arena.errors import ArenaError

        try:
            self.app.start_tournament(config, new=new)
        except ArenaError as exc:
            self.notify(str(exc), severity="error", title="Cannot start", timeout=10)

    def action_select_all(self) -> None:
        self.query_one("#pick-programs", SelectionList).select_all()

    def action_clear_programs(self) -> None:
        self.query_one("#pick-programs", SelectionList).deselect_all()

    def tournament_changed(self, tid: int) -> None:
        self._update_summary()


def _int(text: str, default: int) -> int:
    text = text.strip().replace(",", "").replace("_", "")
    return int(text) if text else default


FIELD_NAMES = {"epsilons": "ε values", "max_depths": "depth caps", "temperatures": "temperatures", "trials": "trials",
               "concurrency": "concurrency", "programs": "programs", "games": "games", "name": "name",
               "rounds": "rounds", "continuations": "continuation", "noises": "noise", "recalls": "recall",
               "disclosures": "disclosure", "obfuscate_prompts": "obfuscated prompts"}
MATCH_INPUTS = ("rounds", "continuations", "noises", "recalls")  # the repeated-game axes (empty: one-shot)
