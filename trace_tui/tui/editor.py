"""$EDITOR on a policy file from the app (suspended where the terminal allows), then lint:
the problems come back with file:line for the screen to show inline."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any


def editor_command(path: Path) -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


async def edit_in_editor(app: Any, path: Path) -> list[str]:
    """Run $EDITOR on `path` (the app suspended where the terminal allows), then lint it:
    the problems with file:line, or [] when the file is a valid policy."""
    from textual.app import SuspendNotSupported

    from trace_tui.design.lint import lint_file

    cmd = editor_command(path)
    try:
        try:
            with app.suspend():
                subprocess.run(cmd, check=False)
        except SuspendNotSupported:  # headless (tests, pipes): the editor runs without a tty
            await asyncio.to_thread(subprocess.run, cmd, check=False,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except OSError as exc:
        return [f"{cmd[0]}: cannot run the editor: {exc.strerror or exc}"]
    return await asyncio.to_thread(lint_file, path)
