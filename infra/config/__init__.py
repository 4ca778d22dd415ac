"""Typed stack configuration and the tier presets.

`presets` is the only place defaults live. A stack's effective configuration is
``target defaults < tier preset < what the stack file says``; the presets are the one visible
table that relaxes security and reliability by tier (ephemeral < staging < production).

Validation is pure: it takes the raw Pulumi config (``{"agent-deploy:database": "<json>"}``)
and the set of keys Pulumi marked secret, and either returns a :class:`StackConfig` or raises
:class:`ConfigError` listing *every* problem, each named by the key a user writes in
``Pulumi.<stack>.yaml``. Nothing here touches Pulumi's runtime, so it runs before any
resource is registered.

Layout, by concern: `common` (names, field types), `presets`, one module per section
(`app`, `data`, `github`, `aws`, `gcp`), `stack` (the whole model), `problems` and `errors` (how a
problem is reported), `rules` (cross-field, production, secrets), `load` (the entry point).
Every public name is importable from `infra.config`.
"""

from infra.config.app import (
    AppConfig,
    BuildConfig,
    Hostname,
    LocalConfig,
    default_zone,
    service_hostname,
)
from infra.config.aws import (
    ACM_MAX_DOMAIN,
    ELASTICACHE_FAMILIES,
    ELASTICACHE_NODE_TYPES,
    FARGATE_SIZES,
    LOG_RETENTION_DAYS,
    MAX_VPC_PREFIX,
    MIN_VPC_PREFIX,
    PERFORMANCE_INSIGHTS_UNSUPPORTED,
    RDS_POSTGRES_CLASSES,
    RDS_POSTGRES_FAMILIES,
    RESERVED_CIDRS,
    AwsConfig,
    AwsRegion,
    aws_problems,
    aws_regions,
    deploy_environment,
    deploy_repository,
    ephemeral_stack,
    performance_insights_supported,
)
from infra.config.common import (
    AVAILABLE_TARGETS,
    DATABASE_APP_USER,
    PLATFORMS,
    PROJECT,
    RFC1918_NETWORKS,
    SECRET_PLACEHOLDER,
    SECTIONS,
    TIERS,
    Cidr,
    EnvName,
    Platform,
    ResourceName,
    Target,
    Tier,
    UrlPath,
)
from infra.config.data import POSTGRES_RESERVED_WORDS, CacheConfig, DatabaseConfig
from infra.config.gcp import (
    CLOUD_RUN_SIZES,
    GCP_REGIONS,
    GcpConfig,
    GcpRedisConfig,
    GcpSqlConfig,
    gcp_problems,
)
from infra.config.github import (
    GITHUB_ENVIRONMENT_ONLY_SECRETS,
    GITHUB_PLANS,
    GITHUB_STACK_VARIABLES,
    GITHUB_UNMANAGED_SECRETS,
    GitHubConfig,
    Reviewer,
    github_problems,
)
from infra.config.load import load_stack_config
from infra.config.presets import (
    DEFAULT_ENGINE_VERSIONS,
    ENGINE_VERSIONS,
    PRODUCTION_MIN_BACKUP_DAYS,
    TARGET_DEFAULTS,
    TIER_PRESETS,
)
from infra.config.problems import ConfigError, ConfigProblem
from infra.config.pull_requests import (
    PR_BASE_OUTPUT,
    PullRequestsConfig,
    base_stack_reference,
    pull_request_problems,
)
from infra.config.stack import StackConfig
from infra.timeouts import AWS_MAX_RUN_TIMEOUT_SECONDS, FARGATE_MAX_STOP_SECONDS


def __getattr__(name: str) -> object:
    """`AWS_REGIONS` comes from pulumi_aws, imported only when asked for (aws stacks)."""
    if name == "AWS_REGIONS":
        return aws_regions()
    raise AttributeError(name)


__all__ = [
    "ACM_MAX_DOMAIN",
    "AVAILABLE_TARGETS",
    "AWS_MAX_RUN_TIMEOUT_SECONDS",
    "CLOUD_RUN_SIZES",
    "DATABASE_APP_USER",
    "DEFAULT_ENGINE_VERSIONS",
    "ELASTICACHE_FAMILIES",
    "ELASTICACHE_NODE_TYPES",
    "ENGINE_VERSIONS",
    "FARGATE_MAX_STOP_SECONDS",
    "FARGATE_SIZES",
    "GCP_REGIONS",
    "GITHUB_ENVIRONMENT_ONLY_SECRETS",
    "GITHUB_PLANS",
    "GITHUB_STACK_VARIABLES",
    "GITHUB_UNMANAGED_SECRETS",
    "LOG_RETENTION_DAYS",
    "MAX_VPC_PREFIX",
    "MIN_VPC_PREFIX",
    "PERFORMANCE_INSIGHTS_UNSUPPORTED",
    "PLATFORMS",
    "POSTGRES_RESERVED_WORDS",
    "PRODUCTION_MIN_BACKUP_DAYS",
    "PROJECT",
    "PR_BASE_OUTPUT",
    "RDS_POSTGRES_CLASSES",
    "RDS_POSTGRES_FAMILIES",
    "RESERVED_CIDRS",
    "RFC1918_NETWORKS",
    "SECRET_PLACEHOLDER",
    "SECTIONS",
    "TARGET_DEFAULTS",
    "TIERS",
    "TIER_PRESETS",
    "AppConfig",
    "AwsConfig",
    "AwsRegion",
    "BuildConfig",
    "CacheConfig",
    "Cidr",
    "ConfigError",
    "ConfigProblem",
    "DatabaseConfig",
    "EnvName",
    "GcpConfig",
    "GcpRedisConfig",
    "GcpSqlConfig",
    "GitHubConfig",
    "Hostname",
    "LocalConfig",
    "Platform",
    "PullRequestsConfig",
    "ResourceName",
    "Reviewer",
    "StackConfig",
    "Target",
    "Tier",
    "UrlPath",
    "aws_problems",
    "aws_regions",
    "base_stack_reference",
    "default_zone",
    "deploy_environment",
    "deploy_repository",
    "ephemeral_stack",
    "gcp_problems",
    "github_problems",
    "load_stack_config",
    "performance_insights_supported",
    "pull_request_problems",
    "service_hostname",
]
