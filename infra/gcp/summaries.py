"""Key settings of GCP resources for `agent-deploy check` (cli/main.py SUMMARIES).

Each function gets a resource's redacted wire-name inputs and returns `key=value` strings:
the security and reliability settings a reviewer looks for first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.aws.summaries import Summary, _flags, _pick


def _at(inputs: Mapping[str, Any], *path: str | int) -> Any:
    value: Any = inputs
    for part in path:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and len(value) > part else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _sql(inputs: dict[str, Any]) -> list[str]:
    settings = inputs.get("settings") or {}
    ip = settings.get("ipConfiguration") or {}
    backups = settings.get("backupConfiguration") or {}
    shown = _pick(settings, "tier", "edition", "availabilityType")
    shown += _flags(
        {
            "backups": backups.get("enabled"),
            "pitr": backups.get("pointInTimeRecoveryEnabled"),
            "api": settings.get("deletionProtectionEnabled"),
            "provider": inputs.get("deletionProtection"),
        },
        {
            "backups": "backups",
            "pitr": "pitr",
            "api": "api-deletion-protected",
            "provider": "deletion-protected",
        },
    )
    shown.append(f"network={'PUBLIC' if ip.get('ipv4Enabled') is not False else 'private'}")
    return shown + _pick(ip, "sslMode")


def _redis(inputs: dict[str, Any]) -> list[str]:
    return _flags(inputs, {"authEnabled": "auth"})


def _run(inputs: dict[str, Any]) -> list[str]:
    template = inputs.get("template") or {}
    scaling = template.get("scaling") or {}
    resources = _at(template, "containers", 0, "resources") or {}
    shown = _pick(inputs, "ingress", "invokerIamDisabled")
    shown += [
        f"instances={_int(scaling.get('minInstanceCount'))}-"
        f"{_int(scaling.get('maxInstanceCount'))}",
        *_pick(resources.get("limits") or {}, "cpu", "memory"),
        *_pick(resources, "cpuIdle"),
        *_pick(template.get("vpcAccess") or {}, "egress"),
        *_pick(template, "serviceAccount", "timeout"),
    ]
    image = _at(template, "containers", 0, "image")
    if isinstance(image, str) and not image.startswith("<unknown"):
        shown.append(f"image={'by-digest' if '@sha256:' in image else 'BY-TAG'}")
    return shown


def _registry(inputs: dict[str, Any]) -> list[str]:
    shown = _pick(inputs.get("dockerConfig") or {}, "immutableTags")
    scanning = inputs.get("vulnerabilityScanningConfig") or {}
    return shown + [f"scanning={v}" for v in _pick(scanning, "enablementConfig")]


def _subnet(inputs: dict[str, Any]) -> list[str]:
    return [f"flowLogs={'on' if inputs.get('logConfig') else 'OFF'}"]


def _certificate(inputs: dict[str, Any]) -> list[str]:
    domains = _at(inputs, "managed", "domains") or []
    return [f"domains={','.join(map(str, domains))}"]


def _record(inputs: dict[str, Any]) -> list[str]:
    return _pick(inputs, "name")  # the generic listing leaves names out


def _url_map(inputs: dict[str, Any]) -> list[str]:
    redirect = inputs.get("defaultUrlRedirect") or {}
    if redirect.get("httpsRedirect"):
        return [f"action=redirect-to-https ({redirect.get('redirectResponseCode')})"]
    return ["action=forward"]


def _backend(inputs: dict[str, Any]) -> list[str]:
    return [f"cloudArmor={'on' if inputs.get('securityPolicy') else 'off'}"]


def _armor(inputs: dict[str, Any]) -> list[str]:
    shown = []
    for rule in inputs.get("rules") or []:
        threshold = _at(rule, "rateLimitOptions", "rateLimitThreshold") or {}
        if rule.get("action") == "throttle":
            shown.append(
                f"rateLimit={_int(threshold.get('count'))}/{_int(threshold.get('intervalSec'))}s "
                f"per {_at(rule, 'rateLimitOptions', 'enforceOnKey')}"
            )
    return shown


def _int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


GCP_SUMMARIES: dict[str, Summary] = {
    "gcp:sql/databaseInstance:DatabaseInstance": _sql,
    "gcp:redis/instance:Instance": _redis,
    "gcp:cloudrunv2/service:Service": _run,
    "gcp:artifactregistry/repository:Repository": _registry,
    "gcp:compute/subnetwork:Subnetwork": _subnet,
    "gcp:compute/managedSslCertificate:ManagedSslCertificate": _certificate,
    "gcp:dns/recordSet:RecordSet": _record,
    "gcp:compute/uRLMap:URLMap": _url_map,
    "gcp:compute/backendService:BackendService": _backend,
    "gcp:compute/securityPolicy:SecurityPolicy": _armor,
}
