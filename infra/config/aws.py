"""The `aws` section, and the checks AWS itself would only make at deploy time."""

from __future__ import annotations

import difflib
import functools
import ipaddress
import itertools
import json
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
)

from infra.config.app import (
    CERTIFICATE_MAX_DOMAIN,
    Hostname,
    copy_image_problems,
    service_hostname,
    unpinned_image_problems,
)
from infra.config.common import (
    DATABASE_APP_USER,
    PROJECT,
    Cidr,
    _Section,
)
from infra.config.github import _EPHEMERAL_STACK, _GITHUB_ENVIRONMENT
from infra.config.problems import ConfigProblem
from infra.timeouts import AWS_MAX_RUN_TIMEOUT_SECONDS, FARGATE_MAX_STOP_SECONDS

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

_AWS_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso[a-z]*)?-[a-z]+-\d$")


# The provider's own region list (partitions included: `cn-*`, `us-gov-*`), not a pattern.
@functools.cache
def aws_regions() -> frozenset[str]:
    """Read from the provider only when an aws region is checked: a gcp or local stack never
    imports pulumi_aws (bench/program.py measures what that saves)."""
    from pulumi_aws import Region

    return frozenset(region.value for region in Region)


def __getattr__(name: str) -> object:
    if name == "AWS_REGIONS":
        return aws_regions()
    raise AttributeError(name)


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)


def _aws_region(value: str) -> str:
    if value in aws_regions():
        return value
    if not _AWS_REGION.match(value):
        raise ValueError("must be an AWS region code such as 'eu-west-1' or 'us-east-2'")
    close = difflib.get_close_matches(value, sorted(aws_regions()), n=1, cutoff=0.8)
    if close:
        raise ValueError(f"no such AWS region; did you mean '{close[0]}'?")
    raise ValueError(f"no such AWS region; the provider knows {', '.join(sorted(aws_regions()))}")


AwsRegion = Annotated[str, AfterValidator(_aws_region)]


class AwsConfig(_Section):
    region: AwsRegion
    vpc_cidr: Cidr = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=2, le=3)
    nat_gateways: Literal["none", "single", "perAz"]
    certificate_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$"
    )
    # The Route 53 public hosted zone app.domain's records go in, by name or id; unset, the
    # zone named like the domain's parent (agent.example.com -> example.com).
    hosted_zone: Hostname | None = None
    hosted_zone_id: str | None = None
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    oidc_provider_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$",
    )
    log_retention_days: int
    fargate_spot: bool
    flow_logs: bool
    autoscaling: bool
    load_balancer_deletion_protection: bool
    ecr_keep_images: int = Field(default=20, ge=1, le=1000)
    # Other accounts that may pull this stack's images: production's, when it promotes
    # staging's digests from another account (its copy reads them from here).
    image_readers: list[str] = Field(default_factory=list)
    deploy_role: bool
    create_oidc_provider: bool
    secret_recovery_days: int = Field(ge=0, le=30)
    # The repository the deploy role trusts when there is no `github` section: "owner/repo".
    github_repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9_.-]{1,100}$"
    )
    # The GitHub environment the deploy role trusts when there is no `github` section.
    github_environment: str | None = Field(default=None, pattern=_GITHUB_ENVIRONMENT.pattern)
    # Networks the VPC must never overlap (VPN, peered VPCs, other stacks' VPCs).
    peer_cidrs: list[Cidr] = Field(default_factory=list)
    health_check_grace_seconds: int = Field(default=60, ge=0, le=7200)
    # The account the stack deploys to: the provider refuses credentials of any other, and the
    # stack files that create the GitHub OIDC provider must name different accounts.
    account_id: str | None = None
    # What the preview role may read: the Pulumi state bucket (self-managed backend) and the
    # KMS key of the `awskms://` secrets provider (a key ARN: IAM does not match aliases).
    state_bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9](?:[a-z0-9.-]{1,61})[a-z0-9]$"
    )
    secrets_provider_key_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"
    )

    @field_validator("certificate_arn", mode="before")
    @classmethod
    def _acm_certificate(cls, value: object) -> object:
        if isinstance(value, str) and value.startswith("arn:") and ":acm:" not in value:
            raise ValueError(
                "must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>): "
                "a load balancer listener here takes ACM certificates only, not IAM server "
                "certificates"
            )
        return value

    @field_validator("hosted_zone_id", mode="before")
    @classmethod
    def _zone_id(cls, value: object) -> object:
        if value is not None and not (
            isinstance(value, str) and re.fullmatch(r"Z[A-Z0-9]{1,31}", value)
        ):
            raise ValueError(
                "must be a Route 53 hosted zone id such as 'Z0123456789ABCDEFGHIJ' (without "
                "'/hostedzone/')"
            )
        return value

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_id(cls, value: object) -> object:
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{12}", value)):
            raise ValueError(
                'must be the 12-digit AWS account id in quotes, such as "012345678901" (YAML '
                "reads an unquoted number and drops its leading zeros)"
            )
        return value

    @field_validator("image_readers")
    @classmethod
    def _reader_accounts(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"\d{12}", str(v))]
        if bad:
            raise ValueError(
                f"{', '.join(repr(b) for b in bad)}: each must be a 12-digit AWS account id in "
                'quotes, such as "012345678901"'
            )
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
            raise ValueError(f"CloudWatch accepts only: {allowed}")
        return value


