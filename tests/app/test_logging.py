"""Logging: JSON lines with the bound request id, and no secret in any field or traceback."""

from __future__ import annotations

import io
import json
import logging

import structlog

from src.config.logging import REDACTED, configure_logging, get_logger


def capture(log_format: str = "json", secrets: tuple[str, ...] = ()) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(log_format, "DEBUG", secrets, stream=stream)  # type: ignore[arg-type]
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_request_id():
    stream = capture()
    with structlog.contextvars.bound_contextvars(request_id="rid-1"):
        get_logger("t").info("hello", answer=42)
    (line,) = lines(stream)
    assert line["event"] == "hello"
    assert line["request_id"] == "rid-1"
    assert line["answer"] == 42
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_known_secrets_are_redacted_everywhere():
    stream = capture(secrets=("pg-very-secret",))
    log = get_logger("t")
    log.info("connecting with pg-very-secret", detail={"nested": ["x pg-very-secret y"]})
    try:
        raise RuntimeError("auth failed for pg-very-secret")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("psycopg").warning("stdlib line with pg-very-secret")
    output = stream.getvalue()
    assert "pg-very-secret" not in output
    assert output.count(REDACTED) >= 4
    records = lines(stream)
    assert "RuntimeError" in records[1]["exception"]
    assert records[2]["logger"] == "psycopg"


def test_credential_keys_and_url_passwords_are_redacted_even_if_unknown():
    stream = capture()
    get_logger("t").info(
        "dsn postgresql://app:unknown-pw@db:5432/x", api_key="sk-live", authorization="Bearer z"
    )
    (line,) = lines(stream)
    assert "unknown-pw" not in line["event"]
    assert "postgresql://app:" in line["event"]
    assert line["api_key"] == REDACTED
    assert line["authorization"] == REDACTED


def test_console_format_is_plain_text_for_developers():
    stream = capture("console", secrets=("dev-secret",))
    get_logger("t").info("started", token_hint="dev-secret", port=8000)
    output = stream.getvalue()
    assert "started" in output
    assert "port=8000" in output
    assert "dev-secret" not in output
    assert not output.lstrip().startswith("{")
