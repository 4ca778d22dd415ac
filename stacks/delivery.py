"""Wire a cloud stack's GitHub delivery (infra/github.py) from its validated config.

Called at the end of each cloud target's `build()` with the variables the workflows need
from that stack's outputs. Returns None, creating nothing on GitHub, when the stack has no
`github` section.

Where `variables` go (the keys are the variable names the workflows read):
- `NAME`: the stack's own environment;
- `AWS_PREVIEW_ROLE_ARN`, `GCP_PREVIEW_SERVICE_ACCOUNT` and `preview/NAME`: the
  `<environment>-preview` environment (when `github.previewEnvironment`), which also gets
  `PULUMI_STACK` and the SHARED variables (region, GCP project and identity provider);
- `ephemeral/NAME`: the shared environment of the pr-<n> stacks (when
  `github.ephemeralEnvironment`, staging only), which also gets the SHARED variables and
  `READY_PATH`.
`READY_PATH` (app.readinessPath) is the path the workflows' smoke tests probe.
Scoped keys for an environment this stack does not manage are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_github as github

from infra.config import StackConfig
from infra.github import EnvironmentArgs, GitHubDelivery, GitHubDeliveryArgs
from stacks import secret_values
from stacks.claims import github_claim_problems

__all__ = ["environments", "github_claim_problems", "github_delivery"]

PREVIEW = "preview"
EPHEMERAL = "ephemeral"
PREVIEW_ONLY = frozenset({"AWS_PREVIEW_ROLE_ARN", "GCP_PREVIEW_SERVICE_ACCOUNT"})
SHARED = ("AWS_REGION", "GCP_PROJECT", "GCP_REGION", "GCP_WORKLOAD_IDENTITY_PROVIDER")


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
