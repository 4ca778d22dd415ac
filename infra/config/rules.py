"""Rules across fields and sections: cross-field, production, secrets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from infra.config.aws import _aws_production_problems
from infra.config.common import (
    _ENV_NAME,
    PROJECT,
    SECRET_PLACEHOLDER,
)
from infra.config.presets import PRODUCTION_MIN_BACKUP_DAYS, TARGET_DEFAULTS
from infra.config.problems import ConfigProblem
from infra.config.stack import StackConfig


def _production_problems(config: StackConfig) -> list[ConfigProblem]:
    """Production may resize anything but never switch a protection off."""
    if config.tier != "production":
        return []
    problems = []
    refusals: list[tuple[str, bool, str]] = [
        ("database.encrypted", not config.database.encrypted, "storage encryption"),
        (
            "database.deletionProtection",
            not config.database.deletion_protection,
            "deletion protection",
        ),
        ("database.protect", not config.database.protect, "Pulumi `protect`"),
        ("database.finalSnapshot", not config.database.final_snapshot, "the final snapshot"),
        ("cache.encrypted", not config.cache.encrypted, "in-transit and at-rest encryption"),
    ]
    for key, violated, what in refusals:
        if violated:
            problems.append(
                ConfigProblem(f"{PROJECT}:{key}", f"production cannot turn off {what}", "false")
            )
    if config.database.backup_days < PRODUCTION_MIN_BACKUP_DAYS:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:database.backupDays",
                f"production keeps backups for at least {PRODUCTION_MIN_BACKUP_DAYS} days",
                str(config.database.backup_days),
            )
        )
    if config.aws is not None and not config.aws.load_balancer_deletion_protection:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.loadBalancerDeletionProtection",
                "production cannot turn off deletion protection",
                "false",
            )
        )
    problems += _aws_production_problems(config)
    return problems


# Rules between two keys. They read the merged values leniently (only when both are of the
# right type) so they are reported together with field errors, not on the next run.
_CROSS_FIELD_RULES: list[tuple[str, str, str, Callable[[Any, Any], bool], str]] = [
    (
        "app",
        "minInstances",
        "maxInstances",
        lambda lo, hi: lo > hi,
        "minInstances ({a}) is greater than maxInstances ({b})",
    ),
    (
        "database",
        "maxStorageGb",
        "storageGb",
        lambda hi, lo: hi < lo,
        "maxStorageGb ({a}) is below storageGb ({b})",
    ),
    (
        "database",
        "maxStorageGb",
        "storageGb",
        # RDS storage autoscaling needs a maximum at least 10 % above storage; equal turns it off.
        lambda hi, lo: lo < hi and 10 * hi < 11 * lo,
        "maxStorageGb ({a}) must be at least 10% above storageGb ({b}), i.e. {b_plus_10} or "
        "more, for RDS storage autoscaling; set it equal to storageGb ({b}) to turn "
        "autoscaling off",
    ),
    (
        "cache",
        "automaticFailover",
        "nodes",
        lambda failover, n: failover is True and n < 2,
        "automaticFailover needs nodes >= 2 (nodes is {b})",
    ),
    (
        "local",
        "chromaHostPort",
        "hostPort",
        lambda a, b: a == b,
        "chromaHostPort and hostPort are both {a}",
    ),
]


# What a cloud section must name at least: nothing else has a preset to fall back on.
_REQUIRED_KEYS = {"aws": "`region`", "gcp": "`project` and `region`"}


def _cross_field_problems(merged: Mapping[str, Any]) -> list[ConfigProblem]:
    problems = []
    for section, first, second, violated, message in _CROSS_FIELD_RULES:
        body = merged.get(section)
        if not isinstance(body, Mapping):
            continue
        a, b = body.get(first), body.get(second)
        if isinstance(a, bool | int) and isinstance(b, bool | int) and violated(a, b):
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:{section}.{first}",
                    message.format(a=a, b=b, b_plus_10=-(-11 * int(b) // 10)),
                    json.dumps(a),
                )
            )
    target = merged.get("target")
    if (
        target in TARGET_DEFAULTS
        and target != "local"
        and not isinstance(merged.get(target), Mapping)
    ):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:{target}",
                f"required when target is '{target}' (at least {_REQUIRED_KEYS.get(target)})",
            )
        )
    app = merged.get("app")
    if (target or "local") == "local" and isinstance(app, Mapping) and app.get("domain"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                "a local stack serves http://127.0.0.1:<local.hostPort> only; app.domain is for "
                "cloud targets: remove it here",
                json.dumps(app.get("domain")),
            )
        )
    github = merged.get("github")
    if (
        isinstance(github, Mapping)
        and not github.get("ownsRepository", False)
        and (github.get("repositorySecrets") or github.get("repositoryVariables"))
    ):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:github.ownsRepository",
                "repositorySecrets/repositoryVariables need ownsRepository: true, and only the one "
                "stack that owns the repository scope may set it",
                "false",
            )
        )
    return problems


def _secret_problems(
    raw: Mapping[str, str], secret_keys: set[str], referenced: list[str]
) -> list[ConfigProblem]:
    problems = []
    for name in referenced:
        key = f"{PROJECT}:{name}"
        if key not in raw:
            problems.append(
                ConfigProblem(
                    key, f"referenced but not set: run `pulumi config set --secret {name} <value>`"
                )
            )
        elif key not in secret_keys:
            problems.append(
                ConfigProblem(
                    key,
                    f"is set in plain text: re-set it with `pulumi config set --secret {name}`"
                    " and remove the plain value from the stack file",
                    "[redacted]",
                )
            )
    return problems


# Maps deployed in plain text (task definition, GitHub variables, Pulumi state), each with the
# list that takes a secret's name instead.
_PLAIN_MAPS: dict[str, tuple[tuple[str, str], ...]] = {
    "app": (("env", "app.secrets"),),
    "github": (
        ("variables", "github.secrets"),
        ("repositoryVariables", "github.repositorySecrets"),
    ),
}


def _secure_setting_problems(
    values: Mapping[str, Any], secret_sections: set[str]
) -> list[ConfigProblem]:
    """A `secure:` value nested in app/github would be deployed in plain text: refuse it.

    Pulumi marks the whole section secret and passes it decrypted, so at deployment only the
    section is known; offline (`check`) the value is a placeholder and its key is named."""
    problems = []
    for section in sorted(secret_sections & set(_PLAIN_MAPS)):
        body = values.get(section)
        found = False
        for field, secrets in _PLAIN_MAPS[section]:
            entries = body.get(field) if isinstance(body, Mapping) else None
            for name, value in entries.items() if isinstance(entries, Mapping) else ():
                if value == SECRET_PLACEHOLDER:
                    found = True
                    problems.append(
                        ConfigProblem(
                            f"{PROJECT}:{section}.{field}.{name}",
                            f"is a `secure:` value, but {section}.{field} is deployed in plain "
                            f"text: run `pulumi config set --secret {name} <value>` and list "
                            f"{name} in {secrets}",
                            "[secret]",
                        )
                    )
        if not found:
            lists = " or ".join(secrets for _, secrets in _PLAIN_MAPS[section])
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:{section}",
                    f"holds a `secure:` value, but {section} settings are deployed in plain "
                    "text: give each secret its own key (`pulumi config set --secret NAME "
                    f"<value>`) and list NAME in {lists}",
                )
            )
    return problems


def _referenced_names(sections: Mapping[str, Any]) -> list[str]:
    """Secret names a config mentions, read leniently so they are checked even when the
    section around them has other errors."""
    names: list[str] = []
    for section, field in (
        ("app", "secrets"),
        ("github", "secrets"),
        ("github", "repositorySecrets"),
    ):
        body = sections.get(section)
        values = body.get(field) if isinstance(body, Mapping) else None
        if isinstance(values, list):
            names += [v for v in values if isinstance(v, str) and _ENV_NAME.match(v)]
    return sorted(set(names))