# --------------------------------------------------------------------------------------------
# AWS: checks AWS itself would only make at deploy time, made here so a bad stack file fails
# before anything is created.
# --------------------------------------------------------------------------------------------
# Fargate's allowed task sizes: CPU units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 16385, 1024)),
    4096: frozenset(range(8192, 30721, 1024)),
    8192: frozenset(range(16384, 61441, 4096)),
    16384: frozenset(range(32768, 122881, 8192)),
}
# The sizes of each instance family this program offers (Graviton and current Intel), checked
# 2026-11 against "Supported DB engines for DB instance classes" (RDS for PostgreSQL) and
# "Supported node types" (ElastiCache). A region may lack some; AWS then refuses at deploy.
_BURSTABLE = ("micro", "small", "medium", "large", "xlarge", "2xlarge")
_TO_16X = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_TO_24X = (*_TO_16X, "24xlarge")
_TO_32X = (*_TO_24X, "32xlarge")
_TO_48X = (*_TO_24X, "48xlarge")
RDS_POSTGRES_CLASSES: dict[str, tuple[str, ...]] = {
    "t3": _BURSTABLE,
    "t4g": _BURSTABLE,
    "m5": _TO_24X,
    "m6g": _TO_16X,
    "m6i": _TO_32X,
    "m7g": _TO_16X,
    "m7i": _TO_48X,
    "m8g": _TO_48X,
    "r5": _TO_24X,
    "r6g": _TO_16X,
    "r6i": _TO_32X,
    "r7g": _TO_16X,
    "r7i": _TO_48X,
    "r8g": _TO_48X,
}
_CACHE_5_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge", "24xlarge")
ELASTICACHE_NODE_TYPES: dict[str, tuple[str, ...]] = {
    "t3": ("micro", "small", "medium"),
    "t4g": ("micro", "small", "medium"),
    "m5": _CACHE_5_SIZES,
    "m6g": _TO_16X,
    "m7g": _TO_16X,
    "r5": _CACHE_5_SIZES,
    "r6g": _TO_16X,
    "r7g": _TO_16X,
    "c7gn": _TO_16X,
}
RDS_POSTGRES_FAMILIES = frozenset(RDS_POSTGRES_CLASSES)
ELASTICACHE_FAMILIES = frozenset(ELASTICACHE_NODE_TYPES)
_SIZE = re.compile(r"^(micro|small|medium|large|\d*xlarge)$")
# Performance Insights is not offered on the smallest burstable classes.
PERFORMANCE_INSIGHTS_UNSUPPORTED = frozenset(
    {"db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small"}
)
# Each subnet is carved as 1/16 of the VPC and must hold at least a /24 (251 usable addresses:
# Fargate tasks, NAT and load balancer nodes each take one).
MIN_VPC_PREFIX = 20
# ACM: a certificate's first domain name (its common name) has at most 64 characters.
ACM_MAX_DOMAIN = CERTIFICATE_MAX_DOMAIN
# AWS's largest VPC block.
MAX_VPC_PREFIX = 16
# Ranges some AWS services and Docker use internally; a VPC there breaks them in odd ways.
RESERVED_CIDRS = ("172.17.0.0/16",)


