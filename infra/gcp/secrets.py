"""Secret Manager secrets for the app: one secret per environment variable, each read by
reference at a pinned version.

Outputs: `secret_ids` (variable -> secret id, what Cloud Run's `secret_key_ref.secret` takes),
`versions` (variable -> the version number holding the current value: pin it, never "latest",
so a revision always starts with the value it was deployed with and a new value rolls out as a
new revision), `generated` (variable -> generated value, a Pulumi secret) and `grants` (the
accessor bindings: a Cloud Run service must depend on them, or its first revision may start
before it may read its secrets).

Access is granted per secret to named members (the service's own account), never on the
project (which would reach every secret of every stack there). Replication is automatic
(Google picks the regions; no location constraint applies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.tokens import TokenRotation, rotating_token

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
SECRET_ID_MAX = 255
LABEL_VALUE_MAX = 63


@dataclass(frozen=True)
class GcpSecretsArgs:
    project: pulumi.Input[str]
    # Environment variable name -> value (made a Pulumi secret here if it is not one yet).
    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Variable names whose value is generated here (random, alphanumeric), never typed in.
    generated: Sequence[str] = ()
    # Members (`serviceAccount:run@…`) that may read every secret here.
    accessors: Sequence[pulumi.Input[str]] = ()
    # A replaced value's version stays enabled (billed per version), so rolling Cloud Run back
    # to an earlier revision, which pins it, still starts. Otherwise it is destroyed.
    keep_replaced_versions: bool = False
    # Generated variables that rotate with an overlap (AUTH_TOKENS: `app.apiToken`).
    rotations: Mapping[str, TokenRotation] = field(default_factory=dict)


def secrets_problems(name: str, args: GcpSecretsArgs) -> list[str]:
    problems = []
    variables = [*args.values, *args.generated]
    for variable in variables:
        if not _VARIABLE.fullmatch(variable):
            problems.append(
                f"values: '{variable}' is not an environment variable name (A-Z, 0-9, _)"
            )
        elif len(secret_id(name, variable)) > SECRET_ID_MAX:
            problems.append(
                f"values: secret id '{secret_id(name, variable)}' is longer than "
                f"{SECRET_ID_MAX} characters"
            )
    both = sorted(set(args.values) & set(args.generated))
    if both:
        problems.append(f"generated: {', '.join(both)} also given a value")
    problems += [
        f"accessors: '{member}' would let anyone read the secrets"
        for member in args.accessors
        if isinstance(member, str) and member in PUBLIC_MEMBERS
    ]
    return problems


def secret_id(name: str, variable: str) -> str:
    return f"{name}-{variable.lower().replace('_', '-')}"


class GcpSecrets(pulumi.ComponentResource):
    secret_ids: dict[str, pulumi.Output[str]]
    versions: dict[str, pulumi.Output[str]]
    generated: dict[str, pulumi.Output[str]]
    grants: list[pulumi.Resource]

    def __init__(
        self, name: str, args: GcpSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = secrets_problems(name, args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:GcpSecrets", name, None, opts)
        self._name = name
        self._project = args.project
        self._secrets: dict[str, gcp.secretmanager.Secret] = {}
        self.secret_ids = {}
        self.versions = {}
        self.grants = []
        self.generated = {}
        accepted: dict[str, pulumi.Output[str]] = {}
        for variable in args.generated:
            token = rotating_token(
                secret_id(name, variable), self, args.rotations.get(variable, TokenRotation())
            )
            self.generated[variable], accepted[variable] = token.current, token.accepted
        child = pulumi.ResourceOptions(parent=self)
        for variable, value in sorted({**args.values, **accepted}.items()):
            secret = gcp.secretmanager.Secret(
                secret_id(name, variable),
                project=args.project,
                secret_id=secret_id(name, variable),
                replication={"auto": {}},
                labels={"variable": variable.lower()[:LABEL_VALUE_MAX]},
                opts=child,
            )
            version = gcp.secretmanager.SecretVersion(
                secret_id(name, variable),
                secret=secret.id,
                secret_data=pulumi.Output.secret(value),
                deletion_policy="ABANDON" if args.keep_replaced_versions else "DELETE",
                opts=child,
            )
            self._secrets[variable] = secret
            self.secret_ids[variable] = secret.secret_id
            self.versions[variable] = version.version
        for index, member in enumerate(args.accessors):
            self.grant(member, f"reader-{index}")
        self.register_outputs({"secretIds": self.secret_ids, "versions": self.versions})

    @property
    def references(self) -> dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]:
        """Variable -> (secret id, pinned version): what CloudRunServiceArgs.secret_env takes."""
        return {key: (self.secret_ids[key], self.versions[key]) for key in self.secret_ids}

    def grant(self, member: pulumi.Input[str], label: str) -> list[pulumi.Resource]:
        """Let `member` read each secret here (and no other); `label` names the bindings."""
        if isinstance(member, str) and member in PUBLIC_MEMBERS:
            raise ValueError(f"grant: '{member}' would let anyone read the secrets")
        made: list[pulumi.Resource] = [
            gcp.secretmanager.SecretIamMember(
                f"{secret_id(self._name, variable)}-{label}",
                project=self._project,
                secret_id=secret.secret_id,
                role=ACCESSOR_ROLE,
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for variable, secret in sorted(self._secrets.items())
        ]
        self.grants += made
        return made
