"""Error formatting: every problem named as the user writes the key."""

from __future__ import annotations

import difflib
import json

from pydantic import (
    BaseModel,
    ValidationError,
)

from infra.config.common import (
    PROJECT,
    TIERS,
)
from infra.config.problems import ConfigProblem
from infra.config.stack import StackConfig


def _key(loc: tuple[int | str, ...]) -> str:
    path = f"{PROJECT}:{loc[0]}" if loc else PROJECT
    for part in loc[1:]:
        if part == "[key]":  # pydantic's marker for "the key itself is invalid"
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _show(value: object, secret: bool) -> str | None:
    if secret:
        return "[secret]"
    if isinstance(value, dict | list):
        return None
    shown = json.dumps(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose field set decides what keys are allowed at `loc`."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if model is None or isinstance(part, int):
            return None
        field = next((f for n, f in model.model_fields.items() if part in {n, f.alias}), None)
        if field is None:
            return None
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    parent = _model_at(loc[:-1])
    if parent is None:
        return "unknown key"
    allowed = [f.alias or n for n, f in parent.model_fields.items() if n != "stack"]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}allowed: {', '.join(allowed)}"


def _problems_from(error: ValidationError, secret_sections: set[str]) -> list[ConfigProblem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        secret = bool(loc) and str(loc[0]) in secret_sections
        if item["type"] == "extra_forbidden":
            problems.append(ConfigProblem(_key(loc), _unknown_key_message(loc)))
            continue
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] == "missing":
            message = "required, and no tier preset provides it"
        value = _show(item.get("input"), secret) if item["type"] != "missing" else None
        problems.append(ConfigProblem(_key(loc), message, value))
    return problems


def _closest(value: str, choices: tuple[str, ...]) -> str | None:
    """The choice a typo most likely meant: a prefix ('prod'), else a close spelling."""
    lowered = value.lower()
    prefixed = [c for c in choices if lowered and c.startswith(lowered)]
    close = difflib.get_close_matches(lowered, choices, n=1, cutoff=0.6)
    return next(iter(prefixed or close), None)


def _tier_problem(tier: str) -> ConfigProblem:
    listed = [f"'{t}'" for t in TIERS]
    close = _closest(tier, TIERS)
    hint = f"; did you mean '{close}'?" if close else ""
    return ConfigProblem(
        f"{PROJECT}:tier",
        f"Input should be {', '.join(listed[:-1])} or {listed[-1]}{hint}",
        json.dumps(tier),
    )
