"""A pr-<n> stack with `pullRequests.base`: only its slice of the base's shared pieces.

The base (staging with `pullRequests.host`) exports `prBase` (stacks/pr_base.py); this reads
it through a stack reference and creates the pull request's own image repository and image,
database and role (through the base's provisioner), cache user, secrets, log group, roles,
task definition, service, target group and address. No VPC, NAT, load balancer, database
instance, cache cluster or alarms: those are the base's, and destroying the slice leaves them
as they were apart from the rule or listener it carried.

A base stack that does not exist fails before this code runs: Pulumi refuses a reference to an
unknown stack (`unknown stack "org/project/stack"`) and a program cannot catch that.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_aws as aws

from infra.aws.identity import boundary_arn
from infra.aws.secrets import AppSecrets, AppSecretsArgs
from infra.aws.slice import (
    ServiceSlice,
    ServiceSliceArgs,
    SliceCacheUser,
    SliceCacheUserArgs,
    SliceDatabase,
    SliceDatabaseArgs,
    slice_address,
    slice_target_group,
)
from infra.config import PROJECT, ConfigError, ConfigProblem, StackConfig
from infra.config.pull_requests import (
    PR_BASE_OUTPUT,
    pr_number,
    redis_access_string,
    slice_database,
    slice_key_prefix,
)
from infra.timeouts import Timeouts
from infra.tokens import token_rotation
from stacks import StackConfigError, secret_values
from stacks.aws import app_image, app_value_from, migrate_step
from stacks.images import image_history
from stacks.pr_base import PR_BASE_VERSION, AwsPrBase, read_pr_base

BASE_KEY = f"{PROJECT}:pullRequests.base"
TLS_DISABLED = (
    "disabled: plain HTTP on the base's load balancer (its own port); give the base a "
    "prDomain to serve https://pr-<n>.<prDomain>"
)
NO_ALARMS = "none: a pull-request slice has no alarms (the base's watch the shared pieces)"


def read_base(config: StackConfig) -> tuple[str, AwsPrBase]:
    """The base's full name and its `prBase`, or every problem with it as a config error."""
    base = config.pull_requests.base
    assert base is not None
    full, value = read_pr_base(base)
    problems = base_problems(full, value)
    if problems:
        raise StackConfigError(ConfigError(config.stack, problems))
    return full, cast(AwsPrBase, value)


def base_problems(full: str, value: object) -> list[ConfigProblem]:
    if not isinstance(value, dict):
        return [
            ConfigProblem(
                BASE_KEY,
                f"the base stack '{full}' exports no '{PR_BASE_OUTPUT}': it does not host "
                f"pull-request slices; set {PROJECT}:pullRequests.host: true on it and deploy "
                "it first, or remove pullRequests here for a self-contained pr stack",
                full,
            )
        ]
    if value.get("target") != "aws" or value.get("version") != PR_BASE_VERSION:
        return [
            ConfigProblem(
                BASE_KEY,
                f"the base stack '{full}' exports a '{PR_BASE_OUTPUT}' of target "
                f"{value.get('target')!r}, version {value.get('version')!r}; this program "
                f"builds aws slices on version {PR_BASE_VERSION}: deploy the base (its "
                "pullRequests.host) from the same commit",
                full,
            )
        ]
    return []


def own_address_problems(config: StackConfig) -> list[ConfigProblem]:
    """Settings of a self-contained stack's own address, which a slice would silently ignore."""
    assert config.aws is not None
    own = {
        f"{PROJECT}:app.domain": config.app.domain,
        f"{PROJECT}:aws.certificateArn": config.aws.certificate_arn,
    }
    return [
        ConfigProblem(
            key,
            "a slice is reached at the address its base gives it (pr-<n>.<prDomain> of the "
            "base, or a port on its load balancer): remove this, or remove pullRequests for a "
            "self-contained stack with its own address",
            value,
        )
        for key, value in own.items()
        if value is not None
    ]


