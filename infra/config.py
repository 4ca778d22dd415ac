"""Typed stack configuration and the tier presets.

This module is the only place defaults live. A stack's effective configuration is
``target defaults < tier preset < what the stack file says``; the presets below are the one
visible table that relaxes security and reliability by tier (ephemeral < staging < production).

Validation is pure: it takes the raw Pulumi config (``{"agent-deploy:database": "<json>"}``)
and the set of keys Pulumi marked secret, and either returns a :class:`StackConfig` or raises
:class:`ConfigError` listing *every* problem, each named by the key a user writes in
``Pulumi.<stack>.yaml``. Nothing here touches Pulumi's runtime, so it runs before any
resource is registered.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import itertools
import json
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from pulumi_aws import Region
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from cli.stackfile import SECRET_PLACEHOLDER
from infra.naming import stack_name_problems
from infra.timeouts import AWS_MAX_RUN_TIMEOUT_SECONDS, FARGATE_MAX_STOP_SECONDS

PROJECT = "agent-deploy"

Target: TypeAlias = Literal["local", "aws", "gcp"]
Tier: TypeAlias = Literal["ephemeral", "staging", "production"]
TIERS: tuple[Tier, ...] = ("ephemeral", "staging", "production")
# Targets whose runtime exists in stacks/. A target listed in `Target` but not here is
# refused with a clear message instead of failing at import time.
AVAILABLE_TARGETS: tuple[Target, ...] = ("local", "aws")

SECTIONS = ("target", "tier", "app", "database", "cache", "github", "local", "aws")

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
)
# The least-privilege role the app connects as on AWS (created by `python -m src.db_bootstrap`).
DATABASE_APP_USER = "agent_app"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_AWS_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso[a-z]*)?-[a-z]+-\d$")
# The provider's own region list (partitions included: `cn-*`, `us-gov-*`), not a pattern.
AWS_REGIONS = frozenset(region.value for region in Region)
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
_GITHUB_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)
PLATFORMS = ("linux/amd64", "linux/arm64")


# --------------------------------------------------------------------------------------------
# Tier presets: the one place where defaults are relaxed for cheaper, throw-away stacks.
# Keys are the wire names a user writes in Pulumi.<stack>.yaml, so an override is a copy-paste.
# --------------------------------------------------------------------------------------------
TIER_PRESETS: dict[Tier, dict[str, dict[str, Any]]] = {
    "ephemeral": {
        "app": {"cpu": 256, "memory": 512, "minInstances": 1, "maxInstances": 1},
        "database": {
            "instanceClass": "db.t4g.micro",
            "storageGb": 20,
            "maxStorageGb": 20,
            "backupDays": 1,
            "multiAz": False,
            "deletionProtection": False,
            "finalSnapshot": False,
            "protect": False,
        },
        "cache": {
            "nodeType": "cache.t4g.micro",
            "nodes": 1,
            "automaticFailover": False,
            "snapshotDays": 0,
        },
        "github": {
            "branchPolicy": "none",
            "preventSelfReview": False,
            "canAdminsBypass": True,
            "previewEnvironment": False,
        },
        "aws": {
            "natGateways": "none",
            "logRetentionDays": 7,
            "fargateSpot": True,
            "flowLogs": False,
            "autoscaling": False,
            "loadBalancerDeletionProtection": False,
            # pr-<n> stacks deploy with the shared `ephemeral` role staging creates (see
            # infra/aws/identity.py): they create no role and no OIDC provider of their own.
            "deployRole": False,
            "createOidcProvider": False,
            # Deleted secrets go at once, so `pulumi destroy` then `up` can reuse the stack.
            "secretRecoveryDays": 0,
        },
    },
    "staging": {
        "app": {"cpu": 512, "memory": 1024, "minInstances": 1, "maxInstances": 3},
        "database": {
            "instanceClass": "db.t4g.small",
            "storageGb": 20,
            "maxStorageGb": 100,
            "backupDays": 7,
            "multiAz": False,
            "deletionProtection": False,
            "finalSnapshot": True,
            "protect": False,
        },
        "cache": {
            "nodeType": "cache.t4g.small",
            "nodes": 1,
            "automaticFailover": False,
            "snapshotDays": 1,
        },
        "github": {
            "branchPolicy": "default",
            "preventSelfReview": False,
            "canAdminsBypass": True,
            "previewEnvironment": True,
        },
        "aws": {
            "natGateways": "none",
            "logRetentionDays": 30,
            "fargateSpot": False,
            "flowLogs": False,
            "autoscaling": True,
            "loadBalancerDeletionProtection": False,
            "deployRole": True,
            "createOidcProvider": True,
            "secretRecoveryDays": 7,
        },
    },
    "production": {
        "app": {"cpu": 1024, "memory": 2048, "minInstances": 2, "maxInstances": 6},
        # Sized to start, not to peak (README: "Growing production"): the service mostly
        # waits on model APIs; Postgres holds checkpoints, the cache a lock and a rate limit.
        "database": {
            "instanceClass": "db.t4g.medium",
            "storageGb": 20,
            "maxStorageGb": 200,
            "backupDays": 14,
            "multiAz": True,
            "deletionProtection": True,
            "finalSnapshot": True,
            "protect": True,
        },
        "cache": {
            "nodeType": "cache.t4g.small",
            "nodes": 2,
            "automaticFailover": True,
            "snapshotDays": 7,
        },
        "github": {
            "branchPolicy": "protected",
            "preventSelfReview": True,
            "canAdminsBypass": False,
            "previewEnvironment": True,
        },
        "aws": {
            "natGateways": "perAz",
            "logRetentionDays": 365,
            "fargateSpot": False,
            "flowLogs": True,
            "autoscaling": True,
            "loadBalancerDeletionProtection": True,
            "deployRole": True,
            # One stack owns the account's GitHub OIDC provider (staging, in the one-account
            # layout); production looks it up. Its own account: set createOidcProvider: true.
            "createOidcProvider": False,
            "secretRecoveryDays": 30,
        },
    },
}

# Defaults that depend on where the stack runs, not on how much it matters.
TARGET_DEFAULTS: dict[Target, dict[str, dict[str, Any]]] = {
    "local": {"app": {"build": {"platforms": ["linux/amd64"]}, "env": {"LOG_FORMAT": "console"}}},
    # Graviton: cheaper per vCPU on Fargate, and the reference image is multi-arch.
    "aws": {"app": {"build": {"platforms": ["linux/arm64"]}, "env": {"LOG_FORMAT": "json"}}},
    "gcp": {"app": {"build": {"platforms": ["linux/amd64"]}, "env": {"LOG_FORMAT": "json"}}},
}

# Production may tune these but never switch them off.
PRODUCTION_MIN_BACKUP_DAYS = 7

# Engine versions this program deploys, per engine; checked 2026-11 against the RDS for
# PostgreSQL release calendar and ElastiCache "Supported engines and versions" (Redis OSS
# stops at 7.1; 4.0/5.0 are in paid extended support and not offered here). The parameter
# group family is derived from the major version, so a new major needs a line here only.
ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "postgres": ("16", "17"),
    "valkey": ("7.2", "8.0", "8.1", "8.2", "9.0", "9.1"),
    "redis": ("6.0", "6.2", "7.0", "7.1"),
}
# The version a stack gets when it names none: it depends on the engine (Redis OSS has no 8.0).
DEFAULT_ENGINE_VERSIONS: dict[str, str] = {"postgres": "16", "valkey": "8.0", "redis": "7.1"}


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


def _aws_region(value: str) -> str:
    if value in AWS_REGIONS:
        return value
    if not _AWS_REGION.match(value):
        raise ValueError("must be an AWS region code such as 'eu-west-1' or 'us-east-2'")
    close = difflib.get_close_matches(value, sorted(AWS_REGIONS), n=1, cutoff=0.8)
    if close:
        raise ValueError(f"no such AWS region; did you mean '{close[0]}'?")
    raise ValueError(f"no such AWS region; the provider knows {', '.join(sorted(AWS_REGIONS))}")


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
AwsRegion = Annotated[str, AfterValidator(_aws_region)]
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


class BuildConfig(_Section):
    context: str = "app"
    dockerfile: str | None = None
    platforms: list[Platform] = Field(default_factory=_default_platforms, min_length=1)
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None

    @field_validator("context")
    @classmethod
    def _context_exists(cls, value: str, info: ValidationInfo) -> str:
        root = _project_root(info)
        if root is not None and not (root / value).is_dir():
            raise ValueError(f"build context directory '{value}' does not exist under {root}")
        return value

    @model_validator(mode="after")
    def _dockerfile_exists(self, info: ValidationInfo) -> BuildConfig:
        root = _project_root(info)
        if root is not None and (root / self.context).is_dir():
            dockerfile = root / self.dockerfile_path
            if not dockerfile.is_file():
                raise ValueError(f"Dockerfile '{self.dockerfile_path}' does not exist")
        return self

    @property
    def dockerfile_path(self) -> str:
        """The Dockerfile relative to the project root; `<context>/Dockerfile` unless set."""
        return self.dockerfile or f"{self.context.rstrip('/')}/Dockerfile"


class AppConfig(_Section):
    name: ResourceName = "agent"
    build: BuildConfig = Field(default_factory=BuildConfig)
    image: str | None = Field(
        default=None, description="Prebuilt image reference; when set, nothing is built."
    )
    port: int = Field(default=8000, ge=1, le=65535)
    health_path: UrlPath = "/health"
    readiness_path: UrlPath = "/ready"
    liveness_path: UrlPath = "/live"
    run_timeout_seconds: int = Field(
        default=100,
        ge=1,
        le=3600,
        description="Longest run; every load balancer, drain and shutdown timeout derives from it.",
    )
    cpu: int = Field(gt=0, description="CPU units, 1024 = one vCPU.")
    memory: int = Field(gt=0, description="MiB.")
    min_instances: int = Field(ge=0)
    max_instances: int = Field(ge=1)
    env: dict[EnvName, str] = Field(default_factory=dict)
    secrets: list[EnvName] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _no_credentials_in_env(cls, value: dict[str, str]) -> dict[str, str]:
        found = []
        for name in value:
            if name in _RESERVED_ENV:
                found.append(f"'{name}' is set by the stack itself; remove it from app.env")
            elif _SECRET_LIKE.search(name):
                found.append(
                    f"'{name}' looks like a credential: set it with "
                    f"`pulumi config set --secret {name} ...` and list it in app.secrets"
                )
        if found:
            raise ValueError("; ".join(found))
        return value

    @field_validator("secrets")
    @classmethod
    def _unique_secrets(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        reserved = sorted(set(value) & _RESERVED_ENV)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is composed by the stack; do not list it")
        return value


# PostgreSQL's reserved key words (src/include/parser/kwlist.h, RESERVED_KEYWORD, 17): RDS
# refuses them as the master user and database name, PostgreSQL as a role name.
_POSTGRES_RESERVED = """
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign from
    grant group having in initially intersect into lateral leading limit localtime localtimestamp
    not null offset on only or order placing primary references returning select session_user
    some symmetric system_user table then to trailing true union unique user using variadic when
    where window with"""
POSTGRES_RESERVED_WORDS = frozenset(_POSTGRES_RESERVED.split())
# Role names PostgreSQL itself refuses ('public', 'none', 'pg_*') and RDS's own roles.
_RESERVED_ROLE = re.compile(r"^(public|none|pg_.*|rds_.*|rdsrepladmin|rdstopmgr)$")
# Databases every RDS for PostgreSQL instance already has.
_RESERVED_DATABASES = frozenset({"template0", "template1", "rdsadmin"})


def _version_text(value: object) -> object:
    """YAML reads an unquoted version as a number and drops digits (8.0 arrives as 8 from the
    Pulumi CLI, 7.10 as 7.1), so only a whole major version such as 16 is taken as written."""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        raise ValueError(
            f"write the version in quotes, e.g. engineVersion: '{value}': YAML reads an "
            "unquoted version as a number and drops digits (8.0 becomes 8, 7.10 becomes 7.1)"
        )
    return value


def _major_version_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"write the major version in quotes, e.g. engineVersion: '{int(value)}'")
    return value


def _postgres_version(value: str) -> str:
    versions = ENGINE_VERSIONS["postgres"]
    if value not in versions:
        listed = [f"'{v}'" for v in versions]
        raise ValueError(f"Input should be {', '.join(listed[:-1])} or {listed[-1]}")
    return value


class DatabaseConfig(_Section):
    engine_version: Annotated[
        str, BeforeValidator(_major_version_text), AfterValidator(_postgres_version)
    ] = DEFAULT_ENGINE_VERSIONS["postgres"]
    name: str = Field(default="agent", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    username: str = Field(default="agent_admin", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    storage_gb: int = Field(ge=20, le=65536)
    max_storage_gb: int = Field(ge=20, le=65536)
    backup_days: int = Field(ge=0, le=35)
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    protect: bool
    encrypted: bool = True
    # RDS refuses a major engine upgrade (engineVersion 16 -> 17) unless this is true.
    allow_major_version_upgrade: bool = False

    @field_validator("username")
    @classmethod
    def _not_default_admin(cls, value: str) -> str:
        if value in {"postgres", "admin", "root", "rdsadmin"}:
            raise ValueError(f"'{value}' is a well-known admin name; choose another")
        if _RESERVED_ROLE.match(value):
            raise ValueError(
                f"'{value}' is reserved for PostgreSQL's and RDS's own roles "
                "(public, none, pg_*, rds_*); choose another"
            )
        return value

    @field_validator("name", "username")
    @classmethod
    def _not_reserved_word(cls, value: str, info: ValidationInfo) -> str:
        if value in POSTGRES_RESERVED_WORDS:
            raise ValueError(
                f"'{value}' is a PostgreSQL reserved word, which RDS refuses as a name; "
                "choose another"
            )
        if info.field_name == "name" and value in _RESERVED_DATABASES:
            raise ValueError(f"'{value}' is a database RDS creates itself; choose another")
        return value


class CacheConfig(_Section):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: Annotated[str, BeforeValidator(_version_text)] = Field(pattern=r"^\d+(\.\d+)?$")
    node_type: str = Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    nodes: int = Field(ge=1, le=6)
    automatic_failover: bool
    snapshot_days: int = Field(ge=0, le=35)
    encrypted: bool = True

    @model_validator(mode="before")
    @classmethod
    def _engine_default_version(cls, data: Any) -> Any:
        """The default version depends on the engine: Redis OSS has no 8.0."""
        if not isinstance(data, dict) or {"engineVersion", "engine_version"} & set(data):
            return data
        engine = data.get("engine", "valkey")
        default = DEFAULT_ENGINE_VERSIONS.get(engine if isinstance(engine, str) else "valkey")
        return {**data, "engineVersion": default or DEFAULT_ENGINE_VERSIONS["valkey"]}

    @field_validator("engine_version")
    @classmethod
    def _engine_offers_version(cls, value: str, info: ValidationInfo) -> str:
        engine = info.data.get("engine")
        versions = ENGINE_VERSIONS.get(engine) if isinstance(engine, str) else None
        if versions is None or value in versions:
            return value
        label = {"valkey": "Valkey", "redis": "Redis OSS"}.get(str(engine), engine)
        why = " (Redis OSS stops at 7.1: use engine: valkey for newer)" if engine == "redis" else ""
        raise ValueError(f"ElastiCache {label} offers {', '.join(versions)}{why}")


Reviewer = Annotated[str, Field(description="A GitHub login, or 'org/team-slug' for a team.")]


# Environment variables the stack itself writes (from its outputs); the workflows read them.
GITHUB_STACK_VARIABLES = frozenset(
    {
        "PULUMI_STACK",
        "HEALTH_PATH",
        "READY_PATH",
        "SERVICE_URL",
        "AWS_REGION",
        "AWS_DEPLOY_ROLE_ARN",
        "AWS_PREVIEW_ROLE_ARN",
    }
)
# The token that runs the pulumi-github provider is set by hand: a stack never manages it.
GITHUB_UNMANAGED_SECRETS = frozenset({"PULUMI_GITHUB_TOKEN", "PULUMI_GITHUB_PREVIEW_TOKEN"})
# Pulumi credentials decrypt and rewrite every stack: repository secrets would hand them to
# any branch's workflow, past production's environment rules.
GITHUB_ENVIRONMENT_ONLY_SECRETS = frozenset({"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"})
GITHUB_PLANS = ("free", "pro", "team", "enterprise")
_GIT_BRANCH = re.compile(r"^(?!/|-|.*\.\.|.*//|.*\.lock$|.*/$)[A-Za-z0-9._/-]{1,255}$")
_EPHEMERAL_STACK = re.compile(r"^pr(-\d+)?$")


def _github_name_problems(names: list[str]) -> list[str]:
    """GitHub refuses secret/variable names starting with GITHUB_ (and ours never clash)."""
    return [n for n in names if n.startswith("GITHUB_")]


class GitHubConfig(_Section):
    owner: str = Field(pattern=_GITHUB_LOGIN.pattern)
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    # What GitHub lets the repository have depends on both (docs/bootstrapping.md, "GitHub
    # plans"): the plan is stated, never guessed, so `check` refuses what GitHub would.
    plan: Literal["free", "pro", "team", "enterprise"] | None = Field(
        default=None, validate_default=True
    )
    visibility: Literal["public", "private", "internal"] = "private"
    # Reviews the default branch's protection requires (the stack that ownsRepository).
    required_approvals: int = Field(default=1, ge=1, le=6)
    code_owner_reviews: bool = True
    environment: str | None = None
    reviewers: list[Reviewer] = Field(default_factory=list, max_length=6)
    prevent_self_review: bool
    can_admins_bypass: bool
    wait_timer_minutes: int = Field(default=0, ge=0, le=43200)
    branch_policy: Literal["protected", "default", "none"]
    default_branch: str = "main"
    secrets: list[EnvName] = Field(default_factory=list)
    variables: dict[EnvName, str] = Field(default_factory=dict)
    # `<environment>-preview`: where preview.yml runs `pulumi preview` with a read-only role.
    preview_environment: bool
    # The shared environment of the pr-<n> stacks, owned by one stack (staging).
    ephemeral_environment: str | None = None
    owns_repository: bool = False
    repository_secrets: list[EnvName] = Field(default_factory=list)
    repository_variables: dict[EnvName, str] = Field(default_factory=dict)
    protect_default_branch: bool = False
    required_checks: list[str] = Field(default_factory=list)

    @field_validator("plan")
    @classmethod
    def _plan_stated(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError(
                f"required: the repository owner's GitHub plan, one of {', '.join(GITHUB_PLANS)}"
            )
        return value

    @field_validator("repository_secrets")
    @classmethod
    def _environment_only(cls, value: list[str]) -> list[str]:
        if bad := sorted(set(value) & GITHUB_ENVIRONMENT_ONLY_SECRETS):
            raise ValueError(
                f"{', '.join(bad)} must be an environment secret (github.secrets of each "
                "stack), never a repository secret that every branch's workflow can read"
            )
        return value

    @field_validator("environment", "ephemeral_environment")
    @classmethod
    def _environment_name(cls, value: str | None) -> str | None:
        if value is not None and not _GITHUB_ENVIRONMENT.match(value):
            raise ValueError("must be 1-255 characters of letters, digits, '_', '.' and '-'")
        return value

    @field_validator("default_branch")
    @classmethod
    def _branch_name(cls, value: str) -> str:
        if not _GIT_BRANCH.match(value):
            raise ValueError("must be a git branch name such as 'main'")
        return value

    @field_validator("secrets", "repository_secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        if bad := _github_name_problems(value):
            raise ValueError(f"{', '.join(bad)}: GitHub refuses names starting with GITHUB_")
        if unmanaged := sorted(set(value) & GITHUB_UNMANAGED_SECRETS):
            raise ValueError(
                f"{', '.join(unmanaged)} runs the GitHub provider itself: set it by hand "
                "(docs/bootstrapping.md), never from a stack"
            )
        return value

    @field_validator("variables", "repository_variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        if bad := _github_name_problems(list(value)):
            raise ValueError(f"{', '.join(bad)}: GitHub refuses names starting with GITHUB_")
        if reserved := sorted(set(value) & GITHUB_STACK_VARIABLES):
            raise ValueError(
                f"{', '.join(reserved)} is written by the stack from its outputs; remove it"
            )
        return value

    @field_validator("required_checks")
    @classmethod
    def _check_names(cls, value: list[str]) -> list[str]:
        if any(not check.strip() for check in value):
            raise ValueError("a required check is the non-empty name of a CI job")
        duplicates = sorted({c for c in value if value.count(c) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @field_validator("reviewers")
    @classmethod
    def _reviewer_format(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if not (_GITHUB_LOGIN.match(r) or _GITHUB_TEAM.match(r))]
        if bad:
            raise ValueError(
                f"{', '.join(repr(r) for r in bad)}: a reviewer is a GitHub login ('octocat') "
                "or a team as 'org/team-slug'"
            )
        duplicates = sorted({r for r in value if value.count(r) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _repository_scope(self) -> GitHubConfig:
        foreign = [
            r
            for r in self.reviewers
            if "/" in r and r.split("/", 1)[0].lower() != self.owner.lower()
        ]
        if foreign:
            raise ValueError(
                f"reviewers: team {', '.join(foreign)} is not in the organisation "
                f"'{self.owner}' that owns the repository"
            )
        if self.required_checks and not self.protect_default_branch:
            raise ValueError("requiredChecks needs protectDefaultBranch: true")
        if self.protect_default_branch and not self.owns_repository:
            raise ValueError(
                "protectDefaultBranch is repository-wide: only the stack with "
                "ownsRepository: true may set it"
            )
        return self

    def environment_names(self, stack: str) -> list[str]:
        """Every GitHub environment this section manages, the stack's own first."""
        own = self.environment or stack
        names = [own]
        if self.preview_environment:
            names.append(f"{own}-preview")
        if self.ephemeral_environment:
            names.append(self.ephemeral_environment)
        return names


