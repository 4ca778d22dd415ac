"""What the program-side tests that start real servers share: finding a binary, a free port."""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    """A server binary is missing: a failure in CI (.ci/app.sh installs them), a skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def need_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found on PATH (.ci/app.sh installs it)")
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
