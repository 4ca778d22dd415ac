"""GitHub Actions roles: each trusted through GitHub's OIDC provider by exactly one
repository's jobs in exactly one GitHub environment.

A stack has a deploy role for its own environment, a preview role for its `-preview`
environment (pull-request previews), and staging also the deploy role of the shared
`ephemeral` environment the pr-<n> stacks deploy from.

Any branch can reach the preview and ephemeral roles, and unreviewed code on `main` the
staging one, so no role here may become more than it is: a deploy role creates and edits only
roles under its name prefix, only with its permissions boundary (which grants no IAM at all),
attaches only allowlisted managed policies, and cannot touch the boundary, the GitHub roles
or the OIDC provider. Those are changed by an administrator's `pulumi up`
(docs/aws-accounts.md). The preview role reads what a preview of these resource types reads,
and no data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.pr_host import VPC_ACCESS_ACTIONS, VPC_DESCRIBE_ACTIONS
from infra.aws.registry import PULL_ACTIONS
from infra.naming import fit

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# The most a session may last; the workflows ask for less (`AWS_SESSION_SECONDS`) and every job
# that holds AWS credentials ends before its session (tests/ci/test_workflows.py).
MAX_SESSION_SECONDS = 7200
# The GitHub roles of every stack live under this path, which no deploy role's `role/<prefix>*`
# matches: none can create, edit or pass one, its own included.
GITHUB_ROLE_PATH = "/github-actions/"

# What can grant a role more: only with the boundary (all support `iam:PermissionsBoundary`).
BOUNDED_ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
)
# Harmless under the boundary, or taking away only (so roles made before it can go).
ROLE_ACTIONS = (
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
)
ROLE_READ_ACTIONS = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListRoleTags",
    "iam:ListInstanceProfilesForRole",
)
# Services the stacks pass their roles to: ECS tasks and VPC flow logs.
PASSED_TO = (
    "ecs-tasks.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
    "monitoring.rds.amazonaws.com",
)
# The tag RDS puts on the master-password secret it manages (Secrets Manager's
# `aws:rds:primaryDBInstanceArn`): how a boundary names a secret whose ARN is random.
RDS_OWNER_CONDITION_KEY = "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn"
# AWS-managed policies a deploy role may attach (to bounded roles); nothing else.
ATTACHABLE_POLICIES = (
    "service-role/AmazonECSTaskExecutionRolePolicy",
    "service-role/AmazonRDSEnhancedMonitoringRole",
)
BOUNDARY_EDIT_ACTIONS = (
    "iam:CreatePolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
OIDC_WRITE_ACTIONS = (
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
)
# The most a role the stacks create may ever do: run an ECS task (pull, log, read its
# secrets) and deliver flow logs. A task role that needs more widens this list.
# (service, resource in this account, actions)
BOUNDARY_ACTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "ecr",
        "repository/*",
        PULL_ACTIONS,
    ),
    (
        "logs",
        "log-group:*",
        ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
    ),
    ("secretsmanager", "secret:*", ("secretsmanager:GetSecretValue",)),
    ("kms", "key/*", ("kms:Decrypt",)),
    # RDS enhanced monitoring (AmazonRDSEnhancedMonitoringRole) writes to RDSOSMetrics.
    ("logs", "log-group:RDS*", ("logs:CreateLogGroup", "logs:PutRetentionPolicy")),
)

# Preview: metadata of every resource type the aws stacks register, and nothing of their data.
PREVIEW_READ_ACTIONS = (
    "ec2:Describe*",
    "ecs:Describe*",
    "ecs:List*",
    "elasticloadbalancing:Describe*",
    "rds:Describe*",
    "rds:ListTagsForResource",
    "elasticache:Describe*",
    "elasticache:ListTagsForResource",
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:ListTagsForResource",
    "ecr:GetAuthorizationToken",
    "logs:DescribeLogGroups",
    "logs:ListTagsForResource",
    "logs:ListTagsLogGroup",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    # The alarms' EventBridge rule and target (RDS storage events).
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "events:ListTagsForResource",
    "sns:GetTopicAttributes",
    "sns:GetSubscriptionAttributes",
    "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource",
    "application-autoscaling:Describe*",
    "application-autoscaling:ListTagsForResource",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:ListSecretVersionIds",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "s3:GetBucket*",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetAccelerateConfiguration",
    "s3:GetReplicationConfiguration",
    # app.domain: the hosted zone lookup, its records, the certificate and its validation.
    "route53:GetHostedZone",
    "route53:ListHostedZones",
    "route53:ListHostedZonesByName",
    "route53:ListResourceRecordSets",
    "route53:GetChange",
    "route53:ListTagsForResource",
    "acm:DescribeCertificate",
    "acm:ListCertificates",
    "acm:ListTagsForCertificate",
    # A hosting stack's slice provisioner (its code is this repository's).
    "lambda:GetFunction",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:ListVersionsByFunction",
    "lambda:ListTags",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:GetOpenIDConnectProvider",
    "iam:ListOpenIDConnectProviders",
    *ROLE_READ_ACTIONS,
)
# Data a preview never needs, denied whatever else the account grants the role.
PREVIEW_DENIED_DATA = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:StartLiveTail",
    "logs:GetLogRecord",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:GetRecords",
    "dynamodb:PartiQLSelect",
    "dynamodb:ExportTableToPointInTime",
    "sqs:ReceiveMessage",
)


@dataclass(frozen=True)
class GitHubRole:
    label: str  # resource name suffix: deploy, preview, ephemeral
    environment: str  # GitHub environment whose jobs may assume it
    # Deploy roles: name prefix of the IAM roles they may manage. None: the preview role.
    role_prefix: str | None


@dataclass(frozen=True)
class HostedSlices:
    """A stack hosting pull-request slices: what its deploy role's boundary adds (the
    provisioner's rights) and what the pr roles' boundary then denies (the host's secrets)."""

    # Slices' names (ECS services, users, secrets, roles) start with it: `<app>-pr-`.
    slice_prefix: str
    # The host's RDS instance identifier (its master secret is tagged with the ARN).
    database_identifier: str
    provisioner_user: str
    # Slices' target groups (`slice_target_group_prefix`): `slice_prefix` unless the app name
    # is too long for it in ELB's 32 characters.
    target_group_prefix: str | None = None
    # The host cache's replication group and the cleanup user the provisioner signs in as.
    cache_group_id: str | None = None
    cache_cleanup_user: str | None = None


@dataclass(frozen=True)
class SliceHost:
    """The host's resources the `ephemeral` role works on for a slice, or must leave alone."""

    region: str
    cluster_name: str
    cluster_arn: pulumi.Input[str]
    load_balancer_arn: pulumi.Input[str]
    # Every listener of the host's load balancer; slices add rules or listeners, never edit these.
    listener_arns: Sequence[pulumi.Input[str]]
    target_group_arn: pulumi.Input[str]
    security_group_ids: Sequence[pulumi.Input[str]]
    database_arn: pulumi.Input[str]
    cache_arn: pulumi.Input[str]
    user_group_id: pulumi.Input[str]
    # The host's own cache users (`default` and the app's).
    cache_user_ids: Sequence[pulumi.Input[str]]
    provisioner_arn: pulumi.Input[str]
    # Host secrets not named `<app>-<stack>-*` (the RDS-managed master secret).
    secret_arns: Sequence[pulumi.Input[str]]
    # The host's image repository and log groups: PowerUserAccess could delete them.
    repository_arn: pulumi.Input[str] | None = None
    log_group_names: Sequence[pulumi.Input[str]] = ()
    # With a domain: slices' records go in this zone, only as `pr-*.<pr_domain>`.
    hosted_zone_id: pulumi.Input[str] | None = None
    pr_domain: str | None = None


@dataclass(frozen=True)
class DeployIdentityArgs:
    repository: str  # owner/repo
    roles: Sequence[GitHubRole]
    create_provider: bool
    # Names of this stack's resources start with it (`<app>-<stack>-`): its secrets.
    resource_prefix: str
    provider_arn: str | None = None
    # The Pulumi state bucket and the secrets provider's KMS key a preview reads.
    state_bucket: str | None = None
    secrets_key_arn: str | None = None
    # This stack hosts pull-request slices (its `ephemeral` role deploys them).
    hosted_slices: HostedSlices | None = None


def subject(repository: str, environment: str) -> str:
    if "*" in repository or "*" in environment or repository.count("/") != 1:
        raise ValueError(f"refusing a wildcard or malformed OIDC subject: {repository}")
    return f"repo:{repository}:environment:{environment}"


def boundary_name(role_prefix: str) -> str:
    """The boundary every role under `role_prefix` carries: a fixed name, so that the pr-<n>
    stacks find the one staging creates for them."""
    return f"{role_prefix}boundary"


def boundary_arn(role_prefix: str, opts: pulumi.InvokeOptions | None = None) -> pulumi.Output[str]:
    partition = aws.get_partition_output(opts=opts).partition
    account = aws.get_caller_identity_output(opts=opts).account_id
    return pulumi.Output.concat(
        "arn:", partition, ":iam::", account, ":policy/", boundary_name(role_prefix)
    )


def trust_policy(provider_arn: str, repository: str, environment: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    # CKV_AWS_358: both the audience and the exact subject are pinned.
                    "Condition": {
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                            f"{GITHUB_OIDC_HOST}:sub": subject(repository, environment),
                        }
                    },
                }
            ],
        }
    )


