"""The `gcp` section, and the checks Google Cloud would only make at deploy time.

Sizes shared with AWS keep their meaning: `app.cpu` in CPU units (1024 = one vCPU) and
`app.memory` in MiB become Cloud Run limits; `database.name/username/backupDays/
deletionProtection/protect` drive Cloud SQL. What only GCP has lives under `gcp`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from infra.config.app import (
    CERTIFICATE_MAX_DOMAIN,
    Hostname,
    copy_image_problems,
    default_zone,
    service_hostname,
    unpinned_image_problems,
)
from infra.config.common import PROJECT, Cidr, _Section
from infra.config.github import _GITHUB_ENVIRONMENT
from infra.config.problems import ConfigProblem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

# Regions that offer Cloud Run, Cloud SQL and Memorystore for Redis, checked 2026-11 against
# Google's "Cloud locations" page. A region Google opens later needs a line here.
GCP_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)
# Project ids: 6-30 characters, a letter first, no trailing hyphen (Resource Manager).
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# Cloud SQL machine types per edition (Cloud SQL for PostgreSQL "Machine series"): shared-core
# and custom types are Enterprise only; Enterprise Plus takes only performance-optimized ones.
_SHARED_CORE = ("db-f1-micro", "db-g1-small")
_CUSTOM = re.compile(r"^db-custom-(\d+)-(\d+)$")
_PERF_OPTIMIZED = re.compile(r"^db-perf-optimized-N-(\d+)$")
PERF_OPTIMIZED_CPUS = (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)
# Cloud Run: whole vCPUs (a fraction needs concurrency 1 and the first-generation
# environment, which this program does not offer) and the memory each allows, in MiB.
CLOUD_RUN_SIZES: dict[int, tuple[int, int]] = {
    1024: (512, 4096),
    2048: (512, 8192),
    4096: (2048, 16384),
    6144: (4096, 24576),
    8192: (4096, 32768),
}
CLOUD_RUN_MAX_TIMEOUT_SECONDS = 3600
# What the request timeout adds to app.runTimeoutSeconds: a run that hits its own limit still
# answers before Cloud Run cuts the request.
CLOUD_RUN_TIMEOUT_MARGIN_SECONDS = 30
CLOUD_RUN_MAX_INSTANCES = 1000
CLOUD_RUN_SERVICE_NAME_MAX = 49
# Cloud SQL keeps transaction logs for point-in-time recovery at most 7 days on Enterprise.
ENTERPRISE_LOG_RETENTION_DAYS = 7
# A Cloud DNS managed zone's resource name.
_ZONE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Direct VPC egress takes addresses from the subnet: Google asks for at least a /26.
MAX_SUBNET_PREFIX = 26


def _gcp_region(value: str) -> str:
    if value in GCP_REGIONS:
        return value
    close = difflib.get_close_matches(value, sorted(GCP_REGIONS), n=1, cutoff=0.8)
    if close:
        raise ValueError(f"no such GCP region; did you mean '{close[0]}'?")
    raise ValueError(f"no such GCP region; known: {', '.join(sorted(GCP_REGIONS))}")


def _project_id(value: str) -> str:
    if not _PROJECT_ID.match(value):
        raise ValueError(
            "must be a GCP project id: 6-30 characters of a-z, 0-9 and '-', starting with a "
            "letter and not ending with '-' (the id, not the display name or number)"
        )
    if "google" in value:
        raise ValueError("GCP refuses project ids containing 'google'")
    return value


def _owner_id(value: object) -> object:
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"[1-9]\d{0,19}", value)):
        raise ValueError(
            'must be the numeric GitHub id of the repository owner in quotes, such as "1234567" '
            "(gh api users/<owner> --jq .id)"
        )
    return value


GcpRegion = Annotated[str, AfterValidator(_gcp_region)]
ProjectId = Annotated[str, AfterValidator(_project_id)]


class GcpSqlConfig(_Section):
    tier: str = Field(pattern=r"^db-[A-Za-z0-9-]+$")
    edition: Literal["ENTERPRISE", "ENTERPRISE_PLUS"]
    availability_type: Literal["ZONAL", "REGIONAL"]
    # Storage grows automatically up to this; 0 lets it grow without limit.
    disk_limit_gb: int = Field(ge=0, le=65536)
    point_in_time_recovery: bool


class GcpRedisConfig(_Section):
    tier: Literal["BASIC", "STANDARD_HA"]
    memory_gb: int = Field(ge=1, le=300)


class GcpConfig(_Section):
    project: ProjectId
    region: GcpRegion
    subnet_cidr: Cidr = "10.20.0.0/20"
    # The private-services-access range Cloud SQL and Memorystore take addresses from.
    services_range_prefix: int = Field(default=16, ge=16, le=24)
    sql: GcpSqlConfig
    redis: GcpRedisConfig
    # Request-based billing: CPU only while a request is being served.
    cpu_idle: bool
    # Who may call the service: `public` turns Cloud Run's invoker check off (works under
    # domain-restricted sharing; the app's bearer tokens guard it), `allUsers` grants
    # run.invoker to everyone, `private` leaves callers to IAM.
    invoker: Literal["public", "allUsers", "private"] = "public"
    service_deletion_protection: bool
    flow_logs: bool
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    registry_keep_images: int = Field(default=20, ge=1, le=1000)
    # Members that may pull this stack's images (`serviceAccount:<production's deploy SA>`):
    # production's copy reads promoted digests from here (infra/promotion.py).
    image_readers: list[
        Annotated[str, Field(pattern=r"^(serviceAccount|group|user):[^@\s]+@[^@\s]+$")]
    ] = Field(default_factory=list)
    deploy_identity: bool
    # The GitHub owner's numeric id, pinned in the identity provider's condition.
    repository_owner_id: Annotated[str | None, BeforeValidator(_owner_id)] = None
    # The repository and environment the deploy identity trusts without a `github` section.
    github_repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9_.-]{1,100}$"
    )
    github_environment: str | None = Field(default=None, pattern=_GITHUB_ENVIRONMENT.pattern)
    # An existing account Cloud Run runs as, for stacks without a deploy identity of their own
    # (pr-<n> stacks: staging's `ephemeral` runtime account, its output runtimeServiceAccounts).
    run_service_account: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]"
        r"\.iam\.gserviceaccount\.com$",
    )
    # The public Cloud DNS zone (in this project) app.domain's A record goes in: its DNS name,
    # unset the domain's parent (agent.example.com -> example.com), and its resource name,
    # unset the DNS name with '-' for '.' (example-com).
    dns_zone: Hostname | None = None
    dns_zone_name: str | None = Field(default=None, pattern=_ZONE_NAME.pattern)
    # A Cloud Armor policy on the load balancer app.domain puts in front of Cloud Run: each
    # client IP may send rateLimitPerMinute requests a minute, more are answered 429.
    cloud_armor: bool
    rate_limit_per_minute: int = Field(default=600, ge=1)

    @field_validator("subnet_cidr")
    @classmethod
    def _subnet_size(cls, value: str) -> str:
        if ipaddress.IPv4Network(value).prefixlen > MAX_SUBNET_PREFIX:
            raise ValueError(
                f"too small: Direct VPC egress needs at least a /{MAX_SUBNET_PREFIX} "
                "(Cloud Run takes addresses from it as it scales)"
            )
        return value


def sql_tier_problem(tier: str, edition: str) -> str | None:
    """Why Cloud SQL would refuse this machine type in this edition, or None."""
    if edition == "ENTERPRISE_PLUS":
        match = _PERF_OPTIMIZED.match(tier)
        if match is None:
            return (
                "ENTERPRISE_PLUS takes only db-perf-optimized-N-<vCPUs> machine types: use "
                "edition ENTERPRISE for db-f1-micro, db-g1-small and db-custom-*"
            )
        if int(match[1]) not in PERF_OPTIMIZED_CPUS:
            return (
                f"db-perf-optimized-N comes with {', '.join(map(str, PERF_OPTIMIZED_CPUS))} vCPUs"
            )
        return None
    if tier in _SHARED_CORE:
        return None
    match = _CUSTOM.match(tier)
    if match is None:
        return (
            "ENTERPRISE takes db-f1-micro, db-g1-small or db-custom-<vCPUs>-<MiB> (e.g. "
            "db-custom-2-7680); db-perf-optimized-* needs edition ENTERPRISE_PLUS"
        )
    cpus, memory = int(match[1]), int(match[2])
    if not (cpus == 1 or (cpus % 2 == 0 and cpus <= 96)):
        return "a custom machine has 1 vCPU or an even number up to 96"
    low, high = max(3840, cpus * 922), cpus * 6656
    if memory % 256 or not low <= memory <= high:
        return (
            f"{cpus} vCPU take {low}-{high} MiB of memory in multiples of 256 "
            "(0.9-6.5 GiB per vCPU, at least 3.75 GiB)"
        )
    return None


def dns_zone(config: StackConfig) -> tuple[str, str] | None:
    """The Cloud DNS zone app.domain's record goes in: (DNS name, resource name)."""
    gcp, domain = config.gcp, config.app.domain
    if gcp is None or domain is None:
        return None
    dns_name = gcp.dns_zone or default_zone(domain)
    return dns_name, gcp.dns_zone_name or dns_name.replace(".", "-")