class LocalConfig(_Section):
    host_port: int = Field(default=8000, ge=1024, le=65535)
    postgres_image: str = "postgres:16-alpine"
    redis_image: str = "redis:7-alpine"
    chroma: bool = False
    chroma_image: str = "chromadb/chroma:0.6.3"
    chroma_host_port: int = Field(default=8001, ge=1024, le=65535)


class AwsConfig(_Section):
    region: AwsRegion
    vpc_cidr: Cidr = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=2, le=3)
    nat_gateways: Literal["none", "single", "perAz"]
    certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$"
    )
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    oidc_provider_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$",
    )
    log_retention_days: int
    fargate_spot: bool
    flow_logs: bool
    autoscaling: bool
    load_balancer_deletion_protection: bool
    ecr_keep_images: int = Field(default=20, ge=1, le=1000)
    deploy_role: bool
    create_oidc_provider: bool
    secret_recovery_days: int = Field(ge=0, le=30)
    # The repository the deploy role trusts when there is no `github` section: "owner/repo".
    github_repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9_.-]{1,100}$"
    )
    # The GitHub environment the deploy role trusts when there is no `github` section.
    github_environment: str | None = Field(default=None, pattern=_GITHUB_ENVIRONMENT.pattern)
    # Networks the VPC must never overlap (VPN, peered VPCs, other stacks' VPCs).
    peer_cidrs: list[Cidr] = Field(default_factory=list)
    health_check_grace_seconds: int = Field(default=60, ge=0, le=7200)
    # The account the stack deploys to: the provider refuses credentials of any other, and the
    # stack files that create the GitHub OIDC provider must name different accounts.
    account_id: str | None = None
    # What the preview role may read: the Pulumi state bucket (self-managed backend) and the
    # KMS key of the `awskms://` secrets provider (a key ARN: IAM does not match aliases).
    state_bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9](?:[a-z0-9.-]{1,61})[a-z0-9]$"
    )
    secrets_provider_key_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"
    )

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_id(cls, value: object) -> object:
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{12}", value)):
            raise ValueError(
                'must be the 12-digit AWS account id in quotes, such as "012345678901" (YAML '
                "reads an unquoted number and drops its leading zeros)"
            )
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
            raise ValueError(f"CloudWatch accepts only: {allowed}")
        return value


