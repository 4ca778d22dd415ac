"""Account layout in config: who owns the GitHub OIDC provider, production's protected
environment, and the backend the preview role reads. Refused before anything is registered."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, load_stack_config
from stacks import PROJECT_ROOT, StackConfigError
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
