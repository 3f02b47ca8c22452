"""The script registry, noop, and the pure helpers (spintax, title split, selector files)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import adbutils
import pytest

from shared.failures import FailureKind
from shared.scripts import SCRIPTS
from tests.scripts.conftest import SimpleContext, run_in_thread
from workers.scripts import get_script, registry, run_script, script_names
from workers.scripts._caption import resolve_spintax, split_title
from workers.scripts._ui import load_selectors
from workers.scripts.base import HubEnvironment, ScriptFailure, TaskSpec, TaskStopped


def _ctx(config: dict[str, Any], script: str = "noop") -> SimpleContext:
    spec = TaskSpec(1, 1, "none", script, config, "tiktok")
    # noop never touches the device: a device object that points nowhere proves it
    return SimpleContext(adbutils.AdbClient(port=1).device("none"), spec, HubEnvironment())


def test_registry_finds_every_script_of_the_shared_table() -> None:
    assert set(script_names()) == set(SCRIPTS)
    assert registry()["post"].module == "workers.scripts.post"
    with pytest.raises(ScriptFailure) as caught:
        get_script("nope")
    assert caught.value.kind == FailureKind.BAD_CONFIG


def test_noop_sleeps_and_fails_on_request() -> None:
    started = time.monotonic()
    assert run_script(_ctx({"duration": 0.2})) == "noop done after 0.2s"
    assert time.monotonic() - started >= 0.2
    with pytest.raises(ScriptFailure) as caught:
        run_script(_ctx({"fail_with": "boom"}))
    assert (caught.value.kind, caught.value.message) == (FailureKind.SCRIPT_ERROR, "boom")
    with pytest.raises(ScriptFailure) as bad:
        run_script(_ctx({"duration": -1}))
    assert bad.value.kind == FailureKind.BAD_CONFIG


def test_noop_stops_at_once() -> None:
    ctx = _ctx({"duration": 30})
    thread, outcome = run_in_thread(lambda: run_script(ctx))
    time.sleep(0.05)  # let it enter its sleep; the assertion below does not depend on it
    stopped = time.monotonic()
    ctx.stop.set()
    thread.join(2)
    assert isinstance(outcome["error"], TaskStopped)
    assert outcome["ended_at"] - stopped < 0.5


def test_spintax() -> None:
    rng = random.Random(1)
    seen = {resolve_spintax("{a|b|c}-{x|{y|z}}", rng) for _ in range(200)}
    assert seen == {f"{p}-{q}" for p in "abc" for q in "xyz"}
    assert resolve_spintax("no groups {here} } {", rng) == "no groups {here} } {"
    assert resolve_spintax("emoji {😀|😀}", rng) == "emoji 😀"


def test_title_split() -> None:
    assert split_title("Title ## body ## more") == ("Title", "body ## more")
    assert split_title("just a caption") == ("", "just a caption")


@pytest.mark.parametrize("platform", ["tiktok", "instagram"])
def test_selector_files_are_complete(platform: str) -> None:
    selectors = load_selectors(platform)
    needed = {
        "home",
        "profile_tab",
        "account_switch",
        "switcher_sheet",
        "switcher_account_name",
        "editor",
        "editor_next",
        "publish",
        "caption_field",
        "post_button",
        "uploading",
        "posted",
        "media_error",
        "login_wall",
        "banned",
        "banned_account",
        "banned_switch_account",
        "crash_dialog",
        "crash_close",
    }
    assert needed <= set(selectors.selectors)
    assert selectors.versions and selectors.activities["share"]
    path = Path(__file__).resolve().parents[2] / "workers" / "scripts" / "selectors" / f"{platform}.json"
    assert path.is_file()


def test_stop_event_is_a_threading_event() -> None:
    assert isinstance(_ctx({}).stop, type(threading.Event()))