class StackConfig(_Section):
    """One stack's whole configuration, after presets and validation."""

    stack: str
    target: Target = "local"
    tier: Tier = "ephemeral"
    app: AppConfig
    database: DatabaseConfig
    cache: CacheConfig
    github: GitHubConfig | None = None
    local: LocalConfig = Field(default_factory=LocalConfig)
    aws: AwsConfig | None = None

    @field_validator("target")
    @classmethod
    def _target_available(cls, value: Target) -> Target:
        if value not in AVAILABLE_TARGETS:
            raise ValueError(
                f"target '{value}' has no runtime yet; available: {', '.join(AVAILABLE_TARGETS)}"
            )
        return value

    @property
    def github_environment(self) -> str:
        return (self.github.environment if self.github else None) or self.stack

    @property
    def referenced_secrets(self) -> list[str]:
        names = list(self.app.secrets)
        if self.github is not None:
            names += self.github.secrets + self.github.repository_secrets
        return sorted(set(names))


# --------------------------------------------------------------------------------------------
# Errors: every problem, named as the user writes the key.
# --------------------------------------------------------------------------------------------
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


def _project_root(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, dict) else {}
    root = context.get("root")
    return root if isinstance(root, Path) else None


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
    base = _deep_merge(target, preset)
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
_STAND_IN_VALUES: dict[tuple[str, ...], object] = {("aws", "region"): "us-east-1"}
_DEPENDENT_KEYS: dict[str, tuple[str, ...]] = {
    f"{PROJECT}:app.cpu": (f"{PROJECT}:app.memory",),
    f"{PROJECT}:aws.region": (f"{PROJECT}:aws.certificateArn",),
}


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
                f"{PROJECT}:{target}", f"required when target is '{target}' (at least `region`)"
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


