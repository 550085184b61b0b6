"""`trace-tui policy lint`: every problem of a policy file, each as `file:line: key: problem`.

The schema stops at its first problem, so a rule with a problem is set aside (its lines
replaced by a harmless drop rule, line numbers kept) and the file parsed again; judge
options are checked one judge at a time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from samplers import PolicyError, parse_policy
from samplers.parsing import Ctx
from samplers.schema import JudgeSchema

MAX_PROBLEMS = 50
_RULE_PATH = re.compile(r"^[^:]*(?::\d+)?: policy\[(\d+)\]")
_HEADER = re.compile(r"^\s*\[\[\s*policy\s*\]\]")
_ANY_HEADER = re.compile(r"^\s*\[")


def lint_text(text: str, source: str) -> list[str]:
    """Every problem found, in file order; [] when the policy is valid."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        try:
            parse_policy(text, source)
        except PolicyError as exc:
            return [str(exc)]
        return []
    problems: list[str] = []
    current = text
    for _ in range(MAX_PROBLEMS):
        try:
            parse_policy(current, source)
            break
        except PolicyError as exc:
            problems.append(str(exc))
            m = _RULE_PATH.match(str(exc))
            if m is None:
                break
            replaced = _neutralise_rule(current, int(m.group(1)))
            if replaced is None or replaced == current:
                break
            current = replaced
    problems += _judge_problems(text, source, raw)
    return sorted(dict.fromkeys(problems), key=_line_of)


def lint_file(path: str | Path) -> list[str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        return [f"{p}: cannot read policy file: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return [f"{p}: expected UTF-8 text: {exc.reason}"]
    return lint_text(text, str(p))


def _line_of(problem: str) -> int:
    m = re.match(r"^[^:]*:(\d+):", problem)
    return int(m.group(1)) if m else 0


def _neutralise_rule(text: str, index: int) -> str | None:
    """`text` with the index-th [[policy]] block replaced by a drop rule of the same number
    of lines (None if the block is too short to hold one)."""
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if index >= len(headers):
        return None
    start = headers[index]
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])),
               len(lines))
    if end - start < 3:
        return None
    body = [f'name = "__lint_{index}__"', 'type = "drop"']
    block = [lines[start], *body, *([""] * (end - start - 3))]
    return "\n".join([*lines[:start], *block, *lines[end:]]) + "\n"


def _judge_problems(text: str, source: str, raw: dict) -> list[str]:
    from trace_tui.judging.spec import JudgeConfigError, JudgeSpec

    judges = raw.get("judge")
    if not isinstance(judges, list):
        return []
    ctx = Ctx(source, text)
    own = set(JudgeSchema.__struct_fields__)
    out = []
    for i, t in enumerate(judges):
        if not isinstance(t, dict):
            continue
        name = str(t.get("name", f"judge[{i}]"))
        scorer = str(t.get("scorer", t.get("kind", "")))
        options = {k: v for k, v in t.items() if k not in own}
        try:
            JudgeSpec.from_decl(name, scorer, options)
        except JudgeConfigError as exc:
            out.append(f"{ctx.fail(f'judge[{i}].{exc.key}', exc.problem)} (judge {name!r})")
    return out
