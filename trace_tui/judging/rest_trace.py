"""MLflow REST JSON -> ``mlflow.entities.Trace``, without a network round trip.

Traces from REST JSON
    :func:`trace_from_rest_json` turns the JSON of ``GET /api/3.0/mlflow/traces/get`` (or one
    ``batchGet`` item) into an ``mlflow.entities.Trace`` without a network round trip:
    ``google.protobuf.json_format.ParseDict`` into ``mlflow.protos.service_pb2.Trace`` (the
    REST JSON *is* that proto's JSON form: base64 span ids, AnyValue attribute trees, RFC 3339
    times), then ``Trace.from_proto`` (``TraceInfo.from_proto`` + ``Span.from_otel_proto``).
    MLflow-native dicts (``Trace.to_dict()``: ``{"info", "data": {"spans"}}``) go through
    ``Trace.from_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Trace


def trace_from_rest_json(payload: Mapping[str, Any]) -> Trace:
    """An ``mlflow.entities.Trace`` from MLflow REST JSON, without a network round trip.

    Accepts ``{"trace": {"trace_info": ..., "spans": [...]}}`` (``traces/get``), a ``batchGet``
    item ``{"trace_info": ..., "spans": [...]}`` (OTel-proto JSON spans; int64 as numbers or
    strings), or MLflow-native ``{"info": ..., "data": {"spans": [...]}}`` (``Trace.to_dict()``).
    Raises ``ValueError`` naming the problem for anything else.
    """
    if not isinstance(payload, Mapping):
        raise ValueError("trace JSON must be an object")
    if "trace" in payload and isinstance(payload["trace"], Mapping):
        payload = payload["trace"]
    from mlflow.entities import Trace

    if "info" in payload and "data" in payload:
        return Trace.from_dict(dict(payload))
    if "trace_info" not in payload:
        raise ValueError("trace JSON has no 'trace_info' (expected a traces/get or batchGet item)")
    spans = payload.get("spans") or []
    if not isinstance(spans, list):
        raise ValueError("trace JSON 'spans' must be a list")
    from google.protobuf.json_format import ParseDict, ParseError
    from mlflow.protos.service_pb2 import Trace as ProtoTrace

    native = [s for s in spans if isinstance(s, Mapping) and isinstance(s.get("attributes"), dict)]
    try:
        if native and len(native) == len(spans):
            # trace_info from the proto JSON, spans in MLflow-native form (get-trace-artifact).
            from mlflow.entities import Span, TraceData, TraceInfo

            proto = ParseDict(
                {"trace_info": payload["trace_info"]}, ProtoTrace(), ignore_unknown_fields=True
            )
            return Trace(
                info=TraceInfo.from_proto(proto.trace_info),
                data=TraceData(spans=[Span.from_dict(dict(s)) for s in spans]),
            )
        proto = ParseDict(
            {"trace_info": payload["trace_info"], "spans": spans},
            ProtoTrace(),
            ignore_unknown_fields=True,
        )
    except ParseError as e:
        raise ValueError(f"trace JSON does not match MLflow's Trace proto: {e}") from None
    return Trace.from_proto(proto)
