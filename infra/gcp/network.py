"""The VPC a gcp stack's private services live in.

Outputs: `network_id`, `network_self_link`, `subnet_id`, `subnet_self_link`,
`services_range_name` and `services_connection` (the `servicenetworking.Connection`, which
Cloud SQL and Memorystore must depend on: they name only the network).

Custom mode (no auto subnets in every region), one regional subnet for Cloud Run's Direct VPC
egress with Private Google Access and flow logs, and the private-services-access range that
Cloud SQL and Memorystore take their private addresses from. Nothing is reachable from the
internet: the only ingress rule denies everything, and logs what it denies.

On destroy the peering connection is, by default, abandoned: Google refuses to delete it while
a Cloud SQL instance's producer resources linger (TPG#16275, pulumi-gcp#3354), and a failed
delete would fail the teardown. An abandoned peering keeps the network in use, so a stack that
is destroyed routinely (ephemeral) sets `connection_deletion_policy="REMOVE_PEERING"`: the
provider then removes the peering from the network when the connection cannot be deleted.
Subnet addresses used by Direct VPC egress stay held 1-2 hours after Cloud Run is deleted, so
deleting the subnet right after the service may need a retry (not checkable offline).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# Direct VPC egress takes addresses from this subnet: /26 is the smallest Cloud Run accepts.
MIN_SUBNET_PREFIX = 26
# The private-services-access range: /24 is the smallest Google accepts, /16 what it advises.
MAX_SERVICES_PREFIX = 24
CONNECTION_DELETION_POLICIES = ("ABANDON", "REMOVE_PEERING")
# CIS 3.8's settings: every flow, 5 s aggregation, all metadata, no filter. The subnet carries
# only Cloud Run's egress to Cloud SQL and Memorystore, so the log volume (billed) stays small.
FLOW_LOGS = gcp.compute.SubnetworkLogConfigArgs(
    aggregation_interval="INTERVAL_5_SEC", flow_sampling=1.0, metadata="INCLUDE_ALL_METADATA"
)


@dataclass(frozen=True)
class GcpNetworkArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]
    subnet_cidr: str
    services_range_prefix: int = 16
    flow_logs: bool = True
    connection_deletion_policy: str = "ABANDON"


def network_problems(args: GcpNetworkArgs) -> list[str]:
    """What GCP would refuse in `args` (every problem, for one message)."""
    problems = []
    try:
        subnet = ipaddress.ip_network(args.subnet_cidr)
    except ValueError:
        problems.append(f"subnet_cidr: '{args.subnet_cidr}' is not a CIDR block like 10.0.0.0/24")
    else:
        if not isinstance(subnet, ipaddress.IPv4Network) or not subnet.is_private:
            problems.append(f"subnet_cidr: '{args.subnet_cidr}' must be a private IPv4 range")
        elif subnet.prefixlen > MIN_SUBNET_PREFIX:
            problems.append(
                f"subnet_cidr: '{args.subnet_cidr}' is smaller than /{MIN_SUBNET_PREFIX}, the "
                "smallest subnet Cloud Run's Direct VPC egress accepts"
            )
    if not 8 <= args.services_range_prefix <= MAX_SERVICES_PREFIX:
        problems.append(
            f"services_range_prefix: {args.services_range_prefix} must be between 8 and "
            f"{MAX_SERVICES_PREFIX} (Google advises 16)"
        )
    if args.connection_deletion_policy not in CONNECTION_DELETION_POLICIES:
        problems.append(
            f"connection_deletion_policy: '{args.connection_deletion_policy}' must be one of "
            f"{', '.join(CONNECTION_DELETION_POLICIES)} (a plain delete fails while Cloud SQL "
            "leftovers exist)"
        )
    return problems


class GcpNetwork(pulumi.ComponentResource):
    network_id: pulumi.Output[str]
    network_self_link: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    subnet_self_link: pulumi.Output[str]
    services_range_name: pulumi.Output[str]
    services_connection: gcp.servicenetworking.Connection

    def __init__(
        self, name: str, args: GcpNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = network_problems(args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:GcpNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description=f"{name}: private services and Cloud Run egress",
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            project=args.project,
            region=args.region,
            network=network.id,
            ip_cidr_range=args.subnet_cidr,
            # CKV_GCP_74: Google APIs reached without public addresses.
            private_ip_google_access=True,
            # CKV_GCP_26 (CIS 3.8): VPC flow logs.
            log_config=FLOW_LOGS if args.flow_logs else None,
            opts=child,
        )
        services_range = gcp.compute.GlobalAddress(
            f"{name}-services",
            project=args.project,
            network=network.id,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=args.services_range_prefix,
            description=f"{name}: private services access (Cloud SQL, Memorystore)",
            opts=child,
        )
        self.services_connection = gcp.servicenetworking.Connection(
            f"{name}-services",
            network=network.id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[services_range.name],
            deletion_policy=args.connection_deletion_policy,
            opts=child,
        )
        # CIS 3.6/3.7 (no SSH/RDP from the internet), and no other ingress either: the implied
        # rule already denies it; this one makes the denial explicit and logged.
        gcp.compute.Firewall(
            f"{name}-deny-ingress",
            project=args.project,
            network=network.id,
            direction="INGRESS",
            priority=65534,
            denies=[{"protocol": "all"}],
            source_ranges=["0.0.0.0/0"],
            log_config={"metadata": "INCLUDE_ALL_METADATA"},
            description="No ingress from anywhere: the services here are reached privately",
            opts=child,
        )
        self.network_id = network.id
        self.network_self_link = network.self_link
        self.subnet_id = subnet.id
        self.subnet_self_link = subnet.self_link
        self.services_range_name = services_range.name
        self.register_outputs(
            {
                "networkId": self.network_id,
                "subnetId": self.subnet_id,
                "servicesRange": self.services_range_name,
            }
        )
