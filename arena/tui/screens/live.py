"""Live: progress with ETA, the pair matrix filling in, the current trial's simulation tree growing
node by node, and the LLM transcript of the selected node. Redrawn from the session at ~10 Hz."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import ProgressBar, RichLog, Select, Static, Tree

from .. import format as fmt
from ..session import LiveSession, LiveTrial
from ..timeline import Timeline
from ..widgets import Heat, PairMatrix, SimTree, Transcript
from .base import ArenaScreen

class WrappingLog(RichLog):
    """A RichLog whose lines wrap at its width now: RichLog wraps a line at the width it had when written,
    and Live's log narrows once the matrix's width is known (lines were cut: 'in runner proces')."""

    def on_mount(self) -> None:
        self._items: list = []
        self._wrapped_at = None

    def write(self, content, *args, **kw):
        self._items.append(content)
        del self._items[:-500]
        return super().write(content, *args, **kw)

    def clear(self):
        self._items = []
        return super().clear()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at and self._items:
            self._wrapped_at = width
            items = list(self._items)
            super().clear()
            for item in items:
                super().write(item)
        elif width:
            self._wrapped_at = width


HOLD_FINISHED_S = 1.5  # a finished LLM trial stays on screen this long before the next one replaces it
BUILTIN_EVERY_S = 2.0  # built-in trials finish by the thousand: show a new one at most this often
MATRIX_EVERY_S = 0.5


class LiveScreen(ArenaScreen):
    MODE = "live"
    # Nothing takes the focus by itself: Textual's default gave it to the condition selector, hidden while a
    # tournament has one condition (keys then went to a widget nobody saw), and the tree holds its trial
    # while it has the focus (t gives it).
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("space,p", "pause", "Pause", key_display="space", priority=True),
        Binding("space,p", "resume", "Resume", key_display="space", priority=True),
        Binding("c", "cancel", "Cancel"),
        Binding("f", "follow", "Follow"),
        Binding("r", "results", "Results"),
        Binding("t", "focus_tree", "Tree", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="live-empty", classes="panel"):
            yield Static(Content.from_markup(
                "[b]No tournament is running.[/]\n\n"
                "Press [b]2[/] for Setup to start one (the [i]bots[/] preset runs five built-in bots in seconds),\n"
                "or [b]5[/] for History to resume an unfinished one."), id="live-empty-text")
        with Vertical(id="live-body"):
            with Vertical(id="live-progress", classes="panel"):
                with Horizontal(id="live-bar-row"):
                    yield ProgressBar(id="live-bar", show_eta=False, show_percentage=True)
                    yield Static(id="live-counts")
                yield Static(id="live-stats")
            with Horizontal(id="live-main"):
                with Vertical(id="live-left"):
                    with Vertical(id="live-matrix-box", classes="panel"):
                        yield Select([("all conditions", "all")], value="all", id="live-condition", allow_blank=False, compact=True)
                        yield PairMatrix(id="live-matrix")
                    yield WrappingLog(id="live-log", classes="panel", wrap=True, markup=False, max_lines=500, min_width=20)
                with Vertical(id="live-right"):
                    yield Timeline(id="live-rounds", classes="panel")
                    yield SimTree(id="live-tree", classes="panel")
                    yield Transcript(id="live-transcript", classes="panel")

    def on_mount(self) -> None:
        super().on_mount()
        self.follow = True
        self.shown: LiveTrial | None = None
        self._shown_version = -1
        self._shown_held = False
        self._shown_at = 0.0
        self._matrix_version = -1
        self._matrix_at = -1e9
        self._conditions: list = []
        self._condition = None
        self._log_seen = 0
        self._tx_sig = None
        self._drawn: dict = {}
        self.query_one("#live-progress").border_title = "Progress"
        self.query_one("#live-matrix-box").border_title = "Cooperation · row program × column program"
        self.query_one("#live-log").border_title = "Log"
        self.query_one("#live-tree").border_title = "Simulation tree"
        self.query_one("#live-transcript").border_title = "LLM transcript"
        self.query_one("#live-condition").display = False
        self._bind_session(self.app.session)
        self.set_interval(0.1, self._tick)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")
        if self.session is not None:
            self._draw_matrix(self.session)  # row labels fit the new width

    @property
    def session(self) -> LiveSession | None:
        return self.app.session

    def session_started(self, session: LiveSession) -> None:
        self._bind_session(session)

    def _bind_session(self, session: LiveSession | None) -> None:
        self.query_one("#live-empty").display = session is None
        self.query_one("#live-body").display = session is not None
        self.follow = True  # a pin (f) belonged to the last run's trial: a new or resumed run is followed
        self.shown = None
        self._shown_version = -1
        self._matrix_version = -1
        self._matrix_at = -1e9
        self._conditions = []
        self._condition = None
        self._log_seen = 0
        self._tx_sig = None
        self._drawn = {}
        self.query_one("#live-log", RichLog).clear()
        self.query_one(SimTree).reset_tree()
        self.query_one(Transcript).show(None)
        if session is not None:
            self._tick(force=True)

    # -- redraw ---------------------------------------------------------------------------------------------
    def _tick(self, force: bool = False) -> None:
        s = self.session
        if s is None or (not force and not self.is_current):
            return
        now = self.app.clock()
        if s.status != getattr(self, "_status_seen", None):
            self._status_seen = s.status
            self.refresh_bindings()
        self._draw_progress(s)
        self._draw_log()
        tx = self.query_one(Transcript)
        if tx.display != s.has_llm:  # built-in bots make no calls: the tree takes the transcript's room
            tx.display = s.has_llm
        # throttled while trials stream in; the final state is always drawn once the run has ended
        if force or s.tally.version != self._matrix_version and (s.ended or now - self._matrix_at >= MATRIX_EVERY_S):
            self._draw_matrix(s)
            self._matrix_at = now
        self._draw_tree(s, now)

    def _set(self, selector: str, markup: str, **vars) -> None:
        """Update a Static only when its text changes (a layout pass per tick would cost the runner)."""
        key = (markup, tuple(sorted(vars.items())))
        old = self._drawn.get(selector)
        if old != key:
            self._drawn[selector] = key
            content = Content.from_markup(markup, **vars)
            # a layout pass only when the number of lines changes (it costs the runner thread GIL time)
            lines = content.plain.count("\n")
            relayout = self._drawn.get(selector + "#lines") != lines
            self._drawn[selector + "#lines"] = lines
            self.query_one(selector, Static).update(content, layout=relayout)

    def _draw_progress(self, s: LiveSession) -> None:
        p = s.progress()
        bar = self.query_one("#live-bar", ProgressBar)
        if (bar.total, bar.progress) != (max(p.total, 1), p.done):
            bar.update(total=max(p.total, 1), progress=p.done)
        self._set("#live-counts", "[b]$d[/] / $t trials", d=f"{p.done:,}", t=f"{p.total:,}")
        status = {"running": "[b $success]running[/]", "starting": "[b $accent]starting[/]",
                  "pausing": "[b $warning]pausing…[/]", "paused": "[b $warning]paused[/]",
                  "cancelling": "[b $warning]cancelling…[/]",
                  "finished": "[b $success]finished[/]", "cancelled": "[b $warning]cancelled[/]",
                  "failed": "[b $error]failed[/]"}.get(s.status, s.status)
        box = self.query_one("#live-progress")
        _titles(box, f"Tournament {s.tournament_id}")
        cfg = s.runner.config if s.runner is not None else None
        rate = fmt.rate(p.rate)
        parts = [status, f"elapsed {fmt.duration(p.elapsed_s)}"]
        if not s.ended and not p.measured and s.remote:  # just attached: no rate of its own yet
            parts.append("measuring the rate…")
        elif not s.ended:
            parts.append(f"{rate} {'LLM ' if s.paces_llm else ''}trials/s")
            parts.append(f"ETA {fmt.duration(p.eta_s)}" if p.eta_s is not None else "ETA –")
        if p.done - p.new:
            parts.append(f"{p.done - p.new:,} stored before")
        c = s.counts
        bad = c.get("refused", 0) + c.get("error", 0)
        if bad:
            parts.append(f"[$error]{c.get('refused', 0)} refused · {c.get('error', 0)} errors[/]")
        if s.llm_calls:
            parts.append(f"{s.llm_calls:,} LLM calls ({s.cached_calls:,} cached)")
        elif s.has_llm and not s.trials_seen and not s.ended and not s.inflight():
            parts.append("[$accent]preparing the LLM backend…[/]")
        markup = "  ·  ".join(parts)
        if cfg is not None:
            grid = (f"{', '.join(cfg.games)} · ε {' '.join(f'{e:g}' for e in cfg.epsilons)} · cap "
                    f"{' '.join(map(str, cfg.max_depths))} · {len(cfg.programs)} programs · {cfg.trials:,} trials/cell")
            _titles(box, subtitle=fmt.ellipsize(grid, max(20, self.size.width - 30)))
        if s.error:
            markup += "\n[b $error]$error[/]"
        self._set("#live-stats", markup, error=s.error or "")

    def _draw_log(self) -> None:
        log = self.app.session_log
        items = list(log)
        new = items[self._log_seen:] if self._log_seen <= len(items) else items
        if not new:
            return
        self._log_seen = len(items)
        widget = self.query_one("#live-log", RichLog)
        start = self.session.started_at or 0
        from rich.text import Text

        for t, level, msg in new:
            style = {"warning": "yellow", "error": "bold red"}.get(level, "")
            widget.write(Text.assemble((f"+{fmt.duration(max(0, t - start))} ", "dim"), (msg, style)))

    def _draw_matrix(self, s: LiveSession) -> None:
        self._matrix_version = s.tally.version
        conds = s.tally.conditions()
        select = self.query_one("#live-condition", Select)
        if conds != self._conditions:
            self._conditions = conds
            if len(conds) > 1:
                options = [("all conditions", "all")] + [(fmt.condition(*c), str(i)) for i, c in enumerate(conds)]
                value = select.value if select.value != Select.NULL else "all"
                select.set_options(options)
                select.value = value if any(v == value for _, v in options) else "all"
            select.display = len(conds) > 1
        programs = s.runner.config.programs if s.runner is not None else []
        left = self.query_one("#live-left")
        matrix = self.query_one(PairMatrix)
        # at most 55% of the screen (the tree needs the rest): names shrink so that every cell shows whole
        room = int(self.size.width * 0.55) - 3  # box borders and scrollbar
        matrix.set_name_width(PairMatrix.name_width_for(programs, room) if self.size.width else 16)
        want = max(PairMatrix.width_for(programs, name_width=matrix.name_width) + 4, 40)
        if left.styles.width is None or left.styles.width.value != want:
            left.styles.width = want
        cells = {}
        for pair, cell in s.tally.matrix(self._condition).items():
            label = fmt.pct(cell.cooperation) if cell.valid else ("–" if cell.trials else "·")
            cells[pair] = (label, cell.cooperation)
        self.query_one(PairMatrix).set_cells(programs, cells)
        total = sum(c.trials for c in s.tally.matrix(self._condition).values())  # (cheap: one pass over cells)
        _titles(self.query_one("#live-matrix-box"), subtitle=f"{total:,} trials · share of cooperative outcomes")

    @on(Select.Changed, "#live-condition")
    def _condition_changed(self, event: Select.Changed) -> None:
        v = event.value
        self._condition = None if v in ("all", Select.NULL) else self._conditions[int(v)]
        if self.session is not None:
            self._draw_matrix(self.session)

    def _draw_tree(self, s: LiveSession, now: float) -> None:
        tree = self.query_one(SimTree)
        held = tree.has_focus  # as Help says: the tree holds its trial while it has the focus
        if self.follow and not held:
            candidate = s.newest()
            cur = self.shown
            switch = candidate is not None and candidate is not cur and (
                cur is None
                or (cur.llm and cur.finished and now - (cur.finished_at or now) >= HOLD_FINISHED_S)
                or (not cur.llm and (candidate.llm or now - self._shown_at >= BUILTIN_EVERY_S)))
            if switch:
                self.shown = candidate
                self._shown_version = -1
                self._shown_at = now
        t = self.shown
        if t is None:
            _titles(tree, "Simulation tree", "waiting for the first trial…")
            return
        if t.version == self._shown_version and held == self._shown_held:
            return
        self._shown_version, self._shown_held = t.version, held
        game = s.runner.games.get(t.spec.game) if s.runner is not None else None
        sp = t.spec
        # a match: its rounds so far above the tree, and the tree of its round under way (or its last)
        rounds = list(t.result.rounds) if t.result is not None and t.result.rounds else (
            list(sp.play.history) if sp.play is not None else [])
        timeline = self.query_one("#live-rounds", Timeline)
        timeline.display = sp.play is not None or bool(rounds)
        nodes = t.nodes
        if timeline.display:
            timeline.border_title = "Rounds of the match shown"
            timeline.show(rounds, None, Heat(self.app).style)
            last = max((n.round for n in nodes), default=0)
            nodes = [n for n in nodes if n.round == last]
        rebuilt = tree.show(("live", sp.seq, id(t)), nodes, finished=t.finished,
                            coop_action=game.default_action if game else None,
                            defect_action=game.defect_action if game else None)
        title = (f"Trial {sp.index + 1} · {sp.row} vs {sp.col} · "
                 f"{fmt.condition(sp.game, sp.epsilon, sp.max_depth, sp.temperature, short=True)}")
        outcome = ""
        if t.result is not None:
            r = t.result
            outcome = (f"{r.row_action} / {r.col_action} → {fmt.num(r.row_payoff, 1)}, {fmt.num(r.col_payoff, 1)}"
                       if r.status == "ok" else f"{r.status}: {fmt.ellipsize(r.error or '', 50)}")
        mode = ("pinned (f to follow)" if not self.follow else
                "held while you browse the tree (f to follow)" if held else "following")
        _titles(tree, title, " · ".join(x for x in (outcome or "in progress", mode) if x))
        if rebuilt:
            self._tx_sig = None
            tx = self.query_one(Transcript)
            code = s.runner is not None and any(s.runner.programs[p].kind == "code" for p in (sp.row, sp.col))
            if t.llm or code:
                tx.show(None)
            else:
                tx.show_hint("Built-in bots decide by rule: their trials make no LLM calls. "
                             "Trials with an LLM program show each node's messages here.")
        else:
            self._refresh_transcript()

    # -- transcript -----------------------------------------------------------------------------------------
    @on(Tree.NodeHighlighted, "#live-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        self._tx_sig = None
        self._refresh_transcript(event.node.data)

    @on(Tree.NodeSelected, "#live-tree")
    def _selected(self, event: Tree.NodeSelected) -> None:
        if self.follow:
            self.follow = False
            self._shown_version = -1
            self.notify("Following paused on this trial: press f to follow new trials again.", timeout=4)

    def _refresh_transcript(self, node=None) -> None:
        tree = self.query_one(SimTree)
        if node is None:
            cur = tree.cursor_node
            node = cur.data if cur is not None else None
        if node is None:
            return
        tree_node = tree.cursor_node
        asking = tree_node is not None and tree_node.data is node and tree.is_asking(tree_node)
        sig = (id(node), len(node.calls), node.action, node.error, asking)
        if sig == self._tx_sig:
            return
        self._tx_sig = sig
        note = ""
        if not node.calls and node.action is None and node.error is None:
            note = ("Asking the model now: the call appears here when it returns." if asking else
                    "Waiting: this node is asked once the simulation below it has an action.")
        ctx = self._code_ctx(node)
        self.query_one(Transcript).show(node, note=note, ctx=ctx)
        _titles(self.query_one(Transcript), transcript_title(self.session, node))

    def _code_ctx(self, node) -> dict | None:
        """A code node's ctx (None for the other kinds): built as the simulator built it."""
        runner, t = getattr(self.session, "runner", None), self.shown
        if runner is None or t is None or getattr(node, "u", None) is None:
            return None
        me = runner.programs.get(node.program)
        if me is None or me.kind != "code" or node.action is None and node.error is None:
            return None
        from arena.engine.code import build_ctx

        sp = t.spec
        child = next((n for n in t.nodes if n.parent == node.index), None)
        eps = me.epsilon if me.epsilon is not None else sp.epsilon
        return build_ctx(runner.games[sp.game], node.side, me, runner.programs[sp.col if node.side == "row" else sp.row],
                         child.action if child is not None else None, node.depth, eps, node.u, _round_play(t, node),
                         sp.disclosure, sp.seed)

    # -- actions --------------------------------------------------------------------------------------------
    def action_pause(self) -> None:
        if self.session is not None and not self.session.ended:
            self.session.toggle_pause()
        self.refresh_bindings()  # the footer offers Resume while paused

    def action_resume(self) -> None:
        self.action_pause()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("pause", "resume"):  # one key, named for what it does now
            s = self.session
            paused = s is not None and (s.status in ("paused", "pausing") or (s.runner is not None and s.runner.paused))
            return (action == "resume") == paused
        return super().check_action(action, parameters)

    def action_cancel(self) -> None:
        s = self.session
        if s is None or s.ended:
            return
        from .dialogs import Confirm

        def done(ok: bool | None) -> None:
            if ok:
                s.cancel()

        self.app.push_screen(Confirm(f"Cancel tournament {s.tournament_id}?",
                                     "Trials in flight are dropped; everything stored stays. Resume it later from History.",
                                     "Cancel run", "Keep running"), done)

    def action_follow(self) -> None:
        if self.follow and self.query_one(SimTree).has_focus:  # held while browsing: follow again
            self.set_focus(None)
            self._shown_version = -1
            self.notify("Following new trials.", timeout=2)
            return
        self.follow = not self.follow
        self._shown_version = -1
        if self.follow:
            self.set_focus(None)
        self.notify("Following new trials." if self.follow else "Pinned on this trial.", timeout=2)

    def action_results(self) -> None:
        if self.session is not None:
            self.app.open_results(self.session.tournament_id)

    def action_focus_tree(self) -> None:
        self.query_one(SimTree).focus()


def transcript_title(session, node) -> str:
    """The node pane's title, for the kind of program the node is: a code node shows no LLM transcript."""
    runner = getattr(session, "runner", None)
    prog = runner.programs.get(getattr(node, "program", None)) if runner is not None else None
    kind = getattr(prog, "kind", "llm")
    return {"code": "Code node · ctx, value, output", "builtin": "Built-in node"}.get(kind, "LLM transcript")


def _titles(widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Set border titles only when they change (each assignment repaints the widget)."""
    if title is not None and widget.border_title != title:
        widget.border_title = title
    if subtitle is not None and widget.border_subtitle != subtitle:
        widget.border_subtitle = subtitle


def _round_play(t, node):
    """What the programs of a node's round were told of the match (None for a one-shot trial)."""
    sp = t.spec
    if sp.play is not None and sp.play.round == node.round:
        return sp.play
    if t.result is not None and t.result.rounds:
        from arena.engine.records import Play

        return Play(node.round, sp.match, tuple(t.result.rounds[:node.round]))
    return sp.play
