"""Validation of a stack's raw Pulumi config: presets merged, every problem at once."""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from infra.config.aws import aws_problems
from infra.config.common import (
    _ENV_NAME,
    PROJECT,
    SECTIONS,
    TIERS,
)
from infra.config.errors import _closest, _key, _model_at, _problems_from, _show, _tier_problem
from infra.config.gcp import aws_only_key_problems, gcp_problems
from infra.config.github import github_problems
from infra.config.presets import TARGET_DEFAULTS, TARGET_TIER_PRESETS, TIER_PRESETS
from infra.config.problems import ConfigError, ConfigProblem
from infra.config.pull_requests import pull_request_problems
from infra.config.rules import (
    _cross_field_problems,
    _production_problems,
    _referenced_names,
    _secret_problems,
    _secure_setting_problems,
)
from infra.config.stack import StackConfig
from infra.naming import stack_name_problems


def _stand_in(
    merged: dict[str, Any], error: ValidationError, root: Path | None
) -> tuple[StackConfig | None, set[str]]:
    """The config with each failing setting put back to its preset (or default), so the
    target and production rules still run and "all problems at once" holds.

    Returns the stand-in and the keys it replaced (rules about those would only repeat the
    field's own problem), or None when a section itself or a setting without a preset failed.
    """
    target = next((v for k, v in TARGET_DEFAULTS.items() if k == merged.get("target")), {})
    preset = next((v for k, v in TIER_PRESETS.items() if k == merged.get("tier")), {})
    base = _deep_merge(_deep_merge(target, preset), _target_tier_preset(merged))
    repaired = copy.deepcopy(merged)
    keys: set[str] = set()
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        depth = 0
        while depth < len(loc) and _model_at(loc[: depth + 1]) is not None:
            depth += 1
        field = loc[: depth + 1]
        if len(field) < 2 or any(not isinstance(part, str) for part in field):
            return None, set()
        keys.add(_key(field))
        parent: Any = repaired
        default: Any = base
        for part in map(str, field[:-1]):
            parent = parent.get(part) if isinstance(parent, dict) else None
            default = default.get(part, {}) if isinstance(default, dict) else {}
        if not isinstance(parent, dict):
            return None, set()
        name = str(field[-1])
        if isinstance(default, dict) and name in default:
            parent[name] = copy.deepcopy(default[name])
        elif (path := tuple(map(str, field))) in _STAND_IN_VALUES:
            parent[name] = _STAND_IN_VALUES[path]
        else:
            parent.pop(name, None)
    try:
        return StackConfig.model_validate(repaired, context={"root": root}), keys
    except ValidationError:
        return None, set()


# Required settings without a preset, stood in only so other rules run; rules on the keys
# that depend on a stood-in setting are not reported (they would judge a value nobody wrote).
_STAND_IN_VALUES: dict[tuple[str, ...], object] = {
    ("aws", "region"): "us-east-1",
    ("gcp", "region"): "us-central1",
    ("gcp", "project"): "stand-in-project",
}
_DEPENDENT_KEYS: dict[str, tuple[str, ...]] = {
    f"{PROJECT}:app.cpu": (f"{PROJECT}:app.memory",),
    f"{PROJECT}:aws.region": (f"{PROJECT}:aws.certificateArn",),
    f"{PROJECT}:app.domain": (
        f"{PROJECT}:aws.hostedZone",
        f"{PROJECT}:aws.hostedZoneId",
        f"{PROJECT}:gcp.dnsZone",
        f"{PROJECT}:gcp.dnsZoneName",
        f"{PROJECT}:gcp.cloudArmor",
    ),
}


def _target_tier_preset(merged: Mapping[str, Any]) -> dict[str, Any]:
    by_tier = next((v for k, v in TARGET_TIER_PRESETS.items() if k == merged.get("target")), {})
    return next((v for k, v in by_tier.items() if k == merged.get("tier")), {})


