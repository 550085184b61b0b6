"""Modal screens: feedback comment, experiment picker, one-line prompt (help: help.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.safe import SafeLabel

if TYPE_CHECKING:
    from trace_tui.core.client import Experiment  # aiohttp: not on the start path



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


class DrillDownPicker(ModalScreen[str | None]):
    """Filter on one of the current trace's values (k9s-style drill-down): returns the
    filter clause, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="drill.cancel"),
    ]

    DEFAULT_CSS = """
    DrillDownPicker { align: center middle; }
    DrillDownPicker > Vertical {
        width: 80; height: auto; max-height: 70%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    DrillDownPicker OptionList { height: auto; max-height: 12; }
    """

    def __init__(self, choices: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.choices = choices  # (field, value, clause)

    def compose(self) -> ComposeResult:
        options = [Option(Text(safe_text(f"{label:<8} = {value}")), id=str(i))
                   for i, (label, value, _) in enumerate(self.choices)]
        with Vertical():
            yield SafeLabel("Show only traces with (enter: filter, esc: cancel)")
            yield OptionList(*options, id="drill-options", markup=False)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option.id or 0)][2])

    def action_cancel(self) -> None:
        self.dismiss(None)

