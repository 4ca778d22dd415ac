"""RDS PostgreSQL per tier: private, encrypted, TLS-only, managed password, protection."""

from __future__ import annotations

import re

import pytest

from cli.engine import ProgramRun, Resource, _stable_number
from infra.config import performance_insights_supported
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import container, tier_run


def _suffix(name: str) -> str:
    # The mock's stand-in for Pulumi's random auto-name suffix.
    return f"{_stable_number(name, 7):07d}"


RDS = "aws:rds/instance:Instance"
TIERS = ("ephemeral", "staging", "production")


def _db(tier: str) -> dict:
    return tier_run(tier).one(RDS).plain


@pytest.mark.parametrize("tier", TIERS)
def test_database_is_private_encrypted_and_logged(tier: str) -> None:
    db = _db(tier)
    assert db["engine"] == "postgres" and db["engineVersion"] == "16"
    assert db["publiclyAccessible"] is False  # RDS.2
    assert db["storageEncrypted"] is True  # RDS.3
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]  # RDS.9
    assert db["autoMinorVersionUpgrade"] is True  # RDS.13
    assert db["copyTagsToSnapshot"] is True  # RDS.17
    assert db["username"] == "agent_admin" != "postgres"  # RDS.25
    assert db["manageMasterUserPassword"] is True and "password" not in db
    assert db["allowMajorVersionUpgrade"] is False


@pytest.mark.parametrize(
    ("tier", "autoscaling"), [("ephemeral", None), ("staging", 100), ("production", 200)]
)
def test_storage_autoscales_only_above_the_initial_size(tier: str, autoscaling: int | None) -> None:
    db = _db(tier)
    # Ephemeral's maxStorageGb equals storageGb: autoscaling off, and AWS refuses a maximum
    # that is not above the allocation, so none is sent.
    assert db.get("maxAllocatedStorage") == autoscaling


def test_a_major_upgrade_is_sent_only_when_allowed() -> None:
    run = run_stack(
        "staging", {"database": {"engineVersion": "17", "allowMajorVersionUpgrade": True}}
    )
    db = run.one(RDS).plain
    assert db["engineVersion"] == "17" and db["allowMajorVersionUpgrade"] is True
    assert run.one("aws:rds/parameterGroup:ParameterGroup").plain["family"] == "postgres17"


@pytest.mark.parametrize("tier", TIERS)
def test_fixed_names_are_deleted_before_they_are_replaced(tier: str) -> None:
    run = tier_run(tier)
    # A replacement (e.g. a new username) would otherwise create a second instance under the
    # same identifier, which AWS refuses (DBInstanceAlreadyExists).
    assert run.one(RDS).plain["identifier"] == f"agent-{run.stack}-db"
    assert run.one(RDS).delete_before_replace is True
    for group in _rds_log_groups(run):
        assert group.delete_before_replace is True


def _rds_log_groups(run: ProgramRun) -> list[Resource]:
    return [
        g
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.plain.get("name", "").startswith("/aws/rds/")
    ]


@pytest.mark.parametrize(("tier", "days"), [("ephemeral", 7), ("staging", 30), ("production", 365)])
def test_rds_log_groups_exist_before_the_instance_and_expire(tier: str, days: int) -> None:
    run = tier_run(tier)
    db = run.one(RDS)
    groups = _rds_log_groups(run)
    # Exactly the groups RDS writes the exported logs to, so RDS does not create its own
    # never-expiring ones that outlive the stack.
    assert sorted(g.plain["name"] for g in groups) == [
        f"/aws/rds/instance/{db.plain['identifier']}/{log}"
        for log in sorted(db.plain["enabledCloudwatchLogsExports"])
    ]
    assert all(g.plain["retentionInDays"] == days for g in groups)
    assert {g.urn for g in groups} <= set(db.depends_on)


@pytest.mark.parametrize("tier", TIERS)
def test_database_lives_in_private_subnets_only(tier: str) -> None:
    run = tier_run(tier)
    group = run.one("aws:rds/subnetGroup:SubnetGroup")
    # RDS.46
    assert group.plain["subnetIds"]
    assert all("-private-" in s for s in group.plain["subnetIds"])
    assert run.one(RDS).plain["dbSubnetGroupName"] == f"{group.name}-{_suffix(group.name)}"


