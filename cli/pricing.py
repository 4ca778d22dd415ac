"""Price rules: what each registered resource costs a month, read from its mock inputs.

Each rule turns one resource's inputs (wire names, as the engine recorded them) into charges
of price-table items (`prices/<cloud>.csv`); quantities are in the row's unit for one month
of 730 hours. Resource types without a rule are either declared free in `prices/free.csv`
(with the reason) or reported as unpriced, never silently counted as zero. Inputs a provider
fills in by default are encoded here, because the mocks show only what the program passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

HOURS = 730
SECONDS = HOURS * 3600


@dataclass(frozen=True)
class Registered:
    """One resource the program registers, in the form pricing needs (secrets redacted)."""

    type: str
    name: str
    urn: str
    parent: str | None
    provider: str
    custom: bool
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Charge:
    item: str
    quantity: float
    kind: str  # "fixed" (what the resources cost idle) or "usage" (from usage assumptions)
    note: str = ""


class RuleError(Exception):
    """Inputs a rule cannot price (a size it cannot read): the resource is listed unpriced."""


@dataclass
class Context:
    """What a rule may consult besides its own resource: the others, and usage numbers."""

    resources: list[Registered]
    usage: Callable[[str, str], float]  # (resource name, usage key) -> value
    _siblings: dict[str | None, list[Registered]] = field(default_factory=dict)

    def siblings(self, resource: Registered) -> list[Registered]:
        if not self._siblings:
            for r in self.resources:
                self._siblings.setdefault(r.parent, []).append(r)
        return [r for r in self._siblings.get(resource.parent, []) if r is not resource]


Rule = Callable[[Registered, Context], list[Charge]]


def _number(value: Any, what: str, default: float | None = None) -> float:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RuleError(f"{what} is {value!r}, not a number known before deployment")
    try:
        return float(value)
    except ValueError:
        raise RuleError(f"{what} is {value!r}, not a number known before deployment") from None


# --- AWS -----------------------------------------------------------------------------------


def _task_definition(service: Registered, ctx: Context) -> Registered:
    """The task definition the service runs: the one registered beside it (same component);
    its ARN is unknown until deployment, so the reference itself cannot be followed."""
    found = [r for r in ctx.siblings(service) if r.type == "aws:ecs/taskDefinition:TaskDefinition"]
    if len(found) != 1:
        raise RuleError(f"expected one task definition beside the service, found {len(found)}")
    return found[0]


def aws_ecs_service(r: Registered, ctx: Context) -> list[Charge]:
    task = _task_definition(r, ctx).inputs
    vcpu = _number(task.get("cpu"), "task cpu") / 1024
    gb = _number(task.get("memory"), "task memory") / 1024
    platform = task.get("runtimePlatform") or {}
    arch = "arm" if platform.get("cpuArchitecture") == "ARM64" else "x86"  # provider default X86_64
    tasks = _number(r.inputs.get("desiredCount"), "desiredCount", 0)
    strategies = r.inputs.get("capacityProviderStrategies") or []
    weights = {s.get("capacityProvider"): _number(s.get("weight"), "weight", 0) for s in strategies}
    total = sum(weights.values())
    spot_share = weights.get("FARGATE_SPOT", 0) / total if total else 0.0
    charges = []
    for share, prefix, label in (
        (1 - spot_share, f"fargate-{arch}", "on demand"),
        (spot_share, f"fargate-spot-{arch}", "Fargate Spot"),
    ):
        if share > 0:
            count = tasks * share
            what = f"{count:g} task(s) of {vcpu:g} vCPU / {gb:g} GB, {arch.upper()}, {label}"
            charges.append(Charge(f"{prefix}-vcpu-hour", count * vcpu * HOURS, "fixed", what))
            charges.append(Charge(f"{prefix}-gb-hour", count * gb * HOURS, "fixed", what))
    network = r.inputs.get("networkConfiguration") or {}
    if network.get("assignPublicIp") is True:
        note = f"a public IPv4 address per task ({tasks:g})"
        charges.append(Charge("public-ipv4-hour", tasks * HOURS, "fixed", note))
    return charges


def aws_load_balancer(r: Registered, ctx: Context) -> list[Charge]:
    kind = r.inputs.get("loadBalancerType") or "application"
    prefix = {"application": "alb", "network": "nlb", "gateway": "gwlb"}.get(kind, kind)
    lcu = ctx.usage(r.name, "lbCapacityUnits")
    charges = [
        Charge(f"{prefix}-hour", HOURS, "fixed"),
        Charge(f"{prefix}-lcu-hour", lcu * HOURS, "usage", f"{lcu:g} LCU on average"),
    ]
    if r.inputs.get("internal") is not True:
        subnets = len(r.inputs.get("subnets") or []) or len(r.inputs.get("subnetMappings") or [])
        note = f"internet-facing: a public IPv4 address per subnet ({subnets})"
        charges.append(Charge("public-ipv4-hour", subnets * HOURS, "fixed", note))
    return charges


def aws_nat_gateway(r: Registered, ctx: Context) -> list[Charge]:
    gb = ctx.usage(r.name, "natGb")
    return [
        Charge("nat-hour", HOURS, "fixed", "its Elastic IP is priced on its own line"),
        Charge("nat-gb", gb, "usage", f"{gb:g} GB processed"),
    ]


def aws_eip(r: Registered, ctx: Context) -> list[Charge]:
    return [Charge("public-ipv4-hour", HOURS, "fixed", "Elastic IP (public IPv4) in use")]


def aws_rds_instance(r: Registered, ctx: Context) -> list[Charge]:
    engine = r.inputs.get("engine") or "postgres"
    klass = r.inputs.get("instanceClass")
    if not isinstance(klass, str):
        raise RuleError(f"instanceClass is {klass!r}")
    copies = 2 if r.inputs.get("multiAz") is True else 1
    storage_type = r.inputs.get("storageType") or "gp2"  # the provider's default
    gb = _number(r.inputs.get("allocatedStorage"), "allocatedStorage")
    note = "Multi-AZ: the standby is billed too" if copies == 2 else "Single-AZ"
    return [
        Charge(f"rds-{engine}-{klass}-hour", copies * HOURS, "fixed", note),
        Charge(f"rds-{storage_type}-gb-month", copies * gb, "fixed", f"{gb:g} GB; {note}"),
        *_enhanced_monitoring(r, ctx),
    ]


def _enhanced_monitoring(r: Registered, ctx: Context) -> list[Charge]:
    """Enhanced monitoring writes to the `RDSOSMetrics` log group RDS creates itself (not a
    registered resource), kept 30 days by default: about one month's records are stored.
    The usage number is for a 60 s interval; a shorter one writes proportionally more."""
    interval = _number(r.inputs.get("monitoringInterval"), "monitoringInterval", 0)
    if interval <= 0:
        return []
    gb = ctx.usage(r.name, "monitoringGb") * 60 / interval
    note = f"enhanced monitoring every {interval:g} s: {gb:g} GB to RDSOSMetrics"
    return [
        Charge("logs-ingest-gb", gb, "usage", note),
        Charge("logs-storage-gb-month", gb, "usage", f"{note}, kept 30 days"),
    ]


def aws_replication_group(r: Registered, ctx: Context) -> list[Charge]:
    engine = r.inputs.get("engine") or "redis"  # the provider's default
    node_type = r.inputs.get("nodeType")
    if not isinstance(node_type, str):
        raise RuleError(f"nodeType is {node_type!r}")
    if r.inputs.get("numCacheClusters") is not None:
        nodes = _number(r.inputs.get("numCacheClusters"), "numCacheClusters")
    else:
        groups = _number(r.inputs.get("numNodeGroups"), "numNodeGroups", 1)
        replicas = _number(r.inputs.get("replicasPerNodeGroup"), "replicasPerNodeGroup", 0)
        nodes = groups * (replicas + 1)
    note = f"{nodes:g} node(s), {engine}"
    return [Charge(f"elasticache-{engine}-{node_type}-hour", nodes * HOURS, "fixed", note)]


def aws_secret(r: Registered, ctx: Context) -> list[Charge]:
    calls = ctx.usage(r.name, "secretApiCalls")
    return [
        Charge("secretsmanager-secret-month", 1, "fixed"),
        Charge("secretsmanager-10k-calls", calls / 10_000, "usage", f"{calls:g} reads"),
    ]


def aws_metric_alarm(r: Registered, ctx: Context) -> list[Charge]:
    period = _number(r.inputs.get("period"), "period", 60)
    item = "alarm-high-resolution-month" if period < 60 else "alarm-standard-month"
    return [Charge(item, 1, "fixed")]


def _flow_log_destination(r: Registered, ctx: Context) -> bool:
    """Flow logs are vended logs: their ingestion is priced on the flow log, not here."""
    return any(
        s.type == "aws:ec2/flowLog:FlowLog"
        and (s.inputs.get("logDestinationType") or "cloud-watch-logs") == "cloud-watch-logs"
        for s in ctx.siblings(r)
    )


def aws_log_group(r: Registered, ctx: Context) -> list[Charge]:
    stored = ctx.usage(r.name, "logStoredGb")
    charges = [Charge("logs-storage-gb-month", stored, "usage", f"{stored:g} GB stored")]
    if not _flow_log_destination(r, ctx):
        gb = ctx.usage(r.name, "logIngestGb")
        charges.insert(0, Charge("logs-ingest-gb", gb, "usage", f"{gb:g} GB ingested"))
    return charges


def aws_flow_log(r: Registered, ctx: Context) -> list[Charge]:
    destination = r.inputs.get("logDestinationType") or "cloud-watch-logs"
    if destination != "cloud-watch-logs":
        raise RuleError(f"flow logs to {destination} are not in the price table")
    gb = ctx.usage(r.name, "flowLogGb")
    return [Charge("logs-vended-ingest-gb", gb, "usage", f"{gb:g} GB of flow-log records")]


def aws_s3_bucket(r: Registered, ctx: Context) -> list[Charge]:
    """Storage only: load-balancer access-log delivery is free, and its PUT requests (a file
    per load-balancer node every 5 minutes) come to cents."""
    gb = ctx.usage(r.name, "bucketGb")
    return [Charge("s3-standard-gb-month", gb, "usage", f"{gb:g} GB stored on average")]


def aws_kms_key(r: Registered, ctx: Context) -> list[Charge]:
    """A customer-managed key bills monthly until it is deleted; with automatic rotation each
    of the first two rotated versions adds one more key-month (from the second year on)."""
    requests = ctx.usage(r.name, "kmsRequests")
    note = "customer-managed key"
    if r.inputs.get("enableKeyRotation") is True:
        note += "; each of the first two yearly rotations adds $1/month"
    return [
        Charge("kms-key-month", 1, "fixed", note),
        Charge("kms-10k-requests", requests / 10_000, "usage", f"{requests:g} requests"),
    ]


def aws_ecr_repository(r: Registered, ctx: Context) -> list[Charge]:
    gb = ctx.usage(r.name, "registryGb")
    return [Charge("ecr-gb-month", gb, "usage", f"{gb:g} GB of images")]


def aws_vpc_endpoint(r: Registered, ctx: Context) -> list[Charge]:
    kind = r.inputs.get("vpcEndpointType") or "Gateway"
    if kind == "Gateway":
        return []  # gateway endpoints (S3, DynamoDB) have no charge
    subnets = len(r.inputs.get("subnetIds") or [])
    return [Charge("vpc-endpoint-interface-hour", subnets * HOURS, "fixed", f"{subnets} AZ(s)")]


# --- GCP -----------------------------------------------------------------------------------

_CPU = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<milli>m?)$")
_MEMORY = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1.0, "Ti": 2**10}
_MEMORY_GIB |= {"k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30}


def _cpu(value: Any) -> float:
    match = _CPU.match(str(value))
    if match is None:
        raise RuleError(f"cpu limit {value!r} is not a Kubernetes quantity")
    return float(match["n"]) / (1000 if match["milli"] else 1)


def _gib(value: Any) -> float:
    match = _MEMORY.match(str(value))
    if match is None:
        raise RuleError(f"memory limit {value!r} is not a Kubernetes quantity")
    return float(match["n"]) * _MEMORY_GIB[match["unit"]]


def gcp_cloud_run(r: Registered, ctx: Context) -> list[Charge]:
    """Min instances run all month (at the idle rate when CPU is only allocated during
    requests, `cpuIdle`, the default); requests are billed for the time they keep an
    instance busy (requests x seconds / concurrency), with request-based billing on top of
    the idle minimum (an upper bound: a busy minimum instance is not also idle). Free tiers
    are not subtracted."""
    template = r.inputs.get("template") or {}
    containers = template.get("containers") or []
    if not containers:
        raise RuleError("no container in the template")
    vcpu = gib = 0.0
    cpu_idle = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        vcpu += _cpu(limits.get("cpu", "1"))  # Cloud Run's defaults: 1 vCPU, 512 MiB
        gib += _gib(limits.get("memory", "512Mi"))
        cpu_idle = cpu_idle and resources.get("cpuIdle", True) is not False
    scaling = template.get("scaling") or {}
    service_scaling = r.inputs.get("scaling") or {}
    minimum = _number(
        scaling.get("minInstanceCount", service_scaling.get("minInstanceCount")), "min", 0
    )
    shape = f"{vcpu:g} vCPU / {gib:g} GiB"
    charges = []
    if minimum > 0:
        rate = "idle" if cpu_idle else "instance"
        note = f"{minimum:g} minimum instance(s) of {shape}, {rate} rate"
        charges.append(Charge(f"run-{rate}-vcpu-second", minimum * vcpu * SECONDS, "fixed", note))
        charges.append(Charge(f"run-{rate}-gib-second", minimum * gib * SECONDS, "fixed", note))
    requests = ctx.usage(r.name, "requests")
    concurrency = max(ctx.usage(r.name, "concurrency"), 1)
    busy = requests * ctx.usage(r.name, "requestSeconds") / concurrency
    rate = "request" if cpu_idle else "instance"
    note = f"{requests:g} requests, {busy:g} busy instance-seconds of {shape}"
    if not cpu_idle:
        # Instance-based billing already pays the minimum instances all month: only the
        # busy time beyond their capacity adds instances.
        busy = max(0.0, busy - minimum * SECONDS)
        note += f", {busy:g} beyond the minimum instances"
    charges.append(Charge(f"run-{rate}-vcpu-second", busy * vcpu, "usage", note))
    charges.append(Charge(f"run-{rate}-gib-second", busy * gib, "usage", note))
    if cpu_idle:
        charges.append(Charge("run-requests-million", requests / 1e6, "usage", note))
    logs = ctx.usage(r.name, "logIngestGb")
    charges.append(Charge("logging-ingest-gib", logs, "usage", f"{logs:g} GiB of logs"))
    return charges


_SQL_CUSTOM = re.compile(r"^db-custom-(?P<cpu>\d+)-(?P<mb>\d+)$")


def gcp_sql_instance(r: Registered, ctx: Context) -> list[Charge]:
    settings = r.inputs.get("settings") or {}
    tier = settings.get("tier")
    if not isinstance(tier, str):
        raise RuleError(f"settings.tier is {tier!r}")
    copies = 2 if settings.get("availabilityType") == "REGIONAL" else 1  # default ZONAL
    note = "high availability: the standby is billed too" if copies == 2 else "zonal"
    edition = str(settings.get("edition") or "ENTERPRISE").lower()
    charges = []
    if custom := _SQL_CUSTOM.match(tier):
        vcpu, gb = int(custom["cpu"]), int(custom["mb"]) / 1024
        shape = f"{tier}: {vcpu} vCPU / {gb:g} GB, {note}"
        charges.append(Charge(f"sql-{edition}-vcpu-hour", copies * vcpu * HOURS, "fixed", shape))
        charges.append(Charge(f"sql-{edition}-gb-hour", copies * gb * HOURS, "fixed", shape))
    else:
        charges.append(Charge(f"sql-{tier}-hour", copies * HOURS, "fixed", note))
    disk = _number(settings.get("diskSize"), "diskSize", 10)  # provider default 10 GB
    disk_type = {"PD_HDD": "hdd"}.get(str(settings.get("diskType")), "ssd")
    charges.append(Charge(f"sql-{disk_type}-gb-month", copies * disk, "fixed", f"{disk:g} GB"))
    return charges


def gcp_redis_instance(r: Registered, ctx: Context) -> list[Charge]:
    tier = str(r.inputs.get("tier") or "BASIC").lower()  # the provider's default
    gb = _number(r.inputs.get("memorySizeGb"), "memorySizeGb")
    return [Charge(f"redis-{tier}-gb-hour", gb * HOURS, "fixed", f"{gb:g} GB, {tier}")]


def gcp_secret_version(r: Registered, ctx: Context) -> list[Charge]:
    calls = ctx.usage(r.name, "secretApiCalls")
    return [
        Charge("secretmanager-version-month", 1, "fixed", "one active version, one location"),
        Charge("secretmanager-10k-accesses", calls / 10_000, "usage", f"{calls:g} reads"),
    ]


def gcp_artifact_registry(r: Registered, ctx: Context) -> list[Charge]:
    gb = ctx.usage(r.name, "registryGb")
    return [Charge("artifactregistry-gb-month", gb, "usage", f"{gb:g} GB of images")]


def gcp_alert_policy(r: Registered, ctx: Context) -> list[Charge]:
    conditions = len(r.inputs.get("conditions") or []) or 1
    return [Charge("alert-condition-month", conditions, "fixed", f"{conditions} condition(s)")]


def gcp_router_nat(r: Registered, ctx: Context) -> list[Charge]:
    gb = ctx.usage(r.name, "natGb")
    return [
        Charge("cloudnat-hour", HOURS, "fixed", "one gateway, the minimum per-VM charge"),
        Charge("cloudnat-gb", gb, "usage", f"{gb:g} GB processed"),
    ]


def gcp_address(r: Registered, ctx: Context) -> list[Charge]:
    if (r.inputs.get("addressType") or "EXTERNAL") != "EXTERNAL":
        return []
    return [Charge("external-ipv4-hour", HOURS, "fixed", "static external IPv4 in use")]


FORWARDING_RULES_BUNDLE = 5


def gcp_global_forwarding_rule(r: Registered, ctx: Context) -> list[Charge]:
    """Google bills a project's first five global forwarding rules as one hourly charge and
    each further one on its own: the stack's first rule carries the five's charge."""
    rules = [x for x in ctx.resources if x.type == r.type]
    index = next(i for i, x in enumerate(rules) if x is r)
    if index == 0:
        note = f"the first {FORWARDING_RULES_BUNDLE} global forwarding rules, one charge"
        return [Charge("lb-forwarding-rules-first5-hour", HOURS, "fixed", note)]
    if index < FORWARDING_RULES_BUNDLE:
        return []
    return [Charge("lb-forwarding-rule-extra-hour", HOURS, "fixed", "beyond the first five")]


def gcp_backend_service(r: Registered, ctx: Context) -> list[Charge]:
    """The load balancer's data processing (requests in, responses out), per backend."""
    gb = ctx.usage(r.name, "lbDataGb")
    return [Charge("lb-data-gib", gb, "usage", f"{gb:g} GiB processed")]


