"""Start an iterate run: the protocol, the game, the writer's model, rounds × steps × episodes, ε and the
depth cap, the start programs; under meta-rounds instead the personas, the column's writer and the judge,
the meta-rounds, the match's rounds (or continuation) and noise, the retries. The run goes to a runner
process of its own and the live view opens.

What the form holds becomes an `IterateConfig` (`form_config`); a field that is not a number, or a
value the config refuses, is named under the form (its label and why), and nothing is recorded.
"""

from __future__ import annotations

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from ..failures import ContainsFailures

# protocol -> the config fields it sets (the loop's other protocols plug in here)
PROTOCOLS: dict[str, tuple[str, dict]] = {
    "best-response": ("best response (PIBR: one seat at a time)", {}),
    "meta-rounds": ("meta-rounds (both seats rewrite, then a match)", {"protocol": "meta-rounds"})}
RANDOM = "__random__"
PERSONAS = [("pm: payoff-maximiser", "pm"), ("cpm: cooperative payoff-maximiser", "cpm"),
            ("dpm: deceptive payoff-maximiser", "dpm")]
ROUNDS_DEFAULT = {"best-response": "3", "meta-rounds": "10"}  # the match's rounds under meta-rounds

# (input id, label, IterateConfig field, number type, default shown)
NUMBERS = [("it-rounds", "Rounds", "rounds", int, "3"), ("it-steps", "Steps per turn", "steps", int, "3"),
           ("it-meta-rounds", "Meta-rounds", "meta_rounds", int, "10"),
           ("it-continuation", "Continuation", "continuation", float, ""),
           ("it-noise", "Noise", "noise", float, "0"), ("it-retries", "Retries", "retries", int, "2"),
           ("it-episodes", "Episodes", "episodes", int, "10"), ("it-epsilon", "ε", "epsilon", float, "0.2"),
           ("it-depth", "Depth cap", "max_depth", int, "5"), ("it-seed", "Seed", "seed", int, "0"),
           ("it-temperature", "Temperature", "temperature", float, "0.7"),
           ("it-max-tokens", "Max tokens", "max_tokens", int, "1024")]
LABELS = {field: label for _, label, field, _, _ in NUMBERS} | {
    "game": "Game", "model": "Writer model", "kind": "Writes", "start_row": "Row starts", "start_col": "Column starts",
    "model_col": "Column's writer", "judge": "Judge model", "persona_row": "Row persona",
    "persona_col": "Column persona"}
# the fields of one protocol only (their rows are shown with it)
ONLY = {"best-response": ("it-steps", "it-kind", "it-start-row", "it-start-col"),
        "meta-rounds": ("it-meta-rounds", "it-continuation", "it-noise", "it-retries", "it-persona-row",
                        "it-persona-col", "it-model-col", "it-judge")}
META_FIELDS = ("meta_rounds", "continuation", "noise", "retries")


def form_config(values: dict, programs: dict):
    """An IterateConfig from the form's values (strings, as typed); raises ValueError with one line per
    field that is wrong, each naming the field's label."""
    from arena.iterate.loop import IterateConfig

    from arena.library.personas import builtin

    protocol = values.get("protocol") or "best-response"
    meta = protocol == "meta-rounds"
    problems, fields = [], {}
    for _, label, name, kind, _ in NUMBERS:
        if name in META_FIELDS and not meta:
            continue
        text = str(values.get(name, "")).strip()
        if not text:
            continue  # the config's default
        try:
            fields[name] = kind(text)
        except ValueError:
            problems.append(f"{label}: '{text}' is not {'a whole number' if kind is int else 'a number'}")
    fields.update(game=values.get("game"), model=str(values.get("model", "")).strip(),
                  kind="code" if meta else values.get("kind"))
    if meta:
        for seat in ("row", "col"):
            fields[f"persona_{seat}"] = builtin(values.get(f"persona_{seat}") or "pm").model_dump()
        for name in ("model_col", "judge"):
            text = str(values.get(name) or "").strip()
            if text:
                fields[name] = text
    else:
        for seat in ("start_row", "start_col"):
            pid = values.get(seat)
            if pid and pid != RANDOM:
                fields[seat] = programs[pid].model_dump(mode="json", by_alias=True)
    fields.update(PROTOCOLS[protocol][1])
    if problems:
        raise ValueError("\n".join(problems))
    try:
        return IterateConfig(**fields)
    except ValidationError as exc:
        lines = []
        for e in exc.errors(include_url=False):
            where = LABELS.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "config"
            msg = e["msg"]
            if e["type"] == "string_pattern_mismatch":
                msg = "a provider and a model, as provider/model (e.g. custom/my-model)"
            lines.append(f"{where}: {msg}")
        raise ValueError("\n".join(lines)) from None


