"""The app on Cloud Run (v2 service) under its own service account.

Outputs: `url` (the service's run.app URL), `service_account_email`, `service_account_member`
(`serviceAccount:EMAIL`), `name`.

The service account gets no project role: logs from stdout need none and Cloud SQL is reached by
TCP at its private IP (no `cloudsql.client`). It may read exactly the secrets in `secret_env`
(`roles/secretmanager.secretAccessor` on each of those secrets), granted here so that the
service can wait for those grants (its first revision fails without them). The account is made
here unless `service_account` names an existing one (a deploy identity's runtime account).
Secrets reach the container by reference, pinned to a version: "latest" would let a new
version change a running revision's behaviour on its next cold start.
With `migrate_command`, a CloudRunMigration child (infra/gcp/migration.py) runs it with the same
image, env, account and egress first, and the service waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_gcp as gcp

from infra.gcp.migration import CloudRunMigration, CloudRunMigrationArgs
from infra.gcp.secrets import ACCESSOR_ROLE
from infra.naming import fit

INVOKER_ROLE = "roles/run.invoker"


@dataclass(frozen=True)
class CloudRunServiceArgs:
    project: pulumi.Input[str]
    region: str
    image: pulumi.Input[str]  # by digest: REPO/IMAGE@sha256:...
    port: int
    cpu: str  # "1", "2", ...
    memory: str  # "512Mi", "2Gi", ...
    min_instances: int
    max_instances: int
    # Request-based billing: CPU only while a request is served. Cloud Run defaults to it only
    # while `resources` is unset, so it is always set explicitly here.
    cpu_idle: bool
    timeout_seconds: int
    readiness_path: str
    liveness_path: str
    env: Mapping[str, pulumi.Input[str]]
    # NAME -> (secret id, version number)
    secret_env: Mapping[str, tuple[pulumi.Input[str], pulumi.Input[str]]]
    network: pulumi.Input[str]
    subnet: pulumi.Input[str]
    deletion_protection: bool
    # Anyone may call it (the app checks its own bearer tokens): `allUsers` gets run.invoker.
    public: bool
    # Public without IAM at all: the way under Domain Restricted Sharing, which refuses allUsers.
    invoker_iam_disabled: bool
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    # False when the caller grants the secrets to `service_account_member` itself; the first
    # revision may then start before it can read them. Two grants of the same binding must not
    # coexist: deleting either removes it.
    grant_secret_access: bool = True
    concurrency: int = 80
    # An existing account to run as (the deploy identity's runtime account, the only one a
    # deploy service account may act as); None creates one here.
    service_account: pulumi.Input[str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Run as a Cloud Run job with the new image, env and secrets before the service changes
    # (infra/gcp/migration.py); empty: none.
    migrate_command: Sequence[str] = ()
    # INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER behind a load balancer: the run.app URL then
    # refuses the internet, so nothing bypasses the load balancer's TLS policy and Cloud Armor.
    ingress: Literal[
        "INGRESS_TRAFFIC_ALL",
        "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        "INGRESS_TRAFFIC_INTERNAL_ONLY",
    ] = "INGRESS_TRAFFIC_ALL"
    # URLs a caller's ID token may name besides run.app (the load balancer's https://domain):
    # with invoker IAM on, a token for the domain is refused without it.
    custom_audiences: Sequence[str] = ()


def _pinned(name: str, version: pulumi.Input[str]) -> pulumi.Input[str]:
    def check(value: str) -> str:
        if not str(value).isdigit():
            raise ValueError(
                f"secret_env {name!r}: version {value!r}; allowed: a version number "
                "(never 'latest')"
            )
        return str(value)

    if isinstance(version, str):
        return check(version)
    return pulumi.Output.concat(version).apply(check)


def _problems(name: str, args: CloudRunServiceArgs) -> list[str]:
    found = []
    if args.min_instances > args.max_instances:
        found.append(f"min_instances {args.min_instances} > max_instances {args.max_instances}")
    if args.invoker_iam_disabled and not args.public:
        found.append("invoker_iam_disabled makes the service public, but public is false")
    for key, (_, version) in args.secret_env.items():
        if isinstance(version, str) and not version.isdigit():
            found.append(f"secret_env {key!r}: version {version!r}; allowed: a version number")
    overlap = sorted(set(args.env) & set(args.secret_env))
    if overlap:
        found.append(f"{overlap} are both in env and secret_env")
    return [f"CloudRunService {name!r}: {p}" for p in found]


class CloudRunService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    service_account_member: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: CloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = _problems(name, args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:CloudRunService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        email: pulumi.Output[str]
        member: pulumi.Output[str]
        if args.service_account is None:
            account = gcp.serviceaccount.Account(
                f"{name}-sa",
                account_id=fit("gcp:serviceaccount/account:Account", f"{name}-run"),
                display_name=f"Cloud Run service {name}",
                project=args.project,
                opts=child,
            )
            email, member = account.email, account.member
        else:
            email = pulumi.Output.from_input(args.service_account)
            member = pulumi.Output.concat("serviceAccount:", email)
        grants = [
            gcp.secretmanager.SecretIamMember(
                f"{name}-reads-{key.lower().replace('_', '-')}",
                project=args.project,
                secret_id=secret,
                role=ACCESSOR_ROLE,
                member=member,
                opts=child,
            )
            for key, (secret, _) in args.secret_env.items()
            if args.grant_secret_access
        ]
        envs: list[Any] = [{"name": k, "value": v} for k, v in args.env.items()]
        envs += [
            {
                "name": key,
                "value_source": {
                    "secret_key_ref": {"secret": secret, "version": _pinned(key, version)}
                },
            }
            for key, (secret, version) in args.secret_env.items()
        ]

        def probe(path: str, failures: int) -> Any:
            return {
                "http_get": {"path": path, "port": args.port},
                "period_seconds": 10,
                "timeout_seconds": 5,
                "failure_threshold": failures,
            }

        migration: list[pulumi.Resource] = []
        if args.migrate_command:
            migration.append(
                CloudRunMigration(
                    f"{name}-migrate",
                    CloudRunMigrationArgs(
                        project=args.project,
                        region=args.region,
                        image=args.image,
                        envs=envs,
                        service_account=email,
                        network=args.network,
                        subnet=args.subnet,
                        cpu=args.cpu,
                        memory=args.memory,
                        deletion_protection=args.deletion_protection,
                        command=args.migrate_command,
                        labels=args.labels,
                        depends_on=[*grants, *args.depends_on],
                    ),
                    child,
                )
            )
        service = gcp.cloudrunv2.Service(
            name,
            name=fit("gcp:cloudrunv2/service:Service", name),
            project=args.project,
            location=args.region,
            ingress=args.ingress,
            custom_audiences=list(args.custom_audiences) or None,
            deletion_protection=args.deletion_protection,
            invoker_iam_disabled=args.invoker_iam_disabled,
            labels=dict(args.labels),
            template={
                "service_account": email,
                "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
                "scaling": {
                    "min_instance_count": args.min_instances,
                    "max_instance_count": args.max_instances,
                },
                "max_instance_request_concurrency": args.concurrency,
                "timeout": f"{args.timeout_seconds}s",
                "vpc_access": {
                    "network_interfaces": [{"network": args.network, "subnetwork": args.subnet}],
                    "egress": "PRIVATE_RANGES_ONLY",
                },
                "containers": [
                    {
                        "image": args.image,
                        "ports": {"container_port": args.port},
                        "envs": envs,
                        "resources": {
                            "limits": {"cpu": args.cpu, "memory": args.memory},
                            "cpu_idle": args.cpu_idle,
                            "startup_cpu_boost": True,
                        },
                        # Up to 5 minutes to become ready (model warm-up).
                        "startup_probe": probe(args.readiness_path, 30),
                        "liveness_probe": probe(args.liveness_path, 3),
                    }
                ],
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*grants, *args.depends_on, *migration]
            ),
        )
        if args.public and not args.invoker_iam_disabled:
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-public",
                project=args.project,
                location=args.region,
                name=service.name,
                role=INVOKER_ROLE,
                member="allUsers",
                opts=child,
            )
        self.url = service.uri
        self.service_account_email = email
        self.service_account_member = member
        self.name = service.name
        self.register_outputs({"url": self.url, "serviceAccountEmail": email})
