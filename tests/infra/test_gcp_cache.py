"""Memorystore for Redis: AUTH and TLS always (CKV_GCP_95/97), private services access only."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from cli.engine import ProgramRun
from infra.gcp.cache import Memorystore, MemorystoreArgs
from tests.harness import run_components
from tests.infra.gcp_support import NETWORK, PROJECT, REGION
from tests.infra.gcp_support import services_connection as psa

REDIS = "gcp:redis/instance:Instance"


def run(tier: str = "BASIC", name: str = "agent-staging-cache", **override: Any) -> ProgramRun:
    def program() -> None:
        cache = Memorystore(
            name,
            MemorystoreArgs(
                **{
                    "project": PROJECT,
                    "region": REGION,
                    "network_id": NETWORK,
                    "services_connection": psa(),
                    "tier": tier,
                    "memory_gb": 1,
                    **override,
                }
            ),
        )
        for key in ("instance_id", "host", "port", "auth", "ca_cert", "url"):
            pulumi.export(key, getattr(cache, key))

    return run_components(program)


@pytest.mark.parametrize("tier", ["BASIC", "STANDARD_HA"])
def test_ckv_gcp_95_97_auth_and_server_authenticated_tls(tier: str) -> None:
    redis = run(tier).one(REDIS).plain
    assert redis["authEnabled"] is True  # CKV_GCP_95
    assert redis["transitEncryptionMode"] == "SERVER_AUTHENTICATION"  # CKV_GCP_97
    assert redis["tier"] == tier
    assert redis["redisVersion"] == "REDIS_7_2"


def test_reached_only_over_private_services_access() -> None:
    result = run()
    redis = result.one(REDIS)
    assert redis.plain["connectMode"] == "PRIVATE_SERVICE_ACCESS"  # default: DIRECT_PEERING
    assert redis.plain["authorizedNetwork"] == NETWORK
    # Redis names only the network: without this it could be created before the peering.
    assert result.one("gcp:servicenetworking/connection:Connection").urn in redis.depends_on


def test_outputs_are_tls_port_and_secret_credentials() -> None:
    result = run()
    out = result.outputs
    assert out["port"] == 6378  # TLS listens on 6378 (redisson#5359)
    assert {"auth", "ca_cert", "url"} <= result.secret_outputs
    assert {"host", "port", "instance_id"}.isdisjoint(result.secret_outputs)
    assert out["url"] == f"rediss://:{out['auth']}@{out['host']}:6378/0"
    # Both CAs of a rotation: the app keeps trusting the instance when it switches.
    assert out["ca_cert"].count("-----BEGIN CERTIFICATE-----") == 2
    assert out["instance_id"] == (
        f"projects/{PROJECT}/locations/{REGION}/instances/agent-staging-cache"
    )


def test_deletion_protection_is_explicit() -> None:
    # Left unset, the provider treats the instance as protected and an ephemeral destroy fails.
    assert run().one(REDIS).plain["deletionProtection"] is True
    assert run(deletion_protection=False).one(REDIS).plain["deletionProtection"] is False


def test_a_long_name_is_shortened_to_memorystores_40_characters() -> None:
    name = "agent-pr-12345-with-a-long-feature-name-cache"
    found = run(name=name).one(REDIS).plain["name"]
    assert len(found) <= 40
    assert found.startswith("agent-pr-12345")


def test_an_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="tier 'STANDARD'"):
        run("STANDARD")
