"""Across stack files: one owner per repository scope and per GitHub environment.

Run by config loading (`stacks.load_config`), before any resource is registered: a conflict
found later would leave a real `pulumi up` half-deployed. Reads the other stack files from
disk and this stack's own claims from the config it runs with. A sibling file that cannot be
read is reported as a warning naming it, never a crash: its own `check` reports the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cli.stackfile import (
    EPHEMERAL_STACK,
    EPHEMERAL_TEMPLATE,
    StackFileError,
    load_stack_file,
    stack_names,
)
from infra.config import PROJECT, TIER_PRESETS, TIERS, ConfigProblem, StackConfig


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


def github_claim_problems(
    project_dir: Path,
    stack: str | None = None,
    config: Mapping[str, str] | None = None,
    warnings: list[str] | None = None,
) -> list[ConfigProblem]:
    """Two stack files managing the same GitHub environment, or both `ownsRepository` for
    the same repository, would overwrite each other's settings on every `pulumi up`.

    Returns the conflicts that involve `stack` (all of them when None), each naming both
    stack files; `config` is that stack's own config (else its file is read). pr-<n> stacks
    and their template are skipped: they may not have a `github` section at all
    (infra.config.github_problems). Sibling files that cannot be read go to `warnings`.
    """
    if stack is not None and config is not None and _claims(stack, config) is None:
        return []  # claims nothing: no conflict can involve it
    environments: dict[tuple[str, str], list[str]] = {}
    owners: dict[str, list[str]] = {}
    protected: dict[str, list[str]] = {}
    relying: dict[str, list[str]] = {}
    names = stack_names(project_dir)
    if stack is not None and config is not None and stack not in names:
        names.append(stack)
    for name in names:
        if name == EPHEMERAL_TEMPLATE or EPHEMERAL_STACK.match(name):
            continue
        if name == stack and config is not None:
            claim = _claims(name, config)
        else:
            try:
                claim = _claims(name, load_stack_file(project_dir, name).config)
            except StackFileError as error:
                if warnings is not None and name != stack:
                    warnings.append(
                        f"skipped Pulumi.{name}.yaml in the GitHub ownership check: {error}"
                    )
                continue
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
        return " and ".join(f"Pulumi.{s}.yaml" for s in sorted(stacks))

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
