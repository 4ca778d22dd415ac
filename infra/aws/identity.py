"""GitHub Actions roles: each trusted through GitHub's OIDC provider by exactly one
repository's jobs in exactly one GitHub environment.

A stack has a deploy role for its own environment, a read-only role for its `-preview`
environment (pull-request previews), and staging also the deploy role of the shared
`ephemeral` environment the pr-<n> stacks deploy from (IAM limited to `<app>-pr-*` roles).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.naming import fit

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
ROLE_ACTIONS = (
    "iam:GetRole",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:ListInstanceProfilesForRole",
    "iam:PassRole",
)
OIDC_ACTIONS = (
    "iam:GetOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
)


@dataclass(frozen=True)
class GitHubRole:
    label: str  # resource name suffix: deploy, preview, ephemeral
    environment: str  # GitHub environment whose jobs may assume it
    # Deploy roles: name prefix of the IAM roles they may manage. None: a read-only role.
    role_prefix: str | None


@dataclass(frozen=True)
class DeployIdentityArgs:
    repository: str  # owner/repo
    roles: Sequence[GitHubRole]
    create_provider: bool
    provider_arn: str | None = None


def subject(repository: str, environment: str) -> str:
    if "*" in repository or "*" in environment or repository.count("/") != 1:
        raise ValueError(f"refusing a wildcard or malformed OIDC subject: {repository}")
    return f"repo:{repository}:environment:{environment}"


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
    """`role_arns` maps each role's label to its ARN."""

    role_arns: dict[str, pulumi.Output[str]]
    provider_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeployIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:DeployIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        provider_arn: pulumi.Output[str]
        if args.provider_arn is not None:
            provider_arn = pulumi.Output.from_input(args.provider_arn)
        elif args.create_provider:
            provider_arn = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[AUDIENCE],
                opts=child,
            ).arn
        else:
            provider_arn = aws.iam.get_open_id_connect_provider_output(
                url=GITHUB_OIDC_URL, opts=invoke
            ).arn
        partition = aws.get_partition_output(opts=invoke).partition
        account = aws.get_caller_identity_output(opts=invoke).account_id
        self.role_arns = {}
        for spec in args.roles:
            role = aws.iam.Role(
                fit("aws:iam/role:Role", f"{name}-{spec.label}"),
                description=(
                    f"GitHub Actions {'deploys' if spec.role_prefix is not None else 'previews'}"
                    f" of {args.repository} ({spec.environment})"
                ),
                assume_role_policy=provider_arn.apply(_trusting(args.repository, spec.environment)),
                max_session_duration=3600,
                opts=child,
            )
            if spec.role_prefix is None:
                # `pulumi preview` reads; it changes nothing.
                aws.iam.RolePolicyAttachment(
                    f"{name}-{spec.label}-read-only",
                    role=role.name,
                    policy_arn=pulumi.Output.concat(
                        "arn:", partition, ":iam::aws:policy/ReadOnlyAccess"
                    ),
                    opts=child,
                )
            else:
                self._deploy_policies(
                    f"{name}-{spec.label}", role, spec.role_prefix, partition, account
                )
            self.role_arns[spec.label] = role.arn
        self.provider_arn = provider_arn
        self.register_outputs({"roleArns": self.role_arns})

    def _deploy_policies(
        self,
        name: str,
        role: aws.iam.Role,
        role_prefix: str,
        partition: pulumi.Output[str],
        account: pulumi.Output[str],
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        # Pulumi manages VPC, ECS, RDS, ElastiCache, ... (PowerUserAccess, AWS-managed) and
        # the IAM roles under the stack's prefix only, never IAM users or other roles.
        aws.iam.RolePolicyAttachment(
            f"{name}-power-user",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/PowerUserAccess"),
            opts=child,
        )
        roles = pulumi.Output.concat(
            "arn:", partition, ":iam::", account, ":role/", role_prefix, "*"
        )
        oidc = pulumi.Output.concat(
            "arn:", partition, ":iam::", account, ":oidc-provider/", GITHUB_OIDC_HOST
        )
        aws.iam.RolePolicy(
            f"{name}-iam",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": list(ROLE_ACTIONS), "Resource": [roles]},
                        {"Effect": "Allow", "Action": list(OIDC_ACTIONS), "Resource": [oidc]},
                    ],
                }
            ),
            opts=child,
        )