def _domain_problems(config: StackConfig, gcp: GcpConfig) -> list[ConfigProblem]:
    """The zone must hold the domain, a certificate must be able to carry it, and Cloud Armor
    needs the load balancer only a domain brings."""
    domain = config.app.domain
    if domain is None:
        problems = [
            ConfigProblem(
                f"{PROJECT}:gcp.{key}",
                "names the Cloud DNS zone of app.domain, which is not set: set app.domain (or "
                "remove this key)",
                json.dumps(value),
            )
            for key, value in (("dnsZone", gcp.dns_zone), ("dnsZoneName", gcp.dns_zone_name))
            if value is not None
        ]
        # Production asks for the domain itself.
        if gcp.cloud_armor and config.tier != "production":
            problems.append(
                ConfigProblem(
                    f"{PROJECT}:gcp.cloudArmor",
                    "Cloud Armor sits on the load balancer that app.domain puts in front of "
                    "Cloud Run: set app.domain, or cloudArmor: false",
                    "true",
                )
            )
        return problems
    problems = []
    zone = gcp.dns_zone
    if zone is not None and domain != zone and not domain.endswith(f".{zone}"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                f"is not in gcp.dnsZone '{zone}': its record can only go in a zone it sits "
                f"under (such as '<name>.{zone}'); fix one of the two",
                json.dumps(domain),
            )
        )
    zone_name = dns_zone(config)
    if gcp.dns_zone_name is None and zone_name and not _ZONE_NAME.match(zone_name[1]):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.dnsZoneName",
                f"unset, it would be '{zone_name[1]}', which Cloud DNS does not take as a zone "
                "name (a-z, 0-9 and '-', a letter first, at most 63): set the zone's name",
            )
        )
    hostname = service_hostname(config) or domain
    if len(hostname) > CERTIFICATE_MAX_DOMAIN:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                f"this stack serves '{hostname}' ({len(hostname)} characters), and a "
                f"certificate's name has at most {CERTIFICATE_MAX_DOMAIN}: use a shorter domain",
                json.dumps(domain),
            )
        )
    return problems