def build_slice(config: StackConfig, pr_role_prefix: str) -> dict[str, pulumi.Input[object]]:
    aws_config = config.aws
    assert aws_config is not None
    if problems := own_address_problems(config):
        raise StackConfigError(ConfigError(config.stack, problems))
    try:
        number = pr_number(config.stack)
    except ValueError:
        raise StackConfigError(
            ConfigError(
                config.stack,
                [
                    ConfigProblem(
                        BASE_KEY,
                        f"a slice's stack is named pr-<n> (n its pull request number, which "
                        f"sets its address, database and key prefix); '{config.stack}' is not",
                        config.pull_requests.base,
                    )
                ],
            )
        ) from None
    full, base = read_base(config)
    try:
        address = slice_address(number, base.get("prDomain"))
    except ValueError as error:
        raise StackConfigError(
            ConfigError(config.stack, [ConfigProblem(BASE_KEY, str(error), full)])
        ) from None

    name = f"{config.app.name}-{config.stack}"
    provider = aws.Provider(
        f"{name}-aws",
        region=base["region"],
        allowed_account_ids=[aws_config.account_id] if aws_config.account_id else None,
        default_tags={
            "tags": {
                "project": PROJECT,
                "stack": config.stack,
                "tier": config.tier,
                "app": config.app.name,
                "base": full,
            }
        },
    )
    top = pulumi.ResourceOptions(providers=[provider])
    invoke = pulumi.InvokeOutputOptions(provider=provider)
    # Deployed by staging's `ephemeral` role: its roles carry the boundary staging creates.
    boundary = boundary_arn(pr_role_prefix, invoke)

    # Its own repository, as a self-contained pr stack: the ephemeral role may manage pr
    # repositories only, and destroying the slice deletes its images with it.
    image, digest, repository_arn = app_image(config, name, top, invoke, force_delete=True)

    database_name = slice_database(config.stack)
    database = SliceDatabase(
        f"{name}-db",
        SliceDatabaseArgs(function_name=base["provisionerFunctionName"], database=database_name),
        top,
    )
    prefix = slice_key_prefix(config.stack)
    cache_user = SliceCacheUser(
        f"{name}-cache",
        SliceCacheUserArgs(
            user_group_id=base["cacheUserGroupId"],
            user_id=name,
            engine=base["cacheEngine"],
            access_string=redis_access_string(prefix),
            address=base["cacheAddress"],
            port=base["cachePort"],
        ),
        top,
    )

    from stacks.aws import RDS_CA_BUNDLE

    database_url = (
        f"postgresql://{database_name}@{base['databaseAddress']}:{int(base['databasePort'])}/"
        f"{database_name}?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}"
    )
    secrets = AppSecrets(
        f"{name}-secrets",
        AppSecretsArgs(
            values={
                **secret_values(config.app.secrets),
                "DATABASE_URL": pulumi.Output.secret(database_url),
                "REDIS_URL": cache_user.url,
                "DATABASE_APP_PASSWORD": database.password,
            },
            generated=("AUTH_TOKENS",),
            rotations={"AUTH_TOKENS": token_rotation(config.app)},
            recovery_window_days=aws_config.secret_recovery_days,
            single=True,
        ),
        top,
    )
    value_from = app_value_from(secrets.arns)
    # No db-init: the provisioner made the role, which owns its database; the schema is
    # migrated as that role before the app container of a new task starts.
    migrate = migrate_step(config, secrets.arns)
    timeouts = Timeouts(config.app.run_timeout_seconds)
    service = ServiceSlice(
        name,
        ServiceSliceArgs(
            cluster_arn=base["clusterArn"],
            vpc_id=base["vpcId"],
            task_subnet_ids=base["taskSubnetIds"],
            assign_public_ip=base["assignPublicIp"],
            task_security_group_id=base["taskSecurityGroupId"],
            load_balancer_arn=base["loadBalancerArn"],
            load_balancer_dns_name=base["loadBalancerDnsName"],
            load_balancer_zone_id=base["loadBalancerZoneId"],
            listener_arn=base["listenerArn"],
            hosted_zone_id=base.get("hostedZoneId"),
            address=address,
            image=image,
            repository_arn=repository_arn,
            platform=config.app.build.platforms[0],
            cpu=config.app.cpu,
            memory=config.app.memory,
            port=config.app.port,
            liveness_path=config.app.liveness_path,
            readiness_path=config.app.readiness_path,
            desired_count=max(config.app.min_instances, 1),
            fargate_spot=aws_config.fargate_spot,
            # Stack outputs are JSON: numbers arrive as floats.
            log_retention_days=int(base["logRetentionDays"]),
            health_check_grace_seconds=aws_config.health_check_grace_seconds,
            timeouts=timeouts,
            forwarded_allow_ips=base["vpcCidr"],
            env={
                **config.app.env,
                "PORT": str(config.app.port),
                "REDIS_KEY_PREFIX": prefix,
                **timeouts.app_env(load_balanced=True),
            },
            secrets=value_from,
            secret_arns=secrets.secret_arns,
            init=(migrate,),
            secrets_revision=secrets.revision,
            start_after=[database.invocation, cache_user.association, secrets],
            permissions_boundary=boundary,
            target_group_name=slice_target_group(config.app.name, number),
        ),
        top,
    )

    url = service.url
    outputs: dict[str, Any] = {
        "target": config.target,
        "tier": config.tier,
        "region": base["region"],
        "base": full,
        "serviceUrl": url,
        "healthUrl": pulumi.Output.concat(url, config.app.health_path),
        "tls": "enabled" if service.tls else TLS_DISABLED,
        "alarms": NO_ALARMS,
        "image": image,
        "imageDigest": digest,
        "imageHistory": image_history(image),
        "clusterName": base["clusterName"],
        "serviceName": service.service_name,
        "logGroup": service.log_group_name,
        "databaseEndpoint": base["databaseAddress"],
        "database": database_name,
        "redisKeyPrefix": prefix,
        "natGateways": 0,
        "apiToken": secrets.generated["AUTH_TOKENS"],
    }
    if address.host is not None:
        outputs["domain"] = address.host
    return outputs
