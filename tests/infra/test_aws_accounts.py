"""Account layout in config: who owns the GitHub OIDC provider, production's protected
environment, and the backend the preview role reads. Refused before anything is registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.stackfile import load_stack_file
from infra.config import ConfigError, StackConfig, load_stack_config
from stacks import PROJECT_ROOT, StackConfigError
from stacks.accounts import oidc_provider_claim_problems, promotion_reader_warnings
from tests.harness import run_stack, stack_inputs

PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def problems(stack: str, override: dict[str, Any]) -> dict[str, str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return {p.key: str(p) for p in caught.value.problems}


def loads(stack: str, override: dict[str, Any]) -> None:
    config, secret_keys = stack_inputs(stack, override)
    load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)


def test_production_with_a_deploy_role_must_manage_its_protected_environment() -> None:
    found = problems(
        "production",
        {"github": None, "aws": {"githubRepository": "acme/agents", "githubEnvironment": "prod"}},
    )
    assert set(found) == {"agent-deploy:github"}
    message = found["agent-deploy:github"]
    assert "'prod'" in message and "unprotected" in message
    assert "aws.deployRole: false" in message
    # Nothing is registered either.
    with pytest.raises(StackConfigError):
        run_stack("production", {"github": None})


def test_production_without_a_deploy_role_needs_no_github_section() -> None:
    loads("production", {"github": None, "aws": {"deployRole": False}})


def test_one_stack_per_account_creates_the_provider() -> None:
    found = problems(
        "staging", {"aws": {"createOidcProvider": True, "oidcProviderArn": PROVIDER_ARN}}
    )
    assert set(found) == {"agent-deploy:aws.oidcProviderArn"}
    assert "choose one" in found["agent-deploy:aws.oidcProviderArn"]


def test_creating_the_provider_needs_a_github_role() -> None:
    found = problems(
        "staging",
        {"github": None, "aws": {"deployRole": False, "createOidcProvider": True}},
    )
    assert set(found) == {"agent-deploy:aws.createOidcProvider"}
    assert "creates no GitHub role" in found["agent-deploy:aws.createOidcProvider"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"aws": {"stateBucket": "Acme_State"}}, "agent-deploy:aws.stateBucket"),
        (
            {"aws": {"secretsProviderKeyArn": "arn:aws:kms:eu-west-1:123456789012:alias/x"}},
            "agent-deploy:aws.secretsProviderKeyArn",
        ),
    ],
)
def test_the_preview_backend_keys_are_checked(override: dict[str, Any], key: str) -> None:
    assert key in problems("staging", override)


def test_all_account_problems_are_reported_at_once() -> None:
    found = problems(
        "production",
        {
            "github": None,
            "aws": {
                "githubRepository": "acme/agents",
                "createOidcProvider": True,
                "oidcProviderArn": PROVIDER_ARN,
            },
        },
    )
    assert {
        "agent-deploy:github",
        "agent-deploy:aws.oidcProviderArn",
    } <= set(found)


def _project(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: agent-deploy\nruntime: python\n")
    for stack, aws in stacks.items():
        config = {
            "agent-deploy:target": "aws",
            "agent-deploy:tier": "staging",
            "agent-deploy:aws": {"region": "eu-west-1", "githubRepository": "acme/agent", **aws},
        }
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def _load(root: Path, stack: str) -> StackConfig:
    stack_file = load_stack_file(root, stack)
    return load_stack_config(stack, stack_file.config, stack_file.secret_keys)


@pytest.mark.parametrize(
    ("staging", "qa", "clash"),
    [
        ({}, {}, "an account not named by aws.accountId"),
        ({"accountId": "111111111111"}, {}, "an account not named by aws.accountId"),
        ({"accountId": "111111111111"}, {"accountId": "111111111111"}, "account 111111111111"),
        ({"accountId": "111111111111"}, {"accountId": "222222222222"}, None),
        ({}, {"createOidcProvider": False}, None),
        ({}, {"oidcProviderArn": PROVIDER_ARN, "createOidcProvider": False}, None),
    ],
)
def test_one_stack_file_creates_the_provider_per_account(
    tmp_path: Path, staging: dict[str, Any], qa: dict[str, Any], clash: str | None
) -> None:
    root = _project(tmp_path, {"staging": staging, "qa": qa, "pr": {}})
    found = oidc_provider_claim_problems(root, _load(root, "staging"))
    if clash is None:
        assert found == []
        return
    (problem,) = found
    assert problem.key == "agent-deploy:aws.createOidcProvider"
    assert "Pulumi.qa.yaml and Pulumi.staging.yaml" in problem.message
    assert clash in problem.message
    if "createOidcProvider" not in qa:
        (mirror,) = oidc_provider_claim_problems(root, _load(root, "qa"))
        assert mirror.message == problem.message


def test_a_second_owner_of_the_provider_is_refused_before_deploying() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("production", {"aws": {"createOidcProvider": True}})
    (problem,) = caught.value.problems
    assert problem.key == "agent-deploy:aws.createOidcProvider"
    assert "Pulumi.production.yaml and Pulumi.staging.yaml" in problem.message


@pytest.mark.parametrize(("account", "words"), [(123456789012, "in quotes"), ("12345", "12-digit")])
def test_the_account_id_is_twelve_quoted_digits(account: object, words: str) -> None:
    found = problems("staging", {"aws": {"accountId": account}})
    assert words in found["agent-deploy:aws.accountId"]


def test_a_named_account_pins_the_provider_and_the_oidc_provider_arn() -> None:
    found = problems(
        "staging",
        {
            "aws": {
                "accountId": "999999999999",
                "createOidcProvider": False,
                "oidcProviderArn": PROVIDER_ARN,
            }
        },
    )
    assert "not aws.accountId 999999999999" in found["agent-deploy:aws.oidcProviderArn"]
    run = run_stack("staging", {"aws": {"accountId": "123456789012"}})
    (provider,) = [r for r in run.of_type("pulumi:providers:aws") if r.name == "agent-staging-aws"]
    assert json.loads(provider.plain["allowedAccountIds"]) == ["123456789012"]


def _shipped(tmp_path: Path, accounts: dict[str, dict[str, Any]]) -> Path:
    """The shipped staging and production files, with `aws` keys changed per stack."""
    (tmp_path / "Pulumi.yaml").write_text("name: agent-deploy\nruntime: python\n")
    for stack, aws in accounts.items():
        document = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text())
        document["config"]["agent-deploy:aws"].update(aws)
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


@pytest.mark.parametrize(
    ("staging", "production", "warned"),
    [
        ({"accountId": "111111111111"}, {"accountId": "222222222222"}, True),
        ({"accountId": "111111111111", "imageReaders": ["222222222222"]},
         {"accountId": "222222222222"}, False),
        ({"accountId": "111111111111"}, {"accountId": "111111111111"}, False),  # one account
        ({}, {"accountId": "222222222222"}, False),  # staging's account unknown offline
    ],
)  # fmt: skip
def test_staging_warns_when_production_in_another_account_may_not_copy_its_images(
    tmp_path: Path, staging: dict[str, Any], production: dict[str, Any], warned: bool
) -> None:
    root = _shipped(tmp_path, {"staging": staging, "production": production})
    found = promotion_reader_warnings(root, _load(root, "staging"))
    assert bool(found) is warned
    if warned:
        (warning,) = found
        assert "Pulumi.production.yaml (account 222222222222)" in warning
        assert '"222222222222" to aws.imageReaders' in warning


def test_gcp_staging_grants_and_names_the_member_production_deploys_as() -> None:
    """The shipped gcp-staging lets gcp-production (another project) copy its images, as the
    account production's identity really creates; without it, staging warns naming it."""
    production = run_stack("gcp-production")
    (deploy,) = [
        r.plain["accountId"]
        for r in production.of_type("gcp:serviceaccount/account:Account")
        if r.plain["accountId"].endswith("-deploy")
    ]
    member = f"serviceAccount:{deploy}@example-agent-production.iam.gserviceaccount.com"
    shipped = run_stack("gcp-staging")
    readers = [
        r.plain["member"]
        for r in shipped.of_type("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
        if r.plain["role"] == "roles/artifactregistry.reader"
    ]
    assert readers == [member]
    assert promotion_reader_warnings(PROJECT_ROOT, _load(PROJECT_ROOT, "gcp-staging")) == []
    config, secret_keys = stack_inputs("gcp-staging", {"gcp": {"imageReaders": []}})
    ungranted = load_stack_config("gcp-staging", config, secret_keys, root=PROJECT_ROOT)
    (warning,) = promotion_reader_warnings(PROJECT_ROOT, ungranted)
    assert "Pulumi.gcp-production.yaml (project example-agent-production)" in warning
    assert f'add "{member}" to gcp.imageReaders' in warning