def performance_insights_supported(instance_class: str) -> bool:
    return instance_class not in PERFORMANCE_INSIGHTS_UNSUPPORTED


def deploy_repository(config: StackConfig) -> str | None:
    """`owner/repo` the deploy role trusts: the `github` section's, else `aws.githubRepository`."""
    if config.github is not None:
        return f"{config.github.owner}/{config.github.repository}"
    return config.aws.github_repository if config.aws is not None else None


def ephemeral_stack(stack: str) -> bool:
    """A pr-<n> stack: deployed by the shared `ephemeral` role, from Pulumi.pr.yaml."""
    return _EPHEMERAL_STACK.match(stack) is not None


def deploy_environment(config: StackConfig) -> str:
    """The GitHub environment whose jobs may assume the deploy role."""
    if config.github is None and config.aws is not None and config.aws.github_environment:
        return config.aws.github_environment
    return config.github_environment


def _instance_class_problem(
    key: str, value: str, prefix: str, families: frozenset[str]
) -> ConfigProblem | None:
    _, family, size = value.split(".", 2) if value.count(".") == 2 else (prefix, "", "")
    if family in families and _SIZE.match(size):
        sizes = (RDS_POSTGRES_CLASSES if prefix == "db" else ELASTICACHE_NODE_TYPES)[family]
        if size in sizes:
            return None
        return ConfigProblem(
            f"{PROJECT}:{key}",
            f"{prefix}.{family} comes only in {', '.join(sizes)}",
            json.dumps(value),
        )
    return ConfigProblem(
        f"{PROJECT}:{key}",
        f"not a {prefix}.<family>.<size> class AWS offers here; families: "
        f"{', '.join(sorted(families))}",
        json.dumps(value),
    )


