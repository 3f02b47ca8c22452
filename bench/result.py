"""What a figure produces: rows of the report, each a value beside its same-run baseline."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    """One line of the report's table.

    ``value`` and ``baseline`` are in ``unit`` / ``baseline_unit``; ``ratio`` is value / baseline;
    ``met`` says whether ``target`` holds (None when the figure could not be measured).
    """

    key: str
    figure: str
    value: float | None
    unit: str
    baseline: float | None
    baseline_label: str
    baseline_unit: str
    ratio: float | None
    target: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("value", "baseline", "ratio"):
            number = data[name]
            if isinstance(number, float) and math.isnan(number):
                data[name] = None
        return data


@dataclass
class FigureResult:
    """Everything one figure module measured: its rows plus whatever it wants in the report's body."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
