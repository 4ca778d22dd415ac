"""Bad AWS stack configuration fails before anything is registered, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import FARGATE_SIZES, ConfigError, load_stack_config
from stacks import PROJECT_ROOT, StackConfigError
from tests.harness import run_stack, stack_inputs


def problems(stack: str, override: dict[str, Any]) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


def keys(found: list[str]) -> set[str]:
    return {p.split(" ", 1)[0].rstrip(":") for p in found}


@pytest.mark.parametrize("stack", ["staging", "production", "pr-7"])
def test_the_stack_files_are_valid(stack: str) -> None:
    config, secret_keys = stack_inputs(stack)
    loaded = load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    assert loaded.target == "aws" and loaded.aws is not None
    assert loaded.aws.region == "eu-west-1"
    assert loaded.aws.certificate_arn is None  # no fake ARNs in the stack files


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ({"aws": {"region": "europe-west1"}}, "agent-deploy:aws.region", "AWS region"),
        ({"aws": {"region": "eu-west"}}, "agent-deploy:aws.region", "AWS region"),
        ({"app": {"cpu": 512, "memory": 512}}, "agent-deploy:app.memory", "1024-4096"),
        ({"app": {"cpu": 300}}, "agent-deploy:app.cpu", "Fargate accepts only"),
        ({"app": {"cpu": 256, "memory": 4096}}, "agent-deploy:app.memory", "cpu 256"),
        (
            {"database": {"instanceClass": "db.x9.large"}},
            "agent-deploy:database.instanceClass",
            "families",
        ),
        (
            {"database": {"instanceClass": "db.t4g.huge"}},
            "agent-deploy:database.instanceClass",
            "families",
        ),
        (
            {"database": {"instanceClass": "m7g.large"}},
            "agent-deploy:database.instanceClass",
            "pattern",
        ),
        ({"cache": {"nodeType": "cache.m9z.large"}}, "agent-deploy:cache.nodeType", "families"),
        ({"aws": {"vpcCidr": "10.0.0.0/24"}}, "agent-deploy:aws.vpcCidr", "too small"),
        ({"aws": {"vpcCidr": "172.16.0.0/12"}}, "agent-deploy:aws.vpcCidr", "overlaps 172.17"),
        (
            {"aws": {"vpcCidr": "10.20.0.0/16", "peerCidrs": ["10.20.128.0/20"]}},
            "agent-deploy:aws.vpcCidr",
            "peer network",
        ),
        ({"aws": {"vpcCidr": "8.8.0.0/16"}}, "agent-deploy:aws.vpcCidr", "private"),
        ({"aws": {"availabilityZones": 4}}, "agent-deploy:aws.availabilityZones", "3"),
        ({"aws": {"natGateways": "many"}}, "agent-deploy:aws.natGateways", "perAz"),
        ({"aws": {"logRetentionDays": 10}}, "agent-deploy:aws.logRetentionDays", "CloudWatch"),
        (
            {"github": None, "aws": {"githubRepository": None}},
            "agent-deploy:aws.githubRepository",
            "exactly one repository",
        ),
        (
            {"aws": {"githubRepository": "example-org/*"}},
            "agent-deploy:aws.githubRepository",
            "pattern",
        ),
        (
            {"aws": {"githubRepository": "example-org"}},
            "agent-deploy:aws.githubRepository",
            "pattern",
        ),
        (
            {"aws": {"certificateArn": "arn:aws:acm:eu-west-1:123:certificate/x"}},
            "agent-deploy:aws.certificateArn",
            "pattern",
        ),
        ({"aws": {"secretRecoveryDays": 3}}, "agent-deploy:aws.secretRecoveryDays", "or 7-30 days"),
    ],
)
def test_bad_input_is_named(override: dict[str, Any], key: str, words: str) -> None:
    found = problems("staging", override)
    matching = [p for p in found if p.startswith((f"{key}:", f"{key} ="))]
    assert matching, found
    assert any(words in p for p in matching), matching


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"database": {"deletionProtection": False}}, "agent-deploy:database.deletionProtection"),
        ({"database": {"protect": False}}, "agent-deploy:database.protect"),
        ({"database": {"finalSnapshot": False}}, "agent-deploy:database.finalSnapshot"),
        ({"database": {"encrypted": False}}, "agent-deploy:database.encrypted"),
        ({"database": {"backupDays": 3}}, "agent-deploy:database.backupDays"),
        ({"cache": {"encrypted": False}}, "agent-deploy:cache.encrypted"),
        (
            {"aws": {"loadBalancerDeletionProtection": False}},
            "agent-deploy:aws.loadBalancerDeletionProtection",
        ),
        ({"aws": {"flowLogs": False}}, "agent-deploy:aws.flowLogs"),
        ({"aws": {"natGateways": "none"}}, "agent-deploy:aws.natGateways"),
        ({"aws": {"logRetentionDays": 30}}, "agent-deploy:aws.logRetentionDays"),
        ({"app": {"minInstances": 1}}, "agent-deploy:app.minInstances"),
        ({"app": {"image": "ghcr.io/example/agent:v1"}}, "agent-deploy:app.image"),
    ],
)
def test_production_refuses_to_switch_protection_off(override: dict[str, Any], key: str) -> None:
    found = problems("production", override)
    assert key in keys(found), found
    assert any("production" in p for p in found if p.startswith(key))


def test_staging_may_relax_what_production_may_not() -> None:
    config, secret_keys = stack_inputs(
        "staging", {"aws": {"natGateways": "none", "logRetentionDays": 30}}
    )
    load_stack_config("staging", config, secret_keys, root=PROJECT_ROOT)


def test_single_nat_is_allowed_in_production() -> None:
    config, secret_keys = stack_inputs("production", {"aws": {"natGateways": "single"}})
    loaded = load_stack_config("production", config, secret_keys, root=PROJECT_ROOT)
    assert loaded.aws is not None and loaded.aws.nat_gateways == "single"


def test_every_fargate_pair_is_accepted() -> None:
    for cpu, memories in FARGATE_SIZES.items():
        for memory in (min(memories), max(memories)):
            config, secret_keys = stack_inputs("staging", {"app": {"cpu": cpu, "memory": memory}})
            load_stack_config("staging", config, secret_keys, root=PROJECT_ROOT)


def test_all_problems_in_one_run_and_nothing_registered() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack(
            "production",
            {
                "app": {"cpu": 256, "memory": 8192},
                "database": {"deletionProtection": False, "instanceClass": "db.q1.large"},
                "aws": {"vpcCidr": "10.0.0.0/26", "flowLogs": False},
            },
        )
    assert {p.key for p in caught.value.problems} >= {
        "agent-deploy:app.memory",
        "agent-deploy:database.deletionProtection",
        "agent-deploy:database.instanceClass",
        "agent-deploy:aws.vpcCidr",
        "agent-deploy:aws.flowLogs",
    }


def test_a_field_error_is_named_with_its_value() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("staging", {"aws": {"region": "moon-1"}})
    assert [p.key for p in caught.value.problems] == ["agent-deploy:aws.region"]
    assert "moon-1" in str(caught.value)


def test_github_section_supplies_the_repository() -> None:
    config, secret_keys = stack_inputs(
        "staging",
        {
            "aws": {"githubRepository": None},
            "github": {"owner": "acme", "repository": "agents", "environment": "stage"},
        },
    )
    loaded = load_stack_config("staging", config, secret_keys, root=PROJECT_ROOT)
    from infra.config import deploy_environment, deploy_repository

    assert deploy_repository(loaded) == "acme/agents"
    assert deploy_environment(loaded) == "stage"
    conflicting = problems(
        "staging",
        {
            "aws": {"githubRepository": "other/repo"},
            "github": {"owner": "acme", "repository": "agents"},
        },
    )
    assert "agent-deploy:aws.githubRepository" in keys(conflicting)
