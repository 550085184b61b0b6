"""A one-line key footer rendered as a single widget.

Textual's ``Footer`` composes one widget per key and recomposes on every bindings change
(each screen push, each focus change): with ~15 keys that cost more CPU than painting a
10k-span trace. This footer renders the same information (the screen's shown, enabled
bindings; ``^p palette`` at the right) as one line of text, and still runs a key's action on
click.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.dom import DOMNode
from textual.widget import Widget

KEEP = ("help", "quit", "app.help", "app.quit")  # actions a narrow footer never drops


class KeyFooter(Widget):
    """Key hints for the active screen: `` key description  key description …``."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-footer--key", "key-footer--description"}

    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom; height: 1; background: $footer-background; color: $footer-foreground;
    }
    KeyFooter > .key-footer--key {
        color: $footer-key-foreground; background: $footer-key-background; text-style: bold;
    }
    KeyFooter > .key-footer--description {
        color: $footer-description-foreground; background: $footer-description-background;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._hits: list[tuple[int, int, str, DOMNode]] = []  # x range -> action, namespace
        self._text = Text()
        self._stale = True  # rebuilt when next painted (mount, resize and bindings coalesce)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._invalidate()

    def _bindings_changed(self, screen: Any) -> None:
        if self.is_attached and screen is self.screen:
            self._invalidate()

    def _invalidate(self) -> None:
        self._stale = True
        self.refresh()

    def _rebuild(self) -> None:
        self._stale = False
        key_style = self.get_component_rich_style("key-footer--key", partial=True)
        desc_style = self.get_component_rich_style("key-footer--description", partial=True)
        active = self.screen.active_bindings
        seen: set[str] = set()
        text = Text(no_wrap=True, overflow="crop")
        hits: list[tuple[int, int, str, DOMNode]] = []
        palette_key = self.app.COMMAND_PALETTE_BINDING
        entries: list[tuple[str, str, str, DOMNode, int]] = []  # ..., cells
        for node, binding, enabled, _tooltip in active.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            if binding.key == palette_key:
                continue
            seen.add(binding.action)
            key = f" {self.app.get_key_display(binding)} "
            description = f"{binding.description} "
            entries.append((key, description, binding.action, node,
                            cell_len(key) + cell_len(description)))
        # a narrow terminal drops keys from the end, but never help and quit
        width = self.size.width or 10_000
        while sum(e[4] for e in entries) > width:
            droppable = [i for i, e in enumerate(entries) if e[2] not in KEEP]
            if not droppable:
                break
            del entries[droppable[-1]]
        end = 0  # cells so far, counted per entry (not by re-measuring the whole line)
        for key, description, action, node, cells in entries:
            text.append(key, style=key_style)
            text.append(description, style=desc_style)
            hits.append((end, end + cells, action, node))
            end += cells
        if self.app.ENABLE_COMMAND_PALETTE and palette_key in active:
            node, binding, _enabled, _ = active[palette_key]
            label = Text.assemble((f" {self.app.get_key_display(binding)} ", key_style),
                                  ("palette ", desc_style))
            label_cells = cell_len(label.plain)
            pad = self.size.width - end - label_cells
            if pad > 0:
                text.append(" " * pad)
                text.append_text(label)
                hits.append((end + pad, end + pad + label_cells, binding.action, node))
        self._text, self._hits = text, hits

    def on_resize(self) -> None:
        self._invalidate()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self._invalidate()  # a theme change: new colours

    def render(self) -> Text:
        if self._stale:
            self._rebuild()
        return self._text

    async def on_click(self, event: events.Click) -> None:
        if self._stale:
            self._rebuild()
        for start, end, action, node in self._hits:
            if start <= event.x < end:
                event.stop()
                await self.app.run_action(action, node)
                return