def gcp_deploy_repository(config: StackConfig) -> str | None:
    """`owner/repo` the identity provider trusts: the `github` section's, else the gcp one."""
    if config.github is not None:
        return f"{config.github.owner}/{config.github.repository}"
    return config.gcp.github_repository if config.gcp is not None else None


def needs_identity(config: StackConfig) -> bool:
    """A deploy account, or a preview or ephemeral one for the `github` section's environments."""
    github = config.github
    own = config.gcp is not None and config.gcp.deploy_identity
    return own or (
        github is not None and (github.preview_environment or bool(github.ephemeral_environment))
    )


def gcp_deploy_environment(config: StackConfig) -> str:
    if config.github is None and config.gcp is not None and config.gcp.github_environment:
        return config.gcp.github_environment
    return config.github_environment


# Settings only the aws target reads: written in a gcp stack they would be silently ignored.
AWS_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    "database": (
        "instanceClass",
        "storageGb",
        "maxStorageGb",
        "multiAz",
        "finalSnapshot",
        "encrypted",
        "allowMajorVersionUpgrade",
    ),
    "cache": (
        "engine",
        "engineVersion",
        "nodeType",
        "nodes",
        "automaticFailover",
        "snapshotDays",
        "encrypted",
    ),
}
_GCP_EQUIVALENT = {
    "instanceClass": "gcp.sql.tier",
    "multiAz": "gcp.sql.availabilityType",
    "maxStorageGb": "gcp.sql.diskLimitGb",
    "nodeType": "gcp.redis.tier and gcp.redis.memoryGb",
    "nodes": "gcp.redis.tier",
    "automaticFailover": "gcp.redis.tier",
}


