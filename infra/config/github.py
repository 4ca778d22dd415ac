"""The `github` section and its rules that need the rest of the stack."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from infra.config.common import (
    PROJECT,
    EnvName,
    _Section,
)
from infra.config.problems import ConfigProblem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
_GITHUB_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


Reviewer = Annotated[str, Field(description="A GitHub login, or 'org/team-slug' for a team.")]


# Environment variables the stack itself writes (from its outputs); the workflows read them.
GITHUB_STACK_VARIABLES = frozenset(
    {
        "PULUMI_STACK",
        "READY_PATH",
        "SERVICE_URL",
        "AWS_REGION",
        "AWS_DEPLOY_ROLE_ARN",
        "AWS_PREVIEW_ROLE_ARN",
        "GCP_PROJECT",
        "GCP_REGION",
        "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "GCP_DEPLOY_SERVICE_ACCOUNT",
        "GCP_PREVIEW_SERVICE_ACCOUNT",
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
