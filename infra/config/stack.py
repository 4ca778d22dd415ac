"""One stack's whole configuration: every section together."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
)

from infra.config.app import AppConfig, LocalConfig
from infra.config.aws import AwsConfig
from infra.config.common import (
    AVAILABLE_TARGETS,
    Target,
    Tier,
    _Section,
)
from infra.config.data import CacheConfig, DatabaseConfig
from infra.config.gcp import GcpConfig
from infra.config.github import GitHubConfig
from infra.config.pull_requests import PullRequestsConfig


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
    gcp: GcpConfig | None = None
    pull_requests: PullRequestsConfig = Field(default_factory=PullRequestsConfig)

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