def aws_only_key_problems(sections: Mapping[str, Any]) -> list[ConfigProblem]:
    """Keys a gcp stack file sets that only AWS reads, named so the user moves them."""
    if sections.get("target") != "gcp":
        return []
    problems = []
    for section, keys in AWS_ONLY_KEYS.items():
        body = sections.get(section)
        written = set(body) if isinstance(body, Mapping) else set()
        for key in keys:
            if key in written:
                use = _GCP_EQUIVALENT.get(key)
                hint = f": use {use}" if use else ""
                problems.append(
                    ConfigProblem(
                        f"{PROJECT}:{section}.{key}",
                        f"is read only by target aws; a gcp stack ignores it{hint}",
                    )
                )
    return problems


def gcp_problems(config: StackConfig) -> list[ConfigProblem]:
    """Cloud Run sizes, timeouts, names and production rules for `target: gcp` stacks."""
    if config.target != "gcp" or config.gcp is None:
        return []
    gcp = config.gcp
    problems: list[ConfigProblem] = copy_image_problems(config.app)
    app = config.app
    sizes = CLOUD_RUN_SIZES.get(app.cpu)
    if sizes is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.cpu",
                "Cloud Run takes whole vCPUs: "
                f"{', '.join(str(c) for c in CLOUD_RUN_SIZES)} CPU units (1024 = one vCPU)",
                str(app.cpu),
            )
        )
    elif not sizes[0] <= app.memory <= sizes[1]:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.memory",
                f"Cloud Run with cpu {app.cpu} ({app.cpu // 1024} vCPU) takes "
                f"{sizes[0]}-{sizes[1]} MiB",
                str(app.memory),
            )
        )
    if app.max_instances > CLOUD_RUN_MAX_INSTANCES:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.maxInstances",
                f"Cloud Run scales a service to at most {CLOUD_RUN_MAX_INSTANCES} instances",
                str(app.max_instances),
            )
        )
    longest = CLOUD_RUN_MAX_TIMEOUT_SECONDS - CLOUD_RUN_TIMEOUT_MARGIN_SECONDS
    if app.run_timeout_seconds > longest:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.runTimeoutSeconds",
                f"at most {longest} on GCP: the request timeout is the run timeout + "
                f"{CLOUD_RUN_TIMEOUT_MARGIN_SECONDS} s, and Cloud Run allows "
                f"{CLOUD_RUN_MAX_TIMEOUT_SECONDS} s",
                str(app.run_timeout_seconds),
            )
        )
    service = f"{app.name}-{config.stack}"
    if len(service) > CLOUD_RUN_SERVICE_NAME_MAX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.name",
                f"the Cloud Run service '{service}' (app.name-stack) has {len(service)} "
                f"characters; Cloud Run allows {CLOUD_RUN_SERVICE_NAME_MAX}: shorten app.name",
                json.dumps(app.name),
            )
        )
    if problem := sql_tier_problem(gcp.sql.tier, gcp.sql.edition):
        problems.append(ConfigProblem(f"{PROJECT}:gcp.sql.tier", problem, json.dumps(gcp.sql.tier)))
    if gcp.sql.point_in_time_recovery and config.database.backup_days == 0:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.sql.pointInTimeRecovery",
                "point-in-time recovery needs backups: set database.backupDays above 0",
                "true",
            )
        )
    if gcp.sql.availability_type == "REGIONAL" and not gcp.sql.point_in_time_recovery:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.sql.pointInTimeRecovery",
                "a REGIONAL instance needs point-in-time recovery (and backups)",
                "false",
            )
        )
    repository = gcp_deploy_repository(config)
    if needs_identity(config) and repository is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.githubRepository",
                "the deploy identity trusts exactly one repository: set a `github` section or "
                "gcp.githubRepository: owner/repo",
            )
        )
    if needs_identity(config) and gcp.repository_owner_id is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.repositoryOwnerId",
                "the deploy identity pins the repository owner's numeric id (a renamed or "
                'recreated owner cannot take over): set it in quotes, e.g. "1234567" '
                "(gh api users/<owner> --jq .id)",
            )
        )
    if gcp.deploy_identity and gcp.run_service_account is not None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.runServiceAccount",
                "this stack's deploy identity has its own runtime account, the only one its "
                "deploy account may act as: remove runServiceAccount",
                json.dumps(gcp.run_service_account),
            )
        )
    if config.github is not None and gcp.github_repository not in (None, repository):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:gcp.githubRepository",
                f"differs from the github section's {repository}; remove one",
                json.dumps(gcp.github_repository),
            )
        )
    problems += _domain_problems(config, gcp)
    return problems + _gcp_production_problems(config, gcp)


