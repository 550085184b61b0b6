"""The experiment record, apart from the client so the start path can read one without
importing aiohttp."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    last_update_time: int = 0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Experiment:
        return cls(str(d.get("experiment_id", "")), str(d.get("name", "")),
                   str(d.get("lifecycle_stage", "active")), int(d.get("last_update_time") or 0))