# --------------------------------------------------------------------------------------------
# AWS: checks AWS itself would only make at deploy time, made here so a bad stack file fails
# before anything is created.
# --------------------------------------------------------------------------------------------
# Fargate's allowed task sizes: CPU units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 16385, 1024)),
    4096: frozenset(range(8192, 30721, 1024)),
    8192: frozenset(range(16384, 61441, 4096)),
    16384: frozenset(range(32768, 122881, 8192)),
}
# The sizes of each instance family this program offers (Graviton and current Intel), checked
# 2026-11 against "Supported DB engines for DB instance classes" (RDS for PostgreSQL) and
# "Supported node types" (ElastiCache). A region may lack some; AWS then refuses at deploy.
_BURSTABLE = ("micro", "small", "medium", "large", "xlarge", "2xlarge")
_TO_16X = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_TO_24X = (*_TO_16X, "24xlarge")
_TO_32X = (*_TO_24X, "32xlarge")
_TO_48X = (*_TO_24X, "48xlarge")
RDS_POSTGRES_CLASSES: dict[str, tuple[str, ...]] = {
    "t3": _BURSTABLE,
    "t4g": _BURSTABLE,
    "m5": _TO_24X,
    "m6g": _TO_16X,
    "m6i": _TO_32X,
    "m7g": _TO_16X,
    "m7i": _TO_48X,
    "m8g": _TO_48X,
    "r5": _TO_24X,
    "r6g": _TO_16X,
    "r6i": _TO_32X,
    "r7g": _TO_16X,
    "r7i": _TO_48X,
    "r8g": _TO_48X,
}
_CACHE_5_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")
ELASTICACHE_NODE_TYPES: dict[str, tuple[str, ...]] = {
    "t3": ("micro", "small", "medium"),
    "t4g": ("micro", "small", "medium"),
    "m5": _CACHE_5_SIZES,
    "m6g": _TO_16X,
    "m7g": _TO_16X,
    "r5": _CACHE_5_SIZES,
    "r6g": _TO_16X,
    "r7g": _TO_16X,
    "c7gn": _TO_16X,
}
RDS_POSTGRES_FAMILIES = frozenset(RDS_POSTGRES_CLASSES)
ELASTICACHE_FAMILIES = frozenset(ELASTICACHE_NODE_TYPES)
_SIZE = re.compile(r"^(micro|small|medium|large|\d*xlarge)$")
# Performance Insights is not offered on the smallest burstable classes.
PERFORMANCE_INSIGHTS_UNSUPPORTED = frozenset(
    {"db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small"}
)
# Each subnet is carved as 1/16 of the VPC and must hold at least a /24 (251 usable addresses:
# Fargate tasks, NAT and load balancer nodes each take one).
MIN_VPC_PREFIX = 20
# AWS's largest VPC block.
MAX_VPC_PREFIX = 16
# Ranges some AWS services and Docker use internally; a VPC there breaks them in odd ways.
RESERVED_CIDRS = ("172.17.0.0/16",)


