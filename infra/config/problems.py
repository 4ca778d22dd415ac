"""A configuration problem, and the error that carries all of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        shown = f" = {self.value}" if self.value is not None else ""
        return f"{self.key}{shown}: {self.message}"


class ConfigError(Exception):
    """All the problems found in a stack's configuration, so one run fixes them all."""

    def __init__(self, stack: str, problems: list[ConfigProblem]) -> None:
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"stack '{stack}' has {len(problems)} configuration "
            f"problem{'s' if len(problems) != 1 else ''}:\n{lines}"
        )