@pytest.mark.parametrize("tier", TIERS)
def test_database_accepts_only_the_service_security_group(tier: str) -> None:
    run = tier_run(tier)
    name = f"agent-{run.stack}"
    db = run.one(RDS).plain
    assert db["vpcSecurityGroupIds"] == [f"{name}-db-sg-id"]
    rules = [
        r
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.plain["securityGroupId"] == f"{name}-db-sg-id"
    ]
    # EC2.18/19: the only way in is from the tasks' security group, on 5432 (and, on the
    # stack hosting pr-<n> slices, from their provisioner's).
    clients = [f"{name}-tasks-id"]
    if tier == "staging":
        clients.append(f"{name}-pr-host-provisioner-id")
    assert sorted(r.plain["referencedSecurityGroupId"] for r in rules) == sorted(clients)
    assert all(r.plain["fromPort"] == r.plain["toPort"] == 5432 for r in rules)


@pytest.mark.parametrize("tier", TIERS)
def test_tls_is_forced(tier: str) -> None:
    params = tier_run(tier).one("aws:rds/parameterGroup:ParameterGroup").plain
    assert params["family"] == "postgres16"
    # CKV2_AWS_69
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "immediate"} in params[
        "parameters"
    ]


@pytest.mark.parametrize(
    ("tier", "days", "multi_az", "protected"),
    [("ephemeral", 1, False, False), ("staging", 7, False, False), ("production", 14, True, True)],
)
def test_backups_multi_az_and_protection_by_tier(
    tier: str, days: int, multi_az: bool, protected: bool
) -> None:
    run = tier_run(tier)
    db = run.one(RDS)
    assert db.plain["backupRetentionPeriod"] == days  # RDS.11 (>= 7 outside ephemeral)
    assert db.plain["multiAz"] is multi_az  # RDS.5
    assert db.plain["deletionProtection"] is protected  # RDS.8
    assert db.protect is protected  # Pulumi refuses to delete it


@pytest.mark.parametrize(
    ("tier", "final"), [("ephemeral", False), ("staging", True), ("production", True)]
)
def test_final_snapshot_except_ephemeral(tier: str, final: bool) -> None:
    db = _db(tier)
    assert db["skipFinalSnapshot"] is (not final)
    if final:
        run = tier_run(tier)
        # Unique per instance: a random suffix created with it, renewed whenever an input
        # that replaces the instance changes. A constant id would make the second destroy of
        # a re-created stack fail (DBSnapshotAlreadyExists).
        suffix = run.one("random:index/randomId:RandomId")
        assert suffix.urn in run.one(RDS).depends_on
        assert re.fullmatch(
            f"agent-{run.stack}-db-final-[0-9a-f]{{8}}", db["finalSnapshotIdentifier"]
        )
        assert suffix.plain["keepers"] == {
            "database": "agent",
            "username": "agent_admin",
            "encrypted": "true",
        }
    else:
        # Destroyable in one `pulumi destroy`: nothing is kept behind.
        assert "finalSnapshotIdentifier" not in db
        assert db["deleteAutomatedBackups"] is True


@pytest.mark.parametrize(
    ("tier", "klass", "insights"),
    [
        ("ephemeral", "db.t4g.micro", False),
        ("staging", "db.t4g.small", False),
        ("production", "db.t4g.medium", True),
    ],
)
def test_instance_class_and_performance_insights(tier: str, klass: str, insights: bool) -> None:
    db = _db(tier)
    assert db["instanceClass"] == klass
    assert db["performanceInsightsEnabled"] is insights


def test_performance_insights_table() -> None:
    assert not performance_insights_supported("db.t4g.micro")
    assert not performance_insights_supported("db.t3.small")
    assert performance_insights_supported("db.t4g.medium")
    assert performance_insights_supported("db.r7g.xlarge")


@pytest.mark.parametrize("tier", TIERS)
def test_database_url_has_no_password_and_password_comes_from_the_rds_secret(tier: str) -> None:
    run = tier_run(tier)
    version = run.one(
        "aws:secretsmanager/secretVersion:SecretVersion", f"agent-{run.stack}-secrets-database-url"
    )
    assert version.is_secret("secretString")
    url = version.plain["secretString"]
    db = run.one(RDS)
    # The app's least-privilege user, the server certificate verified against the RDS CA.
    assert url == (
        f"postgresql://agent_app@{db.name}.mock.eu-west-1.rds.amazonaws.com:5432"
        "/agent?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"
    )
    secrets = {s["name"]: s["valueFrom"] for s in container(run, "db-init")["secrets"]}
    # The RDS-managed (rotating) secret, its `password` JSON key, read at each task start by
    # the init container only.
    assert secrets["DATABASE_ADMIN_PASSWORD"].startswith(
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-"
    )
    assert secrets["DATABASE_ADMIN_PASSWORD"].endswith(":password::")
    app = {s["name"]: s["valueFrom"] for s in container(run)["secrets"]}
    assert app["DATABASE_URL"] == app["DATABASE_URI"] == secrets["DATABASE_URL"]
