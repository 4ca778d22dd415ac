"""GitHubDelivery: the GitHub side of a cloud stack's delivery pipeline (pulumi-github).

One component per stack manages
- the stack's GitHub environments: its own (required reviewers resolved to numeric ids,
  self-review, wait timer, deployment branch policy), and optionally its `-preview`
  environment and a shared ephemeral one;
- their Actions secrets (`value`, never the deprecated plaintext fields) and variables, which
  carry what the workflows read from the stack (service URL, region, deploy role ARN, stack);
- repository-level secrets, variables and the default branch's protection, only when the stack
  owns the repository scope, so two stacks never manage the same repository setting.

Everything comes in through typed args: this module never reads Pulumi config. The GitHub
provider (owner, token) is passed by the caller through `opts`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import pulumi
import pulumi_github as github

BranchPolicy: TypeAlias = Literal["protected", "default", "none"]
MAX_REVIEWERS = 6  # GitHub's limit on required reviewers per environment
_LOGIN = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class EnvironmentArgs:
    """One GitHub environment and what lives in it."""

    name: str
    reviewers: Sequence[str] = ()  # GitHub logins, or teams as 'org/team-slug'
    prevent_self_review: bool = False
    can_admins_bypass: bool = True
    wait_timer_minutes: int = 0
    branch_policy: BranchPolicy = "none"
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class GitHubDeliveryArgs:
    repository: str
    environments: Sequence[EnvironmentArgs]
    default_branch: str = "main"
    owns_repository: bool = False
    repository_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    repository_variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    protect_default_branch: bool = False
    required_checks: Sequence[str] = ()
    required_approvals: int = 1
    code_owner_reviews: bool = True


def _problems(args: GitHubDeliveryArgs) -> list[str]:
    """What GitHub would refuse, or what would make two stacks fight, found before any call."""
    problems = []
    if not args.environments:
        problems.append("at least one environment is required")
    names = [e.name for e in args.environments]
    if len({n.lower() for n in names}) != len(names):
        problems.append(f"environment names repeat (GitHub ignores case): {names}")
    for env in args.environments:
        if not _ENVIRONMENT.match(env.name):
            problems.append(f"environment {env.name!r}: letters, digits, '_', '.', '-' only")
        if len(env.reviewers) > MAX_REVIEWERS:
            problems.append(f"environment {env.name}: at most {MAX_REVIEWERS} reviewers")
        bad = [r for r in env.reviewers if not (_LOGIN.match(r) or _TEAM.match(r))]
        if bad:
            problems.append(
                f"environment {env.name}: reviewers {bad} are neither a login nor 'org/team-slug'"
            )
        bad = [
            n
            for n in (*env.secrets, *env.variables)
            if not _NAME.match(n) or n.upper().startswith("GITHUB_")
        ]
        if bad:
            problems.append(f"environment {env.name}: invalid secret/variable names {bad}")
    repository_scope = bool(
        args.repository_secrets or args.repository_variables or args.protect_default_branch
    )
    if repository_scope and not args.owns_repository:
        problems.append(
            "repository secrets, variables and the default branch's protection are "
            "managed only by the stack that owns the repository"
        )
    if args.required_checks and not args.protect_default_branch:
        problems.append("required checks need protect_default_branch")
    if args.protect_default_branch and args.required_approvals < 1:
        problems.append("the default branch needs at least one approving review: its pushes deploy")
    return problems


def _branch_policy(
    policy: BranchPolicy,
) -> github.RepositoryEnvironmentDeploymentBranchPolicyArgs | None:
    if policy == "protected":
        return github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
            protected_branches=True, custom_branch_policies=False
        )
    if policy == "default":
        # Custom policies; the one policy (the default branch) is its own resource below.
        return github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
            protected_branches=False, custom_branch_policies=True
        )
    return None  # any branch may deploy (ephemeral, preview)


def _not_secret(name: str, value: pulumi.Input[str]) -> pulumi.Output[str]:
    """A variable's value, refused if it is a secret: GitHub shows variables in plain text
    (settings page, job logs), so a secret Output must become an Actions secret instead."""
    output = pulumi.Output.from_input(value)
    secret: pulumi.Output[bool] = pulumi.Output.from_input(output.is_secret())

    def check(pair: list[Any]) -> str:
        is_secret, text = pair
        if is_secret:
            raise ValueError(
                f"GitHub variable {name} would publish a secret value: pass it as a secret instead"
            )
        return str(text)

    return pulumi.Output.all(secret, output).apply(check)


class GitHubDelivery(pulumi.ComponentResource):
    """`environments` maps each managed environment name to its (resolved) name output."""

    environments: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: GitHubDeliveryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = _problems(args)
        if problems:
            raise ValueError(f"GitHubDelivery {name}: " + "; ".join(problems))
        super().__init__("agent-deploy:github:Delivery", name, None, opts)
        self._name = name
        self._repository = args.repository
        self.environments = {
            env.name: self._environment(env, args.default_branch) for env in args.environments
        }
        if args.owns_repository:
            self._repository_scope(args)
        self.register_outputs({"environments": self.environments})

    # Secrets and variables are keyed by (repository, [environment,] name) on GitHub, so a
    # replacement must delete before it creates: the default create-then-delete would delete
    # the secret it just wrote (pulumi-github #111, #223: "changing a secret's value deletes
    # it"). `ignore_changes` is deliberately not used: pulumi-github 6.13+ detects drift
    # through `remoteUpdatedAt` (an output, so the #249 `updatedAt` replacement loop no longer
    # applies), and a secret edited by hand in GitHub *should* be put back to the stack's value.
    def _keyed(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, delete_before_replace=True)

    def _reviewers(self, logins: Sequence[str]) -> list[github.RepositoryEnvironmentReviewerArgs]:
        if not logins:
            return []
        invoke = pulumi.InvokeOutputOptions(parent=self)
        users: list[pulumi.Input[int]] = []
        teams: list[pulumi.Input[int]] = []
        for reviewer in logins:
            if "/" in reviewer:
                # The team's org is the provider's owner (checked in config); summary_only
                # skips listing members and repositories.
                slug = reviewer.split("/", 1)[1]
                team = github.get_team_output(slug=slug, summary_only=True, opts=invoke)
                teams.append(team.id.apply(int))
            else:
                user = github.get_user_output(username=reviewer, opts=invoke)
                users.append(user.id.apply(int))
        return [github.RepositoryEnvironmentReviewerArgs(users=users, teams=teams)]

    def _environment(self, env: EnvironmentArgs, default_branch: str) -> pulumi.Output[str]:
        prefix = f"{self._name}-{env.name}"
        environment = github.RepositoryEnvironment(
            prefix,
            repository=self._repository,
            environment=env.name,
            reviewers=self._reviewers(env.reviewers),
            prevent_self_review=env.prevent_self_review,
            can_admins_bypass=env.can_admins_bypass,
            wait_timer=env.wait_timer_minutes or None,
            deployment_branch_policy=_branch_policy(env.branch_policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Every child names the environment through its output, so it waits for it.
        name = environment.environment
        if env.branch_policy == "default":
            github.RepositoryEnvironmentDeploymentPolicy(
                f"{prefix}-branch",
                repository=self._repository,
                environment=name,
                branch_pattern=default_branch,
                opts=pulumi.ResourceOptions(parent=self),
            )
        for secret, value in sorted(env.secrets.items()):
            github.ActionsEnvironmentSecret(
                f"{prefix}-secret-{secret}",
                repository=self._repository,
                environment=name,
                secret_name=secret,
                value=pulumi.Output.secret(value),
                opts=self._keyed(),
            )
        for variable, value in sorted(env.variables.items()):
            github.ActionsEnvironmentVariable(
                f"{prefix}-var-{variable}",
                repository=self._repository,
                environment=name,
                variable_name=variable,
                value=_not_secret(f"{env.name}/{variable}", value),
                opts=self._keyed(),
            )
        return name

    def _repository_scope(self, args: GitHubDeliveryArgs) -> None:
        for secret, value in sorted(args.repository_secrets.items()):
            github.ActionsSecret(
                f"{self._name}-repo-secret-{secret}",
                repository=self._repository,
                secret_name=secret,
                value=pulumi.Output.secret(value),
                opts=self._keyed(),
            )
        for variable, value in sorted(args.repository_variables.items()):
            github.ActionsVariable(
                f"{self._name}-repo-var-{variable}",
                repository=self._repository,
                variable_name=variable,
                value=_not_secret(variable, value),
                opts=self._keyed(),
            )
        if args.protect_default_branch:
            # A classic branch protection rule, not a ruleset: an environment whose policy is
            # "protected branches" only counts branch protection rules, and with none in the
            # repository GitHub lets *every* branch deploy to it.
            github.BranchProtection(
                f"{self._name}-default-branch",
                repository_id=self._repository,
                pattern=args.default_branch,
                enforce_admins=True,
                allows_deletions=False,
                allows_force_pushes=False,
                # Changes arrive by reviewed pull request: a push to the default branch
                # deploys staging with its credentials, and production deploys from it. The
                # last pusher cannot approve their own push, and CODEOWNERS owners must
                # approve changes to what deploys (.github/, infra/, stacks/, Pulumi.*.yaml).
                required_pull_request_reviews=[
                    github.BranchProtectionRequiredPullRequestReviewArgs(
                        required_approving_review_count=args.required_approvals,
                        dismiss_stale_reviews=True,
                        require_code_owner_reviews=args.code_owner_reviews,
                        require_last_push_approval=True,
                    )
                ],
                required_status_checks=[
                    github.BranchProtectionRequiredStatusCheckArgs(
                        strict=True, contexts=list(args.required_checks)
                    )
                ]
                if args.required_checks
                else [],
                opts=pulumi.ResourceOptions(parent=self),
            )
