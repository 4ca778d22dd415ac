"""RDS PostgreSQL in private subnets, reachable only from the service's security group, with
the master password managed (and rotated) by RDS in Secrets Manager.

The instance has a fixed identifier (alarms, log groups and people name it), so a change AWS can
only make by replacement deletes the old instance first instead of clashing on the name; its
final snapshot carries a random suffix created with the instance, so destroying a re-created
stack does not collide with the snapshot the previous one left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws.firewall import service_only_security_group
from infra.naming import fit

POSTGRES_PORT = 5432


MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class DatabaseArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    engine_version: str
    instance_class: str
    database: str
    username: str
    storage_gb: int
    max_storage_gb: int
    backup_days: int
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    protect: bool
    encrypted: bool
    performance_insights: bool
    log_retention_days: int
    apply_immediately: bool = False
    # RDS refuses a major engine upgrade (16 -> 17) unless the request allows it.
    allow_major_version_upgrade: bool = False
    # FSBP RDS.6 / CKV_AWS_118: OS metrics every this many seconds (0 turns them off).
    monitoring_interval: int = 60
    # The boundary the monitoring role carries (the deploy role's, see identity.py).
    permissions_boundary: pulumi.Input[str] | None = None
    # RDS IAM authentication (a stack hosting pull-request slices: their provisioner signs in
    # with a token, no password).
    iam_authentication: bool = False


# The logs the instance exports to CloudWatch (RDS.9); RDS names their groups after it.
LOG_EXPORTS = ("postgresql", "upgrade")


def instance_identifier(name: str) -> str:
    """The identifier of the instance a `Database` named `name` creates."""
    return fit("aws:rds/instance:Instance", name)


class Database(pulumi.ComponentResource):
    """`address`/`port` locate the instance; `master_secret_arn` is the RDS-managed secret
    (JSON with `username` and `password`), which RDS rotates. No URL: the app connects as its
    own user (stacks/aws.py composes that URL), never as this master."""

    address: pulumi.Output[str]
    port: int
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    log_group_names: list[pulumi.Output[str]]
    # The DbiResourceId `rds-db:connect` ARNs name.
    resource_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        security_group = service_only_security_group(
            name,
            vpc_id=args.vpc_id,
            client_security_group_id=args.client_security_group_id,
            port=POSTGRES_PORT,
            label="PostgreSQL",
            opts=child,
        )
        # RDS.46: the subnet group holds private subnets only.
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=list(args.subnet_ids), opts=child
        )
        major = args.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{major}",
            parameters=[
                # CKV2_AWS_69: clients must use TLS.
                {"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"},
                {
                    "name": "log_min_duration_statement",
                    "value": "1000",
                    "apply_method": "immediate",
                },
            ],
            opts=child,
        )
        # Created before the instance: the groups RDS would create itself never expire and
        # outlive the stack (every destroyed pr-<n> would leave its own behind).
        # RDS names them after the instance identifier (shortened when the name is long).
        identifier = instance_identifier(name)
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{log}",
                name=f"/aws/rds/instance/{identifier}/{log}",
                retention_in_days=args.log_retention_days,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            for log in LOG_EXPORTS
        ]
        final_snapshot_id: pulumi.Output[str] | None = None
        if args.final_snapshot:
            # A new suffix whenever the instance itself would be replaced, so the replaced
            # instance's final snapshot never takes the name the new one needs later.
            suffix = random.RandomId(
                f"{name}-final-snapshot",
                byte_length=4,
                keepers={
                    "database": args.database,
                    "username": args.username,
                    "encrypted": str(args.encrypted).lower(),
                },
                opts=child,
            )
            final_snapshot_id = pulumi.Output.concat(name, "-final-", suffix.hex)
        monitoring_role = self._monitoring_role(name, args) if args.monitoring_interval else None
        instance_opts = pulumi.ResourceOptions(
            parent=self,
            protect=args.protect,
            delete_before_replace=True,
            depends_on=log_groups,
        )
        instance = aws.rds.Instance(
            f"{name}",
            identifier=identifier,
            engine="postgres",
            engine_version=args.engine_version,
            allow_major_version_upgrade=args.allow_major_version_upgrade,
            instance_class=args.instance_class,
            db_name=args.database,
            username=args.username,
            # The password is created, stored in Secrets Manager and rotated by RDS: it is
            # never in Pulumi's state or in a composed URL that rotation would make stale.
            manage_master_user_password=True,
            port=POSTGRES_PORT,
            allocated_storage=args.storage_gb,
            # Storage autoscaling only above the initial size; equal means off (AWS refuses a
            # maximum that is not above the allocation).
            max_allocated_storage=args.max_storage_gb
            if args.max_storage_gb > args.storage_gb
            else None,
            storage_type="gp3",
            storage_encrypted=args.encrypted,  # RDS.3
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,  # RDS.2
            multi_az=args.multi_az,  # RDS.5
            deletion_protection=args.deletion_protection,  # RDS.8
            backup_retention_period=args.backup_days,  # RDS.11
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),  # RDS.9
            auto_minor_version_upgrade=True,  # RDS.13
            copy_tags_to_snapshot=True,  # RDS.17
            monitoring_interval=args.monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if monitoring_role else None,
            performance_insights_enabled=args.performance_insights,
            performance_insights_retention_period=7 if args.performance_insights else None,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=final_snapshot_id,
            delete_automated_backups=not args.final_snapshot,
            apply_immediately=args.apply_immediately,
            iam_database_authentication_enabled=args.iam_authentication,
            opts=instance_opts,
        )
        self.address = instance.address
        self.port = POSTGRES_PORT
        self.identifier = instance.identifier
        self.arn = instance.arn
        self.resource_id = instance.resource_id
        self.security_group_id = security_group.id
        self.master_secret_arn = instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets and secrets[0].secret_arn else ""
        )
        self.log_group_names = [group.name for group in log_groups]
        self.register_outputs({"address": self.address, "masterSecretArn": self.master_secret_arn})

    def _monitoring_role(self, name: str, args: DatabaseArgs) -> aws.iam.Role:
        """The role RDS assumes to publish enhanced-monitoring metrics (AWS's managed policy,
        under the stack's permissions boundary)."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            fit("aws:iam/role:Role", f"{name}-monitoring"),
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=role.name,
            policy_arn=aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).apply(
                lambda p: f"arn:{p.partition}:iam::aws:policy/{MONITORING_POLICY}"
            ),
            opts=child,
        )
        return role
