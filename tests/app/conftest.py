"""Fixtures for the app tests; the machinery lives in harness.py (importable by test modules)."""

from harness import own_redis, postgres, redis_db, redis_server, start_service

__all__ = ["own_redis", "postgres", "redis_db", "redis_server", "start_service"]
