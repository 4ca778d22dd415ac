"""Streamed runs (server-sent events) against the real service, Postgres and Redis."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.integration


def stream(client: httpx.Client, thread_id: str, message: str) -> list[tuple[str, dict]]:
    """POST a streamed run and return its events as (name, data) pairs."""
    events: list[tuple[str, dict]] = []
    with client.stream("POST", f"/threads/{thread_id}/runs/stream", json={"message": message}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_a_streamed_run_sends_the_reply_word_by_word_then_done(start_service):
    service = start_service()
    with service.client() as client:
        assert client.post("/threads/sse-thread/runs", json={"message": "first"}).status_code == 200
        events = stream(client, "sse-thread", "second")
        tokens = [data["content"] for name, data in events if name == "token"]
        assert len(tokens) > 3
        name, done = events[-1]
        assert name == "done"
        assert "".join(tokens) == done["reply"]
        assert "Before that you said: first" in done["reply"]
        assert done["message_count"] == 4
        state = client.get("/threads/sse-thread/state").json()["messages"]
        assert state[-1] == {"role": "assistant", "content": done["reply"]}
        assert (
            client.post("/threads/sse-thread/runs/stream", json={"message": ""}).status_code == 422
        )
    with service.client(token=None) as anonymous:
        refused = anonymous.post("/threads/sse-thread/runs/stream", json={"message": "hi"})
        assert refused.status_code == 401


def test_a_streamed_run_holds_the_thread_and_survives_its_client(start_service):
    service = start_service(OFFLINE_MODEL_LATENCY_MS="1500")
    with service.client() as client, ThreadPoolExecutor(1) as pool:
        with client.stream(
            "POST", "/threads/sse-busy/runs/stream", json={"message": "long"}
        ) as response:
            assert response.status_code == 200
            busy = pool.submit(
                httpx.post,
                f"{service.base_url}/threads/sse-busy/runs",
                json={"message": "meanwhile"},
                headers=client.headers,
            ).result()
            # The client leaves before the reply is complete.
        assert busy.status_code == 409
        deadline = time.monotonic() + 15
        roles: list[str] = []
        while time.monotonic() < deadline and roles != ["user", "assistant"]:
            state = client.get("/threads/sse-busy/state")
            roles = (
                [m["role"] for m in state.json()["messages"]] if state.status_code == 200 else []
            )
            time.sleep(0.2)
        assert roles == ["user", "assistant"]
        # The lock was released when the run ended.
        after = client.post("/threads/sse-busy/runs", json={"message": "next"})
        assert after.status_code == 200


def test_a_streamed_run_that_times_out_ends_with_an_error_event_and_is_rolled_back(
    start_service,
):
    service = start_service(RUN_TIMEOUT_SECONDS="1", OFFLINE_MODEL_LATENCY_MS="3000")
    with service.client() as client:
        events = stream(client, "sse-timeout", "too slow")
        assert events[-1] == (
            "error",
            {"status": 504, "detail": "run timed out; the thread was rolled back"},
        )
        assert client.get("/threads/sse-timeout/state").status_code == 404