def performance_insights_supported(instance_class: str) -> bool:
    return instance_class not in PERFORMANCE_INSIGHTS_UNSUPPORTED


def deploy_repository(config: StackConfig) -> str | None:
    """`owner/repo` the deploy role trusts: the `github` section's, else `aws.githubRepository`."""
    if config.github is not None:
        return f"{config.github.owner}/{config.github.repository}"
    return config.aws.github_repository if config.aws is not None else None


def ephemeral_stack(stack: str) -> bool:
    """A pr-<n> stack: deployed by the shared `ephemeral` role, from Pulumi.pr.yaml."""
    return _EPHEMERAL_STACK.match(stack) is not None


def deploy_environment(config: StackConfig) -> str:
    """The GitHub environment whose jobs may assume the deploy role."""
    if config.github is None and config.aws is not None and config.aws.github_environment:
        return config.aws.github_environment
    return config.github_environment


def _instance_class_problem(
    key: str, value: str, prefix: str, families: frozenset[str]
) -> ConfigProblem | None:
    _, family, size = value.split(".", 2) if value.count(".") == 2 else (prefix, "", "")
    if family in families and _SIZE.match(size):
        sizes = (RDS_POSTGRES_CLASSES if prefix == "db" else ELASTICACHE_NODE_TYPES)[family]
        if size in sizes:
            return None
        return ConfigProblem(
            f"{PROJECT}:{key}",
            f"{prefix}.{family} comes only in {', '.join(sizes)}",
            json.dumps(value),
        )
    return ConfigProblem(
        f"{PROJECT}:{key}",
        f"not a {prefix}.<family>.<size> class AWS offers here; families: "
        f"{', '.join(sorted(families))}",
        json.dumps(value),
    )


