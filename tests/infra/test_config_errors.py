"""Bad configuration: every problem reported at once, named as the user writes the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, load_stack_config
from stacks import PROJECT_ROOT, StackConfigError
from tests.harness import run_stack, stack_inputs


def problems_for(
    override: dict[str, Any] | None = None,
    *,
    secrets: dict[str, str] | None = None,
    plain: dict[str, str] | None = None,
    stack: str = "local",
) -> list[str]:
    config, secret_keys = stack_inputs(stack, override, secrets, plain)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


# (case id, override, secrets, plain, expected key, fragment of the message)
BAD_CONFIGS: list[tuple[str, dict[str, Any], dict[str, str], dict[str, str], str, str]] = [
    ("typo-top-level-key", {}, {}, {"taget": "aws"}, "agent-deploy:taget", "did you mean 'target'"),
    (
        "typo-nested-key",
        {"database": {"bakupDays": 3}},
        {},
        {},
        "agent-deploy:database.bakupDays",
        "did you mean 'backupDays'",
    ),
    (
        "wrong-type-number",
        {"database": {"backupDays": "seven"}},
        {},
        {},
        "agent-deploy:database.backupDays",
        "valid integer",
    ),
    (
        "wrong-type-bool",
        {"database": {"multiAz": "sometimes"}},
        {},
        {},
        "agent-deploy:database.multiAz",
        "valid boolean",
    ),
    (
        "negative-storage",
        {"database": {"storageGb": -20}},
        {},
        {},
        "agent-deploy:database.storageGb",
        "greater than or equal to 20",
    ),
    ("negative-cpu", {"app": {"cpu": -1}}, {}, {}, "agent-deploy:app.cpu", "greater than 0"),
    ("zero-memory", {"app": {"memory": 0}}, {}, {}, "agent-deploy:app.memory", "greater than 0"),
    (
        "port-out-of-range",
        {"app": {"port": 70000}},
        {},
        {},
        "agent-deploy:app.port",
        "less than or equal to 65535",
    ),
    (
        "min-above-max",
        {"app": {"minInstances": 4, "maxInstances": 2}},
        {},
        {},
        "agent-deploy:app.minInstances",
        "greater than maxInstances (2)",
    ),
    (
        "missing-build-context",
        {"app": {"build": {"context": "no-such-dir"}}},
        {},
        {},
        "agent-deploy:app.build.context",
        "'no-such-dir' does not exist",
    ),
    (
        "missing-dockerfile",
        {"app": {"build": {"dockerfile": "app/Nope.Dockerfile"}}},
        {},
        {},
        "agent-deploy:app.build",
        "Dockerfile 'app/Nope.Dockerfile' does not exist",
    ),
    (
        "secret-referenced-not-set",
        {"app": {"secrets": ["OPENAI_API_KEY"]}},
        {},
        {},
        "agent-deploy:OPENAI_API_KEY",
        "pulumi config set --secret OPENAI_API_KEY",
    ),
    (
        "secret-in-plain-text",
        {"app": {"secrets": ["OPENAI_API_KEY"]}},
        {},
        {"OPENAI_API_KEY": "sk-live-123"},
        "agent-deploy:OPENAI_API_KEY",
        "plain text",
    ),
    (
        "credential-in-plain-env",
        {"app": {"env": {"ANTHROPIC_API_KEY": "sk-ant"}}},
        {},
        {},
        "agent-deploy:app.env",
        "looks like a credential",
    ),
    (
        "reserved-env",
        {"app": {"env": {"DATABASE_URL": "postgresql://x"}}},
        {},
        {},
        "agent-deploy:app.env",
        "set by the stack itself",
    ),
    (
        "bad-env-name",
        {"app": {"env": {"my-var": "1"}}},
        {},
        {},
        "agent-deploy:app.env.my-var",
        "environment variable name",
    ),
    (
        "health-path-without-slash",
        {"app": {"healthPath": "health"}},
        {},
        {},
        "agent-deploy:app.healthPath",
        "starting with '/'",
    ),
    ("unknown-tier", {"tier": "prod"}, {}, {}, "agent-deploy:tier", "'ephemeral', 'staging'"),
    ("unknown-target", {"target": "azure"}, {}, {}, "agent-deploy:target", "'local', 'aws'"),
    (
        "gcp-without-section",
        {"target": "gcp"},
        {},
        {},
        "agent-deploy:gcp",
        "required when target is 'gcp' (at least `project` and `region`)",
    ),
    (
        "aws-without-section",
        {"target": "aws"},
        {},
        {},
        "agent-deploy:aws",
        "required when target is",
    ),
    (
        "section-not-an-object",
        {"database": "big"},
        {},
        {},
        "agent-deploy:database",
        "must be an object",
    ),
    (
        "production-unencrypted",
        {"tier": "production", "database": {"encrypted": False}},
        {},
        {},
        "agent-deploy:database.encrypted",
        "cannot turn off storage encryption",
    ),
    (
        "production-no-deletion-protection",
        {"tier": "production", "database": {"deletionProtection": False}},
        {},
        {},
        "agent-deploy:database.deletionProtection",
        "cannot turn off deletion protection",
    ),
    (
        "production-short-backups",
        {"tier": "production", "database": {"backupDays": 3}},
        {},
        {},
        "agent-deploy:database.backupDays",
        "at least 7 days",
    ),
    (
        "production-unprotected",
        {"tier": "production", "database": {"protect": False}},
        {},
        {},
        "agent-deploy:database.protect",
        "cannot turn off Pulumi `protect`",
    ),
    (
        "production-cache-unencrypted",
        {"tier": "production", "cache": {"encrypted": False}},
        {},
        {},
        "agent-deploy:cache.encrypted",
        "cannot turn off in-transit",
    ),
    (
        "bad-app-name",
        {"app": {"name": "Agent_1"}},
        {},
        {},
        "agent-deploy:app.name",
        "a-z, 0-9 and '-'",
    ),
    (
        "bad-platform",
        {"app": {"build": {"platforms": ["windows/amd64"]}}},
        {},
        {},
        "agent-deploy:app.build.platforms[0]",
        "'linux/amd64' or 'linux/arm64'",
    ),
    (
        "well-known-admin-user",
        {"database": {"username": "postgres"}},
        {},
        {},
        "agent-deploy:database.username",
        "well-known admin name",
    ),
    (
        "zero-cache-nodes",
        {"cache": {"nodes": 0}},
        {},
        {},
        "agent-deploy:cache.nodes",
        "greater than or equal to 1",
    ),
    (
        "failover-without-replica",
        {"cache": {"automaticFailover": True, "nodes": 1}},
        {},
        {},
        "agent-deploy:cache.automaticFailover",
        "needs nodes >= 2",
    ),
    (
        "max-storage-below-storage",
        {"database": {"storageGb": 100, "maxStorageGb": 50}},
        {},
        {},
        "agent-deploy:database.maxStorageGb",
        "below storageGb (100)",
    ),
    (
        "privileged-host-port",
        {"local": {"hostPort": 80}},
        {},
        {},
        "agent-deploy:local.hostPort",
        "greater than or equal to 1024",
    ),
    (
        "chroma-port-clash",
        {"local": {"chroma": True, "chromaHostPort": 8000}},
        {},
        {},
        "agent-deploy:local.chromaHostPort",
        "both 8000",
    ),
    (
        "unreferenced-secret",
        {},
        {"OPENAI_API_KEYY": "sk"},
        {},
        "agent-deploy:OPENAI_API_KEYY",
        "must be listed in app.secrets",
    ),
    (
        "duplicate-secret",
        {"app": {"secrets": ["OPENAI_API_KEY", "OPENAI_API_KEY"]}},
        {"OPENAI_API_KEY": "sk"},
        {},
        "agent-deploy:app.secrets",
        "listed more than once",
    ),
    (
        "bad-instance-class",
        {"database": {"instanceClass": "t4g.micro"}},
        {},
        {},
        "agent-deploy:database.instanceClass",
        "should match pattern",
    ),
    (
        "bad-engine-version",
        {"database": {"engineVersion": "9.6"}},
        {},
        {},
        "agent-deploy:database.engineVersion",
        "'16' or '17'",
    ),
    (
        "backup-days-too-long",
        {"database": {"backupDays": 90}},
        {},
        {},
        "agent-deploy:database.backupDays",
        "less than or equal to 35",
    ),
]


@pytest.mark.parametrize(
    ("override", "secrets", "plain", "key", "fragment"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_config_is_named_and_explained(
    override: dict[str, Any],
    secrets: dict[str, str],
    plain: dict[str, str],
    key: str,
    fragment: str,
) -> None:
    problems = problems_for(override, secrets=secrets, plain=plain)
    matching = [p for p in problems if p.startswith(f"{key}:") or p.startswith(f"{key} =")]
    assert matching, f"no problem for {key} in {problems}"
    assert any(fragment in p for p in matching), matching


def test_at_least_thirty_distinct_bad_configs() -> None:
    assert len({case[0] for case in BAD_CONFIGS}) >= 30


def test_all_problems_are_reported_in_one_run() -> None:
    problems = problems_for(
        {
            "app": {"minInstances": 5, "maxInstances": 1, "env": {"MY_TOKEN": "x"}, "port": 0},
            "database": {"backupDays": -1, "bakupDays": 3},
            "cache": {"automaticFailover": True, "nodes": 1},
        },
        plain={"taget": "aws"},
    )
    keys = {p.split(":", 1)[1].split(" ")[0].rstrip(":") for p in problems}
    assert {
        "taget",
        "app.minInstances",
        "app.env",
        "app.port",
        "database.backupDays",
        "database.bakupDays",
        "cache.automaticFailover",
    } <= keys, problems


def test_secret_values_never_appear_in_errors() -> None:
    problems = problems_for(
        {"app": {"secrets": ["OPENAI_API_KEY"]}}, plain={"OPENAI_API_KEY": "sk-live-very-secret"}
    )
    assert "sk-live-very-secret" not in "\n".join(problems)
    assert any("[redacted]" in p for p in problems)


def test_bad_value_is_shown_with_the_key() -> None:
    (problem,) = problems_for({"database": {"backupDays": -1}})
    assert problem.startswith("agent-deploy:database.backupDays = -1: ")


def test_program_registers_nothing_when_config_is_bad() -> None:
    with pytest.raises(StackConfigError) as caught:
        run_stack("local", {"database": {"backupDays": -1}, "app": {"port": 0}})
    assert caught.value.registered == []  # type: ignore[attr-defined]
    assert {p.key for p in caught.value.problems} == {
        "agent-deploy:database.backupDays",
        "agent-deploy:app.port",
    }


def test_config_error_message_lists_every_problem() -> None:
    config, secret_keys = stack_inputs("local", {"app": {"port": 0, "cpu": 0}})
    with pytest.raises(ConfigError) as caught:
        load_stack_config("local", config, secret_keys, root=PROJECT_ROOT)
    message = str(caught.value)
    assert message.startswith("stack 'local' has 2 configuration problems:")
    assert "agent-deploy:app.port" in message and "agent-deploy:app.cpu" in message


def test_structured_values_arrive_as_json_strings_like_the_cli_sends_them() -> None:
    config, _ = stack_inputs("local")
    assert json.loads(config["agent-deploy:app"])["build"]["context"] == "app"
    assert config["agent-deploy:target"] == "local"
