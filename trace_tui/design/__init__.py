"""The policy designer, headless: profile a window of traces, preview a draft policy (rates,
cost and expected precision), suggest one, diff two, and write TOML faithfully. No Textual."""

from trace_tui.design.draft import Draft, ExtraRule, JudgeChoice, bump_if_changed, next_version
from trace_tui.design.preview import Preview, PreviewRow, preview
from trace_tui.design.profile import FieldProfile, WindowProfile
from trace_tui.design.window import DesignWindow, WindowBuilder, window_of

__all__ = [
    "DesignWindow",
    "Draft",
    "ExtraRule",
    "FieldProfile",
    "JudgeChoice",
    "Preview",
    "PreviewRow",
    "WindowBuilder",
    "WindowProfile",
    "bump_if_changed",
    "next_version",
    "preview",
    "window_of",
]
