"""Fixtures for the app tests; the machinery lives in harness.py (importable by test modules).

Self-sufficient on purpose: the recommended command is
`uv run --project app --frozen pytest -c app/pyproject.toml tests/app`, but run with the root
project's pytest config instead (no `-c`), `src` must still import and the markers must still be
registered (the root config uses --strict-markers).
"""

import sys
from pathlib import Path

import pytest

for _path in (Path(__file__).resolve().parent, Path(__file__).resolve().parents[2] / "app"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from harness import own_redis, postgres, redis_db, redis_server, start_service  # noqa: E402

__all__ = ["own_redis", "postgres", "redis_db", "redis_server", "start_service"]


def pytest_configure(config: pytest.Config) -> None:
    """Register this suite's markers whichever configuration file pytest picked."""
    config.addinivalue_line("markers", "integration: needs PostgreSQL and Redis server binaries")
    config.addinivalue_line("markers", "container: builds and runs the Docker image")
