"""The GitHub Actions deploy role: trusted through GitHub's OIDC provider by exactly one
repository's jobs in exactly one GitHub environment."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"


@dataclass(frozen=True)
class DeployIdentityArgs:
    repository: str  # owner/repo
    environment: str  # GitHub environment the deploy jobs run in
    create_provider: bool
    provider_arn: str | None = None
    # Name prefix of the IAM roles this stack manages (the deploy role may manage those only).
    role_prefix: str = ""


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


class DeployIdentity(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
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
        role = aws.iam.Role(
            f"{name}-deploy",
            description=f"GitHub Actions deploys of {args.repository} ({args.environment})",
            assume_role_policy=provider_arn.apply(
                lambda arn: trust_policy(arn, args.repository, args.environment)
            ),
            max_session_duration=3600,
            opts=child,
        )
        partition = aws.get_partition_output(opts=invoke).partition
        account = aws.get_caller_identity_output(opts=invoke).account_id
        # Pulumi manages VPC, ECS, RDS, ElastiCache, ... (PowerUserAccess, AWS-managed) and
        # the IAM roles of this stack only (its name prefix), never IAM users or other roles.
        aws.iam.RolePolicyAttachment(
            f"{name}-deploy-power-user",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/PowerUserAccess"),
            opts=child,
        )
        roles = pulumi.Output.concat(
            "arn:", partition, ":iam::", account, ":role/", args.role_prefix, "*"
        )
        oidc = pulumi.Output.concat(
            "arn:", partition, ":iam::", account, ":oidc-provider/", GITHUB_OIDC_HOST
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-iam",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
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
                            ],
                            "Resource": [roles],
                        },
                        {
                            "Effect": "Allow",
                            "Action": [
                                "iam:GetOpenIDConnectProvider",
                                "iam:CreateOpenIDConnectProvider",
                                "iam:DeleteOpenIDConnectProvider",
                                "iam:TagOpenIDConnectProvider",
                                "iam:UpdateOpenIDConnectProviderThumbprint",
                                "iam:AddClientIDToOpenIDConnectProvider",
                            ],
                            "Resource": [oidc],
                        },
                    ],
                }
            ),
            opts=child,
        )
        self.role_arn = role.arn
        self.provider_arn = provider_arn
        self.register_outputs({"roleArn": self.role_arn})
