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
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra.naming import stack_name_problems

PROJECT = "agent-deploy"

Target: TypeAlias = Literal["local", "aws", "gcp"]
Tier: TypeAlias = Literal["ephemeral", "staging", "production"]
TIERS: tuple[Tier, ...] = ("ephemeral", "staging", "production")
# Targets whose runtime exists in stacks/. A target listed in `Target` but not here is
# refused with a clear message instead of failing at import time.
AVAILABLE_TARGETS: tuple[Target, ...] = ("local", "aws")

SECTIONS = ("target", "tier", "app", "database", "cache", "github", "local", "aws")

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Names that hold credentials: such a value must come from a Pulumi secret, never `app.env`.
_SECRET_LIKE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE|DSN)(_|$)")
_RESERVED_ENV = frozenset(
    {"DATABASE_URL", "DATABASE_URI", "REDIS_URL", "REDIS_URI", "PORT", "POSTGRES_URI"}
)
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_AWS_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso[a-z]*)?-[a-z]+-\d$")
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
        "database": {
            "instanceClass": "db.m7g.large",
            "storageGb": 50,
            "maxStorageGb": 500,
            "backupDays": 14,
            "multiAz": True,
            "deletionProtection": True,
            "finalSnapshot": True,
            "protect": True,
        },
        "cache": {
            "nodeType": "cache.m7g.large",
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
            "createOidcProvider": True,
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
    return value


def _resource_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 2-32 characters of a-z, 0-9 and '-', starting with a letter")
    return value


def _aws_region(value: str) -> str:
    if not _AWS_REGION.match(value):
        raise ValueError("must be an AWS region code such as 'eu-west-1' or 'us-east-2'")
    return value


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"must be an IPv4 CIDR block such as '10.0.0.0/16' ({err})") from None
    if not network.is_private:
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
    cpu: int = Field(gt=0, description="CPU units, 1024 = one vCPU.")
    memory: int = Field(gt=0, description="MiB.")
    min_instances: int = Field(ge=0)
    max_instances: int = Field(ge=1)
    env: dict[EnvName, str] = Field(default_factory=dict)
    secrets: list[EnvName] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _no_credentials_in_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in _RESERVED_ENV:
                raise ValueError(f"'{name}' is set by the stack itself; remove it from app.env")
            if _SECRET_LIKE.search(name):
                raise ValueError(
                    f"'{name}' looks like a credential: set it with "
                    f"`pulumi config set --secret {name} ...` and list it in app.secrets"
                )
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


class DatabaseConfig(_Section):
    engine_version: Literal["16", "17"] = "16"
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

    @field_validator("username")
    @classmethod
    def _not_default_admin(cls, value: str) -> str:
        if value in {"postgres", "admin", "root", "rdsadmin"}:
            raise ValueError(f"'{value}' is a well-known admin name; choose another")
        return value


class CacheConfig(_Section):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: str = Field(default="8.0", pattern=r"^\d+(\.\d+)?$")
    node_type: str = Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    nodes: int = Field(ge=1, le=6)
    automatic_failover: bool
    snapshot_days: int = Field(ge=0, le=35)
    encrypted: bool = True


Reviewer = Annotated[str, Field(description="A GitHub login, or 'org/team-slug' for a team.")]


# Environment variables the stack itself writes (from its outputs); the workflows read them.
GITHUB_STACK_VARIABLES = frozenset(
    {
        "PULUMI_STACK",
        "HEALTH_PATH",
        "SERVICE_URL",
        "AWS_REGION",
        "AWS_DEPLOY_ROLE_ARN",
        "AWS_PREVIEW_ROLE_ARN",
    }
)
# The token that runs the pulumi-github provider is set by hand: a stack never manages it.
GITHUB_UNMANAGED_SECRETS = frozenset({"PULUMI_GITHUB_TOKEN", "PULUMI_GITHUB_PREVIEW_TOKEN"})
_GIT_BRANCH = re.compile(r"^(?!/|-|.*\.\.|.*//|.*\.lock$|.*/$)[A-Za-z0-9._/-]{1,255}$")
_EPHEMERAL_STACK = re.compile(r"^pr(-\d+)?$")


def _github_name_problems(names: list[str]) -> list[str]:
    """GitHub refuses secret/variable names starting with GITHUB_ (and ours never clash)."""
    return [n for n in names if n.startswith("GITHUB_")]


class GitHubConfig(_Section):
    owner: str = Field(pattern=_GITHUB_LOGIN.pattern)
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
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
                    f"{PROJECT}:{section}.{first}", message.format(a=a, b=b), json.dumps(a)
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
    try:
        config = StackConfig.model_validate(merged, context={"root": root})
    except ValidationError as err:
        problems += _problems_from(err, secret_sections)
    if config is not None:
        problems += _production_problems(config)
        problems += github_problems(config)
        problems += aws_problems(config)
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
# Instance families RDS for PostgreSQL and ElastiCache offer (Graviton and current Intel).
RDS_POSTGRES_FAMILIES = frozenset(
    {"t3", "t4g", "m5", "m6g", "m6i", "m7g", "m7i", "m8g", "r5", "r6g", "r6i", "r7g", "r7i", "r8g"}
)
ELASTICACHE_FAMILIES = frozenset({"t3", "t4g", "m5", "m6g", "m7g", "r5", "r6g", "r7g", "c7gn"})
_SIZE = re.compile(r"^(micro|small|medium|large|\d*xlarge)$")
# Performance Insights is not offered on the smallest burstable classes.
PERFORMANCE_INSIGHTS_UNSUPPORTED = frozenset(
    {"db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small"}
)
# Each subnet is carved as 1/16 of the VPC and must hold at least a /24 (251 usable addresses:
# Fargate tasks, NAT and load balancer nodes each take one).
MIN_VPC_PREFIX = 20
# Ranges some AWS services and Docker use internally; a VPC there breaks them in odd ways.
RESERVED_CIDRS = ("172.17.0.0/16",)


def performance_insights_supported(instance_class: str) -> bool:
    return instance_class not in PERFORMANCE_INSIGHTS_UNSUPPORTED


def deploy_repository(config: StackConfig) -> str | None:
    """`owner/repo` the deploy role trusts: the `github` section's, else `aws.githubRepository`."""
    if config.github is not None:
        return f"{config.github.owner}/{config.github.repository}"
    return config.aws.github_repository if config.aws is not None else None


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
        return None
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
                f"Fargate with cpu {config.app.cpu} accepts memory {min(allowed)}-{max(allowed)} "
                f"MiB in steps of {sorted(allowed)[1] - sorted(allowed)[0]}",
                str(config.app.memory),
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
    if config.github is not None and aws.github_repository not in (None, repository):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.githubRepository",
                f"differs from the github section's {repository}; remove one",
                json.dumps(aws.github_repository),
            )
        )
    return problems


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
    if config.tier == "production":
        refusals: list[tuple[str, bool, str, str | None]] = [
            (
                "branchPolicy",
                github.branch_policy == "none",
                "production deploys only from protected branches",
                json.dumps(github.branch_policy),
            ),
            (
                "reviewers",
                not github.reviewers,
                "production needs at least one required reviewer",
                None,
            ),
            (
                "preventSelfReview",
                not github.prevent_self_review,
                "production cannot let the person who started a deploy approve it",
                "false",
            ),
        ]
        for field, violated, message, value in refusals:
            if violated:
                problems.append(ConfigProblem(f"{key}.{field}", message, value))
    return problems
