"""The cancellation signal a running script checks between steps and inside waits.

PostgreSQL holds the decision (the task's row); this Redis key and channel only carry it to the hub
quickly. The key survives hub restarts and says "every attempt up to N of this task is cancelled";
the channel wakes the hub at once instead of at its next poll.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from shared.queues import CANCEL_CHANNEL, CANCEL_KEY_PREFIX

CANCEL_TTL_SECONDS = 7 * 24 * 3600

# Raise the key to max(current, attempt) atomically, so a late signal never un-cancels a newer attempt.
_RAISE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
    redis.call('SET', KEYS[1], wanted, 'EX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return wanted
"""


def cancel_key(task_id: int) -> str:
    return f"{CANCEL_KEY_PREFIX}{task_id}"


def cancel_channel(client: redis.Redis) -> str:
    """The stop channel of this Redis database. Pub/sub ignores database numbers, so the channel name
    carries it: two installations on one Redis server (databases 0 and 1) never stop each other's tasks."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    return f"{CANCEL_CHANNEL}:{db}"


def request_cancel(client: redis.Redis, targets: Iterable[tuple[int, int]]) -> None:
    """Signal that attempts up to ``attempt`` of each ``(task_id, attempt)`` must stop."""
    pipe = client.pipeline(transaction=False)
    channel = cancel_channel(client)
    count = 0
    for task_id, attempt in targets:
        pipe.eval(_RAISE_SCRIPT, 1, cancel_key(task_id), attempt, CANCEL_TTL_SECONDS, channel, f"{task_id}:{attempt}")
        count += 1
    if count:
        pipe.execute()


def is_cancelled(client: redis.Redis, task_id: int, attempt: int) -> bool:
    """True when ``attempt`` of ``task_id`` was cancelled."""
    value = client.get(cancel_key(task_id))
    return value is not None and int(value) >= attempt
