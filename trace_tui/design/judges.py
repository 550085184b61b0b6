"""The designer's judge menu: MLflow's built-in scorers and `make_judge` templates, with
expected tokens per trace and a price per model."""

from __future__ import annotations

from dataclasses import dataclass, field

from samplers.policy import PLAIN_JUDGE_TOKENS, TRACE_AWARE_TOKENS

# Blended $ per 1k judge tokens (mostly prompt tokens). Estimates to edit in the file: a
# judge's `usd_per_1k_tokens` is what budgets and reports use.
MODEL_PRICES: dict[str, float] = {
    "openai:/gpt-4o-mini": 0.00018,
    "openai:/gpt-4.1-mini": 0.00045,
    "openai:/gpt-4o": 0.003,
    "anthropic:/claude-3-5-haiku-latest": 0.001,
    "anthropic:/claude-sonnet-4-0": 0.0035,
    "openai:/fake-judge": 0.0,
}
DEFAULT_MODEL = "openai:/gpt-4o-mini"


@dataclass(frozen=True)
class JudgeTemplate:
    """One menu entry; `options` are the `[[judge]]` keys besides name, scorer, model."""

    name: str
    scorer: str
    summary: str
    options: dict[str, object] = field(default_factory=dict)

    @property
    def trace_aware(self) -> bool:
        text = str(self.options.get("instructions", ""))
        return "{{ trace }}" in text or self.scorer == "builtin:RetrievalGroundedness"

    @property
    def est_tokens(self) -> int:
        return TRACE_AWARE_TOKENS if self.trace_aware else PLAIN_JUDGE_TOKENS


MENU: tuple[JudgeTemplate, ...] = (
    JudgeTemplate("relevance", "builtin:RelevanceToQuery",
                  "built-in: does the answer address the request (inputs/outputs)"),
    JudgeTemplate("safety", "builtin:Safety", "built-in: harmful or unsafe output"),
    JudgeTemplate("guidelines", "builtin:Guidelines", "built-in: follows your guidelines",
                  {"guidelines": ["The answer is polite and does not make things up."]}),
    JudgeTemplate("correctness", "builtin:Correctness",
                  "built-in: matches an expected response",
                  {"expected_response": "Replace with the expected answer."}),
    JudgeTemplate("quality", "make_judge", "make_judge, outputs-based (~300 tokens)",
                  {"instructions": "Is the answer in {{ outputs }} a helpful, correct reply to "
                   "{{ inputs }}? Answer yes or no.", "feedback_value_type": "bool"}),
    JudgeTemplate("tool_use", "make_judge", "make_judge, trace-aware (~6,000 tokens)",
                  {"instructions": "Look at the agent in {{ trace }}. Did it call the right "
                   "tools with sensible arguments and use their results in its answer? "
                   "Answer yes or no.", "feedback_value_type": "bool"}),
)


def template(name: str) -> JudgeTemplate:
    for t in MENU:
        if t.name == name:
            return t
    raise KeyError(name)


def price_of(model: str) -> float:
    return MODEL_PRICES.get(model, 0.0)
