"""The `aws` target: the whole runtime in one AWS account and region.

Network -> registry + image -> database, cache -> secrets -> service -> alarms -> deploy
identity, every size and protection from the tier presets in `infra/config/`. All
resources go through one explicit provider (region and default tags from config), never the
ambient `aws:region`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra.app_commands import MIGRATE
from infra.aws.alarms import Alarms, AlarmsArgs
from infra.aws.cache import (
    REDIS_PORT,
    Cache,
    CacheArgs,
    cleanup_user_id,
    replication_group_id,
)
from infra.aws.database import Database, DatabaseArgs, instance_identifier
from infra.aws.domain import Domain, DomainArgs
from infra.aws.identity import (
    DeployIdentity,
    DeployIdentityArgs,
    GitHubRole,
    HostedSlices,
    SliceHost,
    boundary_arn,
)
from infra.aws.network import AwsNetwork, AwsNetworkArgs
from infra.aws.pr_host import PrHost, PrHostArgs
from infra.aws.provisioner import PROVISIONER_USER
from infra.aws.registry import IMAGE_TAG_PATTERN, Registry, RegistryArgs
from infra.aws.secrets import AppSecrets, AppSecretsArgs
from infra.aws.service import InitContainer, Service, ServiceArgs, ecr_repository_arn
from infra.aws.slice import slice_target_group_prefix
from infra.config import (
    DATABASE_APP_USER,
    PR_BASE_OUTPUT,
    PROJECT,
    ConfigError,
    StackConfig,
    default_zone,
    deploy_environment,
    deploy_repository,
    ephemeral_stack,
    performance_insights_supported,
    service_hostname,
)
from infra.config.pull_requests import PR_PORT_OFFSET
from infra.image import RegistryLogin
from infra.promotion import PROMOTED_TAG_PREFIX, PromotedImage, PromotedImageArgs
from infra.timeouts import Timeouts
from infra.tokens import token_rotation
from stacks import PROJECT_ROOT, StackConfigError, secret_values
from stacks.accounts import oidc_provider_claim_problems, promotion_reader_warnings
from stacks.delivery import github_delivery
from stacks.images import build_image, given_image_digest, image_history
from stacks.pr_base import PR_BASE_VERSION, AwsPrBase

TLS_DISABLED = "disabled: plain HTTP; set app.domain (or aws.certificateArn) to serve HTTPS"
# The image ships the RDS CA bundle (app/Dockerfile); a custom image must too.
RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
DB_BOOTSTRAP = ("python", "-m", "src.db_bootstrap")
ALARMS_UNROUTED = "NO RECIPIENT: alarms reach nobody; set aws.alarmEmail"
MAX_PORT = 65535


def build(config: StackConfig) -> dict[str, pulumi.Input[object]]:
    if config.pull_requests.base is not None:
        # Only its slice of a shared base (stacks/aws_slice.py).
        from stacks.aws_slice import build_slice

        return build_slice(config, _pr_role_prefix(config))
    aws_config = config.aws
    assert aws_config is not None  # validated: target aws has an aws section
    if problems := oidc_provider_claim_problems(PROJECT_ROOT, config):
        raise StackConfigError(ConfigError(config.stack, problems))
    for warning in promotion_reader_warnings(PROJECT_ROOT, config):
        pulumi.log.warn(warning)
    name = f"{config.app.name}-{config.stack}"
    # The boundary names the cache's group and cleanup user before the cache exists.
    cache_name = f"{name}-cache"
    ephemeral = config.tier == "ephemeral"
    # This stack carries what pr-<n> slices share (stacks/pr_base.py).
    host = config.pull_requests.host
    provider = aws.Provider(
        f"{name}-aws",
        region=aws_config.region,
        allowed_account_ids=[aws_config.account_id] if aws_config.account_id else None,
        default_tags={
            "tags": {
                "project": PROJECT,
                "stack": config.stack,
                "tier": config.tier,
                "app": config.app.name,
            }
        },
    )
    top = pulumi.ResourceOptions(providers=[provider])
    invoke = pulumi.InvokeOutputOptions(provider=provider)

    roles = _github_roles(config, name)
    role_arns: dict[str, pulumi.Output[str]] = {}
    identity: DeployIdentity | None = None
    # Every role this stack creates carries the boundary of the role that deploys it.
    boundary: pulumi.Output[str] | None = None
    if roles:
        repository = deploy_repository(config)
        assert repository is not None  # validated in infra.config.aws_problems
        identity = DeployIdentity(
            f"{name}-identity",
            DeployIdentityArgs(
                repository=repository,
                roles=roles,
                create_provider=aws_config.create_oidc_provider,
                provider_arn=aws_config.oidc_provider_arn,
                resource_prefix=f"{name}-",
                state_bucket=aws_config.state_bucket,
                secrets_key_arn=aws_config.secrets_provider_key_arn,
                hosted_slices=HostedSlices(
                    slice_prefix=_pr_role_prefix(config),
                    database_identifier=instance_identifier(f"{name}-db"),
                    provisioner_user=PROVISIONER_USER,
                    target_group_prefix=slice_target_group_prefix(config.app.name),
                    cache_group_id=replication_group_id(cache_name),
                    cache_cleanup_user=cleanup_user_id(cache_name),
                )
                if host
                else None,
            ),
            top,
        )
        role_arns = identity.role_arns
        boundary = identity.boundary_arns.get("deploy")
    if boundary is None and ephemeral_stack(config.stack):
        # Deployed by staging's `ephemeral` role, whose boundary staging creates.
        boundary = boundary_arn(_pr_role_prefix(config), invoke)

    # HTTPS: a certificate ACM issues for app.domain, or one managed elsewhere.
    hostname = service_hostname(config)
    domain: Domain | None = None
    if hostname is not None:
        assert config.app.domain is not None
        domain = Domain(
            f"{name}-domain",
            DomainArgs(
                hostname=hostname,
                zone_id=aws_config.hosted_zone_id,
                zone_name=aws_config.hosted_zone or default_zone(config.app.domain),
                certificate_arn=aws_config.certificate_arn,
                wildcard=host,
            ),
            top,
        )
    certificate_arn: pulumi.Input[str] | None = (
        domain.certificate_arn if domain is not None else aws_config.certificate_arn
    )

    # Production keeps tasks private behind NAT; cheaper tiers give them a public IP, and
    # only the load balancer's security group can reach them.
    private_tasks = aws_config.nat_gateways != "none"
    network = AwsNetwork(
        name,
        AwsNetworkArgs(
            cidr=aws_config.vpc_cidr,
            availability_zones=aws_config.availability_zones,
            nat_gateways=aws_config.nat_gateways,
            app_port=config.app.port,
            flow_logs=aws_config.flow_logs,
            log_retention_days=aws_config.log_retention_days,
            public_ports=(80, 443) if certificate_arn is not None else (80,),
            # Without a domain, a slice answers on its own port (PR_PORT_OFFSET + n).
            slice_ports=(PR_PORT_OFFSET, MAX_PORT) if host and domain is None else None,
            permissions_boundary=boundary,
            region=aws_config.region,
        ),
        top,
    )

    image, digest, repository_arn = app_image(config, name, top, invoke, force_delete=ephemeral)

    database = Database(
        f"{name}-db",
        DatabaseArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=network.task_security_group_id,
            engine_version=config.database.engine_version,
            instance_class=config.database.instance_class,
            database=config.database.name,
            username=config.database.username,
            storage_gb=config.database.storage_gb,
            max_storage_gb=config.database.max_storage_gb,
            backup_days=config.database.backup_days,
            multi_az=config.database.multi_az,
            deletion_protection=config.database.deletion_protection,
            final_snapshot=config.database.final_snapshot,
            protect=config.database.protect,
            encrypted=config.database.encrypted,
            performance_insights=performance_insights_supported(config.database.instance_class),
            log_retention_days=aws_config.log_retention_days,
            apply_immediately=ephemeral,
            allow_major_version_upgrade=config.database.allow_major_version_upgrade,
            permissions_boundary=boundary,
            iam_authentication=host,
        ),
        top,
    )
    cache = Cache(
        cache_name,
        CacheArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=network.task_security_group_id,
            engine=config.cache.engine,
            engine_version=config.cache.engine_version,
            node_type=config.cache.node_type,
            nodes=config.cache.nodes,
            automatic_failover=config.cache.automatic_failover,
            snapshot_days=config.cache.snapshot_days,
            encrypted=config.cache.encrypted,
            apply_immediately=ephemeral,
            rbac=host,
        ),
        top,
    )

    # The app connects as a least-privilege user with a password of its own; the init container
    # creates or updates that user with the RDS-managed (rotating) master password, which only
    # it receives, read fresh at each task start.
    app_database_url = pulumi.Output.concat(
        f"postgresql://{DATABASE_APP_USER}@",
        database.address,
        f":{database.port}/{config.database.name}",
        f"?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}",
    )
    secrets = AppSecrets(
        f"{name}-secrets",
        AppSecretsArgs(
            values={
                **secret_values(config.app.secrets),
                "DATABASE_URL": app_database_url,
                "REDIS_URL": cache.url,
            },
            generated=("AUTH_TOKENS", "DATABASE_APP_PASSWORD"),
            rotations={"AUTH_TOKENS": token_rotation(config.app)},
            recovery_window_days=aws_config.secret_recovery_days,
        ),
        top,
    )
    master_password = pulumi.Output.concat(database.master_secret_arn, ":password::")
    app_password = secrets.arns["DATABASE_APP_PASSWORD"]
    value_from = app_value_from(secrets.arns)
    db_init = InitContainer(
        name="db-init",
        command=DB_BOOTSTRAP,
        env={
            **config.app.env,
            "DATABASE_ADMIN_USER": config.database.username,
            # db-init creates the role the slice provisioner signs in as (IAM auth).
            **({"DATABASE_PROVISIONER_USER": PROVISIONER_USER} if host else {}),
        },
        secrets={
            "DATABASE_URL": secrets.arns["DATABASE_URL"],
            "DATABASE_ADMIN_PASSWORD": master_password,
            "DATABASE_APP_PASSWORD": app_password,
        },
    )
    migrate = migrate_step(config, secrets.arns)
    timeouts = Timeouts(config.app.run_timeout_seconds)

    service = Service(
        name,
        ServiceArgs(
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            task_subnet_ids=network.private_subnet_ids
            if private_tasks
            else network.public_subnet_ids,
            assign_public_ip=not private_tasks,
            alb_security_group_id=network.alb_security_group_id,
            task_security_group_id=network.task_security_group_id,
            image=image,
            repository_arn=repository_arn,
            platform=config.app.build.platforms[0],
            cpu=config.app.cpu,
            memory=config.app.memory,
            port=config.app.port,
            liveness_path=config.app.liveness_path,
            readiness_path=config.app.readiness_path,
            desired_count=max(config.app.min_instances, 1),
            min_count=max(config.app.min_instances, 1),
            max_count=config.app.max_instances,
            autoscaling=aws_config.autoscaling,
            fargate_spot=aws_config.fargate_spot,
            log_retention_days=aws_config.log_retention_days,
            load_balancer_deletion_protection=aws_config.load_balancer_deletion_protection,
            access_logs_days=aws_config.log_retention_days,
            access_logs_force_destroy=ephemeral,
            health_check_grace_seconds=aws_config.health_check_grace_seconds,
            timeouts=timeouts,
            certificate_arn=certificate_arn,
            env={
                **config.app.env,
                "PORT": str(config.app.port),
                # The load balancer's nodes: the only proxies whose X-Forwarded-For counts.
                "FORWARDED_ALLOW_IPS": aws_config.vpc_cidr,
                **timeouts.app_env(load_balanced=True),
            },
            secrets=value_from,
            secret_arns=[*secrets.arns.values(), database.master_secret_arn],
            init=(db_init, migrate),
            # A new secret value (a replaced cache's URL, a rotated API token) rolls the tasks.
            secrets_revision=secrets.revision,
            start_after=[network, database, cache, secrets],
            permissions_boundary=boundary,
        ),
        top,
    )

    Alarms(
        f"{name}-alarms",
        AlarmsArgs(
            load_balancer_arn_suffix=service.load_balancer_arn_suffix,
            target_group_arn_suffix=service.target_group_arn_suffix,
            cluster_name=service.cluster_name,
            service_name=service.service_name,
            database_identifier=database.identifier,
            database_arn=database.arn,
            database_storage_gb=config.database.storage_gb,
            cache_member_ids=cache.member_ids,
            email=aws_config.alarm_email,
        ),
        top,
    )

    url: pulumi.Input[str] = service.url
    if domain is not None:
        domain.alias_to(
            service.load_balancer_dns_name,
            service.load_balancer_zone_id,
            dualstack=service.dualstack,
        )
        url = domain.url

    if aws_config.alarm_email is None:
        # Production refuses this (infra/config/); other tiers get told on every run.
        pulumi.log.warn(f"{config.stack}: {ALARMS_UNROUTED}")

    outputs: dict[str, pulumi.Input[object]] = {
        "target": config.target,
        "tier": config.tier,
        "region": aws_config.region,
        "serviceUrl": url,
        "healthUrl": pulumi.Output.concat(url, config.app.health_path),
        "tls": "enabled" if service.tls else TLS_DISABLED,
        "alarms": f"email to {aws_config.alarm_email}"
        if aws_config.alarm_email
        else ALARMS_UNROUTED,
        "image": image,
        # The `app.image` this run was given (empty when it built): what drift pins again.
        "imageSource": config.app.image or "",
        "imageDigest": digest,
        "imageHistory": image_history(image),
        "clusterName": service.cluster_name,
        "serviceName": service.service_name,
        "logGroup": service.log_group_name,
        "databaseEndpoint": database.address,
        "natGateways": network.nat_gateway_count,
        # Clients send it as `Authorization: Bearer`; read with --show-secrets, never printed.
        "apiToken": secrets.generated["AUTH_TOKENS"],
    }
    if domain is not None:
        outputs["domain"] = domain.hostname
    if host:
        task_subnets = network.private_subnet_ids if private_tasks else network.public_subnet_ids
        # rbac: a host's cache has its user group and cleanup user.
        assert cache.user_group_id is not None and cache.cleanup_user_id is not None
        pr_host = PrHost(
            f"{name}-pr-host",
            PrHostArgs(
                vpc_id=network.vpc_id,
                subnet_ids=task_subnets,
                database_security_group_id=database.security_group_id,
                database_address=database.address,
                database_name=config.database.name,
                database_resource_id=database.resource_id,
                cache_security_group_id=cache.security_group_id,
                cache_address=cache.primary_endpoint,
                cache_name=cache.replication_group_id,
                cache_arn=cache.arn,
                cache_cleanup_user_id=cache.cleanup_user_id,
                log_retention_days=aws_config.log_retention_days,
                permissions_boundary=boundary,
            ),
            top,
        )
        pr_base: dict[str, pulumi.Input[object]] = {
            "target": "aws",
            "version": PR_BASE_VERSION,
            "region": aws_config.region,
            "vpcId": network.vpc_id,
            "vpcCidr": aws_config.vpc_cidr,
            "clusterName": service.cluster_name,
            "clusterArn": service.cluster_arn,
            "taskSubnetIds": list(task_subnets),
            "assignPublicIp": not private_tasks,
            "taskSecurityGroupId": network.task_security_group_id,
            "albSecurityGroupId": network.alb_security_group_id,
            "loadBalancerArn": service.load_balancer_arn,
            "loadBalancerDnsName": service.load_balancer_dns_name,
            "loadBalancerZoneId": service.load_balancer_zone_id,
            "listenerArn": service.listener_arn,
            "prDomain": domain.hostname if domain is not None else None,
            "hostedZoneId": domain.zone_id if domain is not None else None,
            "databaseAddress": database.address,
            "databasePort": database.port,
            "provisionerFunctionName": pr_host.function_name,
            "cacheAddress": cache.primary_endpoint,
            "cachePort": REDIS_PORT,
            "cacheUserGroupId": cache.user_group_id,
            "cacheEngine": config.cache.engine,
            "logRetentionDays": aws_config.log_retention_days,
        }
        assert set(pr_base) == set(AwsPrBase.__annotations__)
        outputs[PR_BASE_OUTPUT] = pr_base
        if identity is not None and "ephemeral" in role_arns:
            identity.allow_slices(
                SliceHost(
                    region=aws_config.region,
                    cluster_name=name,
                    cluster_arn=service.cluster_arn,
                    load_balancer_arn=service.load_balancer_arn,
                    listener_arns=service.listener_arns,
                    target_group_arn=service.target_group_arn,
                    security_group_ids=[
                        network.alb_security_group_id,
                        network.task_security_group_id,
                        database.security_group_id,
                        cache.security_group_id,
                        pr_host.security_group_id,
                    ],
                    database_arn=database.arn,
                    cache_arn=cache.arn,
                    user_group_id=cache.user_group_id,
                    cache_user_ids=cache.user_ids,
                    provisioner_arn=pr_host.function_arn,
                    # Its own secrets are `<app>-<stack>-*`, denied by name.
                    secret_arns=[database.master_secret_arn],
                    repository_arn=repository_arn,
                    log_group_names=[service.log_group_name, pr_host.log_group_name],
                    hosted_zone_id=domain.zone_id if domain is not None else None,
                    pr_domain=domain.hostname if domain is not None else None,
                )
            )
    if "deploy" in role_arns:
        outputs["deployRoleArn"] = role_arns["deploy"]
    if "preview" in role_arns:
        outputs["previewRoleArn"] = role_arns["preview"]
    if "ephemeral" in role_arns:
        outputs["ephemeralDeployRoleArn"] = role_arns["ephemeral"]

    # What the workflows read, per GitHub environment (stacks/delivery.py scopes the keys).
    variables: dict[str, pulumi.Input[str]] = {
        "AWS_REGION": aws_config.region,
        "SERVICE_URL": url,
        "PULUMI_STACK": config.stack,
    }
    if "deploy" in role_arns:
        variables["AWS_DEPLOY_ROLE_ARN"] = role_arns["deploy"]
    if "preview" in role_arns:
        variables["AWS_PREVIEW_ROLE_ARN"] = role_arns["preview"]
    if "ephemeral" in role_arns:
        variables["ephemeral/AWS_DEPLOY_ROLE_ARN"] = role_arns["ephemeral"]
    github_delivery(config, variables)
    return outputs


def _github_roles(config: StackConfig, name: str) -> list[GitHubRole]:
    """The GitHub Actions roles this stack owns (see infra/aws/identity.py)."""
    assert config.aws is not None
    roles = []
    if config.aws.deploy_role:
        roles.append(GitHubRole("deploy", deploy_environment(config), role_prefix=f"{name}-"))
    github = config.github
    if github is not None and github.preview_environment:
        roles.append(GitHubRole("preview", f"{config.github_environment}-preview", None))
    if github is not None and github.ephemeral_environment:
        # Deploys the pr-<n> stacks: IAM only on their roles (`<app>-pr-<n>-...`).
        roles.append(
            GitHubRole(
                "ephemeral", github.ephemeral_environment, role_prefix=_pr_role_prefix(config)
            )
        )
    return roles


def _pr_role_prefix(config: StackConfig) -> str:
    """The pr-<n> stacks' roles (`<app>-pr-<n>-...`), managed by the `ephemeral` role."""
    return f"{config.app.name}-pr-"


