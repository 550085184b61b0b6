"""The review screen (`v`): one queued trace at a time, a label per judge, no mouse needed.

`y`/`n` pass/fail, digits for scores, `i` type a value, `s` skip, `u` undo, `r` rationale,
`b` show/hide the judges' verdicts (hidden until answered: anchoring bias), `t` span tree,
`]`/`[` next/previous trace. Labels are written by `trace_tui.evaluation.labels` (the same
assessments as `trace-tui label` and `--import`); writes run in the background, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from trace_tui.core.errors import TraceTuiError
from trace_tui.core.text import safe_text
from trace_tui.tui.console import JudgeConsole
from trace_tui.tui.widgets.conversation import conversation_text
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from trace_tui.core.model import Assessment, TraceInfo
    from trace_tui.evaluation.labels import JudgeKind
    from trace_tui.tui.app import TraceExplorerApp

SKIP = "skip"


@dataclass
class Item:
    """The trace under review and the answers given so far (judge -> label | SKIP)."""

    info: TraceInfo
    conversation: Text = field(default_factory=Text)
    answers: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # answered judges, for undo


class ReviewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="review.back"),
        Binding("y", "answer('y')", "Pass", id="review.yes"),
        Binding("n", "answer('n')", "Fail", id="review.no"),
        *[Binding(str(d), f"answer('{d}')", str(d), show=False, id=f"review.digit{d}")
          for d in range(10)],
        Binding("i", "type_value", "Type value", show=False, id="review.type"),
        Binding("s", "skip", "Skip", id="review.skip"),
        Binding("u", "undo", "Undo", id="review.undo"),
        Binding("r", "rationale", "Rationale", id="review.rationale"),
        Binding("b", "toggle_blind", "Show verdicts", id="review.blind"),
        Binding("t", "span_tree", "Span tree", id="review.spans"),
        Binding("right_square_bracket", "move(1)", "Next", key_display="]", id="review.next"),
        Binding("left_square_bracket", "move(-1)", "Prev", key_display="[", id="review.prev"),
    ]

    DEFAULT_CSS = """
    ReviewScreen #review-title { height: 1; background: $boost; padding: 0 1; }
    ReviewScreen #review-chat { height: 1fr; border: round $primary; padding: 0 1; }
    ReviewScreen #review-judges { height: auto; max-height: 12; padding: 0 1;
                                  border: round $secondary; }
    ReviewScreen #review-status { height: 1; padding: 0 1; }
    """

    def __init__(self, console: JudgeConsole) -> None:
        super().__init__()
        self.console = console
        self.blind = True
        self.queue: list[TraceInfo] = []
        self.index = 0
        self.item: Item | None = None
        self.kinds: dict[str, JudgeKind] = {}
        self.judges: list[str] = []
        self.reviewer = ""
        self.loaded = False
        self.writes = 0  # label writes finished (tests wait on it)
        self.finished: list[Item] = []  # reviewed here, newest last (undo goes back to them)
        self._prefetched: dict[str, Item] = {}
        self._lock = asyncio.Lock()

    @property
    def tapp(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeStatic("review: loading…", id="review-title", multiline=False)
            with VerticalScroll(id="review-chat"):
                yield SafeStatic("", id="review-conversation")
            yield SafeStatic("", id="review-judges")
            yield SafeStatic("", id="review-status", multiline=False)
        yield Footer()

    def on_mount(self) -> None:
        self.reviewer = self.tapp.settings.reviewer_id()
        self.load_queue()

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="review-load")
    async def load_queue(self) -> None:
        from trace_tui.evaluation import labels, review

        try:
            console = self.console
            if console.loop is None:
                if console.policy_path is None:
                    self._status("no policy: start with --policy FILE (or open one with s)")
                    return
                await console.open(await self.tapp._ensure_client(), console.policy_path)
            loop = console.loop
            assert loop is not None
            self.kinds = await asyncio.to_thread(labels.judge_kinds, loop.policy)
            self.judges = review.reviewed_judges(loop.policy)
            await review.queue_reviews(loop.client, loop.policy, loop.experiment_ids)
            self.queue = await review.review_queue(loop.client, loop.policy.name,
                                                   loop.experiment_ids)
        except TraceTuiError as exc:
            self._status(f"review: {exc}")
            return
        self.index = 0
        await self._open_current()
        self.loaded = True

    async def _open_current(self) -> None:
        if not self.queue or self.index >= len(self.queue):
            self.item = None
            self._show()
            return
        trace_id = self.queue[self.index].trace_id
        item = self._prefetched.pop(trace_id, None) or await self._fetch(trace_id)
        self.item = item
        self.query_one("#review-chat", VerticalScroll).scroll_home(animate=False)
        self._show()
        if self.index + 1 < len(self.queue):
            self.prefetch(self.queue[self.index + 1].trace_id)

    async def _fetch(self, trace_id: str) -> Item:
        """The trace, its conversation and this reviewer's labels so far."""
        from trace_tui.evaluation import labels

        loop = self.console.loop
        assert loop is not None
        info, tree = await asyncio.gather(loop.client.get_trace_info(trace_id),
                                          loop.client.get_trace(trace_id))
        root = tree.roots[0] if tree.roots else None
        item = Item(info, conversation_text(root.inputs if root else None,
                                            root.outputs if root else None))
        for judge in self.judges:
            mine = labels.human_label(info, judge, self.reviewer)
            if mine is not None:
                item.answers[judge] = mine
        return item

    @work(group="review-prefetch", exclusive=True)
    async def prefetch(self, trace_id: str) -> None:
        """The next trace loaded while the reviewer reads this one (a label per few seconds)."""
        try:
            self._prefetched = {trace_id: await self._fetch(trace_id)}
        except TraceTuiError:
            self._prefetched = {}

    # ------------------------------------------------------------------ rendering

    def current_judge(self) -> str | None:
        if self.item is None:
            return None
        return next((j for j in self.judges if j not in self.item.answers), None)

    def _status(self, text: str) -> None:
        self.query_one("#review-status", SafeStatic).update(text)

    def _show(self) -> None:
        from trace_tui.evaluation import queue

        item = self.item
        policy = self.console.loop.policy.name if self.console.loop else ""
        if item is None:
            self.query_one("#review-title", SafeStatic).update(
                f"review · {policy} · nothing queued for review")
            self.query_one("#review-conversation", SafeStatic).update("")
            self.query_one("#review-judges", SafeStatic).update("")
            return
        facts = queue.SampleFacts.from_tags(item.info.tags, policy)
        self.query_one("#review-title", SafeStatic).update(
            f"review · {policy} · {self.index + 1}/{len(self.queue)} · {item.info.trace_id}"
            f" · stratum {facts.stratum if facts else '-'} · reviewer {self.reviewer}")
        self.query_one("#review-conversation", SafeStatic).update(item.conversation)
        current = self.current_judge()
        lines = Text()
        for judge in self.judges:
            kind = self.kinds.get(judge)
            answer = item.answers.get(judge)
            mark = "▶ " if judge == current else "  "
            given = ("skipped" if answer == SKIP else "…" if answer is None
                     else "saving…" if isinstance(answer, _Pending)
                     else safe_text(str(answer.value)))
            verdict = queue.verdict_of(item.info, judge)
            shown = "hidden (b)" if self.blind and answer is None else (
                safe_text(str(verdict.value)) if verdict else "none")
            lines.append(f"{mark}{safe_text(judge)} ({kind.hint if kind else '?'})",
                         style="bold" if judge == current else "")
            lines.append(f"  you: {given}  judge: {shown}\n")
        self.query_one("#review-judges", SafeStatic).update(lines)
        self._status("all judges answered: ] next" if current is None
                     else f"{current}: y/n, digits, i type, s skip, u undo, r rationale")

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_answer(self, key: str) -> None:
        from trace_tui.evaluation.labels import LabelError, parse_value

        judge = self.current_judge()
        if judge is None or self.item is None:
            return
        kind = self.kinds[judge]
        try:
            value = parse_value(kind, key)
        except LabelError:
            self.notify(f"{judge} takes {kind.hint}", severity="warning")
            return
        self._give(judge, value)

    def action_type_value(self) -> None:
        from trace_tui.tui.screens.modals import PromptScreen

        judge = self.current_judge()
        if judge is None:
            return

        def done(text: str | None) -> None:
            from trace_tui.evaluation.labels import LabelError, parse_value

            if text is None or self.current_judge() != judge:
                return
            try:
                self._give(judge, parse_value(self.kinds[judge], text))
            except LabelError as exc:
                self.notify(str(exc).removeprefix("--value "), severity="warning")

        self.app.push_screen(PromptScreen(f"{judge}: {self.kinds[judge].hint}"), done)

    def _give(self, judge: str, value: Any) -> None:
        assert self.item is not None
        self.item.answers[judge] = _Pending(value)
        self.item.order.append(judge)
        self._show()
        self.write(self.item, judge, value)

    def action_skip(self) -> None:
        judge = self.current_judge()
        if judge is not None and self.item is not None:
            self.item.answers[judge] = SKIP
            self.item.order.append(judge)
            self._show()
            self._maybe_done(self.item)

    def action_undo(self) -> None:
        """Undo the last answer; on a fresh trace, go back to the previous one and undo its
        last answer."""
        if (self.item is None or not self.item.order) and self.finished:
            previous = self.finished.pop()
            self.index = next((i for i, t in enumerate(self.queue)
                               if t.trace_id == previous.info.trace_id), self.index)
            self.item = previous
        if self.item is None or not self.item.order:
            return
        judge = self.item.order.pop()
        self.undo(self.item, judge)

    def action_rationale(self) -> None:
        from trace_tui.tui.screens.modals import PromptScreen

        item = self.item
        if item is None or not item.order or item.answers.get(item.order[-1]) == SKIP:
            self.notify("label a judge first", severity="warning")
            return
        judge = item.order[-1]

        def done(text: str | None) -> None:
            if text:
                self.add_rationale(item, judge, text)

        self.app.push_screen(PromptScreen(f"rationale for {judge}"), done)

    def action_toggle_blind(self) -> None:
        self.blind = not self.blind
        self._show()

    def action_span_tree(self) -> None:
        if self.item is not None:
            self.tapp.open_trace(self.item.info.trace_id, info=self.item.info)

    async def action_move(self, step: int) -> None:
        if self.queue:
            self.index = max(0, min(len(self.queue) - 1, self.index + step))
            await self._open_current()

    # ------------------------------------------------------------------ writes (in order)

    @work(group="review-write")
    async def write(self, item: Item, judge: str, value: Any) -> None:
        from trace_tui.evaluation import labels

        loop = self.console.loop
        assert loop is not None
        async with self._lock:
            try:
                facts = labels.facts_for(item.info, loop.policy.name)
                _, written = await labels.write_label(loop.client, item.info, judge, value,
                                                      self.reviewer, facts, via="review")
            except TraceTuiError as exc:
                item.answers.pop(judge, None)
                self.notify(f"label not saved: {exc}", severity="error")
                self._refresh_if(item)
                return
            if isinstance(item.answers.get(judge), _Pending):
                item.answers[judge] = written
                _replace(item.info, written)
            self.writes += 1
        self._refresh_if(item)
        self._maybe_done(item)

    @work(group="review-write")
    async def undo(self, item: Item, judge: str) -> None:
        from trace_tui.evaluation import review

        loop = self.console.loop
        assert loop is not None
        async with self._lock:
            answer = item.answers.pop(judge, None)
            try:
                if answer is not None and answer != SKIP and not isinstance(answer, _Pending):
                    await loop.client.delete_assessment(item.info.trace_id,
                                                        answer.assessment_id)
                    item.info.assessments[:] = [a for a in item.info.assessments
                                                if a.assessment_id != answer.assessment_id]
                await review.set_review_state(loop.client, item.info.trace_id,
                                              loop.policy.name, review.QUEUED)
            except TraceTuiError as exc:
                self.notify(f"undo failed: {exc}", severity="error")
            self.writes += 1
        self._refresh_if(item)

    @work(group="review-write")
    async def add_rationale(self, item: Item, judge: str, text: str) -> None:
        loop = self.console.loop
        assert loop is not None
        async with self._lock:
            answer = item.answers.get(judge)
            if answer is None or answer == SKIP or isinstance(answer, _Pending):
                return
            try:
                updated = await loop.client.update_assessment(
                    item.info.trace_id, answer.assessment_id, rationale=text)
            except TraceTuiError as exc:
                self.notify(f"rationale not saved: {exc}", severity="error")
                return
            item.answers[judge] = updated
            _replace(item.info, updated)
            self.writes += 1

    def _maybe_done(self, item: Item) -> None:
        """Every judge answered (nothing pending): the trace is reviewed; on to the next."""
        if any(isinstance(item.answers.get(j), _Pending) or j not in item.answers
               for j in self.judges):
            return
        self.finish(item)

    @work(group="review-write")
    async def finish(self, item: Item) -> None:
        from trace_tui.evaluation import review

        loop = self.console.loop
        assert loop is not None
        async with self._lock:
            if any(a != SKIP for a in item.answers.values()):
                await review.set_review_state(loop.client, item.info.trace_id,
                                              loop.policy.name, review.DONE)
        if item is self.item:
            self.finished.append(item)
            if self.index + 1 < len(self.queue):
                self.index += 1
                await self._open_current()

    def _refresh_if(self, item: Item) -> None:
        if item is self.item:
            self._show()


@dataclass(frozen=True)
class _Pending:
    value: Any


def _replace(info: TraceInfo, assessment: Assessment) -> None:
    info.assessments[:] = [a for a in info.assessments
                           if a.assessment_id != assessment.assessment_id] + [assessment]
