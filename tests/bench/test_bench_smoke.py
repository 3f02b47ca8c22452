"""The benchmark code runs end to end on the smallest sizes, so that it cannot rot unnoticed.

Benchmarks are not tests: nothing here asserts a timing, only that each figure produced a value and
that the report was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.context import Sizes
from bench.runner import Options, run
from tests.services import ServiceUrls


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_batch_and_dispatch_latency_figures_run_end_to_end(
    services: ServiceUrls, broker_url: str, tmp_path: Path
) -> None:
    report = run(
        Options(
            sizes=Sizes.tiny(),
            figures=("batch", "latency"),
            redis_db=int(broker_url.rsplit("/", 1)[1]),
            results_dir=tmp_path,
            admin_database_url=services.admin_database_url,
            broker_base_url=services.broker_base_url,
            quiet=True,
        )
    )

    assert [f["error"] for f in report["figures"]] == [None, None]
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"batch", "dispatch_p50", "dispatch_p99"}
    assert all(row["value"] is not None and row["baseline"] is not None for row in rows.values())
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert "| figure | value | baseline (same run) |" in next(tmp_path.glob("*.md")).read_text()
