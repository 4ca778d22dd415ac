"""Conversation endpoints: run a message on a thread, read a thread's state.

Concurrency contract: a run on a thread that already has a run in progress (on any replica) gets
`409 Conflict` immediately with `Retry-After: 1`; it is never queued nor interleaved. Runs are
rate limited per client address (`429` with `Retry-After`); a 409 or 503 does not use up the
client's allowance. Both guards live in Redis, so when Redis is unreachable runs fail closed with
`503` rather than run unguarded. Every 503 carries `Retry-After`.

`POST /threads/{id}/runs/stream` is the same run answered as server-sent events.

A run that times out (504) is rolled back: the thread returns to its last completed state, so
the user's message is not left there without a reply and a retry does not duplicate it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any

import psycopg
import psycopg_pool
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import StreamingResponse
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import MessagesState
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from src.api.runtime import Runtime, get_runtime
from src.config.logging import get_logger
from src.services.guards import ThreadBusyError

log = get_logger(__name__)
router = APIRouter(prefix="/threads", tags=["threads"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ThreadId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Client-chosen or from POST /threads"),
]
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
#: Upper bound on the clean-up after a timed-out run (the thread lock is still held meanwhile).
ROLLBACK_TIMEOUT_SECONDS = 10.0
#: Checkpoints a run writes (input, loop, result) plus margin, searched for the pre-run state.
_ROLLBACK_HISTORY = 10


class RunRequest(BaseModel):
    """A user message to add to the thread."""

    message: str = Field(min_length=1, max_length=8000)


class RunResponse(BaseModel):
    """The assistant's reply and the thread's size after the run."""

    thread_id: str
    reply: str
    message_count: int


class ChatMessage(BaseModel):
    """One message of a thread's history."""

    role: str
    content: str


class ThreadState(BaseModel):
    """A thread's persisted history."""

    thread_id: str
    messages: list[ChatMessage]
    checkpoint_id: str | None


class NewThread(BaseModel):
    """Identifier of a new, empty thread."""

    thread_id: str


def _config(thread_id: str) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread_id},
        "run_name": "chat-assistant",
        "metadata": {"thread_id": thread_id},
    }


def _unavailable(dependency: str) -> HTTPException:
    return HTTPException(503, detail=f"{dependency} unavailable", headers={"Retry-After": "5"})


async def _roll_back(runtime: Runtime, thread_id: str, message_id: str) -> None:
    """Return the thread to its newest completed checkpoint without the timed-out message.

    A completed checkpoint has no pending step; copying it (`as_node="__copy__"`) makes it the
    latest again while the history keeps what happened. A thread created by this run is deleted.
    """
    config = _config(thread_id)
    latest = True
    async for snapshot in runtime.graph.aget_state_history(config, limit=_ROLLBACK_HISTORY):
        messages: list[BaseMessage] = snapshot.values.get("messages", []) if snapshot.values else []
        if any(m.id == message_id for m in messages) or snapshot.next:
            latest = False
            continue
        if not latest:
            await runtime.graph.aupdate_state(snapshot.config, None, as_node="__copy__")
        return
    if not latest:
        checkpointer = runtime.graph.checkpointer
        assert isinstance(checkpointer, BaseCheckpointSaver)
        await checkpointer.adelete_thread(thread_id)


async def _roll_back_after_timeout(runtime: Runtime, thread_id: str, message_id: str) -> None:
    """Best effort: a failed roll-back is logged; the client gets its 504 either way."""
    try:
        async with asyncio.timeout(ROLLBACK_TIMEOUT_SECONDS):
            await _roll_back(runtime, thread_id, message_id)
    except (TimeoutError, psycopg.Error) as exc:
        log.warning("run_rollback_failed", thread_id=thread_id, error=type(exc).__name__)
    else:
        log.info("run_rolled_back", thread_id=thread_id)


