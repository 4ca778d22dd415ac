"""Secrets Manager entries for the app: one secret per variable, read by ECS at task start."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.tokens import generate_token


@dataclass(frozen=True)
class AppSecretsArgs:
    # Environment variable name -> secret value (a Pulumi secret).
    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Variable names whose value is generated here (random, alphanumeric), never typed in.
    generated: Sequence[str] = ()
    recovery_window_days: int = 7


class AppSecrets(pulumi.ComponentResource):
    """`arns` maps each variable name to the ARN of the secret holding its value; `generated`
    the generated values (Pulumi secrets), for the stack outputs that hand them to clients;
    `revision` changes whenever any value gets a new version (no value in it)."""

    arns: dict[str, pulumi.Output[str]]
    generated: dict[str, pulumi.Output[str]]
    revision: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arns = {}
        self.generated = {
            variable: generate_token(f"{name}-{_slug(variable)}", parent=self)
            for variable in args.generated
        }
        values = {**args.values, **self.generated}
        version_ids: list[pulumi.Output[str]] = []
        for variable, value in sorted(values.items()):
            slug = _slug(variable)
            secret = aws.secretsmanager.Secret(
                f"{name}-{slug}",
                description=f"{variable} for {name}",
                recovery_window_in_days=args.recovery_window_days,
                opts=child,
            )
            version = aws.secretsmanager.SecretVersion(
                f"{name}-{slug}",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(value),
                opts=child,
            )
            # `<secret ARN>|<version id>`: a new value is a new version id.
            version_ids.append(pulumi.Output.unsecret(version.id))
            self.arns[variable] = secret.arn
        self.revision = pulumi.Output.all(*version_ids).apply(_digest)
        self.register_outputs({"arns": self.arns})


def _digest(version_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(version_ids)).encode()).hexdigest()[:16]


def _slug(variable: str) -> str:
    return variable.lower().replace("_", "-")
