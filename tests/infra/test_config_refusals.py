"""What AWS would refuse at deploy time is refused by the offline check, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.engine import run_program
from cli.stackfile import SECRET_PLACEHOLDER, load_stack_file
from infra.config import (
    AWS_REGIONS,
    DEFAULT_ENGINE_VERSIONS,
    ENGINE_VERSIONS,
    RDS_POSTGRES_CLASSES,
    ConfigError,
    StackConfig,
    load_stack_config,
)
from stacks import PROJECT_ROOT, StackConfigError
from tests.harness import PROJECT_DIR, run_stack, stack_inputs


def load(stack: str, override: dict[str, Any] | None = None) -> StackConfig:
    config, secret_keys = stack_inputs(stack, override)
    return load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)


def problems(
    stack: str, override: dict[str, Any], secret_sections: tuple[str, ...] = ()
) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    secret_keys |= {f"agent-deploy:{s}" for s in secret_sections}
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


def about(found: list[str], key: str) -> list[str]:
    return [p for p in found if p.startswith((f"agent-deploy:{key}:", f"agent-deploy:{key} ="))]


# ------------------------------------------------------------------------------------------
# 15.1: RDS wants maxAllocatedStorage >= 1.1 x allocatedStorage, or no maximum at all.
# ------------------------------------------------------------------------------------------
def test_the_pr_stack_file_turns_storage_autoscaling_off_and_passes() -> None:
    database = load("pr-7").database
    assert database.max_storage_gb == database.storage_gb == 20


@pytest.mark.parametrize(("storage", "maximum"), [(20, 21), (100, 105), (100, 109), (1000, 1099)])
def test_a_maximum_less_than_ten_percent_above_storage_is_refused(
    storage: int, maximum: int
) -> None:
    (problem,) = about(
        problems("staging", {"database": {"storageGb": storage, "maxStorageGb": maximum}}),
        "database.maxStorageGb",
    )
    assert "storageGb" in problem and "maxStorageGb" in problem
    assert f"{-(-11 * storage // 10)} or more" in problem
    assert "equal to storageGb" in problem


@pytest.mark.parametrize(("storage", "maximum"), [(20, 20), (20, 22), (100, 110), (50, 500)])
def test_equal_or_ten_percent_above_is_accepted(storage: int, maximum: int) -> None:
    database = load("staging", {"database": {"storageGb": storage, "maxStorageGb": maximum}})
    assert database.database.max_storage_gb == maximum


# ------------------------------------------------------------------------------------------
# 15.3: network, versions, classes, names, regions, certificates, paths.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cidr", "words"),
    [
        ("10.0.0.0/8", "too large"),
        ("10.0.0.0/15", "too large"),
        ("10.0.0.0/29", "too small"),
        ("127.0.0.0/16", "RFC 1918"),
        ("169.254.0.0/16", "RFC 1918"),
        ("100.64.0.0/16", "RFC 1918"),
    ],
)
def test_vpc_ranges_aws_or_rfc_1918_refuse(cidr: str, words: str) -> None:
    found = about(problems("staging", {"aws": {"vpcCidr": cidr}}), "aws.vpcCidr")
    assert any(words in p for p in found), found


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.20.0.0/16", "192.168.0.0/16", "10.9.0.0/20"])
def test_rfc_1918_vpcs_from_16_to_20_are_accepted(cidr: str) -> None:
    assert load("staging", {"aws": {"vpcCidr": cidr}}).aws is not None


def test_redis_oss_defaults_to_its_last_version_and_valkey_to_8_0() -> None:
    assert load("staging", {"cache": {"engine": "redis"}}).cache.engine_version == "7.1"
    assert load("staging").cache.engine_version == "8.0"


def test_the_redis_default_is_what_the_program_deploys() -> None:
    group = run_stack("staging", {"cache": {"engine": "redis"}}).one(
        "aws:elasticache/replicationGroup:ReplicationGroup"
    )
    assert (group.plain["engine"], group.plain["engineVersion"]) == ("redis", "7.1")


@pytest.mark.parametrize(
    ("cache", "words"),
    [
        ({"engine": "redis", "engineVersion": "8.0"}, "Redis OSS stops at 7.1"),
        ({"engine": "redis", "engineVersion": "7.2"}, "Redis OSS stops at 7.1"),
        ({"engineVersion": "99"}, "Valkey offers 7.2, 8.0"),
        ({"engineVersion": "7.1"}, "Valkey offers"),
    ],
)
def test_cache_versions_the_engine_does_not_have_are_refused(
    cache: dict[str, str], words: str
) -> None:
    found = about(problems("staging", {"cache": cache}), "cache.engineVersion")
    assert any(words in p for p in found), found


@pytest.mark.parametrize(
    ("engine", "version"), [(e, v) for e in ("valkey", "redis") for v in ENGINE_VERSIONS[e]]
)
def test_every_listed_cache_version_is_accepted(engine: str, version: str) -> None:
    # Not hosting slices: a host needs 7 or later (tests/infra/test_pr_host.py).
    override = {"cache": {"engine": engine, "engineVersion": version}, "pullRequests": None}
    cache = load("staging", override).cache
    assert (cache.engine, cache.engine_version) == (engine, version)


def test_each_engine_default_is_a_version_the_engine_has() -> None:
    assert set(DEFAULT_ENGINE_VERSIONS) == set(ENGINE_VERSIONS)
    for engine, version in DEFAULT_ENGINE_VERSIONS.items():
        assert version in ENGINE_VERSIONS[engine], engine
    assert load("staging").database.engine_version == DEFAULT_ENGINE_VERSIONS["postgres"]


@pytest.mark.parametrize("version", ENGINE_VERSIONS["postgres"])
def test_every_listed_postgres_version_is_accepted(version: str) -> None:
    assert load("staging", {"database": {"engineVersion": version}}).database.engine_version == (
        version
    )


@pytest.mark.parametrize(
    ("instance_class", "words"),
    [
        ("db.t4g.24xlarge", "db.t4g comes only in micro, small, medium, large, xlarge, 2xlarge"),
        ("db.m7g.24xlarge", "db.m7g comes only in"),
        ("db.r6g.32xlarge", "db.r6g comes only in"),
        ("db.m5.micro", "db.m5 comes only in"),
        ("db.m8g.64xlarge", "db.m8g comes only in"),
    ],
)
def test_db_classes_that_do_not_exist_are_refused(instance_class: str, words: str) -> None:
    found = about(
        problems("staging", {"database": {"instanceClass": instance_class}}),
        "database.instanceClass",
    )
    assert any(words in p for p in found), found


def test_every_listed_db_class_is_accepted() -> None:
    for family, sizes in RDS_POSTGRES_CLASSES.items():
        for size in sizes:
            load("staging", {"database": {"instanceClass": f"db.{family}.{size}"}})


@pytest.mark.parametrize("node_type", ["cache.t4g.large", "cache.m5.8xlarge", "cache.r7g.24xlarge"])
def test_cache_node_types_that_do_not_exist_are_refused(node_type: str) -> None:
    found = about(problems("staging", {"cache": {"nodeType": node_type}}), "cache.nodeType")
    assert any("comes only in" in p for p in found), found


@pytest.mark.parametrize(
    ("field", "name", "words"),
    [
        ("username", "user", "reserved word"),
        ("username", "select", "reserved word"),
        ("username", "current_user", "reserved word"),
        ("username", "public", "PostgreSQL's and RDS's own roles"),
        ("username", "pg_monitor", "PostgreSQL's and RDS's own roles"),
        ("username", "rds_superuser", "PostgreSQL's and RDS's own roles"),
        ("name", "table", "reserved word"),
        ("name", "template1", "creates itself"),
    ],
)
def test_reserved_postgres_names_are_refused(field: str, name: str, words: str) -> None:
    found = about(problems("staging", {"database": {field: name}}), f"database.{field}")
    assert any(words in p for p in found), found


def test_ordinary_postgres_names_are_accepted() -> None:
    database = load("staging", {"database": {"username": "app_owner", "name": "users"}}).database
    assert (database.username, database.name) == ("app_owner", "users")


@pytest.mark.parametrize(
    ("region", "words"),
    [
        ("eu-west-9", "did you mean 'eu-west-"),
        ("us-east-7", "no such AWS region"),
        ("mx-moon-1", "no such AWS region"),
        ("moon-1", "AWS region code"),
    ],
)
def test_regions_that_do_not_exist_are_refused(region: str, words: str) -> None:
    found = about(problems("staging", {"aws": {"region": region}}), "aws.region")
    assert any(words in p for p in found), found


def test_every_region_the_provider_knows_is_accepted() -> None:
    assert {"cn-north-1", "cn-northwest-1", "us-gov-west-1", "eu-west-1"} <= AWS_REGIONS
    for region in sorted(AWS_REGIONS):
        assert load("staging", {"aws": {"region": region}}).aws.region == region  # type: ignore[union-attr]


def test_a_certificate_from_another_region_is_refused() -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/0b7e-4a"
    (problem,) = about(problems("staging", {"aws": {"certificateArn": arn}}), "aws.certificateArn")
    assert "us-east-1" in problem and "eu-west-1" in problem
    same = load("staging", {"aws": {"certificateArn": arn.replace("us-east-1", "eu-west-1")}})
    assert same.aws is not None and same.aws.certificate_arn is not None


@pytest.mark.parametrize("field", ["healthPath", "readinessPath", "livenessPath"])
@pytest.mark.parametrize(
    "path",
    ["/health'", '/health"', "/he alth", "/health\x00", "/health\x7f", "/h?x=1", "/h#x", "/%zz"],
)
def test_paths_that_cannot_be_url_paths_are_refused(field: str, path: str) -> None:
    assert about(problems("local", {"app": {field: path}}), f"app.{field}")


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/v1/health", "/-/ready", "/ready%20now", "/a:b@c"]
)
def test_ordinary_url_paths_are_accepted(path: str) -> None:
    assert load("local", {"app": {"healthPath": path}}).app.health_path == path


# ------------------------------------------------------------------------------------------
# 17.3: an auth token needs in-transit encryption; the cache always has a token.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["staging", "pr-7"])
def test_an_unencrypted_cache_with_its_auth_token_is_refused(stack: str) -> None:
    (problem,) = about(problems(stack, {"cache": {"encrypted": False}}), "cache.encrypted")
    assert "in-transit encryption" in problem


def test_production_reports_the_unencrypted_cache_once() -> None:
    found = about(problems("production", {"cache": {"encrypted": False}}), "cache.encrypted")
    assert len(found) == 1 and "production" in found[0]


# ------------------------------------------------------------------------------------------
# 15.5: a `secure:` value inside a plain map is refused, never deployed in plain text.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "field", "pointer"),
    [
        ("app", "env", "app.secrets"),
        ("github", "variables", "github.secrets"),
    ],
)
def test_check_names_the_secure_value_in_a_plain_map(
    section: str, field: str, pointer: str
) -> None:
    found = problems(
        "staging", {section: {field: {"GREETING": SECRET_PLACEHOLDER}}}, secret_sections=(section,)
    )
    (problem,) = about(found, f"{section}.{field}.GREETING")
    assert pointer in problem and "plain text" in problem
    assert "pulumi config set --secret GREETING" in problem


def test_at_deployment_the_decrypted_value_is_refused_by_section() -> None:
    # The Pulumi CLI passes the section decrypted and marks the whole key secret.
    found = problems("staging", {"app": {"env": {"GREETING": "hunter2"}}}, secret_sections=("app",))
    (problem,) = about(found, "app")
    assert "app.secrets" in problem
    assert "hunter2" not in "\n".join(found)


def test_a_stack_file_with_secure_in_app_env_registers_nothing(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.demo.yaml").write_text(
        "config:\n"
        "  agent-deploy:app:\n"
        "    env:\n"
        "      GREETING:\n"
        "        secure: AAABAGpcS2l0ZXN0\n"
    )
    stack_file = load_stack_file(tmp_path, "demo")
    assert stack_file.secret_keys == {"agent-deploy:app"}
    with pytest.raises(ConfigError) as caught:
        load_stack_config("demo", stack_file.config, stack_file.secret_keys, root=PROJECT_ROOT)
    assert [p.key for p in caught.value.problems] == ["agent-deploy:app.env.GREETING"]
    assert "AAABAGpc" not in str(caught.value)
    config, secret_keys = stack_inputs("local", {"app": {"env": {"GREETING": SECRET_PLACEHOLDER}}})
    with pytest.raises(StackConfigError) as program:
        run_program("local", config, secret_keys | {"agent-deploy:app"}, project_dir=PROJECT_DIR)
    assert program.value.registered == []  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------
# 17.4: the db-init container's inputs come from the stack; app config cannot replace them.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_APP_PASSWORD",
        "DATABASE_ADMIN_USER",
        "DATABASE_ADMIN_PASSWORD",
        "DATABASE_PROVISIONER_USER",
        "REDIS_KEY_PREFIX",
    ],
)
def test_the_db_init_contract_is_not_settable_from_app_config(name: str) -> None:
    in_env = problems("staging", {"app": {"env": {name: "x"}}})
    assert any(f"'{name}' is set by the stack itself" in p for p in about(in_env, "app.env"))
    in_secrets = problems("staging", {"app": {"secrets": [name]}})
    assert any("composed by the stack" in p for p in about(in_secrets, "app.secrets"))
