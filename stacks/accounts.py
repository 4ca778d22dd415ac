"""Across stack files: one owner of the GitHub OIDC provider per AWS account.

IAM holds one provider per URL per account, so a second stack creating it fails at `pulumi up`
(EntityAlreadyExists), and only `aws.accountId` tells offline whether two stacks share an
account (docs/aws-accounts.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cli.stackfile import (
    EPHEMERAL_STACK,
    EPHEMERAL_TEMPLATE,
    StackFileError,
    load_stack_file,
    stack_names,
)
from infra.config import PROJECT, ConfigError, ConfigProblem, StackConfig, load_stack_config


def _other_stacks(
    project_dir: Path, config: StackConfig, target: str | None = None, tier: str | None = None
) -> Iterator[tuple[str, StackConfig]]:
    """The project's other long-lived stack files that load, with their config; `target` and
    `tier`, when given, select files before their config is loaded."""
    for name in stack_names(project_dir):
        if name in (config.stack, EPHEMERAL_TEMPLATE) or EPHEMERAL_STACK.match(name):
            continue
        try:
            stack_file = load_stack_file(project_dir, name)
            raw = stack_file.config
            if target is not None and raw.get(f"{PROJECT}:target") != target:
                continue
            if tier is not None and raw.get(f"{PROJECT}:tier") != tier:
                continue
            yield name, load_stack_config(name, stack_file.config, stack_file.secret_keys)
        except (StackFileError, ConfigError):
            continue  # `agent-deploy check --stack <name>` reports it


def oidc_provider_claim_problems(project_dir: Path, config: StackConfig) -> list[ConfigProblem]:
    """Other stack files that create the provider in the same account as `config`, or where
    either account is unnamed."""
    if config.aws is None or not config.aws.create_oidc_provider:
        return []
    account = config.aws.account_id
    clashes: list[str] = []
    others: set[str | None] = set()
    for name, stack in _other_stacks(project_dir, config):
        other = stack.aws
        if other is None or not other.create_oidc_provider:
            continue
        if None in (account, other.account_id) or other.account_id == account:
            clashes.append(name)
            others.add(other.account_id)
    if not clashes:
        return []
    files = " and ".join(f"Pulumi.{s}.yaml" for s in sorted([config.stack, *clashes]))
    where = (
        f"account {account}"
        if account is not None and others == {account}
        else "an account not named by aws.accountId"
    )
    return [
        ConfigProblem(
            f"{PROJECT}:aws.createOidcProvider",
            f"{files} both create the GitHub OIDC provider of {where}; one stack owns it per "
            "account: set createOidcProvider: false in the others of that account, or name each "
            'stack\'s account with aws.accountId: "<12 digits>" if they differ',
            "true",
        )
    ]


def promotion_reader_warnings(project_dir: Path, config: StackConfig) -> list[str]:
    """Production stack files in another AWS account or GCP project that copy this stack's
    digests (`app.copyImage`) but that `imageReaders` does not let pull: their promotion would
    fail at the copy, after the reviewers approved it."""
    if config.app.image is not None or config.tier != "staging":
        return []
    warnings = []
    # Only production files of this target are loaded (another target's config checks would
    # import its provider).
    for name, other in _other_stacks(project_dir, config, target=config.target, tier="production"):
        if not other.app.copy_image:
            continue
        missing = _missing_reader(config, other)
        if missing is not None:
            where, reader, key = missing
            warnings.append(
                f"Pulumi.{name}.yaml ({where}) promotes this stack's images by copying them, "
                f'and may not pull them: add "{reader}" to {key}'
            )
    return warnings


def _missing_reader(config: StackConfig, other: StackConfig) -> tuple[str, str, str] | None:
    """(where production is, the reader to add, the key) when production cannot read here."""
    if config.aws is not None and other.aws is not None:
        account, reader = config.aws.account_id, other.aws.account_id
        if None in (account, reader) or reader == account or reader in config.aws.image_readers:
            return None
        assert reader is not None
        return f"account {reader}", reader, "aws.imageReaders"
    if config.gcp is not None and other.gcp is not None and other.gcp.deploy_identity:
        if other.gcp.project == config.gcp.project:
            return None
        from infra.gcp.identity import deploy_account_email  # not pulumi_gcp in aws stacks

        identity = f"{other.app.name}-{other.stack}-identity"
        email = deploy_account_email(identity, "deploy", other.gcp.project)
        member = f"serviceAccount:{email}"
        if member in config.gcp.image_readers:
            return None
        return f"project {other.gcp.project}", member, "gcp.imageReaders"
    return None
