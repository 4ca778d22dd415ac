"""ElastiCache per tier: encryption, auth token, own subnet group, failover in production."""

from __future__ import annotations

import pytest

from cli.engine import _stable_number, is_secret
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import container, tier_run


def _suffix(name: str) -> str:
    # The mock's stand-in for Pulumi's random auto-name suffix.
    return f"{_stable_number(name, 7):07d}"


GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
TIERS = ("ephemeral", "staging", "production")


@pytest.mark.parametrize("tier", TIERS)
def test_cache_is_encrypted_and_authenticated(tier: str) -> None:
    run = tier_run(tier)
    group = run.one(GROUP)
    assert group.plain["engine"] == "valkey"
    assert group.plain["atRestEncryptionEnabled"] is True  # ElastiCache.4
    assert group.plain["transitEncryptionEnabled"] is True  # ElastiCache.5
    if tier == "staging":  # hosts pr-<n> slices: RBAC users (tests/infra/test_pr_host.py)
        assert "authToken" not in group.inputs
        assert group.plain["userGroupIds"] == ["agent-staging-cache-users"]
    else:
        assert is_secret(group.inputs["authToken"])  # ElastiCache.6
        assert len(group.plain["authToken"]) >= 32
    # ElastiCache.7: its own subnet group, of private subnets.
    subnets = run.one("aws:elasticache/subnetGroup:SubnetGroup")
    assert group.plain["subnetGroupName"] == f"{subnets.name}-{_suffix(subnets.name)}"
    assert all("-private-" in s for s in subnets.plain["subnetIds"])
    assert group.plain["securityGroupIds"] == [f"agent-{run.stack}-cache-sg-id"]


@pytest.mark.parametrize(
    ("tier", "nodes", "failover", "snapshots"),
    [("ephemeral", 1, False, 0), ("staging", 1, False, 1), ("production", 2, True, 7)],
)
def test_failover_and_snapshots_by_tier(
    tier: str, nodes: int, failover: bool, snapshots: int
) -> None:
    group = tier_run(tier).one(GROUP).plain
    assert group["numCacheClusters"] == nodes
    assert group["automaticFailoverEnabled"] is failover  # ElastiCache.3
    assert group["multiAzEnabled"] is failover
    assert group["snapshotRetentionLimit"] == snapshots  # ElastiCache.1 (production >= 1)


@pytest.mark.parametrize("tier", ["ephemeral", "production"])
def test_redis_url_is_tls_with_the_token_in_a_secret(tier: str) -> None:
    run = tier_run(tier)
    token = run.one(GROUP).plain["authToken"]
    version = run.one(
        "aws:secretsmanager/secretVersion:SecretVersion", f"agent-{run.stack}-secrets-redis-url"
    )
    assert version.is_secret("secretString")
    assert version.plain["secretString"] == (
        f"rediss://:{token}@master.agent-{run.stack}-cache.mock.euw1.cache.amazonaws.com:6379/0"
    )
    secrets = {s["name"]: s["valueFrom"] for s in container(run)["secrets"]}
    assert secrets["REDIS_URL"] == secrets["REDIS_URI"]
    assert token not in str(container(run))


@pytest.mark.parametrize("tier", TIERS)
def test_the_fixed_group_id_is_deleted_before_it_is_replaced(tier: str) -> None:
    group = tier_run(tier).one(GROUP)
    assert group.plain["replicationGroupId"] == f"agent-{tier_run(tier).stack}-cache"
    # A replacement would otherwise create a second group under the same id, which AWS refuses.
    assert group.delete_before_replace is True


@pytest.mark.parametrize(
    ("tier", "node_type"),
    [
        ("ephemeral", "cache.t4g.micro"),
        ("staging", "cache.t4g.small"),
        ("production", "cache.t4g.small"),
    ],
)
def test_node_types_are_sized_for_a_lock_and_a_rate_limiter(tier: str, node_type: str) -> None:
    # Production starts small and grows by cache.nodeType (README: "Growing production").
    assert tier_run(tier).one(GROUP).plain["nodeType"] == node_type


def test_a_long_name_alarms_on_the_nodes_of_the_shortened_group() -> None:
    # 32 characters of app name: `<app>-staging-cache` is shortened with a hash.
    run = run_stack("staging", {"app": {"name": "a" * 32}})
    group_id = run.one(GROUP).plain["replicationGroupId"]
    assert len(group_id) <= 40 and not group_id.startswith("a" * 32 + "-staging")
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    nodes = [
        a.plain["dimensions"]["CacheClusterId"]
        for a in alarms
        if "CacheClusterId" in (a.plain.get("dimensions") or {})
    ]
    assert nodes and all(node.startswith(f"{group_id}-0") for node in nodes)