def aws_problems(config: StackConfig) -> list[ConfigProblem]:
    """Fargate sizes, instance classes and network ranges for `target: aws` stacks."""
    if config.target != "aws" or config.aws is None:
        return []
    aws = config.aws
    problems: list[ConfigProblem] = copy_image_problems(config.app)
    allowed = FARGATE_SIZES.get(config.app.cpu)
    if allowed is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.cpu",
                f"Fargate accepts only {', '.join(str(c) for c in FARGATE_SIZES)} CPU units",
                str(config.app.cpu),
            )
        )
    elif config.app.memory not in allowed:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.memory",
                f"Fargate with cpu {config.app.cpu} accepts memory {_fargate_memories(allowed)}",
                str(config.app.memory),
            )
        )
    if config.app.run_timeout_seconds > AWS_MAX_RUN_TIMEOUT_SECONDS:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.runTimeoutSeconds",
                f"at most {AWS_MAX_RUN_TIMEOUT_SECONDS} on AWS: a stopping task gets the run "
                f"timeout + 10 s to finish, and Fargate allows {FARGATE_MAX_STOP_SECONDS} s",
                str(config.app.run_timeout_seconds),
            )
        )
    if config.database.username == DATABASE_APP_USER:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:database.username",
                f"'{DATABASE_APP_USER}' is the application user the stack creates; "
                "pick another master user name",
                json.dumps(config.database.username),
            )
        )
    for problem in (
        _instance_class_problem(
            "database.instanceClass", config.database.instance_class, "db", RDS_POSTGRES_FAMILIES
        ),
        _instance_class_problem(
            "cache.nodeType", config.cache.node_type, "cache", ELASTICACHE_FAMILIES
        ),
    ):
        if problem is not None:
            problems.append(problem)
    if config.database.multi_az and config.database.instance_class.endswith(".micro"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:database.instanceClass",
                "Multi-AZ needs at least a .small class",
                json.dumps(config.database.instance_class),
            )
        )

    vpc = ipaddress.IPv4Network(aws.vpc_cidr)
    if vpc.prefixlen < MAX_VPC_PREFIX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.vpcCidr",
                f"too large: AWS accepts VPC blocks from /{MAX_VPC_PREFIX} to /28",
                json.dumps(aws.vpc_cidr),
            )
        )
    if vpc.prefixlen > MIN_VPC_PREFIX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.vpcCidr",
                f"too small: use /{MIN_VPC_PREFIX} or larger (each of up to 6 subnets gets 1/16 "
                "of it, at least a /24)",
                json.dumps(aws.vpc_cidr),
            )
        )
    for other in (*RESERVED_CIDRS, *aws.peer_cidrs):
        if vpc.overlaps(ipaddress.IPv4Network(other)):
            why = "a peer network" if other in aws.peer_cidrs else "reserved by AWS services/Docker"
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:aws.vpcCidr", f"overlaps {other} ({why})", json.dumps(aws.vpc_cidr)
                )
            )

    problems += _aws_refusals(config, aws)
    if 0 < aws.secret_recovery_days < 7:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.secretRecoveryDays",
                "Secrets Manager accepts 0 (delete at once) or 7-30 days",
                str(aws.secret_recovery_days),
            )
        )
    repository = deploy_repository(config)
    if repository is None and (aws.deploy_role or config.github is not None):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.githubRepository",
                "the deploy role trusts exactly one repository: set a `github` section or "
                "aws.githubRepository: owner/repo",
            )
        )
    problems += _oidc_provider_problems(config)
    if config.github is not None and aws.github_repository not in (None, repository):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.githubRepository",
                f"differs from the github section's {repository}; remove one",
                json.dumps(aws.github_repository),
            )
        )
    return problems


def _fargate_memories(allowed: frozenset[int]) -> str:
    """Every allowed value, and the range when they are evenly spaced."""
    values = sorted(allowed)
    listed = f"{', '.join(str(v) for v in values[:-1])} or {values[-1]} MiB"
    steps = {b - a for a, b in itertools.pairwise(values)}
    if len(values) > 2 and len(steps) == 1:
        return f"{values[0]}-{values[-1]} MiB in steps of {steps.pop()}: {listed}"
    return listed


def _domain_problems(config: StackConfig, aws: AwsConfig) -> list[ConfigProblem]:
    """The zone must hold the domain, and ACM must be able to issue its certificate."""
    domain = config.app.domain
    if domain is None:
        return [
            ConfigProblem(
                f"{PROJECT}:aws.{key}",
                "names the hosted zone of app.domain, which is not set: set app.domain (or "
                "remove this key)",
                json.dumps(value),
            )
            for key, value in (
                ("hostedZone", aws.hosted_zone),
                ("hostedZoneId", aws.hosted_zone_id),
            )
            if value is not None
        ]
    problems = []
    zone = aws.hosted_zone
    if zone is not None and domain != zone and not domain.endswith(f".{zone}"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                f"is not in aws.hostedZone '{zone}': records for it can only go in a zone it "
                f"sits under (such as '<name>.{zone}'); fix one of the two",
                json.dumps(domain),
            )
        )
    hostname = service_hostname(config) or domain
    # The certificate's common name is its domain, and X.509 limits it to 64 characters.
    if aws.certificate_arn is None and len(hostname) > ACM_MAX_DOMAIN:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                f"this stack serves '{hostname}' ({len(hostname)} characters), and ACM issues "
                f"certificates for names of at most {ACM_MAX_DOMAIN}: use a shorter domain",
                json.dumps(domain),
            )
        )
    return problems


