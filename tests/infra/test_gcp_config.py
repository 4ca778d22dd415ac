"""The `gcp` section: what Google Cloud would refuse at deploy time is refused offline, by key,
all at once; tier presets give each tier its GCP sizes and protections."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import TIER_PRESETS, ConfigError, StackConfig, load_stack_config
from stacks import PROJECT_ROOT
from tests.harness import stack_inputs


def load(stack: str, override: dict[str, Any] | None = None) -> StackConfig:
    config, secret_keys = stack_inputs(stack, override)
    return load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)


def problems(stack: str, override: dict[str, Any]) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


# (case id, stack, override, expected key, fragment of the message)
BAD_GCP_CONFIGS: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "project-id-format",
        "gcp-staging",
        {"gcp": {"project": "My Project"}},
        "agent-deploy:gcp.project",
        "6-30 characters",
    ),
    (
        "project-id-too-long",
        "gcp-staging",
        {"gcp": {"project": "a" * 31}},
        "agent-deploy:gcp.project",
        "6-30 characters",
    ),
    (
        "unknown-region",
        "gcp-staging",
        {"gcp": {"region": "europe-west7"}},
        "agent-deploy:gcp.region",
        "no such GCP region",
    ),
    (
        "region-typo",
        "gcp-staging",
        {"gcp": {"region": "europe-wset1"}},
        "agent-deploy:gcp.region",
        "did you mean 'europe-west1'",
    ),
    (
        "public-subnet",
        "gcp-staging",
        {"gcp": {"subnetCidr": "8.8.0.0/20"}},
        "agent-deploy:gcp.subnetCidr",
        "private (RFC 1918)",
    ),
    (
        "subnet-too-small",
        "gcp-staging",
        {"gcp": {"subnetCidr": "10.20.0.0/28"}},
        "agent-deploy:gcp.subnetCidr",
        "at least a /26",
    ),
    (
        "services-range-too-small",
        "gcp-staging",
        {"gcp": {"servicesRangePrefix": 28}},
        "agent-deploy:gcp.servicesRangePrefix",
        "less than or equal to 24",
    ),
    (
        "sql-shared-core-on-enterprise-plus",
        "gcp-staging",
        {"gcp": {"sql": {"tier": "db-f1-micro", "edition": "ENTERPRISE_PLUS"}}},
        "agent-deploy:gcp.sql.tier",
        "ENTERPRISE_PLUS takes only db-perf-optimized",
    ),
    (
        "sql-perf-optimized-on-enterprise",
        "gcp-staging",
        {"gcp": {"sql": {"tier": "db-perf-optimized-N-4", "edition": "ENTERPRISE"}}},
        "agent-deploy:gcp.sql.tier",
        "needs edition ENTERPRISE_PLUS",
    ),
    (
        "sql-custom-memory-out-of-range",
        "gcp-staging",
        {"gcp": {"sql": {"tier": "db-custom-2-1024"}}},
        "agent-deploy:gcp.sql.tier",
        "2 vCPU take 3840-13312 MiB",
    ),
    (
        "sql-custom-odd-cpus",
        "gcp-staging",
        {"gcp": {"sql": {"tier": "db-custom-3-7680"}}},
        "agent-deploy:gcp.sql.tier",
        "even number up to 96",
    ),
    (
        "sql-aws-class",
        "gcp-staging",
        {"gcp": {"sql": {"tier": "db.t4g.micro"}}},
        "agent-deploy:gcp.sql.tier",
        "should match pattern",
    ),
    (
        "regional-without-pitr",
        "gcp-staging",
        {"gcp": {"sql": {"availabilityType": "REGIONAL", "pointInTimeRecovery": False}}},
        "agent-deploy:gcp.sql.pointInTimeRecovery",
        "REGIONAL instance needs point-in-time recovery",
    ),
    (
        "pitr-without-backups",
        "gcp-staging",
        {"database": {"backupDays": 0}},
        "agent-deploy:gcp.sql.pointInTimeRecovery",
        "needs backups",
    ),
    (
        "cloud-run-fractional-cpu",
        "gcp-staging",
        {"app": {"cpu": 512}},
        "agent-deploy:app.cpu",
        "Cloud Run takes whole vCPUs",
    ),
    (
        "cloud-run-memory-for-cpu",
        "gcp-staging",
        {"app": {"cpu": 4096, "memory": 1024}},
        "agent-deploy:app.memory",
        "takes 2048-16384 MiB",
    ),
    (
        "cloud-run-too-much-memory",
        "gcp-staging",
        {"app": {"cpu": 1024, "memory": 8192}},
        "agent-deploy:app.memory",
        "takes 512-4096 MiB",
    ),
    (
        "cloud-run-max-instances",
        "gcp-staging",
        {"app": {"maxInstances": 5000}},
        "agent-deploy:app.maxInstances",
        "at most 1000 instances",
    ),
    (
        "cloud-run-min-above-max",
        "gcp-staging",
        {"app": {"minInstances": 4, "maxInstances": 2}},
        "agent-deploy:app.minInstances",
        "greater than maxInstances",
    ),
    (
        "cloud-run-timeout",
        "gcp-staging",
        {"app": {"runTimeoutSeconds": 3600}},
        "agent-deploy:app.runTimeoutSeconds",
        "at most 3570 on GCP",
    ),
    (
        "redis-unknown-tier",
        "gcp-staging",
        {"gcp": {"redis": {"tier": "STANDARD"}}},
        "agent-deploy:gcp.redis.tier",
        "'BASIC' or 'STANDARD_HA'",
    ),
    (
        "redis-too-big",
        "gcp-staging",
        {"gcp": {"redis": {"memoryGb": 301}}},
        "agent-deploy:gcp.redis.memoryGb",
        "less than or equal to 300",
    ),
    (
        "bad-alarm-email",
        "gcp-staging",
        {"gcp": {"alarmEmail": "oncall"}},
        "agent-deploy:gcp.alarmEmail",
        "should match pattern",
    ),
    (
        "owner-id-unquoted",
        "gcp-staging",
        {"gcp": {"repositoryOwnerId": 1234567}},
        "agent-deploy:gcp.repositoryOwnerId",
        "numeric GitHub id",
    ),
    (
        "owner-id-missing",
        "gcp-staging",
        {"gcp": {"repositoryOwnerId": None}},
        "agent-deploy:gcp.repositoryOwnerId",
        "pins the repository owner's numeric id",
    ),
    (
        "deploy-identity-without-repository",
        "gcp-staging",
        {"gcp": {"githubRepository": None}},
        "agent-deploy:gcp.githubRepository",
        "trusts exactly one repository",
    ),
    (
        "unknown-invoker",
        "gcp-staging",
        {"gcp": {"invoker": "everyone"}},
        "agent-deploy:gcp.invoker",
        "'public', 'allUsers' or 'private'",
    ),
    (
        "run-service-account-not-an-email",
        "gcp-pr",
        {"gcp": {"runServiceAccount": "agent-run"}},
        "agent-deploy:gcp.runServiceAccount",
        "should match pattern",
    ),
    (
        "run-service-account-beside-own-identity",
        "gcp-staging",
        {"gcp": {"runServiceAccount": "agent-run@example-agent-staging.iam.gserviceaccount.com"}},
        "agent-deploy:gcp.runServiceAccount",
        "has its own runtime account",
    ),
    (
        "gcp-without-section",
        "gcp-staging",
        {"gcp": None},
        "agent-deploy:gcp",
        "required when target is 'gcp' (at least `project` and `region`)",
    ),
    (
        "aws-only-key-in-gcp-stack",
        "gcp-staging",
        {"database": {"instanceClass": "db.t4g.large"}},
        "agent-deploy:database.instanceClass",
        "use gcp.sql.tier",
    ),
    (
        "unknown-gcp-key",
        "gcp-staging",
        {"gcp": {"regoin": "europe-west1"}},
        "agent-deploy:gcp.regoin",
        "did you mean 'region'",
    ),
    (
        "production-basic-redis",
        "gcp-production",
        {"gcp": {"redis": {"tier": "BASIC"}}},
        "agent-deploy:gcp.redis.tier",
        "production needs STANDARD_HA",
    ),
    (
        "production-zonal-database",
        "gcp-production",
        {"gcp": {"sql": {"availabilityType": "ZONAL"}}},
        "agent-deploy:gcp.sql.availabilityType",
        "production needs REGIONAL",
    ),
    (
        "production-service-deletion-protection-off",
        "gcp-production",
        {"gcp": {"serviceDeletionProtection": False}},
        "agent-deploy:gcp.serviceDeletionProtection",
        "cannot turn off deletion protection",
    ),
    (
        "production-database-deletion-protection-off",
        "gcp-production",
        {"database": {"deletionProtection": False}},
        "agent-deploy:database.deletionProtection",
        "cannot turn off deletion protection",
    ),
    (
        "production-unprotected",
        "gcp-production",
        {"database": {"protect": False}},
        "agent-deploy:database.protect",
        "cannot turn off Pulumi `protect`",
    ),
    (
        "production-flow-logs-off",
        "gcp-production",
        {"gcp": {"flowLogs": False}},
        "agent-deploy:gcp.flowLogs",
        "cannot turn off flow logs",
    ),
    (
        "production-shared-core",
        "gcp-production",
        {"gcp": {"sql": {"tier": "db-g1-small"}}},
        "agent-deploy:gcp.sql.tier",
        "shared-core machines have no SLA",
    ),
    (
        "production-scale-to-zero",
        "gcp-production",
        {"app": {"minInstances": 0}},
        "agent-deploy:app.minInstances",
        "at least one instance warm",
    ),
    (
        "production-without-alarm-email",
        "gcp-production",
        {"gcp": {"alarmEmail": None}},
        "agent-deploy:gcp.alarmEmail",
        "need a recipient",
    ),
    (
        "production-without-github",
        "gcp-production",
        {"github": None},
        "agent-deploy:github",
        "nobody protects without this section",
    ),
]


@pytest.mark.parametrize(
    ("stack", "override", "key", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_GCP_CONFIGS],
)
def test_bad_gcp_config_is_named_and_explained(
    stack: str, override: dict[str, Any], key: str, fragment: str
) -> None:
    found = problems(stack, override)
    assert any(p.startswith(f"{key}") and fragment in p for p in found), found


def test_every_gcp_problem_is_reported_in_one_run() -> None:
    override = {
        "app": {"cpu": 512, "minInstances": 0},
        "gcp": {
            "project": "Bad Project",
            "region": "mars-north1",
            "sql": {"tier": "db-f1-micro", "edition": "ENTERPRISE_PLUS"},
            "redis": {"tier": "BASIC"},
            "alarmEmail": None,
        },
    }
    found = problems("gcp-production", override)
    for key in (
        "gcp.project",
        "gcp.region",
        "gcp.sql.tier",
        "gcp.redis.tier",
        "gcp.alarmEmail",
        "app.cpu",
        "app.minInstances",
    ):
        assert any(p.startswith(f"agent-deploy:{key}") for p in found), (key, found)


def test_target_gcp_is_accepted_and_gets_its_tier_presets() -> None:
    staging, production, ephemeral = load("gcp-staging"), load("gcp-production"), load("gcp-pr")
    assert staging.target == "gcp"
    assert staging.gcp is not None and production.gcp is not None and ephemeral.gcp is not None
    assert (ephemeral.gcp.sql.tier, ephemeral.gcp.sql.edition) == ("db-f1-micro", "ENTERPRISE")
    assert ephemeral.app.min_instances == 0 and not ephemeral.database.deletion_protection
    assert ephemeral.gcp.redis.tier == "BASIC" and not ephemeral.gcp.deploy_identity
    assert staging.gcp.sql.point_in_time_recovery and staging.gcp.redis.tier == "BASIC"
    assert production.gcp.sql.availability_type == "REGIONAL"
    assert production.gcp.redis.tier == "STANDARD_HA"
    assert production.app.min_instances == 1 and production.database.protect
    assert production.gcp.service_deletion_protection and not production.gcp.cpu_idle
    assert staging.gcp.cpu_idle and ephemeral.gcp.cpu_idle
    # The presets are the one table: the values above come from it.
    assert TIER_PRESETS["production"]["gcp"]["redis"]["tier"] == "STANDARD_HA"


def test_a_stack_file_setting_overrides_the_gcp_preset() -> None:
    config = load("gcp-staging", {"gcp": {"redis": {"memoryGb": 5}}, "app": {"minInstances": 1}})
    assert config.gcp is not None and config.gcp.redis.memory_gb == 5
    assert config.gcp.redis.tier == "BASIC"
    assert config.app.min_instances == 1


def test_an_aws_stack_rejects_a_gcp_section_it_would_ignore() -> None:
    config = load("staging")
    assert config.gcp is None


def test_a_cloud_run_service_name_over_49_characters_is_refused() -> None:
    stack = "gcp-staging-europe-west1-blue-2"
    config, secret_keys = stack_inputs("gcp-staging", {"app": {"name": "agent-platform-api"}})
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    found = [str(p) for p in caught.value.problems]
    assert any(
        p.startswith("agent-deploy:app.name") and "Cloud Run allows 49" in p for p in found
    ), found
