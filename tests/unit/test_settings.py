"""Settings: normalisation and refusals (pure functions; no services needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("rediss://:pw@redis.example:6380/0", "rediss://:pw@redis.example:6380/0?ssl_cert_reqs=required"),
        ("rediss://h/0?ssl_ca_certs=/ca.pem", "rediss://h/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"),
        ("rediss://h/0?ssl_cert_reqs=optional", "rediss://h/0?ssl_cert_reqs=optional"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_tls_broker_urls_verify_certificates(given: str, expected: str) -> None:
    assert Settings(broker_url=given).broker_url == expected


def test_database_urls_use_psycopg_3() -> None:
    assert Settings(database_url="postgres://u:p@h/db").database_url == "postgresql+psycopg://u:p@h/db"


@pytest.mark.parametrize("field", [{"timezone": "Mars/Olympus"}, {"max_retry_count": 11}, {"max_retry_count": 0}])
def test_bad_settings_are_refused(field: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**field)  # type: ignore[arg-type]


def test_retry_delays_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="retry_delay_max_seconds"):
        Settings(retry_delay_min_seconds=10, retry_delay_max_seconds=5)
