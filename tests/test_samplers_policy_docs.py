"""docs/policy.md's key tables are generated from the policy schema and must be current.

Each ``<!-- schema: NAME -->`` ... ``<!-- /schema -->`` block of docs/policy.md is the
``key_table`` of one declaration. After changing a key's type, default, limits or doc, run
``python tests/test_samplers_policy_docs.py`` to rewrite the blocks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samplers.rules import ProbabilisticDecl, RuleDecl, StratifiedDecl, StratumOverride  # noqa: E402
from samplers.schema import (  # noqa: E402
    Budget,
    Estimation,
    JudgeSchema,
    PolicyFile,
    Randomness,
    Review,
    SourceDecl,
    key_table,
)
from trace_tui.judging.spec import JudgeOptions  # noqa: E402

DOC = ROOT / "docs" / "policy.md"
_COMMON = tuple(RuleDecl.__struct_fields__)
BLOCK = re.compile(r"(<!-- schema: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /schema -->)", re.S)


def tables() -> dict[str, str]:
    """Every generated block by name."""
    structs: dict[str, tuple[type[msgspec.Struct], dict]] = {
        "top": (PolicyFile, {"headers": True}),
        "source": (SourceDecl, {}),
        "randomness": (Randomness, {}),
        "budget": (Budget, {}),
        "estimation": (Estimation, {}),
        "review": (Review, {}),
        "judge": (JudgeSchema, {}),
        "judge-options": (JudgeOptions, {}),
        "rule": (RuleDecl, {}),
        "probabilistic": (ProbabilisticDecl, {"skip": _COMMON}),
        "stratified": (StratifiedDecl, {"skip": _COMMON}),
        "stratum-override": (StratumOverride, {}),
    }
    return {name: key_table(s, **kw) for name, (s, kw) in structs.items()}


def render(text: str) -> str:
    generated = tables()
    return BLOCK.sub(lambda m: f"{m.group(1)}{generated[m.group('name')]}\n{m.group(4)}", text)


def test_docs_key_tables_match_the_schema() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = [m.group("name") for m in BLOCK.finditer(text)]
    assert sorted(found) == sorted(tables()), "each declaration has one block in docs/policy.md"
    stale = "docs/policy.md is stale: run python tests/test_samplers_policy_docs.py"
    assert render(text) == text, stale


def test_limits_and_defaults_appear_once_in_the_docs() -> None:
    """The example of the issue: max_keys' default is written in the schema only."""
    text = DOC.read_text(encoding="utf-8")
    assert "| `max_keys` | integer >= 1 | `500` |" in text
    assert len(re.findall(r"\b500\b", text)) == 1


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
