"""Modal screens: help (all bindings), feedback comment, experiment picker."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.safe import SafeLabel

if TYPE_CHECKING:
    from trace_tui.core.client import Experiment  # aiohttp: not on the start path



def binding_rows(scopes: Iterable[tuple[str, Sequence[BindingType]]]) -> list[tuple[str, ...]]:
    """(scope, keys, description, id) for every Binding in ``scopes``."""
    rows: list[tuple[str, ...]] = []
    for scope, bindings in scopes:
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = b.key_display or ", ".join(
                {"question_mark": "?", "slash": "/", "plus": "+", "minus": "-",
                 "left_square_bracket": "[", "right_square_bracket": "]"}.get(k, k)
                for k in b.key.split(","))
            rows.append((scope, keys, b.description or b.action, b.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key binding with its id and description."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="trace-tui keys  (esc to close, ctrl+p for the command palette)",
                      expand=True, show_edge=False, header_style="bold")
        table.add_column("where", style="dim", no_wrap=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("what")
        table.add_column("id (for keymaps)", style="dim", no_wrap=True)
        last = ""
        for scope, keys, desc, bid in self.rows:
            table.add_row(scope if scope != last else "", keys, desc, bid)
            last = scope
        with VerticalScroll():
            yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class FeedbackScreen(ModalScreen[str | None]):
    """Optional comment for a thumbs up/down; returns the comment ("" for none) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="feedback.cancel"),
    ]

    DEFAULT_CSS = """
    FeedbackScreen { align: center middle; }
    FeedbackScreen > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    FeedbackScreen Label { margin-bottom: 1; }
    """

    def __init__(self, value: bool, target: str) -> None:
        super().__init__()
        self.value = value
        self.target = target

    def compose(self) -> ComposeResult:
        thumb = "👍 good" if self.value else "👎 bad"
        with Vertical():
            yield SafeLabel(Text.assemble((thumb, "bold"), " feedback on ",
                                          (safe_text(self.target), "bold")))
            yield Input(placeholder="optional comment (enter: send, esc: cancel)",
                        id="feedback-comment")

    @on(Input.Submitted)
    def _send(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExperimentPicker(ModalScreen["Experiment | None"]):
    """Pick an experiment (most recently updated first)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="experiments.cancel"),
    ]

    DEFAULT_CSS = """
    ExperimentPicker { align: center middle; }
    ExperimentPicker > Vertical {
        width: 80; height: 70%; border: thick $primary; background: $surface; padding: 0 1;
    }
    ExperimentPicker OptionList { height: 1fr; }
    """

    def __init__(self, experiments: list[Experiment], current: str | None = None) -> None:
        super().__init__()
        self.experiments = experiments
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for e in self.experiments:
            mark = "● " if e.experiment_id == self.current else "  "
            options.append(Option(Text(safe_text(f"{mark}{e.name}  (#{e.experiment_id})")),
                                  id=e.experiment_id))
        with Vertical():
            yield SafeLabel("Switch experiment (enter: pick, esc: cancel)")
            yield OptionList(*options, id="experiments", markup=False)

    def on_mount(self) -> None:
        ids = [e.experiment_id for e in self.experiments]
        if self.current in ids:
            self.query_one(OptionList).highlighted = ids.index(self.current)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        found = [e for e in self.experiments if e.experiment_id == event.option.id]
        self.dismiss(found[0] if found else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of input (e.g. a trace id); returns the text or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    """

    def __init__(self, title: str, placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeLabel(self.title_text)
            yield Input(placeholder=self.placeholder, id="prompt-input")

    @on(Input.Submitted)
    def _send(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
