"""The scripts a task can run and the shape of each one's ``script_config``.

The api validates ``script_config`` against these models (a bad field gets code 40001 naming it);
hub workers run the script of the same name (``workers/scripts/``). Both sides read this one registry,
so a script's name and its configuration are written down once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Platform = Literal["tiktok", "instagram"]
PLATFORMS: tuple[Platform, ...] = ("tiktok", "instagram")

# Default Android packages of each platform's app; an account may name a clone package instead.
DEFAULT_PACKAGES: dict[str, str] = {
    "tiktok": "com.zhiliaoapp.musically",
    "instagram": "com.instagram.android",
}


class ScriptConfig(BaseModel):
    """Base of every script's configuration: strict types, unknown keys kept as given."""

    model_config = ConfigDict(strict=True, extra="allow")

    # phonefleet's addition: which app to drive when the task has no account to tell it.
    platform: Platform | None = None


def _add_sound_text(value: object) -> object:
    # TikMatrix documents add_sound as a string ("-1"), but clients also send -1.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class PostConfig(ScriptConfig):
    """``post``: publish a video or images (TikMatrix's table, field for field)."""

    content_type: Literal[0, 1] = 0
    image_count: int = Field(default=1, ge=1, le=35)
    captions: str = Field(default="", max_length=4000)
    post_way: Literal["share", "addButton", "useSound"] = "share"
    material_source: Literal["materialLibrary", "localFolder"] = "materialLibrary"
    material_path: str = Field(default="", max_length=4096)
    material_list: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, max_length=35
    )
    materials_tags: str = Field(default="", max_length=1000)
    upload_wait_time: int = Field(default=30, ge=0, le=3600)
    sound_wait_time: int = Field(default=10, ge=0, le=600)
    add_sound: Annotated[Literal["-1", "0", "1", "custom"], BeforeValidator(_add_sound_text)] = "-1"
    sound_name: str = Field(default="", max_length=500)
    custom_sound_keyword: str = Field(default="", max_length=500)
    origin_sound_volume: int = Field(default=50, ge=0, le=100)
    add_sound_volume: int = Field(default=50, ge=0, le=100)
    add_product_link: Literal[0, 1] = 0
    placement: Literal["reel", "story"] = "reel"

    @model_validator(mode="after")
    def _material_source_needs_path(self) -> PostConfig:
        if not self.material_list and self.material_source == "localFolder" and not self.material_path:
            raise ValueError("material_path is required when material_source is localFolder")
        return self


class NoopConfig(ScriptConfig):
    """``noop``: phonefleet's own do-nothing script, for benchmarks and smoke tests."""

    duration: float = Field(default=0.0, ge=0, le=3600)
    fail_with: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class ScriptSpec:
    name: str
    config: type[ScriptConfig]
    api_enabled: bool
    summary: str


SCRIPTS: dict[str, ScriptSpec] = {
    spec.name: spec
    for spec in (
        ScriptSpec("post", PostConfig, True, "Publish a video or images on TikTok or Instagram"),
        ScriptSpec("noop", NoopConfig, True, "Do nothing for `duration` seconds (benchmarks, smoke tests)"),
    )
}


def api_script_names() -> list[str]:
    return sorted(name for name, spec in SCRIPTS.items() if spec.api_enabled)


def parse_config(script_name: str, raw: dict[str, Any]) -> ScriptConfig:
    """Validate ``raw`` against the script's model; raises ``KeyError`` or ``pydantic.ValidationError``."""
    return SCRIPTS[script_name].config.model_validate(raw)
