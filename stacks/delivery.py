"""Wire a cloud stack's GitHub delivery (infra/github.py) from its validated config.

Called at the end of each cloud target's `build()` with the variables the workflows need
from that stack's outputs. Returns None, creating nothing on GitHub, when the stack has no
`github` section.

Where `variables` go (the keys are the variable names the workflows read):
- `NAME`: the stack's own environment;
- `AWS_PREVIEW_ROLE_ARN` and `preview/NAME`: the `<environment>-preview` environment
  (when `github.previewEnvironment`), which also gets `PULUMI_STACK` and `AWS_REGION`;
- `ephemeral/NAME`: the shared environment of the pr-<n> stacks (when
  `github.ephemeralEnvironment`, staging only), which also gets `AWS_REGION`, `HEALTH_PATH`
  and `READY_PATH`.
`READY_PATH` (app.readinessPath) is the path the workflows' smoke tests probe.
Scoped keys for an environment this stack does not manage are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_github as github

from cli.stackfile import (
    EPHEMERAL_STACK,
    EPHEMERAL_TEMPLATE,
    StackFileError,
    load_stack_file,
    stack_names,
)
from infra.config import (
    PROJECT,
    TIER_PRESETS,
    TIERS,
    ConfigError,
    ConfigProblem,
    StackConfig,
)
from infra.github import EnvironmentArgs, GitHubDelivery, GitHubDeliveryArgs
from stacks import PROJECT_ROOT, StackConfigError, secret_values

PREVIEW = "preview"
EPHEMERAL = "ephemeral"
PREVIEW_ONLY = frozenset({"AWS_PREVIEW_ROLE_ARN"})
SHARED = ("AWS_REGION",)


def _split(
    variables: Mapping[str, pulumi.Input[str]],
) -> dict[str, dict[str, pulumi.Input[str]]]:
    scoped: dict[str, dict[str, pulumi.Input[str]]] = {"": {}, PREVIEW: {}, EPHEMERAL: {}}
    for key, value in variables.items():
        scope, _, name = key.rpartition("/")
        if name in PREVIEW_ONLY and not scope:
            scope = PREVIEW
        if scope not in scoped:
            raise ValueError(
                f"github_delivery: variable {key!r} has an unknown scope "
                f"'{scope}/' (use {PREVIEW}/ or {EPHEMERAL}/)"
            )
        scoped[scope][name] = value
    return scoped


def environments(
    config: StackConfig, variables: Mapping[str, pulumi.Input[str]]
) -> list[EnvironmentArgs]:
    """The environments the stack manages and what each holds (secrets only in its own)."""
    gh = config.github
    assert gh is not None
    scoped = _split(variables)
    clashes = sorted(set(scoped[""]) & set(gh.variables))
    if clashes:
        raise ValueError(
            f"github.variables {clashes} are also written by the stack from its "
            "outputs; remove them from the stack file"
        )
    own = config.github_environment
    shared = {k: scoped[""][k] for k in SHARED if k in scoped[""]}
    result = [
        EnvironmentArgs(
            name=own,
            reviewers=gh.reviewers,
            prevent_self_review=gh.prevent_self_review,
            can_admins_bypass=gh.can_admins_bypass,
            wait_timer_minutes=gh.wait_timer_minutes,
            branch_policy=gh.branch_policy,
            secrets=secret_values(gh.secrets),
            variables={
                "PULUMI_STACK": config.stack,
                "HEALTH_PATH": config.app.health_path,
                "READY_PATH": config.app.readiness_path,
                **scoped[""],
                **gh.variables,
            },
        )
    ]
    if gh.preview_environment:
        # Serves pull requests: no reviewers, any branch, and only a read-only role.
        result.append(
            EnvironmentArgs(
                name=f"{own}-preview",
                variables={"PULUMI_STACK": config.stack, **shared, **scoped[PREVIEW]},
            )
        )
    if gh.ephemeral_environment:
        result.append(
            EnvironmentArgs(
                name=gh.ephemeral_environment,
                variables={
                    "HEALTH_PATH": config.app.health_path,
                    "READY_PATH": config.app.readiness_path,
                    **shared,
                    **scoped[EPHEMERAL],
                },
            )
        )
    return result


def github_delivery(
    config: StackConfig, variables: Mapping[str, pulumi.Input[str]]
) -> GitHubDelivery | None:
    gh = config.github
    if gh is None:
        return None
    problems = github_claim_problems(PROJECT_ROOT, config.stack)
    problems += codeowners_problems(PROJECT_ROOT, config)
    if problems:
        raise StackConfigError(ConfigError(config.stack, problems))
    name = f"{config.app.name}-{config.stack}-github"
    # No `token` input: the provider reads GITHUB_TOKEN from the environment of the
    # `pulumi up` itself, so the token is never in config or in the state, and rotating it
    # (a new token per workflow run) is not a change to the stack.
    provider = github.Provider(name, owner=gh.owner)
    return GitHubDelivery(
        name,
        GitHubDeliveryArgs(
            repository=gh.repository,
            environments=environments(config, variables),
            default_branch=gh.default_branch,
            owns_repository=gh.owns_repository,
            repository_secrets=secret_values(gh.repository_secrets) if gh.owns_repository else {},
            repository_variables=dict(gh.repository_variables) if gh.owns_repository else {},
            protect_default_branch=gh.protect_default_branch,
            required_checks=gh.required_checks,
            required_approvals=gh.required_approvals,
            code_owner_reviews=gh.code_owner_reviews,
        ),
        pulumi.ResourceOptions(providers=[provider]),
    )


# Where GitHub looks for the code owners file.
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


def codeowners_problems(project_dir: Path, config: StackConfig) -> list[ConfigProblem]:
    """Code-owner reviews without a CODEOWNERS file require nothing: GitHub finds no owner."""
    gh = config.github
    if gh is None or not (gh.protect_default_branch and gh.code_owner_reviews):
        return []
    if any((project_dir / path).is_file() for path in CODEOWNERS_PATHS):
        return []
    return [
        ConfigProblem(
            f"{PROJECT}:github.codeOwnerReviews",
            "requires a CODEOWNERS file (.github/CODEOWNERS) naming who reviews "
            ".github/, infra/, stacks/ and Pulumi.*.yaml; without one GitHub requires no "
            "code owner",
            "true",
        )
    ]


# --------------------------------------------------------------------------------------------
# Across stacks: one owner per repository scope and per environment, checked offline.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Claim:
    repository: str  # owner/repo, lower case
    environments: list[str]
    owns_repository: bool
    protects_default_branch: bool
    protected_branch_policy: bool


def _claims(stack: str, config: Mapping[str, str]) -> _Claim | None:
    """What a stack file's `github` section claims, read leniently (tier presets applied)."""
    try:
        section = json.loads(config.get(f"{PROJECT}:github", "null"))
    except ValueError:
        return None
    if not isinstance(section, dict):
        return None
    owner, repository = section.get("owner"), section.get("repository")
    if not isinstance(owner, str) or not isinstance(repository, str):
        return None
    tier = config.get(f"{PROJECT}:tier", "ephemeral")
    preset = next((TIER_PRESETS[t]["github"] for t in TIERS if t == tier), {})
    merged = {**preset, **section}
    own = str(merged.get("environment") or stack)
    names = [own]
    if merged.get("previewEnvironment") is True:
        names.append(f"{own}-preview")
    if isinstance(merged.get("ephemeralEnvironment"), str):
        names.append(merged["ephemeralEnvironment"])
    return _Claim(
        repository=f"{owner}/{repository}".lower(),
        environments=names,
        owns_repository=merged.get("ownsRepository") is True,
        protects_default_branch=merged.get("protectDefaultBranch") is True,
        protected_branch_policy=merged.get("branchPolicy") == "protected",
    )


