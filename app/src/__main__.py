"""Container entry point: `python -m src` serves, `python -m src migrate` updates the schema.

Why not `uvicorn src.api.app:app` in the Dockerfile: exec-form CMD cannot expand `$PORT`, and we
want a configuration error to stop the process with the variable named (exit 2) before uvicorn
prints anything else.
"""

from __future__ import annotations

import math
import sys

import uvicorn

from src.api.app import create_app
from src.config.logging import configure_logging
from src.config.settings import SettingsError, load_settings

EXIT_CONFIG_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Validate settings, configure logging, serve until SIGTERM (or run a command)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["migrate"]:
        from src.migrate import main as migrate

        return migrate()
    if args:
        print(f"agent-app: unknown command {' '.join(args)!r}; known: migrate", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-app: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_format, settings.log_level, settings.secret_values())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our structlog configuration
        access_log=False,  # RequestContextMiddleware logs requests with their id
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_keep_alive=settings.keepalive_timeout_seconds,
        # After SIGTERM: stop accepting, let in-flight runs finish, then close the pools.
        timeout_graceful_shutdown=math.ceil(settings.graceful_shutdown_seconds),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
