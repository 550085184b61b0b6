"""Sampling -> queue -> judge -> report, on top of `samplers` and the MLflow client.

The queue lives in MLflow itself (trace tags), population counts in a run of the policy,
verdicts as assessments on the original traces: any machine pointed at the same server can
sample, evaluate or report, and the MLflow UI shows all of it.
"""
