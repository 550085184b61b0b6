"""Real MLflow judges: declare (:mod:`.spec`), build (:mod:`.build`), bound MLflow's retries
(:mod:`.mlflow_hooks`), run and read a verdict (:mod:`.run`), REST JSON -> Trace
(:mod:`.rest_trace`).

The only package that imports mlflow, and only inside functions: importing it is cheap.
"""

from trace_tui.judging.build import build_judge, judge_spec_of
from trace_tui.judging.mlflow_hooks import JudgeDeadlineExceeded, bounded_judge_calls
from trace_tui.judging.rest_trace import trace_from_rest_json
from trace_tui.judging.run import JudgeVerdict, arun_judge, run_judge
from trace_tui.judging.spec import (
    BUILTIN_SCORERS,
    JudgeConfigError,
    JudgeSpec,
    policy_judge_specs,
)

__all__ = [
    "BUILTIN_SCORERS",
    "JudgeConfigError",
    "JudgeDeadlineExceeded",
    "JudgeSpec",
    "JudgeVerdict",
    "arun_judge",
    "bounded_judge_calls",
    "build_judge",
    "judge_spec_of",
    "policy_judge_specs",
    "run_judge",
    "trace_from_rest_json",
]
