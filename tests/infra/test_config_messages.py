"""Messages a user acts on: one problem per mistake, every problem in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.stackfile import load_stack_file
from infra.config import ConfigError, load_stack_config
from stacks import PROJECT_ROOT, StackConfigError
from tests.harness import run_stack, stack_inputs


def problems(stack: str, override: dict[str, Any]) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


def keys(found: list[str]) -> list[str]:
    return [p.split(" ", 1)[0].rstrip(":").removeprefix("agent-deploy:") for p in found]


@pytest.mark.parametrize(
    ("tier", "meant"), [("prod", "production"), ("Staging", "staging"), ("ephemral", "ephemeral")]
)
def test_a_tier_typo_is_one_problem_with_did_you_mean(tier: str, meant: str) -> None:
    (problem,) = problems("local", {"tier": tier})
    assert problem.startswith(f'agent-deploy:tier = "{tier}": ')
    assert f"did you mean '{meant}'?" in problem


def test_an_unrecognisable_tier_is_still_one_problem() -> None:
    (problem,) = problems("local", {"tier": "gold"})
    assert "'ephemeral', 'staging' or 'production'" in problem
    assert "did you mean" not in problem


def test_a_tier_typo_still_gets_the_meant_tiers_rules() -> None:
    found = problems("production", {"tier": "prod", "database": {"backupDays": 3}})
    assert keys(found) == ["tier", "database.backupDays"]
    assert "production keeps backups for at least 7 days" in found[1]


def test_a_whole_postgres_version_may_be_written_as_a_number(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    stack = (PROJECT_ROOT / "Pulumi.staging.yaml").read_text()
    (tmp_path / "Pulumi.staging.yaml").write_text(
        stack + "  agent-deploy:database:\n    engineVersion: 17\n"
    )
    stack_file = load_stack_file(tmp_path, "staging")
    config = load_stack_config("staging", stack_file.config, stack_file.secret_keys)
    assert config.database.engine_version == "17"
    group = run_stack("staging", {"database": {"engineVersion": 17}}).one(
        "aws:rds/parameterGroup:ParameterGroup"
    )
    assert group.plain["family"] == "postgres17"


@pytest.mark.parametrize(
    ("section", "version"),
    [("cache", 8.0), ("cache", 7.10), ("cache", 8), ("database", 16.0)],
)
def test_a_version_yaml_would_mangle_is_answered_quote_it(section: str, version: float) -> None:
    (problem,) = problems("staging", {section: {"engineVersion": version}})
    assert problem.startswith(f"agent-deploy:{section}.engineVersion = ")
    assert "in quotes" in problem


@pytest.mark.parametrize(
    ("cpu", "memory", "allowed"),
    [
        (256, 1536, "512, 1024 or 2048 MiB"),
        (512, 512, "1024-4096 MiB in steps of 1024: 1024, 2048, 3072 or 4096 MiB"),
        (8192, 20000, "16384-61440 MiB in steps of 4096: 16384, 20480"),
    ],
)
def test_the_fargate_memory_message_lists_the_allowed_values(
    cpu: int, memory: int, allowed: str
) -> None:
    (problem,) = problems("staging", {"app": {"cpu": cpu, "memory": memory}})
    assert problem.startswith("agent-deploy:app.memory = ")
    assert f"Fargate with cpu {cpu} accepts memory {allowed}" in problem


@pytest.mark.parametrize(
    ("stack", "override", "expected"),
    [
        ("staging", {"app": {"cpu": 300, "memroy": 1024}}, ["app.memroy", "app.cpu"]),
        (
            "production",
            {"app": {"port": 0}, "database": {"backupDays": 3}, "aws": {"flowLogs": False}},
            ["app.port", "database.backupDays", "aws.flowLogs"],
        ),
        ("staging", {"aws": {"region": "moon-1"}, "app": {"cpu": 300}}, ["aws.region", "app.cpu"]),
        (
            "staging",
            {"app": {"build": {"dockerfile": "nope"}}, "cache": {"nodeType": "cache.t4g.large"}},
            ["app.build", "cache.nodeType"],
        ),
        (
            "production",
            {"database": {"multiAz": "sometimes"}, "cache": {"encrypted": False}},
            ["database.multiAz", "cache.encrypted"],
        ),
    ],
)
def test_rules_still_run_when_an_unrelated_field_fails(
    stack: str, override: dict[str, Any], expected: list[str]
) -> None:
    assert keys(problems(stack, override)) == expected


def test_a_stood_in_value_is_never_judged() -> None:
    # cpu is stood in by the preset's 512 to run the rules; memory 8192 is not refused
    # "for cpu 512", which the user never wrote.
    assert keys(problems("staging", {"app": {"cpu": "two", "memory": 8192}})) == ["app.cpu"]
    found = problems(
        "staging",
        {"aws": {"region": "mars-1", "certificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}},
    )
    assert keys(found) == ["aws.region", "aws.certificateArn"]
    assert "pattern" in found[1]  # the field's own problem, not a region mismatch


def test_the_program_registers_nothing_and_reports_everything() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("staging", {"app": {"cpu": 300, "memroy": 1024}})
    assert caught.value.registered == []  # type: ignore[attr-defined]
    assert {p.key for p in caught.value.problems} == {
        "agent-deploy:app.memroy",
        "agent-deploy:app.cpu",
    }


def test_every_credential_like_env_name_is_reported() -> None:
    (problem,) = problems("local", {"app": {"env": {"A_TOKEN": "x", "B_PASSWORD": "y"}}})
    assert "'A_TOKEN' looks like a credential" in problem
    assert "'B_PASSWORD' looks like a credential" in problem