def gcp_security_policy(r: Registered, ctx: Context) -> list[Charge]:
    """Cloud Armor Standard: the policy, each of its rules, and every request it evaluates
    (the service's requests: the policy sees each one first)."""
    rules = len(r.inputs.get("rules") or []) or 1  # the API adds a default rule
    requests = ctx.usage(r.name, "requests")
    return [
        Charge("armor-policy-month", 1, "fixed", "one security policy"),
        Charge("armor-rule-month", rules, "fixed", f"{rules} rule(s)"),
        Charge("armor-requests-million", requests / 1e6, "usage", f"{requests:g} requests"),
    ]


RULES: Mapping[str, Rule] = {
    "aws:ecs/service:Service": aws_ecs_service,
    "aws:lb/loadBalancer:LoadBalancer": aws_load_balancer,
    "aws:ec2/natGateway:NatGateway": aws_nat_gateway,
    "aws:ec2/eip:Eip": aws_eip,
    "aws:rds/instance:Instance": aws_rds_instance,
    "aws:elasticache/replicationGroup:ReplicationGroup": aws_replication_group,
    "aws:secretsmanager/secret:Secret": aws_secret,
    "aws:cloudwatch/metricAlarm:MetricAlarm": aws_metric_alarm,
    "aws:cloudwatch/logGroup:LogGroup": aws_log_group,
    "aws:ec2/flowLog:FlowLog": aws_flow_log,
    "aws:ecr/repository:Repository": aws_ecr_repository,
    "aws:s3/bucket:Bucket": aws_s3_bucket,
    "aws:kms/key:Key": aws_kms_key,
    "aws:ec2/vpcEndpoint:VpcEndpoint": aws_vpc_endpoint,
    "gcp:cloudrunv2/service:Service": gcp_cloud_run,
    "gcp:sql/databaseInstance:DatabaseInstance": gcp_sql_instance,
    "gcp:redis/instance:Instance": gcp_redis_instance,
    "gcp:secretmanager/secretVersion:SecretVersion": gcp_secret_version,
    "gcp:secretmanager/regionalSecretVersion:RegionalSecretVersion": gcp_secret_version,
    "gcp:artifactregistry/repository:Repository": gcp_artifact_registry,
    "gcp:monitoring/alertPolicy:AlertPolicy": gcp_alert_policy,
    "gcp:compute/routerNat:RouterNat": gcp_router_nat,
    "gcp:compute/address:Address": gcp_address,
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": gcp_global_forwarding_rule,
    "gcp:compute/backendService:BackendService": gcp_backend_service,
    "gcp:compute/securityPolicy:SecurityPolicy": gcp_security_policy,
}
