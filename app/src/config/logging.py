"""Structured logging: JSON lines in production, readable console output in development.

Why route everything (uvicorn, psycopg, httpx) through structlog: one format per process means the
log pipeline (CloudWatch, Cloud Logging) can parse every line, and one redaction pass covers lines
we did not write ourselves, e.g. a driver exception that quotes a connection string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor

REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|credential", re.IGNORECASE
)
# scheme://user:password@host -> scheme://user:[REDACTED]@host, for URLs we never configured.
_URL_CREDENTIALS = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")
_MIN_SECRET_LENGTH = 4  # shorter "secrets" would blank out ordinary words


class SecretRedactor:
    """structlog processor that removes secret values from every field of every event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret that contains another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return _URL_CREDENTIALS.sub(rf"\g<prefix>{REDACTED}@", value)
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else self._scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        return self._scrub(str(value))  # exceptions, objects: redact their text form

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        """Redact in place; keys that look like credentials lose their value entirely."""
        for key in list(event_dict):
            if key != "event" and _SENSITIVE_KEY.search(key):
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self._scrub(event_dict[key])
        return event_dict


def _drop_color_message(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """uvicorn duplicates its message with ANSI colours in `color_message`; keep one copy."""
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    log_format: Literal["json", "console"],
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: Any = None,
) -> None:
    """Configure structlog and the stdlib root logger (idempotent: safe to call again)."""
    redactor = SecretRedactor(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
        # Render tracebacks to text first so the redactor sees them too.
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared[:-2],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared[:-2],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # The access log is ours (with request id and route); uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger whose lines carry the per-request context (request_id)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