def aws_problems(config: StackConfig) -> list[ConfigProblem]:
    """Fargate sizes, instance classes and network ranges for `target: aws` stacks."""
    if config.target != "aws" or config.aws is None:
        return []
    aws = config.aws
    problems: list[ConfigProblem] = []
    allowed = FARGATE_SIZES.get(config.app.cpu)
    if allowed is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.cpu",
                f"Fargate accepts only {', '.join(str(c) for c in FARGATE_SIZES)} CPU units",
                str(config.app.cpu),
            )
        )
    elif config.app.memory not in allowed:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.memory",
                f"Fargate with cpu {config.app.cpu} accepts memory {_fargate_memories(allowed)}",
                str(config.app.memory),
            )
        )
    if config.app.run_timeout_seconds > AWS_MAX_RUN_TIMEOUT_SECONDS:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.runTimeoutSeconds",
                f"at most {AWS_MAX_RUN_TIMEOUT_SECONDS} on AWS: a stopping task gets the run "
                f"timeout + 10 s to finish, and Fargate allows {FARGATE_MAX_STOP_SECONDS} s",
                str(config.app.run_timeout_seconds),
            )
        )
    if config.database.username == DATABASE_APP_USER:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:database.username",
                f"'{DATABASE_APP_USER}' is the application user the stack creates; "
                "pick another master user name",
                json.dumps(config.database.username),
            )
        )
    for problem in (
        _instance_class_problem(
            "database.instanceClass", config.database.instance_class, "db", RDS_POSTGRES_FAMILIES
        ),
        _instance_class_problem(
            "cache.nodeType", config.cache.node_type, "cache", ELASTICACHE_FAMILIES
        ),
    ):
        if problem is not None:
            problems.append(problem)
    if config.database.multi_az and config.database.instance_class.endswith(".micro"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:database.instanceClass",
                "Multi-AZ needs at least a .small class",
                json.dumps(config.database.instance_class),
            )
        )

    vpc = ipaddress.IPv4Network(aws.vpc_cidr)
    if vpc.prefixlen < MAX_VPC_PREFIX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.vpcCidr",
                f"too large: AWS accepts VPC blocks from /{MAX_VPC_PREFIX} to /28",
                json.dumps(aws.vpc_cidr),
            )
        )
    if vpc.prefixlen > MIN_VPC_PREFIX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.vpcCidr",
                f"too small: use /{MIN_VPC_PREFIX} or larger (each of up to 6 subnets gets 1/16 "
                "of it, at least a /24)",
                json.dumps(aws.vpc_cidr),
            )
        )
    for other in (*RESERVED_CIDRS, *aws.peer_cidrs):
        if vpc.overlaps(ipaddress.IPv4Network(other)):
            why = "a peer network" if other in aws.peer_cidrs else "reserved by AWS services/Docker"
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:aws.vpcCidr", f"overlaps {other} ({why})", json.dumps(aws.vpc_cidr)
                )
            )

    problems += _aws_refusals(config, aws)
    if 0 < aws.secret_recovery_days < 7:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.secretRecoveryDays",
                "Secrets Manager accepts 0 (delete at once) or 7-30 days",
                str(aws.secret_recovery_days),
            )
        )
    repository = deploy_repository(config)
    if repository is None and (aws.deploy_role or config.github is not None):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.githubRepository",
                "the deploy role trusts exactly one repository: set a `github` section or "
                "aws.githubRepository: owner/repo",
            )
        )
    problems += _oidc_provider_problems(config)
    if config.github is not None and aws.github_repository not in (None, repository):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.githubRepository",
                f"differs from the github section's {repository}; remove one",
                json.dumps(aws.github_repository),
            )
        )
    return problems


