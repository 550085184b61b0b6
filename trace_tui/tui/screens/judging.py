"""The sampling (s), evaluation (e) and review (v) screens as app hooks, sharing one
JudgeConsole."""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen

from trace_tui.tui.app import ScreenHook
from trace_tui.tui.console import JudgeConsole
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.sampling import SamplingScreen


def judge_screen_hooks(policy: Path | None = None,
                       experiment: str | None = None) -> list[ScreenHook]:
    console = JudgeConsole(policy_path=policy, experiment=experiment)
    return [
        ScreenHook("sampling", "s", "Sampling", lambda app: SamplingScreen(console)),
        ScreenHook("evaluation", "e", "Evaluation", lambda app: EvaluationScreen(console)),
        ScreenHook("review", "v", "Review", lambda app: _review_screen(console)),
    ]


def _review_screen(console: JudgeConsole) -> Screen[None]:
    from trace_tui.tui.screens.review import ReviewScreen

    return ReviewScreen(console)
