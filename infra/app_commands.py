"""The commands the service image runs besides serving it (app/src/__main__.py), one place for
every target: the schema migration before new instances serve."""

from __future__ import annotations

MIGRATE = ("python", "-m", "src", "migrate")
