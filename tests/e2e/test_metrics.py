"""Prometheus metrics of the api, the dispatcher and a hub, scraped from the running farm."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.farm import Farm


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_process_exposes_its_figures(farm: Farm) -> None:
    hub = farm.hubs["hub-a"]
    ids = farm.create(serials=hub.serials[:2], script_name="noop", script_config={"duration": 0.1})
    farm.wait_tasks(ids)
    dispatcher_port = farm.base_env["PHONEFLEET_DISPATCHER_METRICS_PORT"]

    def settled() -> bool:
        central = scrape(f"http://127.0.0.1:{dispatcher_port}/metrics")
        return value(central, "phonefleet_task_duration_seconds_count", script="noop", outcome="completed") >= 2

    farm.wait(settled, timeout=15, what="the dispatcher counted the runs")
    central = scrape(f"http://127.0.0.1:{dispatcher_port}/metrics")
    assert value(central, "phonefleet_reports_total", kind="finished") >= 2
    assert value(central, "phonefleet_start_latency_seconds_count") >= 1

    local = scrape(f"http://127.0.0.1:{hub.metrics_port}/metrics")
    assert value(local, "phonefleet_hub_devices", state="device") == len(hub.serials)
    assert value(local, "phonefleet_hub_script_seconds_count", script="noop", outcome="completed") >= 2
    assert value(local, "phonefleet_hub_running_tasks") >= 0

    api = scrape(f"{farm.api_url}/metrics")
    completed = value(api, "phonefleet_tasks", status="completed")
    stats = farm.call("GET", "/task/stats")["data"]
    assert completed == stats["completed"] and completed >= 2
    online = sum(value(api, "phonefleet_devices", hub=name, online="true") for name in farm.hubs)
    assert online == sum(len(h.serials) for h in farm.hubs.values())
    assert ("phonefleet_queue_depth", (("hub", "hub-a"),)) in api
    assert value(api, "phonefleet_http_request_seconds_count", method="POST", route="/api/v1/task", status="200") >= 1


def test_ping_reaches_the_running_processes(farm: Farm) -> None:
    from tests.process import run_cli

    env = farm.env()
    assert run_cli("ping", "--dispatcher", env=env).returncode == 0
    result = run_cli("ping", "--hub", "hub-a", env=env)
    assert result.returncode == 0, result.stderr
    assert run_cli("ping", "--hub", "hub-nobody", "--timeout", "0.5", env=env).returncode == 1