def _follows_from(problem: ConfigProblem, repaired: set[str]) -> bool:
    keys = repaired.union(*(_DEPENDENT_KEYS.get(k, ()) for k in repaired))
    return any(problem.key == k or problem.key.startswith((f"{k}.", f"{k}[")) for k in keys)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_stack_config(
    stack: str,
    raw: Mapping[str, str],
    secret_keys: set[str] | frozenset[str] = frozenset(),
    *,
    root: Path | None = None,
) -> StackConfig:
    """Validate a stack's raw Pulumi config completely, or raise ConfigError with every problem.

    `raw` maps full keys (`agent-deploy:app`) to the strings Pulumi passes a program:
    structured values arrive as JSON. Keys of other namespaces (`aws:region`) are ignored.
    `root` is the project directory; build paths are checked against it when given.
    """
    problems: list[ConfigProblem] = []
    sections: dict[str, Any] = {}
    secret_set = set(secret_keys)
    secret_sections: set[str] = set()
    # Each key of ours decoded once; other namespaces (`aws:region`) are not ours to check.
    values = {
        key.removeprefix(f"{PROJECT}:"): _maybe_json(text)
        for key, text in raw.items()
        if key.startswith(f"{PROJECT}:")
    }
    referenced = _referenced_names(values)
    for key in raw:
        namespace, _, rest = key.partition(":")
        if rest and namespace != PROJECT and difflib.get_close_matches(namespace, [PROJECT]):
            problems.append(
                ConfigProblem(
                    key, f"unknown namespace '{namespace}'; did you mean '{PROJECT}:{rest}'?"
                )
            )
    for name, value in values.items():
        key = f"{PROJECT}:{name}"
        if name in referenced:
            continue
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            if _ENV_NAME.match(name) and key in secret_set:
                hint += "a secret must be listed in app.secrets or github.secrets to be used; "
            problems.append(
                ConfigProblem(key, f"unknown key; {hint}allowed: {', '.join(SECTIONS)}")
            )
            continue
        if key in secret_set:
            secret_sections.add(name)
        if name in {"target", "tier"}:
            sections[name] = raw[key]
            continue
        if not isinstance(value, dict):
            problems.append(
                ConfigProblem(
                    key,
                    "must be an object (a YAML mapping of settings)",
                    _show(value, key in secret_set),
                )
            )
            continue
        sections[name] = value

    target = sections.get("target", "local")
    tier = sections.get("tier", "ephemeral")
    if tier not in TIER_PRESETS:
        # A typo gets one problem, and the closest tier's preset instead of "required" noise.
        problems.append(_tier_problem(tier))
        tier = sections["tier"] = _closest(tier, TIERS) or "ephemeral"
    merged: dict[str, Any] = {"stack": stack}
    if target in TARGET_DEFAULTS:
        merged = _deep_merge(merged, TARGET_DEFAULTS[target])
    if tier in TIER_PRESETS:
        preset = {
            k: v
            for k, v in TIER_PRESETS[tier].items()
            if k in {"app", "database", "cache"} or k in sections
        }
        merged = _deep_merge(merged, preset)
    merged = _deep_merge(merged, _target_tier_preset({"target": target, "tier": tier}))
    merged = _deep_merge(merged, sections)

    problems += _cross_field_problems(merged)
    config: StackConfig | None = None
    repaired: set[str] = set()
    try:
        config = StackConfig.model_validate(merged, context={"root": root})
    except ValidationError as err:
        problems += _problems_from(err, secret_sections)
        config, repaired = _stand_in(merged, err, root)
    found = len(problems)
    if config is not None:
        problems += _production_problems(config)
        problems += github_problems(config)
        problems += aws_problems(config)
        problems += gcp_problems(config)
        problems += pull_request_problems(config)
    problems[found:] = [p for p in problems[found:] if not _follows_from(p, repaired)]
    problems += [
        ConfigProblem(
            key if key == "stack name" else f"{PROJECT}:{key}", message, json.dumps(value)
        )
        for key, message, value in stack_name_problems(
            stack,
            config.app.name if config is not None else "",
            iam=config is not None and config.target == "aws",
        )
    ]
    problems += aws_only_key_problems(sections)
    problems += _secret_problems(raw, secret_set, referenced)
    problems += _secure_setting_problems(values, secret_sections)
    if problems:
        raise ConfigError(stack, problems)
    assert config is not None
    return config


def _maybe_json(text: str) -> object:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
