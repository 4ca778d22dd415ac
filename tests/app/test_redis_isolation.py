"""A pull-request slice's Redis namespace, against a real Redis: the ACL user the slice stack
creates (`redis_access_string(slice_key_prefix("pr-42"))`, the program's own function) reaches
only its keys and the commands the app needs, and the app with `REDIS_KEY_PREFIX` works as it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from harness import RedisServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the program (infra/), for its rules
from infra.config.pull_requests import redis_access_string, slice_key_prefix
from src.services.guards import rate_limit_key, thread_lock_key

pytestmark = pytest.mark.integration

SLICE_PASSWORD = "slice-Redis-Pw-3b9e0c"
PREFIX = slice_key_prefix("pr-42")
#: Keys of the staging app and of another slice, in the same cache.
OTHERS = {"agent:ratelimit:10.1.2.3": "7", "pr-43:agent:thread-lock:t": "token"}


@pytest.fixture
def slice_user(own_redis: RedisServer) -> redis.Redis:
    admin = own_redis.client()
    admin.execute_command("ACL", "SETUSER", "pr-42", *redis_access_string(PREFIX).split(),
                          f">{SLICE_PASSWORD}")  # fmt: skip
    for key, value in OTHERS.items():
        admin.set(key, value)
    return redis.Redis(
        host="127.0.0.1", port=own_redis.port, username="pr-42", password=SLICE_PASSWORD
    )


def test_the_slice_user_reaches_only_its_prefix(slice_user: redis.Redis) -> None:
    assert slice_user.set(f"{PREFIX}mine", "1")
    assert slice_user.get(f"{PREFIX}mine") == b"1"
    for key in OTHERS:
        with pytest.raises(NoPermissionError):
            slice_user.get(key)
        with pytest.raises(NoPermissionError):
            slice_user.set(key, "overwritten")
        with pytest.raises(NoPermissionError):
            slice_user.delete(key)
    # Key names are not filtered by the key pattern: the listing commands must be refused.
    for command in (("SCAN", 0), ("KEYS", "*"), ("RANDOMKEY",), ("DBSIZE",)):
        with pytest.raises(NoPermissionError):
            slice_user.execute_command(*command)
    # Lua runs under the caller's rules: a loaded script cannot read around them.
    sha = slice_user.script_load("return redis.call('get', 'agent:ratelimit:10.1.2.3')")
    with pytest.raises(ResponseError, match="can't access at least one of the keys"):
        slice_user.evalsha(sha, 0)


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("INFO",),
        ("SLOWLOG", "GET"),
        ("MONITOR",),
        ("SHUTDOWN", "NOSAVE"),
        ("ACL", "LIST"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("SCRIPT", "FLUSH"),
        ("EVAL", "return 1", "0"),
        ("FUNCTION", "FLUSH"),
        ("SELECT", "1"),
        ("SWAPDB", "0", "1"),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("MIGRATE", "127.0.0.1", "1", "pr-42:x", "0", "1000"),
        ("PUBLISH", "channel", "x"),
        ("OBJECT", "ENCODING", "pr-42:x"),
    ],
)
def test_the_slice_user_runs_no_administrative_command(
    slice_user: redis.Redis, own_redis: RedisServer, command: tuple[str, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        slice_user.execute_command(*command)
    assert own_redis.client().get("agent:ratelimit:10.1.2.3") == b"7"  # still there


def test_the_app_works_as_the_slice_user_with_its_prefix(
    slice_user: redis.Redis, own_redis: RedisServer, start_service
) -> None:
    url = f"redis://pr-42:{SLICE_PASSWORD}@127.0.0.1:{own_redis.port}/0"
    service = start_service(REDIS_URL=url, REDIS_KEY_PREFIX=PREFIX, RATE_LIMIT_PER_MINUTE="5")
    admin = own_redis.client()
    with service.client() as client:
        first = client.post("/threads/t-1/runs", json={"message": "hi"})
        assert first.status_code == 200, first.text
        # A run already holds t-2's lock: 409, and the counted run is given back (Lua DECR).
        admin.set(thread_lock_key("t-2", PREFIX), "someone-else")
        assert client.post("/threads/t-2/runs", json={"message": "hi"}).status_code == 409
        assert client.get("/ready").status_code == 200
    assert admin.get(rate_limit_key("127.0.0.1", PREFIX)) == b"1"
    assert admin.exists(thread_lock_key("t-1", PREFIX)) == 0  # released by its owner (Lua DEL)
    written = {key.decode() for key in admin.scan_iter()} - set(OTHERS)
    assert written
    assert all(key.startswith(PREFIX) for key in written), written
    logs = service.logs()
    assert "NOPERM" not in logs
    assert "no permissions" not in logs.lower()
    assert SLICE_PASSWORD not in logs