def _trusting(repository: str, environment: str) -> Callable[[str], str]:
    return lambda provider_arn: trust_policy(provider_arn, repository, environment)


class DeployIdentity(pulumi.ComponentResource):
    """`role_arns` maps each role's label to its ARN, `boundary_arns` each deploy role's label
    to the boundary the roles it creates carry."""

    role_arns: dict[str, pulumi.Output[str]]
    boundary_arns: dict[str, pulumi.Output[str]]
    provider_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeployIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:DeployIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        self._partition = aws.get_partition_output(opts=invoke).partition
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        provider_arn: pulumi.Output[str]
        if args.provider_arn is not None:
            provider_arn = pulumi.Output.from_input(args.provider_arn)
        elif args.create_provider:
            # Other stacks of the account look it up: destroying this one leaves it to them.
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[AUDIENCE],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            ).arn
        else:
            provider_arn = aws.iam.get_open_id_connect_provider_output(
                url=GITHUB_OIDC_URL, opts=invoke
            ).arn
        self._looks_up = args.provider_arn is None and not args.create_provider
        self._name = name
        self._hosted = args.hosted_slices
        self.boundary_arns = {
            spec.label: self._boundary(
                f"{name}-{spec.label}-boundary", spec.role_prefix, spec.label
            )
            for spec in args.roles
            if spec.role_prefix is not None
        }
        boundaries = list(self.boundary_arns.values())
        self.role_arns = {}
        self._roles: dict[str, aws.iam.Role] = {}
        for spec in args.roles:
            role = aws.iam.Role(
                fit("aws:iam/role:Role", f"{name}-{spec.label}"),
                description=(
                    f"GitHub Actions {'deploys' if spec.role_prefix is not None else 'previews'}"
                    f" of {args.repository} ({spec.environment})"
                ),
                assume_role_policy=provider_arn.apply(_trusting(args.repository, spec.environment)),
                max_session_duration=MAX_SESSION_SECONDS,
                path=GITHUB_ROLE_PATH,
                opts=child,
            )
            if spec.role_prefix is None:
                self._preview_policy(f"{name}-{spec.label}", role, args)
            else:
                self._deploy_policies(
                    f"{name}-{spec.label}",
                    role,
                    spec.role_prefix,
                    self.boundary_arns[spec.label],
                    boundaries,
                    github_roles=self._arn("role", GITHUB_ROLE_PATH, "*"),
                    passed_to=(
                        (*PASSED_TO, "lambda.amazonaws.com")
                        if spec.label == "deploy" and self._hosted is not None
                        else PASSED_TO
                    ),
                )
            self.role_arns[spec.label] = role.arn
            self._roles[spec.label] = role
        self.provider_arn = provider_arn
        self.register_outputs({"roleArns": self.role_arns, "boundaryArns": self.boundary_arns})

    def _arn(
        self, *parts: pulumi.Input[str], service: str = "iam", region: str = ""
    ) -> pulumi.Output[str]:
        return pulumi.Output.concat(
            "arn:", self._partition, f":{service}:{region}:", self._account, ":", *parts
        )

    def _boundary(self, name: str, role_prefix: str, label: str) -> pulumi.Output[str]:
        services = [service for service, _, _ in BOUNDARY_ACTIONS]
        statements: list[dict[str, object]] = [
            {
                # StackLogs, then StackLogs2, ...: IAM wants unique Sids.
                "Sid": f"Stack{service.title()}{services[:i].count(service) + 1 or ''}".replace(
                    f"{service.title()}1", service.title()
                ),
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": [self._arn(resource, service=service, region="*")],
            }
            for i, (service, resource, actions) in enumerate(BOUNDARY_ACTIONS)
        ]
        statements.append(
            {
                # No resource-level permission exists for it.
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            }
        )
        if self._hosted is not None:
            statements += self._host_boundary(label)
        policy = aws.iam.Policy(
            name,
            name=boundary_name(role_prefix),
            description=f"Permissions boundary of every role named {role_prefix}*",
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The ARN from its name: the form the pr-<n> stacks compute (see boundary_arn).
        return self._arn("policy/", policy.name)

    def _host_boundary(self, label: str) -> list[dict[str, object]]:
        """A hosting stack's own roles may run the provisioner; the pr roles may never read
        the host's secrets (their boundary otherwise allows any secret: a self-contained
        pr-<n> stack reads its own RDS-managed one, whose name is random)."""
        hosted = self._hosted
        assert hosted is not None
        if label == "deploy":
            statements: list[dict[str, object]] = [
                {
                    # No resource-level permission exists for them.
                    "Sid": "ProvisionerVpcDescribe",
                    "Effect": "Allow",
                    "Action": list(VPC_DESCRIBE_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "ProvisionerVpcAccess",
                    "Effect": "Allow",
                    "Action": list(VPC_ACCESS_ACTIONS),
                    "Resource": [self._arn("*", service="ec2", region="*")],
                },
                {
                    "Sid": "ProvisionerDatabaseUser",
                    "Effect": "Allow",
                    "Action": ["rds-db:connect"],
                    "Resource": [
                        self._arn(
                            f"dbuser:*/{hosted.provisioner_user}", service="rds-db", region="*"
                        )
                    ],
                },
            ]
            if hosted.cache_group_id and hosted.cache_cleanup_user:
                statements.append(
                    {
                        "Sid": "ProvisionerCacheUser",
                        "Effect": "Allow",
                        "Action": ["elasticache:Connect"],
                        "Resource": [
                            self._arn(
                                f"replicationgroup:{hosted.cache_group_id}",
                                service="elasticache",
                                region="*",
                            ),
                            self._arn(
                                f"user:{hosted.cache_cleanup_user}",
                                service="elasticache",
                                region="*",
                            ),
                        ],
                    }
                )
            return statements
        if label != "ephemeral":
            return []
        return [
            {
                "Sid": "DenyHostSecrets",
                "Effect": "Deny",
                "Action": ["secretsmanager:*"],
                "Resource": [self._host_secrets()],
            },
            {
                "Sid": "DenyHostMasterSecret",
                "Effect": "Deny",
                "Action": ["secretsmanager:*"],
                "Resource": "*",
                "Condition": {"StringLike": {RDS_OWNER_CONDITION_KEY: [self._host_database_arn()]}},
            },
        ]

    def _host_prefix(self) -> str:
        # `<app>-<stack>-identity` -> `<app>-<stack>-`: every name of the hosting stack.
        return self._name.removesuffix("identity")

    def _host_secrets(self) -> pulumi.Output[str]:
        return self._arn("secret:", self._host_prefix(), "*", service="secretsmanager", region="*")

    def _host_database_arn(self) -> pulumi.Output[str]:
        assert self._hosted is not None
        return self._arn("db:", self._hosted.database_identifier, service="rds", region="*")

    def allow_slices(self, host: SliceHost) -> None:
        """What the `ephemeral` role needs against the host to deploy and destroy a slice,
        each by ARN, prefix or condition, and explicit denies on the host's own resources
        (the role also holds PowerUserAccess, for self-contained pr-<n> stacks: only a Deny
        keeps it off what the host runs). What IAM cannot express: docs/aws-accounts.md."""
        hosted = self._hosted
        assert hosted is not None and "ephemeral" in self._roles
        prefix = hosted.slice_prefix

        def arn(service: str, *parts: pulumi.Input[str]) -> pulumi.Output[str]:
            return self._arn(*parts, service=service, region=host.region)

        lb_suffix = pulumi.Output.from_input(host.load_balancer_arn).apply(
            lambda a: a.split(":loadbalancer/", 1)[-1]
        )
        users = arn("elasticache", "user:", prefix, "*")
        group = arn("elasticache", "usergroup:", host.user_group_id)
        allow: list[dict[str, object]] = [
            {
                "Sid": "InvokeProvisioner",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": [host.provisioner_arn],
            },
            {
                "Sid": "SliceCacheUsers",
                "Effect": "Allow",
                "Action": [
                    "elasticache:CreateUser",
                    "elasticache:ModifyUser",
                    "elasticache:DeleteUser",
                    "elasticache:AddTagsToResource",
                ],
                "Resource": [users],
            },
            {
                "Sid": "SliceUsersJoinHostGroup",
                "Effect": "Allow",
                "Action": ["elasticache:ModifyUserGroup"],
                "Resource": [group, users],
            },
            {
                "Sid": "SliceServices",
                "Effect": "Allow",
                "Action": [
                    "ecs:CreateService",
                    "ecs:UpdateService",
                    "ecs:DeleteService",
                    "ecs:TagResource",
                ],
                "Resource": [arn("ecs", f"service/{host.cluster_name}/{prefix}*")],
            },
            {
                # No resource-level permission exists for registering a task definition.
                "Sid": "SliceTaskDefinitions",
                "Effect": "Allow",
                "Action": ["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"],
                "Resource": "*",
            },
            {
                # Registering with tags (the provider's default tags) is tagging the revision.
                "Sid": "SliceTaskDefinitionTags",
                "Effect": "Allow",
                "Action": ["ecs:TagResource"],
                "Resource": [arn("ecs", f"task-definition/{prefix}*")],
            },
            {
                "Sid": "SliceTargetGroups",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:AddTags",
                ],
                "Resource": [
                    arn(
                        "elasticloadbalancing",
                        f"targetgroup/{hosted.target_group_prefix or prefix}*/*",
                    )
                ],
            },
            {
                "Sid": "SliceRulesAndListeners",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:ModifyRule",
                    "elasticloadbalancing:DeleteRule",
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:AddTags",
                ],
                "Resource": [
                    host.load_balancer_arn,
                    *host.listener_arns,
                    arn("elasticloadbalancing", "listener/", lb_suffix, "/*"),
                    arn("elasticloadbalancing", "listener-rule/", lb_suffix, "/*/*"),
                ],
            },
            {
                "Sid": "SliceSecrets",
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:CreateSecret",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecret",
                    "secretsmanager:DeleteSecret",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:TagResource",
                ],
                "Resource": [arn("secretsmanager", "secret:", prefix, "*")],
            },
            {
                "Sid": "SliceLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:DeleteLogGroup",
                    "logs:PutRetentionPolicy",
                    "logs:TagResource",
                ],
                "Resource": [arn("logs", f"log-group:/ecs/{prefix}*")],
            },
        ]
        deny: list[dict[str, object]] = [
            {
                # Only ECS services named for a pr-<n> stack, in any cluster.
                "Sid": "DenyOtherServices",
                "Effect": "Deny",
                "Action": ["ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService"],
                "NotResource": [
                    self._arn(f"service/*/{prefix}*", service="ecs", region="*"),
                    self._arn(f"service/{prefix}*", service="ecs", region="*"),
                ],
            },
            {
                # A task of the host's definitions (db-init holds the master password) with
                # a command override would be the host's database administrator.
                "Sid": "DenyOtherTasks",
                "Effect": "Deny",
                "Action": ["ecs:RunTask", "ecs:StartTask"],
                "NotResource": [self._arn(f"task-definition/{prefix}*", service="ecs", region="*")],
            },
            {
                "Sid": "DenyHostCluster",
                "Effect": "Deny",
                "Action": [
                    "ecs:DeleteCluster",
                    "ecs:UpdateCluster",
                    "ecs:UpdateClusterSettings",
                    "ecs:PutClusterCapacityProviders",
                ],
                "Resource": [host.cluster_arn],
            },
            {
                # Its load balancer, listeners (default actions, certificates) and target
                # group: a slice only adds rules and listeners.
                "Sid": "DenyHostLoadBalancer",
                "Effect": "Deny",
                "NotAction": [
                    "elasticloadbalancing:Describe*",
                    "elasticloadbalancing:CreateRule",
                    "elasticloadbalancing:CreateListener",
                ],
                "Resource": [host.load_balancer_arn, *host.listener_arns, host.target_group_arn],
            },
            {
                "Sid": "DenyHostSecurityGroups",
                "Effect": "Deny",
                "Action": [
                    "ec2:AuthorizeSecurityGroup*",
                    "ec2:RevokeSecurityGroup*",
                    "ec2:ModifySecurityGroupRules",
                    "ec2:DeleteSecurityGroup",
                ],
                "Resource": [
                    arn("ec2", "security-group/", group_id) for group_id in host.security_group_ids
                ],
            },
            {
                "Sid": "DenyHostDatabaseAndCache",
                "Effect": "Deny",
                "NotAction": [
                    "rds:Describe*",
                    "rds:List*",
                    "elasticache:Describe*",
                    "elasticache:List*",
                ],
                "Resource": [
                    host.database_arn,
                    host.cache_arn,
                    *(arn("elasticache", "user:", user) for user in host.cache_user_ids),
                ],
            },
            {
                "Sid": "DenyHostUserGroup",
                "Effect": "Deny",
                "Action": ["elasticache:DeleteUserGroup"],
                "Resource": [group],
            },
            {
                "Sid": "DenyProvisionerChanges",
                "Effect": "Deny",
                "NotAction": [
                    "lambda:InvokeFunction",
                    "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListTags",
                ],
                "Resource": [
                    host.provisioner_arn,
                    pulumi.Output.concat(host.provisioner_arn, ":*"),
                ],
            },
            {
                "Sid": "DenyHostSecrets",
                "Effect": "Deny",
                "Action": ["secretsmanager:*"],
                "Resource": [*host.secret_arns, self._host_secrets()],
            },
        ]
        if host.log_group_names:
            deny.append(
                {
                    "Sid": "DenyHostLogs",
                    "Effect": "Deny",
                    "Action": ["logs:Delete*", "logs:Put*", "logs:*Kms*", "logs:*Tag*"],
                    "Resource": [
                        arn("logs", "log-group:", group, suffix)
                        for group in host.log_group_names
                        for suffix in ("", ":*")
                    ],
                }
            )
        if host.repository_arn is not None:
            deny.append(
                {
                    "Sid": "DenyHostImages",
                    "Effect": "Deny",
                    "Action": ["ecr:Delete*", "ecr:Put*", "ecr:BatchDelete*", "ecr:Set*"],
                    "Resource": [host.repository_arn],
                }
            )
        if host.hosted_zone_id is not None:
            zone = pulumi.Output.concat(
                "arn:", self._partition, ":route53:::hostedzone/", host.hosted_zone_id
            )
            allow.append(
                {
                    "Sid": "SliceRecords",
                    "Effect": "Allow",
                    "Action": ["route53:ChangeResourceRecordSets"],
                    "Resource": [zone],
                    "Condition": {
                        "ForAllValues:StringLike": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                                f"pr-*.{host.pr_domain}"
                            ]
                        }
                    },
                }
            )
            # Self-contained pr-<n> stacks add `pr-<n>.<domain>` and its `_...` validation.
            deny.append(
                {
                    "Sid": "DenyHostRecords",
                    "Effect": "Deny",
                    "Action": ["route53:ChangeResourceRecordSets"],
                    "Resource": [zone],
                    "Condition": {
                        "ForAnyValue:StringNotLike": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                                "pr-*",
                                "_*",
                            ]
                        }
                    },
                }
            )
        child = pulumi.ResourceOptions(parent=self)
        aws.iam.RolePolicy(
            f"{self._name}-ephemeral-slices",
            role=self._roles["ephemeral"].id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": allow}),
            opts=child,
        )
        # The denies in a managed policy of their own: a role's inline policies share 10,240
        # characters, which the allows nearly fill; a managed policy has 6,144 of its own.
        guard_name = fit("aws:iam/policy:Policy", f"{self._name}-ephemeral-host-guard")
        guard = aws.iam.Policy(
            guard_name,
            name=guard_name,
            description="What pr-<n> deploys must never touch on the host stack",
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": deny}),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-ephemeral-host-guard",
            role=self._roles["ephemeral"].name,
            policy_arn=guard.arn,
            opts=child,
        )

    def _preview_policy(self, name: str, role: aws.iam.Role, args: DeployIdentityArgs) -> None:
        stack_secrets = self._arn(
            "secret:", args.resource_prefix, "*", service="secretsmanager", region="*"
        )
        allow: list[dict[str, object]] = [
            # Describe/List actions mostly take no resource ARN.
            {
                "Sid": "DescribeStackResources",
                "Effect": "Allow",
                "Action": list(PREVIEW_READ_ACTIONS),
                "Resource": "*",
            },
            # `preview --refresh` reads each SecretVersion; state holds them encrypted anyway.
            {
                "Sid": "ReadThisStacksSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [stack_secrets],
            },
        ]
        state_objects: list[pulumi.Output[str]] = []
        if args.state_bucket is not None:
            bucket = pulumi.Output.concat("arn:", self._partition, ":s3:::", args.state_bucket)
            state_objects = [pulumi.Output.concat(bucket, "/*")]
            # A self-managed backend's preview reads the checkpoint and takes no lock.
            allow += [
                {
                    "Sid": "ListState",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": [bucket],
                },
                {
                    "Sid": "ReadState",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": state_objects,
                },
            ]
        if args.secrets_key_arn is not None:
            allow.append(
                {
                    "Sid": "DecryptStackSecrets",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:DescribeKey"],
                    "Resource": [args.secrets_key_arn],
                }
            )
        objects: dict[str, object] = (
            {"NotResource": state_objects} if state_objects else {"Resource": "*"}
        )
        deny: list[dict[str, object]] = [
            {
                "Sid": "DenyObjectsOutsideState",
                "Effect": "Deny",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                **objects,
            },
            {
                "Sid": "DenyOtherSecrets",
                "Effect": "Deny",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"],
                "NotResource": [stack_secrets],
            },
            {
                "Sid": "DenyDataReads",
                "Effect": "Deny",
                "Action": list(PREVIEW_DENIED_DATA),
                "Resource": "*",
            },
        ]
        aws.iam.RolePolicy(
            f"{name}-read",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {"Version": "2012-10-17", "Statement": [*allow, *deny]}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _deploy_policies(
        self,
        name: str,
        role: aws.iam.Role,
        role_prefix: str,
        boundary: pulumi.Output[str],
        boundaries: list[pulumi.Output[str]],
        github_roles: pulumi.Output[str],
        passed_to: Sequence[str] = PASSED_TO,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        # VPC, ECS, RDS, ElastiCache, ... (PowerUserAccess, AWS-managed: no IAM at all); IAM
        # below, on bounded roles under the prefix only.
        aws.iam.RolePolicyAttachment(
            f"{name}-power-user",
            role=role.name,
            policy_arn=pulumi.Output.concat(
                "arn:", self._partition, ":iam::aws:policy/PowerUserAccess"
            ),
            opts=child,
        )
        roles = self._arn("role/", role_prefix, "*")
        attachable = [
            pulumi.Output.concat("arn:", self._partition, ":iam::aws:policy/", p)
            for p in ATTACHABLE_POLICIES
        ]
        with_boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
        statements: list[dict[str, object]] = [
            {
                "Sid": "ReadRoles",
                "Effect": "Allow",
                "Action": list(ROLE_READ_ACTIONS),
                "Resource": [roles],
            },
            {
                "Sid": "ManageRolesWithBoundary",
                "Effect": "Allow",
                "Action": list(BOUNDED_ROLE_ACTIONS),
                "Resource": [roles],
                "Condition": with_boundary,
            },
            {
                "Sid": "AttachAllowlistedPolicies",
                "Effect": "Allow",
                "Action": ["iam:AttachRolePolicy"],
                "Resource": [roles],
                "Condition": {**with_boundary, "ArnEquals": {"iam:PolicyARN": attachable}},
            },
            {
                "Sid": "ChangeBoundedRoles",
                "Effect": "Allow",
                "Action": list(ROLE_ACTIONS),
                "Resource": [roles],
            },
            {
                "Sid": "PassRolesToTasksAndFlowLogs",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [roles],
                "Condition": {"StringEquals": {"iam:PassedToService": list(passed_to)}},
            },
        ]
        if self._looks_up:
            statements.append(
                # The stack looks the provider up by URL on every run; listing takes no ARN.
                {
                    "Sid": "FindOidcProvider",
                    "Effect": "Allow",
                    "Action": ["iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviders"],
                    "Resource": "*",
                }
            )
        statements += [
            {
                "Sid": "DenyRolesWithoutBoundary",
                "Effect": "Deny",
                "Action": [*BOUNDED_ROLE_ACTIONS, "iam:AttachRolePolicy"],
                "Resource": "*",
                "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}},
            },
            {
                "Sid": "DenyBoundaryRemoval",
                "Effect": "Deny",
                "Action": ["iam:DeleteRolePermissionsBoundary"],
                "Resource": "*",
            },
            {
                "Sid": "DenyBoundaryEdits",
                "Effect": "Deny",
                "Action": list(BOUNDARY_EDIT_ACTIONS),
                "Resource": boundaries,
            },
            {
                "Sid": "DenyOtherPolicies",
                "Effect": "Deny",
                "Action": ["iam:AttachRolePolicy"],
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"iam:PolicyARN": attachable}},
            },
            # Itself and the other GitHub roles: changed by an administrator only.
            {
                "Sid": "DenyGitHubRoles",
                "Effect": "Deny",
                "Action": ["iam:*"],
                "Resource": [role.arn, github_roles],
            },
            {
                "Sid": "DenyOidcProvider",
                "Effect": "Deny",
                "Action": list(OIDC_WRITE_ACTIONS),
                "Resource": [self._arn("oidc-provider/*")],
            },
        ]
        aws.iam.RolePolicy(
            f"{name}-iam",
            role=role.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=child,
        )
