"""Names, field types and the strict base model every section shares."""

from __future__ import annotations

import ipaddress
import re
import string
from pathlib import Path
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel

PROJECT = "agent-deploy"
#: What a secret config value reads as where it is not decrypted (`check`, `cost`, tests): the
#: rules refuse it where a plain value is required.
SECRET_PLACEHOLDER = "[secret: decrypted only at deployment]"  # noqa: S105 - a marker

Target: TypeAlias = Literal["local", "aws", "gcp"]
Tier: TypeAlias = Literal["ephemeral", "staging", "production"]
TIERS: tuple[Tier, ...] = ("ephemeral", "staging", "production")
# Targets whose runtime exists in stacks/. A target listed in `Target` but not here is
# refused with a clear message instead of failing at import time.
AVAILABLE_TARGETS: tuple[Target, ...] = ("local", "aws", "gcp")

SECTIONS = (
    "target",
    "tier",
    "app",
    "database",
    "cache",
    "github",
    "local",
    "aws",
    "gcp",
    "pullRequests",
)

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# RFC 3986 path characters without the quote (a path is also spliced into probes and URLs).
_URL_PATH_PUNCTUATION = "/-._~!$&()*+,;=:@%"
_URL_PATH_CHARS = frozenset(string.ascii_letters + string.digits + _URL_PATH_PUNCTUATION)
_PERCENT_ESCAPES = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
# `ipaddress.is_private` also accepts loopback, link-local and others that no VPC may use.
RFC1918_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
# Names that hold credentials: such a value must come from a Pulumi secret, never `app.env`.
_SECRET_LIKE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE|DSN)(_|$)")
_RESERVED_ENV = frozenset(
    {"DATABASE_URL", "DATABASE_URI", "REDIS_URL", "REDIS_URI", "PORT", "POSTGRES_URI"}
    # Set by the stacks from app.runTimeoutSeconds, aws.vpcCidr and their own secrets.
    | {"RUN_TIMEOUT_SECONDS", "SHUTDOWN_TIMEOUT_SECONDS", "KEEPALIVE_TIMEOUT_SECONDS"}
    | {"FORWARDED_ALLOW_IPS", "AUTH_TOKENS", "PGPASSWORD"}
    # The AWS db-init container's contract (src.db_bootstrap): only the stack sets these.
    | {"DATABASE_APP_PASSWORD", "DATABASE_ADMIN_USER", "DATABASE_ADMIN_PASSWORD"}
    | {"DATABASE_PROVISIONER_USER"}
    # A pull-request slice's Redis namespace: its ACL user reaches only keys with this prefix.
    | {"REDIS_KEY_PREFIX"}
    # The gcp stacks' server CAs (Memorystore, Cloud SQL), from Secret Manager.
    | {"REDIS_CA_CERT", "DATABASE_CA_CERT"}
    # How each target runs `migrate` (gcp: at start-up; aws, local: a step before the app).
    | {"MIGRATE_ON_START"}
)
# The least-privilege role the app connects as on AWS (created by `python -m src.db_bootstrap`).
DATABASE_APP_USER = "agent_app"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
PLATFORMS = ("linux/amd64", "linux/arm64")


# --------------------------------------------------------------------------------------------
# Field types with messages that say what is allowed.
# --------------------------------------------------------------------------------------------
def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name: A-Z, 0-9 and _, not a digit first")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("must be a URL path starting with '/', without spaces")
    if bad := sorted({c for c in value if c not in _URL_PATH_CHARS}):
        raise ValueError(
            f"contains {', '.join(repr(c) for c in bad)}: a URL path has only letters, digits "
            f"and {_URL_PATH_PUNCTUATION} (no quotes, spaces, query or control characters)"
        )
    if not _PERCENT_ESCAPES.fullmatch(value) or len(value) > 1024:
        raise ValueError(
            "'%' must start an escape such as %20, and the load balancer takes at most "
            "1024 characters"
        )
    return value


def _resource_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 2-32 characters of a-z, 0-9 and '-', starting with a letter")
    return value


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"must be an IPv4 CIDR block such as '10.0.0.0/16' ({err})") from None
    if not any(network.subnet_of(private) for private in RFC1918_NETWORKS):
        raise ValueError("must be a private (RFC 1918) range")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Platform = Literal["linux/amd64", "linux/arm64"]


def _default_platforms() -> list[Platform]:
    return ["linux/amd64"]


class _Section(BaseModel):
    """Strict base: unknown keys are errors (typos must not silently fall back to defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=False,
    )


def _project_root(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, dict) else {}
    root = context.get("root")
    return root if isinstance(root, Path) else None
