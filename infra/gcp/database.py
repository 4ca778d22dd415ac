"""Cloud SQL for PostgreSQL 16 on a private IP only, with the app's database and user.

Outputs: `instance_name`, `private_ip`, `connection_name`, `password` (secret), `database`,
`user`, `server_ca` (secret PEM of the instance's server CA) and `url` (secret
`postgresql://USER:PASSWORD@PRIVATE_IP:5432/DB?sslmode=require`).

Clients must use TLS (`ssl_mode=ENCRYPTED_ONLY`, CIS 6.4) but need no client certificate:
CKV_GCP_6 (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) is not met on purpose. Cloud Run reaches the
instance over Direct VPC egress at its private IP, where the Cloud SQL connectors that hand out
client certificates are not used, and a certificate in Secret Manager would protect nothing the
password in Secret Manager does not. CKV_GCP_79 ("latest major version") is not met either: the
app is built and tested against PostgreSQL 16.

The instance name carries a random suffix: Cloud SQL keeps a deleted instance's name blocked
for about a week, so a re-created stack could not reuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

POSTGRES_PORT = 5432
DATABASE_VERSION = "POSTGRES_16"

# CIS GCP 3.0 section 6.2 and the Checkov ids that encode it. `log_min_duration_statement=-1`
# keeps statement text (and the values in it) out of the logs (CKV_GCP_57, CIS 6.2.7).
LOGGING_FLAGS: Mapping[str, str] = {
    "log_error_verbosity": "default",  # CIS 6.2.1
    "log_connections": "on",  # CKV_GCP_52, CIS 6.2.2
    "log_disconnections": "on",  # CKV_GCP_53, CIS 6.2.3
    "log_statement": "ddl",  # CKV_GCP_111, CIS 6.2.4
    "log_min_messages": "warning",  # CKV_GCP_55, CIS 6.2.5
    "log_min_error_statement": "error",  # CKV_GCP_109, CIS 6.2.6
    "log_min_duration_statement": "-1",  # CKV_GCP_57, CIS 6.2.7
    "cloudsql.enable_pgaudit": "on",  # CKV_GCP_110, CIS 6.2.8
    "log_checkpoints": "on",  # CKV_GCP_51
    "log_lock_waits": "on",  # CKV_GCP_54
    "log_temp_files": "0",  # CKV_GCP_56
    "log_hostname": "on",  # CKV_GCP_108
    "log_duration": "on",  # CKV2_GCP_13
    "log_executor_stats": "off",  # CKV2_GCP_14
    "log_parser_stats": "off",  # CKV2_GCP_15
    "log_planner_stats": "off",  # CKV2_GCP_16
    "log_statement_stats": "off",  # CKV2_GCP_17
}


@dataclass(frozen=True)
class CloudSqlArgs:
    project: pulumi.Input[str]
    region: str
    network_id: pulumi.Input[str]
    # The servicenetworking.Connection: SQL names only the network, so without this explicit
    # dependency it would be created before the peering it needs exists.
    services_connection: pulumi.Resource
    tier: str
    edition: str  # ENTERPRISE | ENTERPRISE_PLUS (validated with the tier in infra.config)
    availability_type: str  # ZONAL | REGIONAL
    disk_limit_gb: int
    backups: bool
    pitr: bool
    deletion_protection: bool
    protect: bool
    database: str
    user: str
    # The name of the allocated PSA range (GlobalAddress.name); None lets Cloud SQL pick one of
    # the ranges on the connection.
    allocated_ip_range: pulumi.Input[str] | None = None
    backup_retained: int = 7
    # At most 7 on ENTERPRISE, 35 on ENTERPRISE_PLUS.
    log_retention_days: int = 7
    backup_start_time: str = "02:00"
    maintenance_day: int = 7  # 1 = Monday ... 7 = Sunday
    maintenance_hour: int = 3  # UTC
    maintenance_track: str = "stable"
    labels: Mapping[str, str] = field(default_factory=dict)


class CloudSql(pulumi.ComponentResource):
    """The instance, the app's database and its BUILT_IN user with a generated password."""

    instance_name: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    password: pulumi.Output[str]
    database: pulumi.Output[str]
    user: pulumi.Output[str]
    server_ca: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: CloudSqlArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = []
        if args.pitr and not args.backups:
            problems.append("point-in-time recovery needs backups")
        if args.availability_type == "REGIONAL" and not (args.backups and args.pitr):
            problems.append("availability_type REGIONAL needs backups and point-in-time recovery")
        if problems:
            raise ValueError(f"CloudSql {name!r}: " + "; ".join(problems))
        backups = args.backups
        super().__init__("agent-deploy:gcp:CloudSql", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        suffix = random.RandomId(
            f"{name}-suffix",
            byte_length=2,
            keepers={"project": args.project, "region": args.region},
            opts=child,
        )
        instance = gcp.sql.DatabaseInstance(
            name,
            name=pulumi.Output.concat(name, "-", suffix.hex),
            project=args.project,
            region=args.region,
            database_version=DATABASE_VERSION,
            deletion_protection=args.deletion_protection,
            settings={
                "tier": args.tier,
                "edition": args.edition,
                "availability_type": args.availability_type,
                "deletion_protection_enabled": args.deletion_protection,
                "disk_type": "PD_SSD",
                "disk_autoresize": True,
                "disk_autoresize_limit": args.disk_limit_gb,
                "ip_configuration": {
                    "ipv4_enabled": False,  # CKV_GCP_60, CIS 6.6: the provider's default is public
                    "private_network": args.network_id,
                    "allocated_ip_range": args.allocated_ip_range,
                    "ssl_mode": "ENCRYPTED_ONLY",  # CIS 6.4
                },
                "backup_configuration": {
                    "enabled": backups,  # CKV_GCP_14, CIS 6.7
                    "start_time": args.backup_start_time,
                    "point_in_time_recovery_enabled": args.pitr,
                    "transaction_log_retention_days": args.log_retention_days
                    if args.pitr
                    else None,
                    "backup_retention_settings": {"retained_backups": args.backup_retained}
                    if backups
                    else None,
                },
                "database_flags": [
                    {"name": flag, "value": value} for flag, value in LOGGING_FLAGS.items()
                ],
                "insights_config": {
                    "query_insights_enabled": True,
                    "record_application_tags": True,
                    "record_client_address": False,
                    "query_string_length": 1024,
                },
                "maintenance_window": {
                    "day": args.maintenance_day,
                    "hour": args.maintenance_hour,
                    "update_track": args.maintenance_track,
                },
                "user_labels": dict(args.labels),
            },
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=[args.services_connection]
            ),
        )
        # Deleting a Postgres role that owns objects fails, and the instance's deletion takes the
        # role with it anyway: never delete it through the API. In production the database is
        # abandoned and protected too, so a destroy cannot drop it before the guarded instance
        # refuses (pitfall 4 in the notes).
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        database = gcp.sql.Database(
            f"{name}-db",
            name=args.database,
            project=args.project,
            instance=instance.name,
            deletion_policy="ABANDON" if args.protect else "DELETE",
            opts=kept,
        )
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        user = gcp.sql.User(
            f"{name}-user",
            name=args.user,
            project=args.project,
            instance=instance.name,
            type="BUILT_IN",
            password=password.result,
            deletion_policy="ABANDON",
            opts=kept,
        )
        self.instance_name = instance.name
        self.private_ip = instance.private_ip_address
        self.connection_name = instance.connection_name
        self.password = pulumi.Output.secret(password.result)
        self.database = database.name
        self.user = user.name
        # Every CA the instance lists, so a client pinning them survives a CA rotation.
        self.server_ca = pulumi.Output.secret(
            instance.server_ca_certs.apply(lambda certs: "".join(c.cert or "" for c in certs or []))
        )
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "postgresql://",
                user.name,
                ":",
                password.result,
                "@",
                instance.private_ip_address,
                f":{POSTGRES_PORT}/",
                database.name,
                "?sslmode=require",
            )
        )
        self.register_outputs(
            {
                "instanceName": self.instance_name,
                "privateIp": self.private_ip,
                "connectionName": self.connection_name,
            }
        )
