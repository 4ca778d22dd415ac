"""GcpNetwork: a custom-mode VPC (CIS 3.1/3.2), a subnet with Private Google Access
(CKV_GCP_74) and flow logs (CKV_GCP_26, CIS 3.8), the private-services-access range and
peering that Cloud SQL and Memorystore use, and no ingress from the internet (CIS 3.6/3.7)."""

from __future__ import annotations

import ipaddress

import pytest

from infra.gcp.network import GcpNetwork, GcpNetworkArgs
from infra.naming import physical_name
from tests.harness import run_components

NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
CONNECTION = "gcp:servicenetworking/connection:Connection"
FIREWALL = "gcp:compute/firewall:Firewall"


def _run(**overrides: object):  # type: ignore[no-untyped-def]
    args = {
        "project": "proj-1",
        "region": "europe-west1",
        "subnet_cidr": "10.20.0.0/24",
        **overrides,
    }

    def program() -> dict[str, object]:
        network = GcpNetwork("agent-staging-net", GcpNetworkArgs(**args))  # type: ignore[arg-type]
        return {
            "network": network.network_id,
            "subnet": network.subnet_id,
            "connection": network.services_connection.urn,
            "selfLink": network.network_self_link,
        }

    return run_components(program)


def test_cis_3_1_the_vpc_is_custom_mode_without_default_subnets() -> None:
    vpc = _run().one(NETWORK)
    assert vpc.plain["autoCreateSubnetworks"] is False
    assert vpc.plain["project"] == "proj-1"


def test_ckv_gcp_74_and_26_the_subnet_has_private_google_access_and_flow_logs() -> None:
    run = _run()
    subnet = run.one(SUBNET)
    assert subnet.plain["privateIpGoogleAccess"] is True
    assert subnet.plain["ipCidrRange"] == "10.20.0.0/24"
    assert subnet.plain["region"] == "europe-west1"
    assert subnet.plain["network"] == run.outputs["result"]["network"]
    # CIS 3.8: every flow sampled, 5 s aggregation, all metadata, no filter expression.
    assert subnet.plain["logConfig"] == {
        "aggregationInterval": "INTERVAL_5_SEC",
        "flowSampling": 1.0,
        "metadata": "INCLUDE_ALL_METADATA",
    }


def test_a_tier_may_turn_flow_logs_off() -> None:
    assert "logConfig" not in _run(flow_logs=False).one(SUBNET).plain


def test_the_private_services_range_is_peered_and_the_peering_is_abandoned_on_destroy() -> None:
    run = _run()
    (address,) = run.of_type(ADDRESS)
    assert address.plain["purpose"] == "VPC_PEERING"
    assert address.plain["addressType"] == "INTERNAL"
    assert address.plain["prefixLength"] == 16
    connection = run.one(CONNECTION)
    assert connection.plain["service"] == "servicenetworking.googleapis.com"
    # The range's name as the engine auto-names it.
    assert connection.plain["reservedPeeringRanges"] == [
        physical_name(ADDRESS, address.name, address.plain)
    ]
    assert connection.plain["network"] == run.outputs["result"]["network"]
    # Pitfall 1 (TPG#16275): deleting it fails while Cloud SQL leftovers exist.
    assert connection.plain["deletionPolicy"] == "ABANDON"
    # What SQL and Redis get to depend on is this very resource.
    assert run.outputs["result"]["connection"] == connection.urn


def test_a_routinely_destroyed_stack_removes_the_peering_so_the_network_can_go() -> None:
    connection = _run(connection_deletion_policy="REMOVE_PEERING").one(CONNECTION)
    assert connection.plain["deletionPolicy"] == "REMOVE_PEERING"
    with pytest.raises(ValueError, match="'DELETE' must be one of ABANDON, REMOVE_PEERING"):
        _run(connection_deletion_policy="DELETE")


def test_the_range_size_comes_from_the_args() -> None:
    assert _run(services_range_prefix=20).one(ADDRESS).plain["prefixLength"] == 20


def test_cis_3_6_3_7_nothing_is_open_to_the_internet() -> None:
    firewalls = _run().of_type(FIREWALL)
    assert firewalls, "the denial is explicit and logged"
    world = ipaddress.ip_network("0.0.0.0/0")
    for rule in firewalls:
        plain = rule.plain
        if plain.get("direction", "INGRESS") != "INGRESS":
            continue
        sources = [ipaddress.ip_network(s) for s in plain.get("sourceRanges", [])]
        if any(s == world for s in sources):
            assert not plain.get("allows"), f"{rule.name} allows ingress from anywhere"
    (deny,) = firewalls
    assert deny.plain["denies"] == [{"protocol": "all"}]
    assert deny.plain["logConfig"]["metadata"] == "INCLUDE_ALL_METADATA"


def test_bad_network_args_are_all_refused_before_anything_is_registered() -> None:
    with pytest.raises(ValueError, match="smaller than /26") as error:
        _run(subnet_cidr="10.0.0.0/28", services_range_prefix=28)
    assert "'10.0.0.0/28' is smaller than /26" in str(error.value)
    assert "services_range_prefix: 28" in str(error.value)
    assert error.value.registered == []  # type: ignore[attr-defined]
    for cidr, fragment in (("10.0.0/24", "not a CIDR"), ("8.8.8.0/24", "private IPv4")):
        with pytest.raises(ValueError, match=fragment):
            _run(subnet_cidr=cidr)
