"""Key settings of AWS resources for `agent-deploy check` (cli/main.py SUMMARIES).

Each function gets a resource's redacted wire-name inputs and returns `key=value` strings:
the security and reliability settings a reviewer looks for first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Summary = Callable[[dict[str, Any]], list[str]]


def _pick(inputs: Mapping[str, Any], *keys: str) -> list[str]:
    shown = []
    for key in keys:
        value = inputs.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        shown.append(f"{key}={value}")
    return shown


def _flags(inputs: Mapping[str, Any], flags: Mapping[str, str]) -> list[str]:
    """One `posture=` line naming the protections that are on (and `no-<x>` for those off)."""
    shown = [
        label if inputs.get(key) is True else f"no-{label}"
        for key, label in flags.items()
        if isinstance(inputs.get(key), bool)
    ]
    return [f"posture={','.join(shown)}"] if shown else []


def _rds(inputs: dict[str, Any]) -> list[str]:
    posture = _flags(
        inputs,
        {
            "storageEncrypted": "encrypted",
            "multiAz": "multi-az",
            "deletionProtection": "deletion-protected",
        },
    )
    private = inputs.get("publiclyAccessible") is False
    return [*posture, f"network={'private' if private else 'PUBLIC'}"]


def _cache(inputs: dict[str, Any]) -> list[str]:
    return _flags(
        inputs,
        {
            "transitEncryptionEnabled": "tls",
            "atRestEncryptionEnabled": "encrypted",
            "automaticFailoverEnabled": "failover",
        },
    )


def _service(inputs: dict[str, Any]) -> list[str]:
    network = inputs.get("networkConfiguration") or {}
    breaker = inputs.get("deploymentCircuitBreaker") or {}
    strategies = inputs.get("capacityProviderStrategies") or []
    shown = _pick(network, "assignPublicIp")
    if breaker:
        shown.append(f"circuitBreaker={'rollback' if breaker.get('rollback') else 'on'}")
    shown += [f"capacity={s.get('capacityProvider')}" for s in strategies if isinstance(s, dict)]
    return shown


def _listener(inputs: dict[str, Any]) -> list[str]:
    actions = [a.get("type") for a in inputs.get("defaultActions") or [] if isinstance(a, dict)]
    return [f"action={','.join(str(a) for a in actions)}"]


def _record(inputs: dict[str, Any]) -> list[str]:
    """The record's name and where an alias points (the load balancer): the flat settings
    omit both."""
    aliases = [a for a in inputs.get("aliases") or [] if isinstance(a, dict)]
    return [*_pick(inputs, "name"), *(f"alias={a.get('name')}" for a in aliases)]


def _repository(inputs: dict[str, Any]) -> list[str]:
    scanning = inputs.get("imageScanningConfiguration") or {}
    return _pick(scanning, "scanOnPush")


AWS_SUMMARIES: dict[str, Summary] = {
    "aws:rds/instance:Instance": _rds,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache,
    "aws:ecs/service:Service": _service,
    "aws:lb/listener:Listener": _listener,
    "aws:ecr/repository:Repository": _repository,
    "aws:route53/record:Record": _record,
}
