"""Help: keys and concepts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..failures import ContainsFailures
from ..textual_patches import KeepsStyles

HELP = """\
# Arena

Programs see each other's **source** and may **simulate** the opponent before they move (in a one-shot game, or at each round of a repeated one).
At each level of the simulation, with probability **ε** a program acts *grounded* (without
simulating); a **depth cap** grounds it too. Every trial, node and LLM call is stored.

## Everywhere

| key | |
|---|---|
| `1` … `5` | Library · Setup · Live · Results · History |
| `ctrl+p` | command palette (all main actions) |
| `?` / `F1` | this help |
| `ctrl+t` | light / dark theme |
| `tab` / `shift+tab` | move between panes |
| `ctrl+q` | quit (asks first while a tournament runs) |

## Library
`n` new program (a template: `l` LLM, `b` built-in, `c` code) · `d` duplicate · `e` / `enter` edit in the app · `E` edit in `$EDITOR` · `r` reload.
In the editor: `ctrl+s` saves (only when valid; problems are listed as *file:line*, `enter` on one
jumps to it), `esc` cancels, `ctrl+a` selects all, `ctrl+o` continues in `$EDITOR`. The status checks
what save checks (a code program's smoke test too: "checking…" until done). Programs are saved in
`$ARENA_PROGRAMS`, else `./programs/` (created on the first save); the examples shipped with Arena are
read-only (`e` saves a copy there).

## Setup
Pick programs and games (`space` toggles, `ctrl+a` all programs), or a **preset grid**; the box at
the bottom shows the number of trials and the expected LLM calls. `ctrl+r` runs it. Running an
identical tournament again continues the stored one (only missing trials run).

## Live
`space` pause / resume · `c` cancel (stored trials stay) · `f` follow new trials / pin this one ·
`t` focus the tree · `r` results. The tree stays put while it has the focus; moving the cursor
shows the node's LLM transcript (messages, raw answer, parsed action, attempts, latency, cache).
Tree: `◇` simulates the opponent, `●` grounded (ε), `■` capped (depth cap), `○` acts directly.

## Results
`[` / `]` previous / next tab (or click it) · `{` / `}` previous / next plot on the Plots tab ·
`s` sort by the cursor's column (again: reverse; or click a header) · `enter` the trials of a pair,
with their trees and transcripts (in a match's trials: `←` `→` or `[` `]` its previous / next round) · `x` export (CSV, JSON,
Markdown, LaTeX, PNG, SVG) · `t` pick another tournament (History). Every tab shows the chosen condition:

| tab | |
|---|---|
| Pairs | one row per cell: trials, cooperation with its intervals, payoffs, refusals, errors |
| Cooperation matrix | row program × column program, share of cooperative outcomes (`enter`: its trials) |
| Payoff matrix | the mean payoffs of each pair |
| Programs | the ranking by mean payoff, cooperation rating, wins, initial plays |
| Equilibria | the meta-game's Nash equilibria, pure and mixed |
| Disclosure | the value of disclosure: cooperation and payoffs per disclosure level, the difference from `full` with its interval (a grid with `--disclosure` levels) |
| Plots | Cooperation vs ε · Payoff heat map (program equilibria `*`) · Depth histogram · Dynamics (replicator, Moran) · By round (repeated games) |

## History
`enter` open results · `r` resume an interrupted or cancelled tournament · `i` iterate runs (`arena
iterate`: each step's code and feedback, the welfare; `n` starts one, `enter` opens or follows one:
`p` pause, `c` cancel, `x` detach) · `R` refresh.
"""


class HelpScreen(ContainsFailures, KeepsStyles, ModalScreen[None]):
    """Built once and kept by the app (it is the same text on every screen); opens at its top."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self):
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def on_mount(self) -> None:
        self.query_one("#help").border_title = "Help"
        self.query_one("#help").border_subtitle = "esc to close"

    def on_screen_resume(self) -> None:
        self.query_one("#help").scroll_home(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