class IterateStartScreen(ContainsFailures, Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("ctrl+r", "start", "Start")]

    DEFAULT_CSS = """
    IterateStartScreen #itf-form { height: 1fr; border: round $primary 50%; }
    IterateStartScreen #itf-bottom { height: auto; min-height: 3; }
    IterateStartScreen #itf-errors { width: 1fr; color: $error; padding: 0 1; }
    IterateStartScreen #failure { display: none; background: $error 30%; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="failure", markup=False)
        with Vertical():
            with VerticalScroll(id="itf-form"):
                with Grid(classes="form"):
                    yield Label("Protocol")
                    yield Select([(label, key) for key, (label, _) in PROTOCOLS.items()], value="best-response",
                                 allow_blank=False, id="it-protocol", compact=True)
                    yield Label("Game")
                    yield Select([], id="it-game", compact=True, prompt="choose a game")
                    yield Label("Writer model")
                    yield Input(id="it-model", placeholder="provider/model, e.g. local/writer (embedded, offline)",
                                compact=True)
                    yield Label("Writes", id="it-kind-label")
                    yield Select([("code programs", "code"), ("LLM prompts", "prompt")], value="code",
                                 allow_blank=False, id="it-kind", compact=True)
                    for seat, label in (("row", "Row persona"), ("col", "Column persona")):
                        yield Label(label, id=f"it-persona-{seat}-label")
                        yield Select(PERSONAS, value="pm", allow_blank=False, id=f"it-persona-{seat}", compact=True)
                    for wid, label, placeholder in (("it-model-col", "Column's writer", "the same as the row's"),
                                                    ("it-judge", "Judge model", "none (provider/model)")):
                        yield Label(label, id=f"{wid}-label")
                        yield Input(id=wid, placeholder=placeholder, compact=True)
                    for wid, label, _, kind, default in NUMBERS:
                        yield Label(label, id=f"{wid}-label")
                        yield Input(default, id=wid, type="integer" if kind is int else "number", compact=True,
                                    placeholder="none: a fixed horizon" if wid == "it-continuation" else "")
                    for seat, label in (("it-start-row", "Row starts"), ("it-start-col", "Column starts")):
                        yield Label(label, id=f"{seat}-label")
                        yield Select([("uniformly at random", RANDOM)], value=RANDOM, allow_blank=False, id=seat,
                                     compact=True)
            with Horizontal(id="itf-bottom"):
                yield Static(id="itf-errors", markup=False)
                yield Button("Start ▶", id="itf-start", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#itf-form").border_title = "New iterate run"
        lib = self.app.library
        games = self.query_one("#it-game", Select)
        games.set_options([(gid, gid) for gid in lib.games])
        if "prisoners_dilemma" in lib.games:
            games.value = "prisoners_dilemma"
        options = [("uniformly at random", RANDOM), *[(pid, pid) for pid in lib.programs]]
        for seat in ("#it-start-row", "#it-start-col"):
            self.query_one(seat, Select).set_options(options)
            self.query_one(seat, Select).value = RANDOM
        self._protocol("best-response")
        self.query_one("#it-game", Select).focus()

    def _protocol(self, protocol: str) -> None:
        """Show the rows of `protocol`'s fields, hide the other's; the match's rounds default under meta-rounds."""
        for name, wids in ONLY.items():
            for wid in wids:
                for w in (self.query_one(f"#{wid}"), self.query_one(f"#{wid}-label")):
                    w.display = name == protocol
        rounds = self.query_one("#it-rounds", Input)
        if rounds.value in ROUNDS_DEFAULT.values():
            rounds.value = ROUNDS_DEFAULT[protocol]
        self.query_one("#it-rounds-label", Label).update("Match rounds" if protocol == "meta-rounds" else "Rounds")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "it-protocol" and event.value in PROTOCOLS:
            self._protocol(event.value)

    def values(self) -> dict:
        q = self.query_one
        value = lambda sel: None if q(sel, Select).is_blank() else q(sel, Select).value
        out = {"protocol": value("#it-protocol"), "game": value("#it-game"), "model": q("#it-model", Input).value,
               "kind": value("#it-kind"), "start_row": value("#it-start-row"), "start_col": value("#it-start-col"),
               "persona_row": value("#it-persona-row"), "persona_col": value("#it-persona-col"),
               "model_col": q("#it-model-col", Input).value, "judge": q("#it-judge", Input).value}
        for wid, _, name, _, _ in NUMBERS:
            out[name] = q(f"#{wid}", Input).value
        return out

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "itf-start":
            self.action_start()

    def action_start(self) -> None:
        from arena.errors import ArenaError

        errors = self.query_one("#itf-errors", Static)
        try:
            cfg = form_config(self.values(), self.app.library.programs)
        except ValueError as exc:
            errors.update(str(exc))
            return
        try:
            run_id = self.app.start_iterate(cfg)
        except ArenaError as exc:
            errors.update(f"cannot start: {exc}")
            return
        errors.update("")
        self.app.pop_screen()
        self.app.watch_iterate(run_id)
