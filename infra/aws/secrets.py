"""Secrets Manager entries for the app: one secret per variable, read by ECS at task start."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.tokens import TokenRotation, rotating_token


@dataclass(frozen=True)
class AppSecretsArgs:
    # Environment variable name -> secret value (a Pulumi secret).
    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Variable names whose value is generated here (random, alphanumeric), never typed in.
    generated: Sequence[str] = ()
    recovery_window_days: int = 7
    #: One secret holding every value under its variable name as a JSON key, instead of one
    #: secret each: a pr slice's secrets cost one $0.40 secret-month, not four.
    single: bool = False
    # Generated variables that rotate with an overlap (AUTH_TOKENS: `app.apiToken`).
    rotations: Mapping[str, TokenRotation] = field(default_factory=dict)


class AppSecrets(pulumi.ComponentResource):
    """`arns` maps each variable name to the ARN of the secret holding its value; `generated`
    the generated values (Pulumi secrets), for the stack outputs that hand them to clients;
    `revision` changes whenever any value gets a new version (no value in it). With `single`,
    `arns` hold `<secret ARN>:<variable>::` (an ECS `valueFrom` JSON key); `secret_arns` are
    the secrets themselves, for IAM."""

    arns: dict[str, pulumi.Output[str]]
    secret_arns: list[pulumi.Output[str]]
    generated: dict[str, pulumi.Output[str]]
    revision: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arns = {}
        self.generated = {}
        accepted: dict[str, pulumi.Output[str]] = {}
        for variable in args.generated:
            token = rotating_token(
                f"{name}-{_slug(variable)}", self, args.rotations.get(variable, TokenRotation())
            )
            self.generated[variable], accepted[variable] = token.current, token.accepted
        values = {**args.values, **accepted}
        if args.single:
            self._single(name, values, args.recovery_window_days)
            return
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
        self.secret_arns = list(self.arns.values())
        self.revision = pulumi.Output.all(*version_ids).apply(_digest)
        self.register_outputs({"arns": self.arns})

    def _single(
        self, name: str, values: Mapping[str, pulumi.Input[str]], recovery_window_days: int
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{name}-values",
            description=f"{', '.join(sorted(values))} for {name}",
            recovery_window_in_days=recovery_window_days,
            opts=child,
        )
        document: pulumi.Input[str] = pulumi.Output.json_dumps(dict(values))
        version = aws.secretsmanager.SecretVersion(
            f"{name}-values",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(document),
            opts=child,
        )
        self.arns = {
            variable: pulumi.Output.concat(secret.arn, f":{variable}::") for variable in values
        }
        self.secret_arns = [secret.arn]
        self.revision = pulumi.Output.unsecret(version.id).apply(lambda v: _digest([v]))
        self.register_outputs({"arns": self.arns})


def _digest(version_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(version_ids)).encode()).hexdigest()[:16]


def _slug(variable: str) -> str:
    return variable.lower().replace("_", "-")
