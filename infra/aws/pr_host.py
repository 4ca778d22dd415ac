"""What a stack hosting pull-request slices adds: the Lambda function that creates and drops a
slice's database and role on the host's Postgres server, and deletes its Redis keys.

Why a Lambda: the server is private, and a slice is deployed from a GitHub runner outside the
VPC. The function runs inside it, signs in as one Postgres role (`PROVISIONER_USER`, which may
create roles and databases but is no superuser) with an RDS IAM token instead of a password,
and refuses any database name but `pr_<n>` (infra/aws/provisioner/). On a slice's delete it
signs in to the cache as the cleanup user (IAM again) and unlinks the slice's `pr-<n>:` keys. Its
security group is the only new client the database and the cache admit; it reaches nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.cache import REDIS_PORT
from infra.aws.database import POSTGRES_PORT
from infra.aws.provisioner import HANDLER, PROVISIONER_USER, RUNTIME, provisioner_archive
from infra.naming import fit

# A slice's create or drop is a few statements; a stuck one must not hold the deploy long.
TIMEOUT_SECONDS = 60
# Slices deploy one at a time per PR; a handful at once is plenty, and caps what a flood of
# invocations could do to the database server.
RESERVED_CONCURRENCY = 2
MEMORY_MB = 256
# What Lambda needs to attach the function to the VPC (AWSLambdaVPCAccessExecutionRole's
# actions): the describes take no resource ARN, the others are held to this account and region.
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


@dataclass(frozen=True)
class PrHostArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    database_security_group_id: pulumi.Input[str]
    database_address: pulumi.Input[str]
    database_name: str
    # The instance's DbiResourceId, which `rds-db:connect` ARNs name.
    database_resource_id: pulumi.Input[str]
    log_retention_days: int
    cache_security_group_id: pulumi.Input[str]
    cache_address: pulumi.Input[str]
    # The replication group's id and ARN (an IAM token names the group), and the cleanup user's id.
    cache_name: pulumi.Input[str]
    cache_arn: pulumi.Input[str]
    cache_cleanup_user_id: str
    permissions_boundary: pulumi.Input[str] | None = None
    database_port: int = POSTGRES_PORT
    cache_port: int = REDIS_PORT


class PrHost(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PrHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:PrHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id

        security_group = aws.ec2.SecurityGroup(
            f"{name}-provisioner",
            vpc_id=args.vpc_id,
            description=f"{name} database provisioner",
            opts=child,
        )

        def reach(
            target: str, group: pulumi.Input[str], port: int, what: str, why: str
        ) -> aws.vpc.SecurityGroupIngressRule:
            """Egress from the provisioner to `group` on `port`, and `group` admitting it."""
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-provisioner-to-{target}",
                security_group_id=security_group.id,
                referenced_security_group_id=group,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{what} of the host",
                opts=child,
            )
            return aws.vpc.SecurityGroupIngressRule(
                f"{name}-{target}-from-provisioner",
                security_group_id=group,
                referenced_security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{what} from the slice provisioner{why}",
                opts=child,
            )

        database_ingress = reach(
            "db", args.database_security_group_id, args.database_port, "PostgreSQL", ""
        )
        cache_ingress = reach(
            "cache", args.cache_security_group_id, args.cache_port, "Cache", " (key cleanup)"
        )

        function_name = fit("aws:lambda/function:Function", f"{name}-provisioner")
        # Created first, with a retention: the group Lambda would create never expires.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-provisioner",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        role = aws.iam.Role(
            fit("aws:iam/role:Role", f"{name}-provisioner"),
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                        }
                    ],
                }
            ),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        db_user = pulumi.Output.concat(
            "arn:",
            partition,
            ":rds-db:",
            region,
            ":",
            account,
            ":dbuser:",
            args.database_resource_id,
            f"/{PROVISIONER_USER}",
        )
        cache_user = pulumi.Output.concat(
            "arn:",
            partition,
            ":elasticache:",
            region,
            ":",
            account,
            f":user:{args.cache_cleanup_user_id}",
        )
        policy = aws.iam.RolePolicy(
            f"{name}-provisioner",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "Logs",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": [pulumi.Output.concat(log_group.arn, ":log-stream:*")],
                        },
                        {
                            "Sid": "VpcDescribe",
                            "Effect": "Allow",
                            "Action": list(VPC_DESCRIBE_ACTIONS),
                            "Resource": "*",
                        },
                        {
                            "Sid": "VpcAccess",
                            "Effect": "Allow",
                            "Action": list(VPC_ACCESS_ACTIONS),
                            "Resource": [
                                pulumi.Output.concat(
                                    "arn:", partition, ":ec2:", region, ":", account, ":*"
                                )
                            ],
                        },
                        {
                            "Sid": "ConnectAsProvisioner",
                            "Effect": "Allow",
                            "Action": ["rds-db:connect"],
                            "Resource": [db_user],
                        },
                        {
                            "Sid": "ConnectAsCacheCleanup",
                            "Effect": "Allow",
                            "Action": ["elasticache:Connect"],
                            "Resource": [args.cache_arn, cache_user],
                        },
                    ],
                }
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-provisioner",
            name=function_name,
            description="Creates and drops pull-request slices' databases, roles and keys",
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            code=provisioner_archive(),
            architectures=["arm64"],
            memory_size=MEMORY_MB,
            timeout=TIMEOUT_SECONDS,
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            vpc_config={
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": [security_group.id],
            },
            environment={
                "variables": {
                    "DATABASE_HOST": args.database_address,
                    "DATABASE_PORT": str(args.database_port),
                    "DATABASE_NAME": args.database_name,
                    "DATABASE_USER": PROVISIONER_USER,
                    "CACHE_HOST": args.cache_address,
                    "CACHE_PORT": str(args.cache_port),
                    "CACHE_NAME": args.cache_name,
                    "CACHE_USER": args.cache_cleanup_user_id,
                }
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[log_group, policy, database_ingress, cache_ingress]
            ),
        )
        self.function_name = function.name
        self.function_arn = function.arn
        self.security_group_id = security_group.id
        self.log_group_name = log_group.name
        self.register_outputs(
            {"functionName": self.function_name, "functionArn": self.function_arn}
        )
