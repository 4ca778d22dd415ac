"""Shared pull-request environments on GCP: what gcp-staging exports as `prBase` (host side),
and the pr-<n> slice built on it (`pullRequests.base`).

A slice creates only its own Cloud Run service (its `*.run.app` URL works without DNS), its
own database and user inside the host's Cloud SQL instance (through the Cloud SQL API, no SQL
run anywhere), its own Secret Manager secrets and its own Artifact Registry repository and
image (built per stack like the self-contained pr stack: destroying the slice leaves no image
in staging's repository). The network, Cloud SQL instance and Memorystore instance are the
host's.

Isolation is weaker than the self-contained stack's, and the slice says so on every run
(SHARED_WARNING; docs/gcp-pr-slices.md has the details):
- Cloud SQL makes every user it creates through its API a member of `cloudsqlsuperuser`
  (CREATEROLE, CREATEDB), like the host app's own user: the slice's user can connect to every
  database of the instance, staging's included, and nothing here runs the SQL that could
  take that away.
- Memorystore for Redis has one AUTH string and no ACL users: the slice shares the host's, and
  keeps to its keys only by convention (`REDIS_KEY_PREFIX`).
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.config import PROJECT, StackConfig
from infra.config.pull_requests import (
    PR_BASE_OUTPUT,
    slice_database,
    slice_key_prefix,
)
from infra.gcp.cache import Memorystore
from infra.gcp.database import CloudSql
from infra.gcp.network import GcpNetwork
from infra.gcp.secrets import ACCESSOR_ROLE, GcpSecrets, GcpSecretsArgs
from infra.gcp.service import CloudRunService
from infra.tokens import token_rotation
from stacks import secret_values
from stacks.delivery import github_delivery
from stacks.gcp_app import app_image, app_service_args
from stacks.images import image_history
from stacks.pr_base import PR_BASE_VERSION, GcpPrBase, read_pr_base

#: The server CAs a slice reads from the host's secrets (and nothing else of the host's).
CA_SECRETS = ("DATABASE_CA_CERT", "REDIS_CA_CERT")
SHARED_WARNING = (
    "{stack} shares {base}'s Cloud SQL instance and Memorystore: its database user is a member "
    "of cloudsqlsuperuser and can connect to every database there, staging's included, and "
    "Redis has no ACL users, so this PR's code holds staging's Redis AUTH string and can read "
    "and write staging's keys (its own stay under REDIS_KEY_PREFIX={prefix} by convention "
    "only). For code you do not trust, remove pullRequests.base: the stack is then "
    "self-contained (its own network, database and cache)."
)


class PrBaseError(pulumi.RunError):
    """The base stack exports no usable `prBase`: says which base and what to set there."""


# A slice has no load balancer of its own: Cloud Run's name, HTTPS, never app.domain.
TLS_SLICE = (
    "run.app only: not on your own name; a slice cannot set app.domain (remove "
    "pullRequests.base for a self-contained stack that serves it)"
)


def slice_names(stack: str) -> tuple[str, str]:
    """The database/user name and Redis key prefix of `stack`: the pr-<n> rule, or for another
    stack name (the example `gcp-pr` file, checked offline) one derived the same way from it."""
    try:
        return slice_database(stack), slice_key_prefix(stack)
    except ValueError:
        safe = "".join(c if c.isalnum() else "_" for c in stack.lower())
        return f"pr_{safe}"[:63], f"{stack}:"


# --- host side (gcp-staging with pullRequests.host) ------------------------------------------


def host_pr_base(
    *,
    project: str,
    region: str,
    network: GcpNetwork,
    database: CloudSql,
    cache: Memorystore,
    secrets: GcpSecrets,
    registry_url: pulumi.Input[str] | None,
    ca_reader: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
    name: str,
) -> pulumi.Output[GcpPrBase]:
    """The `prBase` output; `ca_reader` (the `ephemeral` runtime account, when the host has
    that identity) may read the two CA secrets, so slices running as it grant nothing here."""
    if ca_reader is not None:
        reader = pulumi.Output.concat("serviceAccount:", ca_reader)
        for variable in CA_SECRETS:
            gcp.secretmanager.SecretIamMember(
                f"{name}-pr-ca-{variable.lower().replace('_', '-')}",
                project=project,
                secret_id=secrets.secret_ids[variable],
                role=ACCESSOR_ROLE,
                member=reader,
                opts=opts,
            )
    values: dict[str, pulumi.Input[Any]] = {
        "target": "gcp",
        "version": PR_BASE_VERSION,
        "project": project,
        "region": region,
        "network": network.network_id,
        "subnet": network.subnet_id,
        "databaseInstance": database.instance_name,
        "databaseHost": database.private_ip,
        "databasePort": 5432,
        "databaseCaSecretId": secrets.secret_ids["DATABASE_CA_CERT"],
        "databaseCaSecretVersion": secrets.versions["DATABASE_CA_CERT"],
        "redisInstance": cache.instance_id.apply(lambda id_: id_.rsplit("/", 1)[-1]),
        "redisHost": cache.host,
        "redisPort": cache.port,
        "redisCaSecretId": secrets.secret_ids["REDIS_CA_CERT"],
        "redisCaSecretVersion": secrets.versions["REDIS_CA_CERT"],
        "registryUrl": registry_url,
        "caReaderServiceAccount": ca_reader,
    }
    return cast(pulumi.Output[GcpPrBase], pulumi.Output.all(**values))


# --- slice side (pr-<n> with pullRequests.base) ----------------------------------------------


def parse_pr_base(
    value: object, base: str, project: str, region: str, run_as: str | None = None
) -> GcpPrBase:
    """`value` as a GcpPrBase of this version, in this project and region (and letting
    `run_as`, a shared runtime account, read its CA secrets), or a PrBaseError naming the base
    and `pullRequests.host`."""
    fix = (
        f"deploy '{base}' with `agent-deploy:pullRequests: {{host: true}}` (a gcp staging "
        "stack) from this version of agent-deploy, or remove pullRequests.base from this stack"
    )
    if not isinstance(value, dict):
        raise PrBaseError(f"base stack '{base}' exports no '{PR_BASE_OUTPUT}' output: {fix}")
    problems = []
    if value.get("target") != "gcp":
        problems.append(f"target is {value.get('target')!r}, not 'gcp'")
    if value.get("version") != PR_BASE_VERSION:
        problems.append(f"version is {value.get('version')!r}, this slice reads {PR_BASE_VERSION}")
    missing = sorted(
        key
        for key, kind in GcpPrBase.__annotations__.items()
        if "None" not in str(kind) and value.get(key) in (None, "")
    )
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if not problems and (value["project"], value["region"]) != (project, region):
        problems.append(
            f"it is in {value['project']}/{value['region']}, this stack in {project}/{region} "
            "(a slice egresses through the base's subnet: same project and region)"
        )
    if not problems and run_as is not None and value.get("caReaderServiceAccount") != run_as:
        problems.append(
            f"this stack runs as {run_as} (gcp.runServiceAccount) but the base lets "
            f"{value.get('caReaderServiceAccount')!r} read its CA secrets: give it "
            "github.ephemeralEnvironment and run as its `ephemeral` runtime account, or unset "
            "runServiceAccount"
        )
    if problems:
        raise PrBaseError(
            f"base stack '{base}' has an unusable '{PR_BASE_OUTPUT}': {'; '.join(problems)}: {fix}"
        )
    # Numbers come back from a stack reference as floats.
    ports = {key: int(value[key]) for key in ("databasePort", "redisPort", "version")}
    return cast(GcpPrBase, {**value, **ports})


def build(config: StackConfig) -> dict[str, pulumi.Input[object]]:
    gcp_config = config.gcp
    base_name = config.pull_requests.base
    assert gcp_config is not None and base_name is not None  # validated; dispatched on base
    name = f"{config.app.name}-{config.stack}"
    project, region = gcp_config.project, gcp_config.region
    database_name, prefix = slice_names(config.stack)
    labels = {"project": PROJECT, "stack": config.stack, "tier": config.tier}
    shared_account = gcp_config.run_service_account
    _, value = read_pr_base(base_name, f"{name}-base")
    base = parse_pr_base(value, base_name, project, region, shared_account)
    pulumi.log.warn(SHARED_WARNING.format(stack=config.stack, base=base_name, prefix=prefix))
    provider = gcp.Provider(f"{name}-gcp", project=project, region=region, default_labels=labels)
    top = pulumi.ResourceOptions(providers=[provider])

    image: pulumi.Input[str]
    digest: pulumi.Input[str]
    image, digest, _ = app_image(config, name, provider, top)

    # The database depends on the user, so a destroy drops the database (and every object the
    # user owns in it) before the user: Postgres refuses to drop a role that still owns objects.
    password = random.RandomPassword(f"{name}-db-password", length=32, special=False)
    user = gcp.sql.User(
        f"{name}-db-user",
        name=database_name,
        project=project,
        instance=base["databaseInstance"],
        type="BUILT_IN",
        password=password.result,
        deletion_policy="DELETE",
        opts=top,
    )
    database = gcp.sql.Database(
        f"{name}-db",
        name=database_name,
        project=project,
        instance=base["databaseInstance"],
        deletion_policy="DELETE",
        opts=pulumi.ResourceOptions(providers=[provider], depends_on=[user]),
    )
    redis = gcp.redis.get_instance_output(
        name=base["redisInstance"],
        project=project,
        region=region,
        opts=pulumi.InvokeOutputOptions(provider=provider),
    )
    secrets = GcpSecrets(
        f"{name}-secrets",
        GcpSecretsArgs(
            project=project,
            values={
                **secret_values(config.app.secrets),
                "DATABASE_URL": pulumi.Output.format(
                    "postgresql://{0}:{1}@{2}:{3}/{4}?sslmode=require",
                    user.name,
                    password.result,
                    base["databaseHost"],
                    base["databasePort"],
                    database.name,
                ),
                "REDIS_URL": pulumi.Output.format(
                    "rediss://:{0}@{1}:{2}/0",
                    redis.auth_string,
                    base["redisHost"],
                    base["redisPort"],
                ),
            },
            generated=("AUTH_TOKENS",),
            rotations={"AUTH_TOKENS": token_rotation(config.app)},
        ),
        top,
    )
    grants: list[pulumi.Resource] = []
    if shared_account is not None:
        # The host lets this account read its CA secrets (parse_pr_base checked): granting
        # again here would remove that binding for every other slice when this one goes.
        grants += secrets.grant(f"serviceAccount:{shared_account}", "run")
    versions: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = {
        **secrets.references,
        "DATABASE_CA_CERT": (base["databaseCaSecretId"], base["databaseCaSecretVersion"]),
        "REDIS_CA_CERT": (base["redisCaSecretId"], base["redisCaSecretVersion"]),
    }
    service = CloudRunService(
        name,
        app_service_args(
            config,
            project=project,
            region=region,
            image=image,
            secret_env=versions,
            env={"REDIS_KEY_PREFIX": prefix},
            network=base["network"],
            subnet=base["subnet"],
            grant_secret_access=shared_account is None,
            depends_on=[database, user, *grants],
            service_account=shared_account,
            labels=labels,
        ),
        top,
    )
    outputs: dict[str, pulumi.Input[object]] = {
        "target": config.target,
        "tier": config.tier,
        "project": project,
        "region": region,
        "base": base_name,
        "serviceUrl": service.url,
        "healthUrl": pulumi.Output.concat(service.url, config.app.health_path),
        "tls": TLS_SLICE,
        "image": image,
        "imageDigest": digest,
        # What `make rollback` / rollback.yml redeploy from (stacks/images.py).
        "imageHistory": image_history(image),
        "serviceName": service.name,
        "serviceAccount": service.service_account_email,
        "databaseInstance": base["databaseInstance"],
        "database": database.name,
        "redisKeyPrefix": prefix,
        "apiToken": secrets.generated["AUTH_TOKENS"],
    }
    github_delivery(
        config, {"GCP_PROJECT": project, "GCP_REGION": region, "SERVICE_URL": service.url}
    )
    return outputs
