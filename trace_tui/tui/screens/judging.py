"""The sampling (s), evaluation (e) and review (v) screens as app hooks, sharing one
JudgeConsole. The screens (and the console) are imported when first opened, not at start
(they are ~50 ms of imports the first frame does not need)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trace_tui.tui.app import ScreenHook, TraceExplorerApp

if TYPE_CHECKING:
    from textual.screen import Screen

    from trace_tui.tui.console import JudgeConsole
    from trace_tui.tui.screens.evaluation import EvaluationScreen
    from trace_tui.tui.screens.sampling import SamplingScreen


def judge_screen_hooks(policy: Path | None = None,
                       experiment: str | None = None) -> list[ScreenHook]:
    shared: list[JudgeConsole] = []

    def console() -> JudgeConsole:
        if not shared:
            from trace_tui.tui.console import JudgeConsole

            shared.append(JudgeConsole(policy_path=policy, experiment=experiment))
        return shared[0]

    def sampling(app: TraceExplorerApp) -> SamplingScreen:
        _swap(app)
        from trace_tui.tui.screens.sampling import SamplingScreen

        return SamplingScreen(console())

    def evaluation(app: TraceExplorerApp) -> EvaluationScreen:
        _swap(app)
        from trace_tui.tui.screens.evaluation import EvaluationScreen

        return EvaluationScreen(console())

    def review(app: TraceExplorerApp) -> Screen[None]:
        _swap(app)
        from trace_tui.tui.screens.review import ReviewScreen

        return ReviewScreen(console())

    return [
        ScreenHook("sampling", "s", "Sampling", sampling),
        ScreenHook("evaluation", "e", "Evaluation", evaluation),
        ScreenHook("review", "v", "Review", review),
    ]


def _swap(app: TraceExplorerApp) -> None:
    """s/e from a judge screen replaces it, so visits do not pile up on the screen stack
    (their state lives in the shared console, their workers at app level)."""
    while getattr(app.screen, "JUDGE_SCREEN", False) and len(app.screen_stack) > 1:
        app.pop_screen()
