"""Memorystore for Redis 7.2 on private services access, with AUTH and in-transit TLS always.

Outputs: `instance_id` (`projects/P/locations/R/instances/NAME`, what monitoring filters on),
`host`, `port` (6378 with TLS), `auth` (secret AUTH string), `ca_cert` (secret PEM of the
instance's server CA, which the app verifies) and `url` (secret `rediss://:AUTH@HOST:PORT/0`).

Memorystore's server certificate is issued by a per-instance CA and names the instance's IP
address, so clients verify it against `ca_cert` (redis-py verifies by default) and connect by
IP, as `url` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.naming import fit

REDIS_VERSION = "REDIS_7_2"
TIERS = ("BASIC", "STANDARD_HA")


@dataclass(frozen=True)
class MemorystoreArgs:
    project: pulumi.Input[str]
    region: str
    network_id: pulumi.Input[str]
    # The servicenetworking.Connection: Redis names only the network (see CloudSqlArgs).
    services_connection: pulumi.Resource
    tier: str  # BASIC | STANDARD_HA
    memory_gb: int
    # The name of the allocated PSA range; None lets Memorystore pick one on the connection.
    reserved_ip_range: pulumi.Input[str] | None = None
    # Unset, the provider treats the instance as protected and an ephemeral destroy fails.
    deletion_protection: bool = True
    maintenance_day: str = "SUNDAY"
    maintenance_hour: int = 3  # UTC
    labels: Mapping[str, str] = field(default_factory=dict)


class Memorystore(pulumi.ComponentResource):
    """A Redis instance only the peered VPC reaches, behind AUTH and server-authenticated TLS."""

    instance_id: pulumi.Output[str]
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    auth: pulumi.Output[str]
    ca_cert: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MemorystoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if args.tier not in TIERS:
            raise ValueError(f"Memorystore {name!r}: tier {args.tier!r}; allowed: {TIERS}")
        super().__init__("agent-deploy:gcp:Memorystore", name, None, opts)
        instance = gcp.redis.Instance(
            name,
            name=fit("gcp:redis/instance:Instance", name),
            project=args.project,
            region=args.region,
            tier=args.tier,
            memory_size_gb=args.memory_gb,
            redis_version=REDIS_VERSION,
            authorized_network=args.network_id,
            connect_mode="PRIVATE_SERVICE_ACCESS",
            reserved_ip_range=args.reserved_ip_range,
            auth_enabled=True,  # CKV_GCP_95
            transit_encryption_mode="SERVER_AUTHENTICATION",  # CKV_GCP_97
            deletion_protection=args.deletion_protection,
            maintenance_policy={
                "weekly_maintenance_windows": [
                    {
                        "day": args.maintenance_day,
                        "start_time": {"hours": args.maintenance_hour, "minutes": 0},
                    }
                ]
            },
            labels=dict(args.labels),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.services_connection]),
        )
        # The provider's id has this form; built here so that it is known in preview too.
        self.instance_id = pulumi.Output.format(
            "projects/{0}/locations/{1}/instances/{2}", args.project, args.region, instance.name
        )
        self.host = instance.host
        self.port = instance.port
        self.auth = pulumi.Output.secret(instance.auth_string)
        # Every CA the instance lists: during a rotation (a new CA after five years) both are.
        self.ca_cert = pulumi.Output.secret(
            instance.server_ca_certs.apply(lambda certs: "".join(c.cert or "" for c in certs or []))
        )
        self.url = pulumi.Output.secret(
            pulumi.Output.format(
                "rediss://:{0}@{1}:{2}/0", instance.auth_string, instance.host, instance.port
            )
        )
        self.register_outputs({"instanceId": self.instance_id, "host": self.host})
