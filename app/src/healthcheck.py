"""Container HEALTHCHECK probe: exit 0 when `/live` answers 200 on this container's port.

Stdlib only, so the image needs no curl/wget. It probes liveness, not readiness: restarting a
container because Postgres is briefly away would turn a dependency blip into an outage.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    """Return the process exit status Docker interprets (0 healthy, 1 unhealthy)."""
    port = os.environ.get("PORT", "8000")
    url = f"http://127.0.0.1:{port}/live"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # fixed http URL
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
