"""The post script through the whole farm: the right phone, as the right account, with what was asked."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.farm import Farm

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)


def material(farm: Farm, name: str) -> Path:
    path = farm.media_root / name
    if not path.exists():
        path.write_bytes(VIDEO)
    return path


def test_usernames_mode_posts_as_that_account_on_its_phone(farm: Farm) -> None:
    video = material(farm, "clip.mp4")
    caption = "Nouvelle vidéo 🎬 {super|génial} #fyp"
    (task_id,) = farm.create(
        usernames=["a1ttb"],
        script_name="post",
        script_config={"material_list": [str(video)], "captions": caption, "upload_wait_time": 0},
    )
    (task,) = farm.wait_tasks([task_id], timeout=60)
    assert task["status"] == 2, task["remark"]
    assert task["username"] == "a1ttb" and task["hub"] == "hub-a"
    (post,) = [p for p in farm.phone(task["serial"]).posts() if p.account == "a1ttb"]
    assert post.platform == "tiktok" and post.kind == "video"
    assert post.caption in {"Nouvelle vidéo 🎬 super #fyp", "Nouvelle vidéo 🎬 génial #fyp"}
    assert "a1ttb" in task["remark"]


def test_multi_account_runs_every_account_of_the_phone_in_order(farm: Farm) -> None:
    video = material(farm, "multi.mp4")
    serial = farm.hubs["hub-b"].serials[2]
    ids = farm.create(
        serials=[serial],
        enable_multi_account=True,
        script_name="post",
        script_config={"material_list": [str(video)], "captions": "multi", "upload_wait_time": 0},
    )
    tasks = farm.wait_tasks(ids, timeout=120)
    assert [t["status"] for t in tasks] == [2, 2, 2, 2], [t["remark"] for t in tasks]
    expected = [t["username"] for t in tasks]
    assert sorted(expected) == ["b2iga", "b2igb", "b2tta", "b2ttb"]
    posted = [(p.account, p.platform) for p in farm.phone(serial).posts() if p.caption == "multi"]
    assert [a for a, _ in posted] == expected, "one after another, in task order"
    assert all((platform == "tiktok") == account[2:4].startswith("tt") for account, platform in posted)


def test_material_outside_the_media_roots_is_refused(farm: Farm) -> None:
    serial = farm.hubs["hub-a"].serials[2]
    before = len(farm.phone(serial).posts())
    ids = farm.create(
        serials=[serial, serial],
        script_name="post",
        script_config={"material_list": ["/etc/hostname"], "upload_wait_time": 0},
    )
    (task,) = farm.wait_tasks(ids[:1], timeout=30)
    assert (task["status"], task["failure_kind"]) == (3, "path_refused"), task
    assert "outside" in task["remark"]
    escape = farm.create(
        serials=[serial],
        script_name="post",
        script_config={"material_list": [str(farm.media_root / ".." / "logs" / "api.log")], "upload_wait_time": 0},
    )
    (escaped,) = farm.wait_tasks(escape, timeout=30)
    assert escaped["failure_kind"] == "path_refused"
    assert len(farm.phone(serial).posts()) == before


def test_login_wall_fails_for_good_with_a_screenshot(farm: Farm) -> None:
    video = material(farm, "wall.mp4")
    hub = farm.hubs["hub-b"]
    phone, serial = hub.fleet.phones[1], hub.serials[1]
    phone.inject("login_wall")
    try:
        (task_id,) = farm.create(
            serials=[serial], script_name="post", script_config={"material_list": [str(video)], "upload_wait_time": 0}
        )
        (task,) = farm.wait_tasks([task_id], timeout=60)
        assert (task["status"], task["failure_kind"]) == (3, "login_wall"), task
        shot = httpx.get(
            f"{farm.api_url}/api/v1/task/{task_id}/screenshot", headers={"Authorization": f"Bearer {farm.key}"}
        )
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
        assert shot.content.startswith(b"\x89PNG\r\n\x1a\n") and len(shot.content) > 1000
        logs = farm.call("GET", f"/task/{task_id}/logs")["data"]["logs"]
        assert logs, "the script's log reached the task"
    finally:
        phone.clear("login_wall")
