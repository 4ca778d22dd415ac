"""The container health check command, shared by the local and the AWS targets."""

from __future__ import annotations

# The URL arrives as an argument, never inside the code: a quote in a configured path cannot
# break (or inject into) the probe. The image's own Python, so a slim image needs no curl.
_PROBE = (
    "import sys, urllib.request; "
    "sys.exit(urllib.request.urlopen(sys.argv[1], timeout=4).status != 200)"
)


def http_probe(port: int, path: str) -> list[str]:
    """Docker/ECS `CMD` form: exit 0 when `path` on this container's port answers 200."""
    return ["CMD", "python", "-c", _PROBE, f"http://127.0.0.1:{port}{path}"]