def github_claim_problems(project_dir: Path, stack: str | None = None) -> list[ConfigProblem]:
    """Two stack files managing the same GitHub environment, or both `ownsRepository` for
    the same repository, would overwrite each other's settings on every `pulumi up`.

    Returns the conflicts that involve `stack` (all of them when None), each naming both
    stack files. pr-<n> stacks and their template are skipped: they may not have a `github`
    section at all (infra.config.github_problems).
    """
    environments: dict[tuple[str, str], list[str]] = {}
    owners: dict[str, list[str]] = {}
    protected: dict[str, list[str]] = {}
    relying: dict[str, list[str]] = {}
    for name in stack_names(project_dir):
        if name == EPHEMERAL_TEMPLATE or EPHEMERAL_STACK.match(name):
            continue
        try:
            stack_file = load_stack_file(project_dir, name)
        except StackFileError:
            continue  # unreadable: `agent-deploy check --stack <name>` reports it
        claim = _claims(name, stack_file.config)
        if claim is None:
            continue
        for environment in claim.environments:
            environments.setdefault((claim.repository, environment.lower()), []).append(name)
        if claim.owns_repository:
            owners.setdefault(claim.repository, []).append(name)
        if claim.owns_repository and claim.protects_default_branch:
            protected.setdefault(claim.repository, []).append(name)
        if claim.protected_branch_policy:
            relying.setdefault(claim.repository, []).append(name)

    def files(stacks: list[str]) -> str:
        return " and ".join(f"Pulumi.{s}.yaml" for s in stacks)

    problems = []
    for repository, stacks in sorted(owners.items()):
        if len(stacks) > 1 and (stack is None or stack in stacks):
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:github.ownsRepository",
                    f"{files(stacks)} both own {repository}'s repository secrets, variables and "
                    "branch rules: set ownsRepository: true in exactly one stack",
                    "true",
                )
            )
    for repository, stacks in sorted(relying.items()):
        if repository not in protected and (stack is None or stack in stacks):
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:github.branchPolicy",
                    f"{files(stacks)}: branchPolicy 'protected' lets only protected branches "
                    f"deploy, but no stack file protects {repository}'s default branch, and "
                    "without a protection rule GitHub lets every branch deploy: set "
                    "protectDefaultBranch: true in the stack that ownsRepository, or use "
                    "branchPolicy: default",
                    json.dumps("protected"),
                )
            )
    for (repository, environment), stacks in sorted(environments.items()):
        if len(stacks) > 1 and (stack is None or stack in stacks):
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:github.environment",
                    f"{files(stacks)} both manage the GitHub environment '{environment}' of "
                    f"{repository}: give each stack its own (github.environment)",
                )
            )
    return problems
