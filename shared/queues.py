"""Queue and task names: the one place that spells them.

Every device has its own queue, ``device.<serial>``, that holds at most one message (the attempt the
dispatcher sent it). Hubs report back on ``control``. Each hub also has a queue of its own,
``hub.<name>``, so its worker always consumes something even with no phone attached.
"""

from __future__ import annotations

import socket

CONTROL_QUEUE = "control"
DEVICE_QUEUE_PREFIX = "device."
HUB_QUEUE_PREFIX = "hub."

# Celery task names (stable, dotted; never the Python path of the function).
RUN_TASK = "phonefleet.run"  # dispatcher → hub, on device.<serial>
REPORT_DEVICES = "phonefleet.devices"  # hub → dispatcher: the phones a hub has, on every change
REPORT_STARTED = "phonefleet.started"
REPORT_HEARTBEAT = "phonefleet.heartbeat"
REPORT_LOGS = "phonefleet.logs"
REPORT_FINISHED = "phonefleet.finished"
REPORT_REFUSED = "phonefleet.refused"  # the hub did not run an attempt (cancelled, phone not here)
# hub → dispatcher: several of the attempt reports above, in the order the hub made them, applied in
# one transaction. kwargs: {"hub": name, "reports": [{"kind": REPORT_*, "report": {...}}, ...]}
REPORTS_BATCH = "phonefleet.reports"

# Redis keys and channels outside Celery.
CANCEL_KEY_PREFIX = "phonefleet:cancel:"  # + task id → highest cancelled attempt
CANCEL_CHANNEL = "phonefleet:cancel"  # "task_id:attempt" published on every stop/delete
CLAIM_KEY_PREFIX = "phonefleet:claim:"  # + task id:attempt → the hub that started it
ACK_KEY_PREFIX = "phonefleet:ack:"  # + task id:attempt → the dispatcher has the attempt's end
ALIVE_KEY_PREFIX = "phonefleet:alive:"  # + task id:attempt → a hub holds it (expires when the hub dies)


# The time (epoch seconds) a dispatcher first found Redis without it: how long Redis has kept its data.
MEMORY_KEY = "phonefleet:memory-since"
ENDED_KEY_PREFIX = "phonefleet:ended:"  # + task id:attempt → the hub's end report (without screenshot)


def ended_key(task_id: int, attempt: int) -> str:
    """Written by the hub the moment an attempt ends, beside the queued report: the dispatcher reads
    it before judging the attempt lost, so a report stuck behind others is never mistaken for a death."""
    return f"{ENDED_KEY_PREFIX}{task_id}:{attempt}"


def alive_key(task_id: int, attempt: int) -> str:
    """Refreshed by the hub while it runs an attempt (or while its end report is on its way). Read by
    the dispatcher before it declares an attempt lost: a key is fresh even when reports queue up."""
    return f"{ALIVE_KEY_PREFIX}{task_id}:{attempt}"


def ack_key(task_id: int, attempt: int) -> str:
    """Set by the dispatcher once it has recorded how an attempt ended; the hub stops re-sending."""
    return f"{ACK_KEY_PREFIX}{task_id}:{attempt}"


def dispatcher_node(host: str | None = None) -> str:
    """The Celery node name of the dispatcher on ``host`` (default: this machine)."""
    return f"dispatcher@{host or socket.gethostname()}"


def hub_node(hub: str, host: str | None = None) -> str:
    """The Celery node name of hub ``hub``'s worker on ``host`` (default: this machine)."""
    return f"hub.{hub}@{host or socket.gethostname()}"


def device_queue(serial: str) -> str:
    """The queue of the device ``serial``."""
    return DEVICE_QUEUE_PREFIX + serial


def hub_queue(hub: str) -> str:
    return HUB_QUEUE_PREFIX + hub


def serial_of_queue(queue: str) -> str | None:
    """The serial a device queue belongs to, or None for other queues."""
    return queue[len(DEVICE_QUEUE_PREFIX) :] if queue.startswith(DEVICE_QUEUE_PREFIX) else None