def _as_chat_message(message: BaseMessage) -> ChatMessage:
    return ChatMessage(role=_ROLES.get(message.type, message.type), content=message.text)


@router.post("", status_code=201)
async def create_thread() -> NewThread:
    """Allocate a thread id; threads exist in storage from their first run."""
    return NewThread(thread_id=uuid.uuid4().hex)


async def _admit(runtime: Runtime, client_id: str) -> None:
    """Refuse a run before it starts: Postgres not ready (503), Redis down (503), rate limit."""
    if not runtime.dependencies.schema_ready.is_set():
        runtime.metrics.graph_runs.labels("unavailable").inc()
        raise _unavailable("postgres")
    try:
        decision = await runtime.rate_limiter.hit(client_id)
    except RedisError:
        runtime.metrics.graph_runs.labels("unavailable").inc()
        raise _unavailable("redis") from None
    if not decision.allowed:
        runtime.metrics.graph_runs.labels("rate_limited").inc()
        raise HTTPException(
            429,
            detail="rate limit exceeded",
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )


async def _acquire(runtime: Runtime, thread_id: str, client_id: str) -> AsyncExitStack:
    """The thread's lock, held until the returned stack is closed; 409 when busy."""
    lock = AsyncExitStack()
    try:
        await lock.enter_async_context(runtime.thread_lock.hold(thread_id))
    except ThreadBusyError:
        runtime.metrics.graph_runs.labels("conflict").inc()
        await runtime.rate_limiter.refund(client_id)
        raise HTTPException(
            409, detail="a run is already in progress on this thread", headers={"Retry-After": "1"}
        ) from None
    except RedisError:
        runtime.metrics.graph_runs.labels("unavailable").inc()
        await runtime.rate_limiter.refund(client_id)
        raise _unavailable("redis") from None
    return lock


async def _run(
    runtime: Runtime,
    thread_id: str,
    message: HumanMessage,
    client_id: str,
    on_token: Callable[[str], None] | None = None,
) -> list[BaseMessage]:
    """Run the graph on a thread whose lock is held; failures become the documented errors.

    With `on_token`, the model's output is streamed to it as it is written.
    """
    config = _config(thread_id)
    started = time.perf_counter()
    try:
        try:
            async with asyncio.timeout(runtime.settings.run_timeout_seconds):
                if on_token is None:
                    result = await runtime.graph.ainvoke(MessagesState(messages=[message]), config)
                else:
                    async for chunk, _ in runtime.graph.astream(
                        MessagesState(messages=[message]), config, stream_mode="messages"
                    ):
                        if isinstance(chunk, AIMessageChunk) and chunk.text:
                            on_token(chunk.text)
                    result = (await runtime.graph.aget_state(config)).values
        except TimeoutError:
            await _roll_back_after_timeout(runtime, thread_id, str(message.id))
            raise
    except RedisError:
        runtime.metrics.graph_runs.labels("unavailable").inc()
        await runtime.rate_limiter.refund(client_id)
        raise _unavailable("redis") from None
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
        runtime.metrics.graph_runs.labels("unavailable").inc()
        await runtime.rate_limiter.refund(client_id)
        raise _unavailable("postgres") from None
    except TimeoutError:
        runtime.metrics.graph_runs.labels("timeout").inc()
        raise HTTPException(504, detail="run timed out; the thread was rolled back") from None
    except Exception as exc:
        # Model provider errors and the like: the client learns the kind, the log the detail.
        runtime.metrics.graph_runs.labels("error").inc()
        log.exception("run_failed", thread_id=thread_id)
        raise HTTPException(502, detail=f"run failed: {type(exc).__name__}") from None

    runtime.metrics.graph_runs.labels("ok").inc()
    runtime.metrics.graph_duration.observe(time.perf_counter() - started)
    messages: list[BaseMessage] = result["messages"]
    log.info("run_completed", thread_id=thread_id, message_count=len(messages))
    return messages


_RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "a run is already in progress on this thread"},
    429: {"description": "rate limit exceeded"},
    503: {"description": "Postgres or Redis unavailable"},
    504: {"description": "the run exceeded RUN_TIMEOUT_SECONDS"},
}


@router.post("/{thread_id}/runs", responses=_RUN_ERRORS)
async def run_thread(
    thread_id: ThreadId, body: RunRequest, request: Request, runtime: RuntimeDep
) -> RunResponse:
    """Add the message to the thread, run the assistant, persist and return its reply."""
    client_id = request.client.host if request.client else "unknown"
    await _admit(runtime, client_id)
    message = HumanMessage(body.message, id=uuid.uuid4().hex)
    async with await _acquire(runtime, thread_id, client_id):
        messages = await _run(runtime, thread_id, message, client_id)
    return RunResponse(thread_id=thread_id, reply=messages[-1].text, message_count=len(messages))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


#: Streamed runs in progress (a task needs a reference until it ends).
_STREAMED_RUNS: set[asyncio.Task[None]] = set()


@router.post(
    "/{thread_id}/runs/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_RUN_ERRORS},
)
async def stream_run(
    thread_id: ThreadId, body: RunRequest, request: Request, runtime: RuntimeDep
) -> StreamingResponse:
    """Like `runs`, answered as server-sent events while the model writes.

    `token` events (`{"content"}`) as the reply is written, then one `done` event (the fields
    of `runs`) or one `error` event (`{"status", "detail"}`, the status `runs` would answer, and
    `retry_after` where `runs` would send `Retry-After`).
    Refusals (409, 429, 503) are plain HTTP answers before the stream starts. The run is a task
    of its own: a client that goes away does not cancel it, its reply is persisted as with `runs`.
    """
    client_id = request.client.host if request.client else "unknown"
    await _admit(runtime, client_id)
    lock = await _acquire(runtime, thread_id, client_id)
    message = HumanMessage(body.message, id=uuid.uuid4().hex)
    events: asyncio.Queue[bytes | None] = asyncio.Queue()

    def token(text: str) -> None:
        events.put_nowait(_event("token", {"content": text}))

    async def run_and_report() -> None:
        async with lock:
            try:
                messages = await _run(runtime, thread_id, message, client_id, on_token=token)
            except HTTPException as exc:
                error: dict[str, Any] = {"status": exc.status_code, "detail": exc.detail}
                if exc.headers and "Retry-After" in exc.headers:
                    error["retry_after"] = int(exc.headers["Retry-After"])
                events.put_nowait(_event("error", error))
            else:
                done = RunResponse(
                    thread_id=thread_id, reply=messages[-1].text, message_count=len(messages)
                )
                events.put_nowait(_event("done", done.model_dump()))
            finally:
                events.put_nowait(None)

    task = asyncio.create_task(run_and_report(), name=f"stream-run-{thread_id}")
    _STREAMED_RUNS.add(task)
    task.add_done_callback(_STREAMED_RUNS.discard)

    async def stream() -> AsyncIterator[bytes]:
        while (event := await events.get()) is not None:
            yield event

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{thread_id}/state", responses={404: {"description": "no such thread"}})
async def thread_state(thread_id: ThreadId, runtime: RuntimeDep) -> ThreadState:
    """The thread's persisted messages (from the latest checkpoint)."""
    if not runtime.dependencies.schema_ready.is_set():
        raise _unavailable("postgres")
    try:
        snapshot = await runtime.graph.aget_state(_config(thread_id))
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout):
        raise _unavailable("postgres") from None
    messages: list[BaseMessage] = snapshot.values.get("messages", []) if snapshot.values else []
    if not messages:
        raise HTTPException(404, detail="thread not found")
    checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
    return ThreadState(
        thread_id=thread_id,
        messages=[_as_chat_message(m) for m in messages],
        checkpoint_id=checkpoint_id,
    )
