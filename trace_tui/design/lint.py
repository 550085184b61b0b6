"""`trace-tui policy lint`: every problem of a policy file, each as `file:line: key: problem`.

The schema stops at its first problem, so lint repairs the parsed table and asks again: the
key a problem names is removed (its default applies); when that is not enough (a required
key, a list element) the enclosing rule is swapped for a harmless drop rule, keeping every
other rule's index and line. Problems that only exist because of a repair are not reported.
Judge options (trace_tui's judge specs) are checked one judge at a time.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

from samplers import PolicyError, parse_policy
from samplers.parsing import Ctx
from samplers.policy import policy_from_data
from samplers.schema import JudgeSchema

MAX_PROBLEMS = 50
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


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
    ctx = Ctx(source, text)
    data = copy.deepcopy(raw)
    problems: list[str] = []
    repaired: list[tuple[str | int, ...]] = []  # problems at or under these are ours
    rules_repaired = False
    for _ in range(MAX_PROBLEMS * 3):
        try:
            policy_from_data(ctx, data)
            break
        except PolicyError as exc:
            path = _steps(exc.path)
            if not any(_within(path, r) for r in repaired):
                problems.append(str(exc))
                if len(problems) >= MAX_PROBLEMS:
                    break
            if path == ("policy",):
                if rules_repaired:
                    break
                rules_repaired = True
                _repair_rules(data)
                continue
            done = _repair(data, path, repaired)
            if done is None:
                break
            repaired.append(done)
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


def _steps(path: str) -> tuple[str | int, ...]:
    return tuple(int(i) if i else k for k, i in _STEP.findall(path))


def _within(path: tuple[str | int, ...], repaired: tuple[str | int, ...]) -> bool:
    """A problem at or under a repaired key, or on the rule or judge holding it, is ours."""
    if path[:len(repaired)] == repaired:
        return True
    return len(path) == 2 and isinstance(path[1], int) and repaired[:2] == path


def _repair(data: dict[str, Any], path: tuple[str | int, ...],
            repaired: list[tuple[str | int, ...]]) -> tuple[str | int, ...] | None:
    """Change ``data`` so the problem at ``path`` goes away; the path changed, or None."""
    for end in range(len(path), 0, -1):
        at = path[:end]
        if at in repaired:
            continue
        parent = _get(data, at[:-1])
        key = at[-1]
        if isinstance(key, str) and isinstance(parent, dict):
            if key in parent and not (end == 3 and at[0] == "policy" and key == "type"):
                del parent[key]
                return at
        elif at[0] == "policy" and end == 2 and isinstance(parent, list) \
                and isinstance(key, int) and key < len(parent):
            parent[key] = {"name": f"__lint_{key}__", "type": "drop"}
            return at
    return None


def _repair_rules(data: dict[str, Any]) -> None:
    """A problem of the rule list as a whole: no rule, or budget shares over 1."""
    rules = data.get("policy")
    if not isinstance(rules, list) or not rules:
        data["policy"] = [{"name": "__lint__", "type": "drop"}]
    else:
        for rule in rules:
            if isinstance(rule, dict):
                rule.pop("budget_share", None)


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


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