def _fargate_memories(allowed: frozenset[int]) -> str:
    """Every allowed value, and the range when they are evenly spaced."""
    values = sorted(allowed)
    listed = f"{', '.join(str(v) for v in values[:-1])} or {values[-1]} MiB"
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(values) > 2 and len(steps) == 1:
        return f"{values[0]}-{values[-1]} MiB in steps of {steps.pop()}: {listed}"
    return listed


def _aws_refusals(config: StackConfig, aws: AwsConfig) -> list[ConfigProblem]:
    """Combinations AWS refuses at deploy time that no single field shows."""
    problems = []
    if aws.certificate_arn is not None:
        arn_region = aws.certificate_arn.split(":")[3]
        if arn_region != aws.region:
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:aws.certificateArn",
                    f"is in {arn_region}, but a load balancer in aws.region {aws.region} takes "
                    f"only certificates from {aws.region} (ACM certificates are regional)",
                    json.dumps(aws.certificate_arn),
                )
            )
    # Production refuses it already, with its own message.
    if not config.cache.encrypted and config.tier != "production":
        problems.append(
            ConfigProblem(
                f"{PROJECT}:cache.encrypted",
                "ElastiCache accepts an auth token only with in-transit encryption, and the "
                "cache always has one (no cache open to every task in the VPC): keep it true",
                "false",
            )
        )
    return problems


def _oidc_provider_problems(config: StackConfig) -> list[ConfigProblem]:
    """The account's one GitHub OIDC provider: this stack creates it, or names or finds it."""
    aws = config.aws
    assert aws is not None
    github = config.github
    roles = aws.deploy_role or (
        github is not None and (github.preview_environment or github.ephemeral_environment)
    )
    if aws.create_oidc_provider and aws.oidc_provider_arn is not None:
        return [
            ConfigProblem(
                f"{PROJECT}:aws.oidcProviderArn",
                "set with createOidcProvider: true; choose one: createOidcProvider: true (this "
                "stack owns the account's provider) or oidcProviderArn (another stack owns it)",
                json.dumps(aws.oidc_provider_arn),
            )
        ]
    provider_account = (aws.oidc_provider_arn or "").split(":")[4:5]
    if aws.account_id is not None and provider_account not in ([], [aws.account_id]):
        return [
            ConfigProblem(
                f"{PROJECT}:aws.oidcProviderArn",
                f"is in account {provider_account[0]}, not aws.accountId {aws.account_id}: "
                "roles trust only their own account's provider",
                json.dumps(aws.oidc_provider_arn),
            )
        ]
    if aws.create_oidc_provider and not roles:
        return [
            ConfigProblem(
                f"{PROJECT}:aws.createOidcProvider",
                "this stack creates no GitHub role (deployRole: false, no preview or ephemeral "
                "environment), so it would not create the provider either: set it to false",
                "true",
            )
        ]
    return []


def _aws_production_problems(config: StackConfig) -> list[ConfigProblem]:
    aws = config.aws
    if aws is None or config.tier != "production":
        return []
    problems = []
    if not aws.flow_logs:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.flowLogs",
                "production cannot turn off VPC flow logs (EC2.6)",
                "false",
            )
        )
    if aws.deploy_role and config.github is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:github",
                f"production's deploy role trusts the GitHub environment "
                f"'{deploy_environment(config)}', which nobody protects without this section "
                "(GitHub creates it unprotected on first use): add a github section (owner, "
                "repository, reviewers), or set aws.deployRole: false",
            )
        )
    if aws.nat_gateways == "none":
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.natGateways",
                "production tasks run in private subnets without public IPs (ECS.2) and need NAT: "
                "use 'perAz' (or 'single' to save cost)",
                '"none"',
            )
        )
    if aws.log_retention_days < 365:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.logRetentionDays",
                "production keeps logs for at least 365 days",
                str(aws.log_retention_days),
            )
        )
    if config.app.image is not None and "@sha256:" not in config.app.image:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.image",
                "production runs an image pinned by digest: use <repository>@sha256:<digest>",
                json.dumps(config.app.image),
            )
        )
    if config.app.min_instances < 2:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.minInstances",
                "production runs at least 2 tasks, one per availability zone",
                str(config.app.min_instances),
            )
        )
    if aws.alarm_email is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.alarmEmail",
                "production alarms need a recipient: set the on-call address (the SNS email "
                "subscription must then be confirmed from that inbox)",
            )
        )
    return problems


