"""Stop signals: the key a hub polls and the channel it listens to, per Redis database."""

from __future__ import annotations

import time

import redis

from shared.dispatcher.cancel import cancel_channel, is_cancelled, request_cancel


def _next_message(pubsub: redis.client.PubSub, timeout: float) -> dict[str, object] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message is not None and message["type"] == "message":
            return message  # type: ignore[no-any-return]
    return None


def test_signal_stays_within_its_database(broker_url: str) -> None:
    base = broker_url.rsplit("/", 1)[0]
    mine, other = redis.Redis.from_url(f"{base}/3"), redis.Redis.from_url(f"{base}/4")
    try:
        for client in (mine, other):
            client.delete("phonefleet:cancel:77")
        listener = mine.pubsub()  # type: ignore[no-untyped-call]
        listener.subscribe(cancel_channel(mine))
        _next_message(listener, 0.2)  # the subscription confirmation
        request_cancel(other, [(77, 1)])
        assert _next_message(listener, 0.5) is None, "another installation's stop must not arrive here"
        assert not is_cancelled(mine, 77, 1)
        request_cancel(mine, [(77, 2)])
        message = _next_message(listener, 2)
        assert message is not None and message["data"] == b"77:2"
        assert is_cancelled(mine, 77, 2) and is_cancelled(mine, 77, 1) and not is_cancelled(mine, 77, 3)
        request_cancel(mine, [(77, 1)])
        assert is_cancelled(mine, 77, 2), "a late, lower signal never lowers the mark"
        listener.close()
    finally:
        for client in (mine, other):
            client.delete("phonefleet:cancel:77")
            client.close()