def _aws_refusals(config: StackConfig, aws: AwsConfig) -> list[ConfigProblem]:
    """Combinations AWS refuses at deploy time that no single field shows."""
    problems = _domain_problems(config, aws)
    if aws.certificate_arn is not None:
        arn_region = aws.certificate_arn.split(":")[3]
        if arn_region != aws.region:
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:aws.certificateArn",
                    f"is in {arn_region}, but a load balancer in aws.region {aws.region} takes "
                    f"only certificates from {aws.region} (ACM certificates are regional)",
                    json.dumps(aws.certificate_arn),
                )
            )
    # Production refuses it already, with its own message.
    if not config.cache.encrypted and config.tier != "production":
        problems.append(
            ConfigProblem(
                f"{PROJECT}:cache.encrypted",
                "ElastiCache accepts an auth token only with in-transit encryption, and the "
                "cache always has one (no cache open to every task in the VPC): keep it true",
                "false",
            )
        )
    return problems


def _oidc_provider_problems(config: StackConfig) -> list[ConfigProblem]:
    """The account's one GitHub OIDC provider: this stack creates it, or names or finds it."""
    aws = config.aws
    assert aws is not None
    github = config.github
    roles = aws.deploy_role or (
        github is not None and (github.preview_environment or github.ephemeral_environment)
    )
    if aws.create_oidc_provider and aws.oidc_provider_arn is not None:
        return [
            ConfigProblem(
                f"{PROJECT}:aws.oidcProviderArn",
                "set with createOidcProvider: true; choose one: createOidcProvider: true (this "
                "stack owns the account's provider) or oidcProviderArn (another stack owns it)",
                json.dumps(aws.oidc_provider_arn),
            )
        ]
    provider_account = (aws.oidc_provider_arn or "").split(":")[4:5]
    if aws.account_id is not None and provider_account not in ([], [aws.account_id]):
        return [
            ConfigProblem(
                f"{PROJECT}:aws.oidcProviderArn",
                f"is in account {provider_account[0]}, not aws.accountId {aws.account_id}: "
                "roles trust only their own account's provider",
                json.dumps(aws.oidc_provider_arn),
            )
        ]
    if aws.create_oidc_provider and not roles:
        return [
            ConfigProblem(
                f"{PROJECT}:aws.createOidcProvider",
                "this stack creates no GitHub role (deployRole: false, no preview or ephemeral "
                "environment), so it would not create the provider either: set it to false",
                "true",
            )
        ]
    return []


def _aws_production_problems(config: StackConfig) -> list[ConfigProblem]:
    aws = config.aws
    if aws is None or config.tier != "production":
        return []
    problems = []
    if config.app.domain is None and aws.certificate_arn is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                "production serves HTTPS only: set app.domain to a hostname in a Route 53 hosted "
                "zone this account owns (the stack issues its certificate and DNS records), or "
                "aws.certificateArn for a certificate managed elsewhere",
            )
        )
    if not aws.flow_logs:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.flowLogs",
                "production cannot turn off VPC flow logs (EC2.6)",
                "false",
            )
        )
    if aws.deploy_role and config.github is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:github",
                f"production's deploy role trusts the GitHub environment "
                f"'{deploy_environment(config)}', which nobody protects without this section "
                "(GitHub creates it unprotected on first use): add a github section (owner, "
                "repository, reviewers), or set aws.deployRole: false",
            )
        )
    if aws.nat_gateways == "none":
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.natGateways",
                "production tasks run in private subnets without public IPs (ECS.2) and need NAT: "
                "use 'perAz' (or 'single' to save cost)",
                '"none"',
            )
        )
    if aws.log_retention_days < 365:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.logRetentionDays",
                "production keeps logs for at least 365 days",
                str(aws.log_retention_days),
            )
        )
    problems += unpinned_image_problems(config.app)
    if config.app.min_instances < 2:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.minInstances",
                "production runs at least 2 tasks, one per availability zone",
                str(config.app.min_instances),
            )
        )
    if aws.alarm_email is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:aws.alarmEmail",
                "production alarms need a recipient: set the on-call address (the SNS email "
                "subscription must then be confirmed from that inbox)",
            )
        )
    return problems