# --------------------------------------------------------------------------------------------
# GitHub: which stacks may manage a GitHub environment, and what production may not relax.
# --------------------------------------------------------------------------------------------
def github_problems(config: StackConfig) -> list[ConfigProblem]:
    """Rules on the `github` section that need the rest of the stack (its name, target, tier)."""
    github = config.github
    if github is None:
        return []
    key = f"{PROJECT}:github"
    if config.target == "local":
        return [
            ConfigProblem(
                key,
                "github is managed by cloud stacks only: the local stack has "
                "no deploy environment; remove the section",
            )
        ]
    if _EPHEMERAL_STACK.match(config.stack):
        return [
            ConfigProblem(
                key,
                "pr-<n> stacks share Pulumi.pr.yaml and run without a "
                "GitHub token: remove the section; the shared environment "
                "they deploy from is github.ephemeralEnvironment of the "
                "staging stack",
            )
        ]
    problems = []
    names = github.environment_names(config.stack)
    if len({n.lower() for n in names}) != len(names):
        problems.append(
            ConfigProblem(
                f"{key}.ephemeralEnvironment",
                f"must differ from the stack's own environments ({', '.join(names[:-1])})",
                json.dumps(github.ephemeral_environment),
            )
        )
    problems += _github_plan_problems(github)
    # Where the plan has no environment reviewers (Team/Pro private repositories), production
    # is gated by reviewed merges instead: only protected branches may deploy, and the
    # protection rule requires approvals (github.requiredApprovals >= 1).
    gated = _plan_has_reviewers(github)
    if config.tier == "production":
        refusals: list[tuple[str, bool, str, str | None]] = [
            (
                "branchPolicy",
                github.branch_policy == "none",
                "production deploys only from protected branches",
                json.dumps(github.branch_policy),
            ),
            (
                "branchPolicy",
                not gated and github.branch_policy != "protected",
                f"without environment reviewers (plan {github.plan}, {github.visibility} "
                "repository) production is gated by reviewed merges: branchPolicy must be "
                "'protected'",
                json.dumps(github.branch_policy),
            ),
            (
                "reviewers",
                gated and not github.reviewers,
                "production needs at least one required reviewer",
                None,
            ),
            (
                "preventSelfReview",
                gated and not github.prevent_self_review,
                "production cannot let the person who started a deploy approve it",
                "false",
            ),
        ]
        for field, violated, message, value in refusals:
            if violated:
                problems.append(ConfigProblem(f"{key}.{field}", message, value))
    return problems


def _plan_has_reviewers(github: GitHubConfig) -> bool:
    """Required reviewers and wait timers: public repositories, or GitHub Enterprise Cloud."""
    return github.visibility == "public" or github.plan == "enterprise"


def _github_plan_problems(github: GitHubConfig) -> list[ConfigProblem]:
    """What GitHub refuses for this plan and visibility (a 404/422 mid-deploy otherwise)."""
    key = f"{PROJECT}:github"
    where = f"on a {github.visibility} repository with GitHub {github.plan}"
    problems = []
    if github.visibility == "internal" and github.plan != "enterprise":
        problems.append(
            ConfigProblem(
                f"{key}.visibility",
                "internal repositories exist only on GitHub Enterprise Cloud: use private, "
                "or plan: enterprise",
                json.dumps(github.visibility),
            )
        )
    if github.visibility != "public" and github.plan == "free":
        problems.append(
            ConfigProblem(
                f"{key}.plan",
                f"{where} there are no environments, environment secrets or branch "
                "protection: make the repository public, or use pro, team or enterprise",
                json.dumps(github.plan),
            )
        )
    if not _plan_has_reviewers(github):
        if github.reviewers:
            problems.append(
                ConfigProblem(
                    f"{key}.reviewers",
                    f"{where} environments cannot have required reviewers (Enterprise "
                    "Cloud only): remove them and gate production by reviewed merges "
                    "(branchPolicy: protected; docs/bootstrapping.md, GitHub plans)",
                    json.dumps(github.reviewers),
                )
            )
        if github.wait_timer_minutes:
            problems.append(
                ConfigProblem(
                    f"{key}.waitTimerMinutes",
                    f"{where} environments cannot have a wait timer (Enterprise Cloud only)",
                    str(github.wait_timer_minutes),
                )
            )
    if github.prevent_self_review and not github.reviewers:
        problems.append(
            ConfigProblem(
                f"{key}.preventSelfReview",
                "GitHub refuses preventSelfReview without required reviewers: add reviewers "
                "or set it false",
                "true",
            )
        )
    elif (
        github.prevent_self_review and len(github.reviewers) == 1 and "/" not in github.reviewers[0]
    ):
        problems.append(
            ConfigProblem(
                f"{key}.reviewers",
                "with preventSelfReview a single reviewer can never approve a deploy they "
                "started themselves: list two reviewers or a team",
                json.dumps(github.reviewers),
            )
        )
    return problems
