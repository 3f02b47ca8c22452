"""Settings for every phonefleet process, read from ``PHONEFLEET_*`` environment variables.

One class serves the api, the dispatcher and the hub workers; each process reads only the fields it
needs, and hub workers never need (and in production never get) ``database_url``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Plan(StrEnum):
    """TikMatrix's licence plans; Starter has no API access."""

    STARTER = "starter"
    PRO = "pro"
    TEAM = "team"
    BUSINESS = "business"


def local_timezone_name() -> str:
    """The IANA name of this machine's time zone, or ``UTC`` when it cannot be told."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "phonefleet"


DEFAULT_DEVICE_LIMITS: dict[Plan, int] = {
    Plan.STARTER: 0,
    Plan.PRO: 20,
    Plan.TEAM: 100,
    Plan.BUSINESS: 1000,
}


class Settings(BaseSettings):
    """All settings; see docs/configuration.md for what each one is for."""

    model_config = SettingsConfigDict(env_prefix="PHONEFLEET_", extra="ignore")

    # Where things are. Unset URLs mean "embedded" in single-machine mode (`phonefleet up`).
    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)

    # The gateway.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=50809, ge=1, le=65535)
    timezone: str = Field(default_factory=local_timezone_name)
    allow_loopback_without_key: bool = False
    loopback_plan: Plan = Plan.BUSINESS
    plan_device_limits: dict[Plan, int] = Field(default_factory=lambda: dict(DEFAULT_DEVICE_LIMITS))
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_tasks_per_request: int = Field(default=5000, ge=1)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    key_cache_seconds: float = Field(default=5.0, ge=0)

    # Retries (TikMatrix: auto-retry, max retry count, a random delay between retries).
    auto_retry: bool = False
    max_retry_count: int = Field(default=3, ge=1, le=10)
    retry_delay_min_seconds: float = Field(default=5.0, ge=0)
    retry_delay_max_seconds: float = Field(default=60.0, ge=0)
    random_order: bool = False

    # Liveness of running work.
    heartbeat_interval_seconds: float = Field(default=2.0, gt=0)
    heartbeat_timeout_seconds: float = Field(default=15.0, gt=0)
    dispatch_timeout_seconds: float = Field(default=30.0, gt=0)
    scheduler_tick_seconds: float = Field(default=0.5, gt=0)
    # Attempts are not judged lost while more reports than this wait for the dispatcher.
    report_backlog_limit: int = Field(default=500, ge=1)

    # Celery task events (received, started, succeeded...) from hubs and dispatchers: what Flower
    # shows. They cost a hub about a fifth of its CPU per task (docs/benchmarks.md); a farm that does
    # not watch Flower can turn them off.
    task_events: bool = True

    # Hub workers.
    hub_name: str | None = None
    adb_host: str = "127.0.0.1"
    adb_port: int = Field(default=5037, ge=1, le=65535)
    media_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    media_cache_dir: Path | None = None
    download_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    media_cache_max_bytes: int = Field(default=4 * 1024**3, ge=1)
    # TikMatrix clients send paths of the Windows desktop they ran on: map their folders to the hub's.
    media_path_map: dict[str, Path] = Field(default_factory=dict)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, description="on SIGTERM, running scripts get this long")

    # Prometheus: the api serves /metrics on its own port; dispatcher and hub workers serve theirs here
    # (0 turns a process's metrics off).
    metrics_host: str = "127.0.0.1"
    dispatcher_metrics_port: int = Field(default=9108, ge=0, le=65535)
    hub_metrics_port: int = Field(default=9109, ge=0, le=65535)

    # Webhooks: a task's end pushed to a URL (per task or per key), signed with HMAC-SHA256.
    webhook_secret: str | None = Field(default=None, description="signs deliveries of callers without a key")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)

    # Flower, the Celery dashboard.
    flower_address: str = "127.0.0.1"
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_basic_auth: str | None = Field(default=None, description="user:password")

    # Logging.
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_dialect(cls, value: str | None) -> str | None:
        """Accept plain ``postgresql://`` URLs and point SQLAlchemy at psycopg 3."""
        if value is None:
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("broker_url")
    @classmethod
    def _verify_tls(cls, value: str | None) -> str | None:
        """A ``rediss://`` URL verifies the server's certificate unless it says otherwise: kombu would
        otherwise accept any certificate (and only log a warning)."""
        if value is None or not value.startswith("rediss://") or "ssl_cert_reqs=" in value:
            return value
        return value + ("&" if "?" in value else "?") + "ssl_cert_reqs=required"

    @field_validator("media_roots", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _retry_delay_order(self) -> Settings:
        if self.retry_delay_max_seconds < self.retry_delay_min_seconds:
            raise ValueError("retry_delay_max_seconds must be >= retry_delay_min_seconds")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device_limit(self, plan: Plan) -> int:
        return self.plan_device_limits.get(plan, DEFAULT_DEVICE_LIMITS[plan])

    def media_cache(self) -> Path:
        return self.media_cache_dir or self.data_dir / "media-cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
