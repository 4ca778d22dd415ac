"""The `gcp` target: the whole runtime in one Google Cloud project and region.

APIs -> network -> registry + image (built once, pushed with a short-lived token, deployed by
digest) -> Cloud SQL, Memorystore -> secrets -> Cloud Run -> monitoring -> deploy identity,
every size and protection from the tier presets in `infra/config/`. All resources go through
one explicit provider (project, region and labels from config), never ambient gcloud settings.
Only `pulumi_gcp` (and docker-build, random, github) is imported: never `pulumi_aws`.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import DATABASE_APP_USER, PROJECT, GcpConfig, StackConfig, service_hostname
from infra.config.gcp import (
    ENTERPRISE_LOG_RETENTION_DAYS,
    dns_zone,
    gcp_deploy_environment,
    gcp_deploy_repository,
)
from infra.config.pull_requests import PR_BASE_OUTPUT
from infra.gcp.apis import DOMAIN_SERVICES, REQUIRED_SERVICES, GcpApis, GcpApisArgs
from infra.gcp.cache import Memorystore, MemorystoreArgs
from infra.gcp.database import CloudSql, CloudSqlArgs
from infra.gcp.identity import GcpDeployIdentity, GcpDeployIdentityArgs, GcpGitHubRole
from infra.gcp.load_balancer import CloudArmorArgs, GcpLoadBalancer, GcpLoadBalancerArgs
from infra.gcp.monitoring import GcpMonitoring, GcpMonitoringArgs
from infra.gcp.network import GcpNetwork, GcpNetworkArgs
from infra.gcp.secrets import GcpSecrets, GcpSecretsArgs
from infra.gcp.service import CloudRunService
from infra.tokens import token_rotation
from stacks import PROJECT_ROOT, gcp_slice, secret_values
from stacks.accounts import promotion_reader_warnings
from stacks.delivery import github_delivery
from stacks.gcp_app import app_image, app_service_args
from stacks.images import image_history

ALARMS_UNROUTED = "NO RECIPIENT: alerts reach nobody; set gcp.alarmEmail"
# Cloud Run's own URL is HTTPS, but on Google's name, without a TLS policy or Cloud Armor.
TLS_RUN_APP = "run.app only: not on your own name; set app.domain to serve HTTPS on it"


def build(config: StackConfig) -> dict[str, pulumi.Input[object]]:
    if config.pull_requests.base is not None:
        return gcp_slice.build(config)
    gcp_config = config.gcp
    assert gcp_config is not None  # validated: target gcp has a gcp section
    for warning in promotion_reader_warnings(PROJECT_ROOT, config):
        pulumi.log.warn(warning)
    name = f"{config.app.name}-{config.stack}"
    project = gcp_config.project
    region = gcp_config.region
    labels = {"project": PROJECT, "stack": config.stack, "tier": config.tier}
    provider = gcp.Provider(f"{name}-gcp", project=project, region=region, default_labels=labels)
    top = pulumi.ResourceOptions(providers=[provider])

    domain_apis = DOMAIN_SERVICES if config.app.domain is not None else ()
    apis = GcpApis(f"{name}-apis", GcpApisArgs(project, (*REQUIRED_SERVICES, *domain_apis)), top)
    after_apis = pulumi.ResourceOptions(providers=[provider], depends_on=apis.ready)

    identity = _identity(config, gcp_config, name, after_apis)

    network = GcpNetwork(
        f"{name}-net",
        GcpNetworkArgs(
            project=project,
            region=region,
            subnet_cidr=gcp_config.subnet_cidr,
            services_range_prefix=gcp_config.services_range_prefix,
            flow_logs=gcp_config.flow_logs,
        ),
        after_apis,
    )

    image, digest, registry_url = app_image(
        config,
        name,
        provider,
        after_apis,
        writers=[identity.members["deploy"]] if identity is not None else (),
    )

    sql = gcp_config.sql
    database = CloudSql(
        f"{name}-db",
        CloudSqlArgs(
            project=project,
            region=region,
            network_id=network.network_id,
            services_connection=network.services_connection,
            allocated_ip_range=network.services_range_name,
            tier=sql.tier,
            edition=sql.edition,
            availability_type=sql.availability_type,
            disk_limit_gb=sql.disk_limit_gb,
            backups=config.database.backup_days > 0,
            backup_retained=max(config.database.backup_days, 1),
            pitr=sql.point_in_time_recovery,
            log_retention_days=min(
                max(config.database.backup_days, 1), ENTERPRISE_LOG_RETENTION_DAYS
            ),
            deletion_protection=config.database.deletion_protection,
            protect=config.database.protect,
            database=config.database.name,
            user=DATABASE_APP_USER,
            labels=labels,
        ),
        after_apis,
    )
    cache = Memorystore(
        f"{name}-redis",
        MemorystoreArgs(
            project=project,
            region=region,
            network_id=network.network_id,
            services_connection=network.services_connection,
            reserved_ip_range=network.services_range_name,
            tier=gcp_config.redis.tier,
            memory_gb=gcp_config.redis.memory_gb,
            deletion_protection=config.database.deletion_protection,
            labels=labels,
        ),
        after_apis,
    )

    secrets = GcpSecrets(
        f"{name}-secrets",
        GcpSecretsArgs(
            project=project,
            values={
                **secret_values(config.app.secrets),
                "DATABASE_URL": database.url,
                "REDIS_URL": cache.url,
                "REDIS_CA_CERT": cache.ca_cert,
                # The app verifies Cloud SQL's server against it (sslmode=verify-ca).
                "DATABASE_CA_CERT": database.server_ca,
            },
            generated=("AUTH_TOKENS",),
            rotations={"AUTH_TOKENS": token_rotation(config.app)},
        ),
        after_apis,
    )
    hostname = service_hostname(config)
    service = CloudRunService(
        name,
        app_service_args(
            config,
            project=project,
            region=region,
            image=image,
            secret_env=secrets.references,
            network=network.network_id,
            subnet=network.subnet_id,
            depends_on=[*apis.ready, database, cache],
            # CI's deploy account may act as its runtime account only, and creates none.
            service_account=identity.runtime_service_accounts.get("deploy")
            if identity is not None
            else gcp_config.run_service_account,
            labels=labels,
            # Behind the load balancer only: its TLS policy and Cloud Armor cannot be bypassed.
            ingress="INGRESS_TRAFFIC_ALL"
            if hostname is None
            else "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            custom_audiences=(f"https://{hostname}",) if hostname is not None else (),
        ),
        top,
    )
    url: pulumi.Input[str] = service.url
    if hostname is not None:
        url = _load_balancer(config, gcp_config, name, hostname, service, labels, after_apis).url
    GcpMonitoring(
        f"{name}-monitoring",
        GcpMonitoringArgs(
            project=project,
            email=gcp_config.alarm_email,
            service_name=service.name,
            url_host=url,
            health_path=config.app.health_path,
            database_instance=database.instance_name,
            redis_instance=cache.instance_id,
            max_instances=config.app.max_instances,
            authenticated=gcp_config.invoker == "private",
        ),
        after_apis,
    )
    if gcp_config.alarm_email is None:
        # Production refuses this (infra/config/gcp.py); other tiers get told on every run.
        pulumi.log.warn(f"{config.stack}: {ALARMS_UNROUTED}")

    outputs: dict[str, pulumi.Input[object]] = {
        "target": config.target,
        "tier": config.tier,
        "project": project,
        "region": region,
        "serviceUrl": url,
        "healthUrl": pulumi.Output.concat(url, config.app.health_path),
        "tls": "enabled" if hostname is not None else TLS_RUN_APP,
        "alarms": f"email to {gcp_config.alarm_email}"
        if gcp_config.alarm_email
        else ALARMS_UNROUTED,
        "image": image,
        # The `app.image` this run was given (empty when it built): what drift pins again.
        "imageSource": config.app.image or "",
        "imageDigest": digest,
        # What `make rollback` / rollback.yml redeploy from (stacks/images.py).
        "imageHistory": image_history(image),
        "serviceName": service.name,
        "serviceAccount": service.service_account_email,
        "databaseInstance": database.connection_name,
        # Clients send it as `Authorization: Bearer`; read with --show-secrets, never printed.
        "apiToken": secrets.generated["AUTH_TOKENS"],
    }
    variables: dict[str, pulumi.Input[str]] = {
        "GCP_PROJECT": project,
        "GCP_REGION": region,
        "SERVICE_URL": url,
    }
    if hostname is not None:
        outputs["domain"] = hostname
    if identity is not None:
        outputs["workloadIdentityProvider"] = identity.provider_name
        variables["GCP_WORKLOAD_IDENTITY_PROVIDER"] = identity.provider_name
        for kind, email in identity.service_accounts.items():
            outputs[f"{kind}ServiceAccount"] = email
        # What a pr-<n> stack names as gcp.runServiceAccount (the `ephemeral` one).
        outputs["runtimeServiceAccounts"] = identity.runtime_service_accounts
        if "deploy" in identity.service_accounts:
            variables["GCP_DEPLOY_SERVICE_ACCOUNT"] = identity.service_accounts["deploy"]
        if "preview" in identity.service_accounts:
            variables["GCP_PREVIEW_SERVICE_ACCOUNT"] = identity.service_accounts["preview"]
        if "ephemeral" in identity.service_accounts:
            variables["ephemeral/GCP_DEPLOY_SERVICE_ACCOUNT"] = identity.service_accounts[
                "ephemeral"
            ]
    if config.pull_requests.host:
        outputs[PR_BASE_OUTPUT] = gcp_slice.host_pr_base(
            project=project,
            region=region,
            network=network,
            database=database,
            cache=cache,
            secrets=secrets,
            registry_url=registry_url,
            ca_reader=identity.runtime_service_accounts.get("ephemeral")
            if identity is not None
            else None,
            opts=after_apis,
            name=name,
        )
    github_delivery(config, variables)
    return outputs


def _load_balancer(
    config: StackConfig,
    gcp_config: GcpConfig,
    name: str,
    hostname: str,
    service: CloudRunService,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> GcpLoadBalancer:
    """HTTPS on app.domain (pr-<n>.<domain> on pr-<n> stacks): infra/gcp/load_balancer.py."""
    zone = dns_zone(config)
    assert zone is not None  # app.domain is set
    armor = gcp_config.cloud_armor
    return GcpLoadBalancer(
        f"{name}-lb",
        GcpLoadBalancerArgs(
            project=gcp_config.project,
            region=gcp_config.region,
            service_name=service.name,
            hostname=hostname,
            dns_zone_name=zone[1],
            cloud_armor=CloudArmorArgs(gcp_config.rate_limit_per_minute) if armor else None,
            labels=labels,
        ),
        opts,
    )


def _identity(
    config: StackConfig, gcp_config: GcpConfig, name: str, opts: pulumi.ResourceOptions
) -> GcpDeployIdentity | None:
    """The GitHub environments' service accounts this stack owns (infra/gcp/identity.py)."""
    roles = []
    if gcp_config.deploy_identity:
        roles.append(GcpGitHubRole("deploy", gcp_deploy_environment(config)))
    github = config.github
    if github is not None and github.preview_environment:
        roles.append(GcpGitHubRole("preview", f"{config.github_environment}-preview"))
    if github is not None and github.ephemeral_environment:
        roles.append(GcpGitHubRole("ephemeral", github.ephemeral_environment))
    if not roles:
        return None
    repository = gcp_deploy_repository(config)
    owner_id = gcp_config.repository_owner_id
    assert repository is not None and owner_id is not None  # validated in infra.config.gcp
    return GcpDeployIdentity(
        f"{name}-identity",
        GcpDeployIdentityArgs(
            project=gcp_config.project,
            repository=repository,
            repository_owner_id=owner_id,
            roles=roles,
        ),
        opts,
    )