def app_image(
    config: StackConfig,
    name: str,
    top: pulumi.ResourceOptions,
    invoke: pulumi.InvokeOutputOptions,
    *,
    force_delete: bool,
) -> tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str] | None]:
    """(image, digest, ECR repository ARN the execution role must pull from): `app.image` as
    given, copied into a repository of this stack's own (`app.copyImage`: production), or built
    and pushed to one."""
    assert config.aws is not None
    image = config.app.image
    if image is not None and not config.app.copy_image:
        # A private image in (another) ECR repository: the execution role must pull it.
        return image, given_image_digest(image), ecr_repository_arn(image)
    registry = Registry(
        f"{name}-registry",
        RegistryArgs(
            keep_images=config.aws.ecr_keep_images,
            force_delete=force_delete,
            tag_pattern=IMAGE_TAG_PATTERN if image is None else f"{PROMOTED_TAG_PREFIX}*",
            reader_accounts=config.aws.image_readers,
        ),
        top,
    )
    if image is not None:
        promoted = PromotedImage(
            f"{name}-image",
            PromotedImageArgs(source=image, repository=registry.repository_url),
            top,
        )
        return promoted.ref, promoted.digest, registry.repository_arn
    token = aws.ecr.get_authorization_token_output(registry_id=registry.registry_id, opts=invoke)
    built = build_image(
        config,
        repository=registry.repository_url,
        push=True,
        registry=RegistryLogin(
            address=token.proxy_endpoint, username=token.user_name, password=token.password
        ),
    )
    return built.ref, built.digest, registry.repository_arn


def app_value_from(arns: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    """The app container's secrets (name -> Secrets Manager reference): every app secret but
    the role's password under its own name, and the aliases the app reads."""
    return {
        **{k: v for k, v in arns.items() if k != "DATABASE_APP_PASSWORD"},
        "DATABASE_URI": arns["DATABASE_URL"],
        "REDIS_URI": arns["REDIS_URL"],
        "PGPASSWORD": arns["DATABASE_APP_PASSWORD"],
    }


def migrate_step(config: StackConfig, arns: Mapping[str, pulumi.Input[str]]) -> InitContainer:
    """The schema, as the application role (which owns its tables), with the new image, after
    the role exists and before the app container of a new task may start."""
    return InitContainer(
        name="migrate",
        command=MIGRATE,
        env=dict(config.app.env),
        secrets={"DATABASE_URL": arns["DATABASE_URL"], "PGPASSWORD": arns["DATABASE_APP_PASSWORD"]},
    )