def _gcp_production_problems(config: StackConfig, gcp: GcpConfig) -> list[ConfigProblem]:
    if config.tier != "production":
        return []
    refusals: list[tuple[str, bool, str, str | None]] = [
        (
            "app.domain",
            config.app.domain is None,
            "production serves HTTPS only: set app.domain to a hostname in a public Cloud DNS "
            "zone of this project (the stack creates the load balancer, its Google-managed "
            "certificate and the A record)",
            None,
        ),
        (
            "gcp.redis.tier",
            gcp.redis.tier == "BASIC",
            "production needs STANDARD_HA: a BASIC instance loses its data and is down while "
            "it restarts",
            '"BASIC"',
        ),
        (
            "gcp.sql.availabilityType",
            gcp.sql.availability_type == "ZONAL",
            "production needs REGIONAL: a ZONAL instance is down with its zone",
            '"ZONAL"',
        ),
        (
            "gcp.sql.pointInTimeRecovery",
            # REGIONAL without it is refused above for every tier.
            not gcp.sql.point_in_time_recovery and gcp.sql.availability_type == "ZONAL",
            "production cannot turn off point-in-time recovery",
            "false",
        ),
        (
            "gcp.serviceDeletionProtection",
            not gcp.service_deletion_protection,
            "production cannot turn off deletion protection",
            "false",
        ),
        ("gcp.flowLogs", not gcp.flow_logs, "production cannot turn off flow logs", "false"),
        (
            "gcp.sql.tier",
            gcp.sql.tier in _SHARED_CORE,
            "shared-core machines have no SLA: production needs db-custom-* or db-perf-optimized-*",
            json.dumps(gcp.sql.tier),
        ),
        (
            "app.minInstances",
            config.app.min_instances < 1,
            "production keeps at least one instance warm (no cold start on the first call)",
            str(config.app.min_instances),
        ),
        (
            "gcp.alarmEmail",
            gcp.alarm_email is None,
            "production alerts need a recipient: set the on-call address",
            None,
        ),
    ]
    problems = [
        ConfigProblem(f"{PROJECT}:{key}", message, value)
        for key, violated, message, value in refusals
        if violated
    ]
    problems += unpinned_image_problems(config.app)
    if gcp.deploy_identity and config.github is None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:github",
                f"production's deploy identity trusts the GitHub environment "
                f"'{gcp_deploy_environment(config)}', which nobody protects without this "
                "section: add a github section, or set gcp.deployIdentity: false",
            )
        )
    return problems
