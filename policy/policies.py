"""The agent-deploy CrossGuard rules, importable without serving them.

`__main__.py` hands `POLICIES` to `PolicyPack` (which serves gRPC and never returns); the offline
`agent-deploy check` imports this module and calls each rule the way the Pulumi CLI does. Every
rule is ADVISORY by default; `config/<tier>.json` raises them (production: all MANDATORY), and a
`--policy-pack-config` file can lower or raise any one by name.

Rules read resource *inputs* in wire form (camelCase, numbers as floats, secrets unwrapped). A
value still unknown during a preview raises the SDK's UnknownValueError on access, which the CLI
(and `check`) treat as "cannot tell yet": no violation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

Props = Mapping[str, Any]
Check = Callable[[Props, Mapping[str, Any]], Iterable[str]]

ADVISORY = EnforcementLevel.ADVISORY
WORLD = ("0.0.0.0/0", "::/0")
# Names that hold credentials (the same pattern infra/config.py refuses in app.env); a key
# *prefix* (REDIS_KEY_PREFIX, a pr slice's Redis namespace) is a name, not a credential.
SECRET_NAME = re.compile(
    r"(KEY(?!_PREFIX$)|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE|DSN)(_|$)"
)
# Values that are credentials whatever their name: provider key prefixes, URLs with a password.
SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abp]-\S+)$"
    r"|://[^/:@\s]+:[^@\s]+@"
)
# Tags `stacks/images.py` derives from the build context's bytes: they name one image.
CONTENT_TAG = re.compile(r":sha-[0-9a-f]{12,}$")
GITHUB_OIDC = "token.actions.githubusercontent.com"
ADMIN_POLICIES = (
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
)
POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"
# FSBP ELB.17: the TLS 1.3 policies Security Hub accepts, and the 2025-09 post-quantum
# family AWS now recommends (ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09 is the console default).
TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)


def _schema(**properties: Any) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def rule(
    name: str,
    description: str,
    types: str | Sequence[str],
    check: Check,
    config: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A resource rule: `check(props, config)` yields one message per violation."""
    wanted = (types,) if isinstance(types, str) else tuple(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args.props, args.get_config()):
                report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=ADVISORY,
        config_schema=config,
    )


def _flag(key: str, message: str, expected: Any = True) -> Check:
    def check(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
        if props.get(key) != expected:
            yield message

    return check


def _refuse(key: str, message: str) -> Check:
    def check(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
        if props.get(key) is True:
            yield message

    return check


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _statements(document: Any) -> list[Mapping[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    if not isinstance(parsed, Mapping):
        return []
    statements = parsed.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | Mapping) else list(value)


# --- RDS -----------------------------------------------------------------------------------
RDS = "aws:rds/instance:Instance"


def _rds_backups(props: Props, config: Mapping[str, Any]) -> Iterator[str]:
    days = _number(props.get("backupRetentionPeriod"))
    if days < config.get("minDays", 7):
        yield f"backups kept {days:g} days; at least {config.get('minDays', 7)} required"


def _rds_monitoring(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if _number(props.get("monitoringInterval")) <= 0 or not props.get("monitoringRoleArn"):
        yield "enhanced monitoring is off: set monitoringInterval (e.g. 60) and monitoringRoleArn"


def _rds_logs(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if "postgresql" not in _as_list(props.get("enabledCloudwatchLogsExports")):
        yield "the postgresql log is not exported to CloudWatch (enabledCloudwatchLogsExports)"


def _rds_password(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("password") is not None and not props.get("manageMasterUserPassword"):
        yield "the master password is an input (it lands in state): use manageMasterUserPassword"


def _force_ssl(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    family = str(props.get("family", ""))
    if not family.startswith("postgres"):
        return
    values = {p.get("name"): str(p.get("value")) for p in _as_list(props.get("parameters"))}
    if values.get("rds.force_ssl") != "1":
        yield "rds.force_ssl is not 1: clients may connect without TLS"


# --- ElastiCache ---------------------------------------------------------------------------
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"


def _cache_encryption(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("atRestEncryptionEnabled") is not True:
        yield "at-rest encryption is off (atRestEncryptionEnabled)"
    if props.get("transitEncryptionEnabled") is not True:
        yield "in-transit encryption is off (transitEncryptionEnabled)"


def _cache_auth(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if not props.get("authToken") and not props.get("userGroupIds"):
        yield "no AUTH token or RBAC user group: any client in the VPC can connect"


def _cache_failover(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("automaticFailoverEnabled") is not True or props.get("multiAzEnabled") is not True:
        yield "no automatic Multi-AZ failover (automaticFailoverEnabled, multiAzEnabled)"


def _cache_backups(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if _number(props.get("snapshotRetentionLimit")) < 1:
        yield "no automatic backups (snapshotRetentionLimit >= 1)"


# --- Network -------------------------------------------------------------------------------
def _world_ingress(props: Props, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = set(config.get("allowedPorts", [80, 443]))
    rules: list[Mapping[str, Any]]
    if "ingress" in props:  # inline rules of a security group
        rules = [
            {**r, "cidrs": [*_as_list(r.get("cidrBlocks")), *_as_list(r.get("ipv6CidrBlocks"))]}
            for r in _as_list(props.get("ingress"))
        ]
    elif props.get("type", "ingress") == "ingress":
        cidrs = [
            props.get("cidrIpv4"),
            props.get("cidrIpv6"),
            *_as_list(props.get("cidrBlocks")),
            *_as_list(props.get("ipv6CidrBlocks")),
        ]
        rules = [{**props, "cidrs": cidrs}]
    else:
        rules = []
    for r in rules:
        if not any(c in WORLD for c in r["cidrs"]):
            continue
        low, high = int(_number(r.get("fromPort"))), int(_number(r.get("toPort")))
        protocol = str(r.get("ipProtocol", r.get("protocol", "")))
        if protocol in ("-1", "all") or low != high or low not in allowed:
            yield (
                f"ingress from the internet on {protocol} {low}-{high}: only the load "
                f"balancer's listener ports {sorted(allowed)} may be open to the world"
            )


def _default_sg(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if _as_list(props.get("ingress")) or _as_list(props.get("egress")):
        yield "the VPC's default security group allows traffic: give it no rules"


# --- Load balancer -------------------------------------------------------------------------
LB = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENER = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")


def _lb_logs(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    logs = props.get("accessLogs") or {}
    if not logs.get("enabled") or not logs.get("bucket"):
        yield "access logs are off: send them to an encrypted, non-public bucket (accessLogs)"


def _lb_desync(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("desyncMitigationMode", "defensive") not in ("defensive", "strictest"):
        yield "desyncMitigationMode must be defensive or strictest"


def _listener_https(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("protocol") == "HTTPS":
        return
    actions = _as_list(props.get("defaultActions"))
    redirects = all(
        a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS"
        for a in actions
    )
    if not actions or not redirects:
        yield "a plain-HTTP listener serves traffic: terminate HTTPS, and redirect port 80 to it"


def _listener_tls(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("protocol") in ("HTTPS", "TLS") and props.get("sslPolicy") not in TLS_POLICIES:
        yield f"TLS policy {props.get('sslPolicy')!r} is not TLS 1.2+ with strong ciphers"


def _target_group(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    check = props.get("healthCheck") or {}
    if check.get("enabled") is False or not check.get("path"):
        yield "no HTTP health check path: unhealthy tasks keep receiving traffic"


# --- ECS -----------------------------------------------------------------------------------
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _containers(props: Props) -> list[Mapping[str, Any]]:
    definitions = props.get("containerDefinitions")
    parsed = json.loads(definitions) if isinstance(definitions, str) else definitions
    return list(parsed or [])


def _privileged(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("pidMode") == "host":
        yield "the task shares the host's process namespace (pidMode host)"
    for c in _containers(props):
        if c.get("privileged"):
            yield f"container {c.get('name')} is privileged"


def _container_logs(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(props):
        if not (c.get("logConfiguration") or {}).get("logDriver"):
            yield f"container {c.get('name')} has no logConfiguration"


def _plaintext_env(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(props):
        for variable in c.get("environment") or []:
            name, value = str(variable.get("name", "")), str(variable.get("value", ""))
            if SECRET_NAME.search(name) or SECRET_VALUE.search(value):
                yield (
                    f"container {c.get('name')} has {name} in plain `environment`: pass it as "
                    "a `secrets` reference (valueFrom a Secrets Manager ARN)"
                )


def _image_digest(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(props):
        image = str(c.get("image", ""))
        if "@sha256:" not in image:
            yield f"container {c.get('name')} runs {image!r}, a tag that can move: pin a digest"


def _service_public_ip(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if (props.get("networkConfiguration") or {}).get("assignPublicIp") is True:
        yield "tasks get public IP addresses (networkConfiguration.assignPublicIp)"


def _platform(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    version = props.get("platformVersion", "LATEST")
    if props.get("launchType", "FARGATE") == "FARGATE" and version not in ("LATEST", "1.4.0"):
        yield f"Fargate platform {version!r} is not the latest (1.4.0 / LATEST)"


def _insights(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    settings = {s.get("name"): s.get("value") for s in _as_list(props.get("settings"))}
    if settings.get("containerInsights") not in ("enabled", "enhanced"):
        yield "Container Insights is off (settings containerInsights)"


# --- Logs, alarms, keys --------------------------------------------------------------------
def _retention(props: Props, config: Mapping[str, Any]) -> Iterator[str]:
    days = _number(props.get("retentionInDays"))
    minimum = config.get("minDays", 365)
    if days == 0:
        yield "logs are kept forever (no retentionInDays): set a retention"
    elif days < minimum:
        yield f"logs kept {days:g} days; at least {minimum} required"


def _alarm_actions(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("actionsEnabled") is False or not _as_list(props.get("alarmActions")):
        yield "the alarm notifies no one (alarmActions)"


def _topic_cmk(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    key = str(props.get("kmsMasterKeyId") or "")
    if not key:
        yield "the topic is not encrypted (kmsMasterKeyId)"
    elif key.endswith("alias/aws/sns"):
        yield "alias/aws/sns cannot be used by CloudWatch alarms: use a customer managed key"


def _s3_public_block(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    missing = [k for k in keys if props.get(k) is not True]
    if missing:
        yield f"public access not fully blocked: {', '.join(missing)} must be true"


# --- IAM -----------------------------------------------------------------------------------
def _wildcards(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for s in _statements(props.get("policy")):
        if s.get("Effect") != "Allow":
            continue
        actions = _as_list(s.get("Action"))
        if "*" in actions or "*:*" in actions:
            yield f"statement {s.get('Sid', '')!r} allows every action"
        elif any(str(a).endswith(":*") for a in actions) and "*" in _as_list(s.get("Resource")):
            yield f"statement {s.get('Sid', '')!r} allows a whole service on every resource"


def _admin_attachment(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    arn = props.get("policyArn")
    if arn in ADMIN_POLICIES:
        yield f"{arn} attached: grant the actions the role needs instead"


def _oidc_trust(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for s in _statements(props.get("assumeRolePolicy")):
        federated = str((s.get("Principal") or {}).get("Federated", ""))
        if s.get("Effect") != "Allow" or not federated.endswith(GITHUB_OIDC):
            continue
        equals = (s.get("Condition") or {}).get("StringEquals") or {}
        subjects = _as_list(equals.get(f"{GITHUB_OIDC}:sub"))
        audiences = _as_list(equals.get(f"{GITHUB_OIDC}:aud"))
        if not subjects or any("*" in str(x) for x in subjects):
            yield "GitHub OIDC trust does not pin `sub` to one repository and environment"
        elif any(":environment:" not in str(x) for x in subjects):
            yield "GitHub OIDC trust is not pinned to a GitHub environment (sub ...:environment:)"
        if audiences != ["sts.amazonaws.com"]:
            yield "GitHub OIDC trust does not pin `aud` to sts.amazonaws.com"


def _power_user_boundary(args: StackValidationArgs, report: ReportViolation) -> None:
    """PowerUserAccess excludes IAM, but a role that can create roles can give them anything:
    every role it creates must carry a permissions boundary it can neither change nor remove."""
    for attachment in args.resources:
        if attachment.resource_type != "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            continue
        if attachment.props.get("policyArn") != POWER_USER:
            continue
        roles = {r.urn for r in attachment.property_dependencies.get("role", [])}
        policies = [
            r
            for r in args.resources
            if r.resource_type == "aws:iam/rolePolicy:RolePolicy"
            and roles & {d.urn for d in r.property_dependencies.get("role", [])}
        ]
        if not _requires_boundary(policies):
            report(
                "PowerUserAccess without an IAM policy that makes every role it creates carry "
                "a permissions boundary (iam:PermissionsBoundary condition) and denies "
                "removing it",
                attachment.urn,
            )


def _requires_boundary(policies: Iterable[Any]) -> bool:
    creates_bounded = removal_denied = False
    for policy in policies:
        for s in _statements(policy.props.get("policy")):
            actions = set(map(str, _as_list(s.get("Action"))))
            condition = json.dumps(s.get("Condition") or {})
            if (
                s.get("Effect") == "Allow"
                and "iam:CreateRole" in actions
                and "iam:PermissionsBoundary" in condition
            ):
                creates_bounded = True
            if s.get("Effect") == "Deny" and "iam:DeleteRolePermissionsBoundary" in actions:
                removal_denied = True
    return creates_bounded and removal_denied


def _flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    logged = {
        vpc.urn
        for r in args.resources
        if r.resource_type == "aws:ec2/flowLog:FlowLog"
        for vpc in r.property_dependencies.get("vpcId", [])
    }
    for vpc in args.resources:
        if vpc.resource_type == "aws:ec2/vpc:Vpc" and vpc.urn not in logged:
            report("the VPC has no flow log (aws.ec2.FlowLog with its vpcId)", vpc.urn)


# --- GitHub --------------------------------------------------------------------------------
def _github_production(props: Props, config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("environment") not in config.get("environments", ["production"]):
        return
    reviewers = [
        x
        for r in _as_list(props.get("reviewers"))
        for x in [*r.get("teams", []), *r.get("users", [])]
    ]
    if not reviewers:
        yield "the production environment has no required reviewers"
    if props.get("preventSelfReview") is not True:
        yield "whoever starts a production deploy can approve it (preventSelfReview)"
    if props.get("canAdminsBypass") is not False:
        yield "administrators can bypass the production environment's protection"
    if not (props.get("deploymentBranchPolicy") or {}).get("protectedBranches"):
        yield "production deploys are not limited to protected branches"


def _branch_protection(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("allowsForcePushes") is True:
        yield "force pushes rewrite the protected branch's history (allowsForcePushes)"
    if props.get("allowsDeletions") is True:
        yield "the protected branch can be deleted (allowsDeletions)"
    if props.get("enforceAdmins") is not True:
        yield "administrators bypass the protection (enforceAdmins)"
    reviews = (_as_list(props.get("requiredPullRequestReviews")) or [{}])[0]
    if _number(reviews.get("requiredApprovingReviewCount")) < 1:
        yield "merges need no approving review (requiredPullRequestReviews)"
    elif reviews.get("dismissStaleReviews") is not True:
        yield "an approval survives new pushes (dismissStaleReviews)"
    checks = (_as_list(props.get("requiredStatusChecks")) or [{}])[0]
    if not _as_list(checks.get("contexts")):
        yield "merges need no passing status check (requiredStatusChecks)"


def _local_image(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    image = str(props.get("image", ""))
    if (
        not image.startswith("sha256:")
        and "@sha256:" not in image
        and not CONTENT_TAG.search(image)
    ):
        yield f"the container runs {image!r}, a tag that can move: use the image id or a digest"


# --- GCP -----------------------------------------------------------------------------------
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
REDIS = "gcp:redis/instance:Instance"
RUN = "gcp:cloudrunv2/service:Service"
# The migration job runs the app's image with the app's env: the same env rules apply.
RUN_JOB = "gcp:cloudrunv2/job:Job"
PROJECT_IAM = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")
REGISTRY_IAM = (
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
    "gcp:artifactregistry/repositoryIamBinding:RepositoryIamBinding",
)
BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
IMPERSONATION_ROLES = ("roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# Cloud SQL's modes that refuse unencrypted connections (CIS GCP 6.4).
SQL_TLS_MODES = ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")
# Load balancer SSL policies without weak suites or protocols (CKV_GCP_4, CIS GCP 3.9); the
# API's defaults are TLS_1_0 and COMPATIBLE.
LB_TLS_VERSIONS = ("TLS_1_2", "TLS_1_3")
LB_TLS_PROFILES = ("MODERN", "RESTRICTED")


def _settings(props: Props, key: str) -> Mapping[str, Any]:
    return (props.get("settings") or {}).get(key) or {}


def _sql_private(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    ip = _settings(props, "ipConfiguration")
    # The provider's default is a public IP: only an explicit False is private.
    if ip.get("ipv4Enabled") is not False:
        yield "the instance has a public IP: set settings.ipConfiguration.ipv4Enabled to false"
    if ip.get("authorizedNetworks"):
        yield "authorized networks open the instance to addresses outside the VPC"
    if not ip.get("privateNetwork"):
        yield "no private network (settings.ipConfiguration.privateNetwork)"


def _sql_ssl(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    ip = _settings(props, "ipConfiguration")
    if ip.get("sslMode") not in SQL_TLS_MODES and ip.get("requireSsl") is not True:
        yield (
            f"clients may connect without TLS: sslMode is {ip.get('sslMode')!r}, "
            f"allowed {', '.join(SQL_TLS_MODES)}"
        )


def _sql_backups(props: Props, config: Mapping[str, Any]) -> Iterator[str]:
    backups = _settings(props, "backupConfiguration")
    if backups.get("enabled") is not True:
        yield "automated backups are off (settings.backupConfiguration.enabled)"
    elif config.get("pointInTimeRecovery", True) and not backups.get("pointInTimeRecoveryEnabled"):
        yield "point-in-time recovery is off (backupConfiguration.pointInTimeRecoveryEnabled)"


def _sql_deletion(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("deletionProtection") is not True:
        yield "the provider's deletion protection is off (deletionProtection)"
    if _settings(props, "deletionProtectionEnabled") is not True:
        yield "the API's deletion protection is off (settings.deletionProtectionEnabled)"


def _redis(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if props.get("authEnabled") is not True:
        yield "AUTH is off (authEnabled): any client in the VPC can connect"
    if props.get("transitEncryptionMode") != "SERVER_AUTHENTICATION":
        yield "in-transit encryption is off (transitEncryptionMode SERVER_AUTHENTICATION)"


def _run_envs(props: Props) -> Iterator[tuple[str, Mapping[str, Any]]]:
    template = props.get("template") or {}
    # A job's containers sit one level down, in its task template.
    task = template.get("template")
    if not isinstance(task, Mapping):
        task = template
    for container in _as_list(task.get("containers")):
        for env in _as_list(container.get("envs")):
            yield str(container.get("name", "")), env


def _run_secret_versions(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for container, env in _run_envs(props):
        ref = (env.get("valueSource") or {}).get("secretKeyRef")
        if ref is not None and str(ref.get("version", "latest")) == "latest":
            yield (
                f"container {container!r} reads {env.get('name')} from the latest secret "
                "version: pin a version number, so a new version rolls out with a revision"
            )


def _run_plaintext_env(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for container, env in _run_envs(props):
        name, value = str(env.get("name", "")), env.get("value")
        if value is not None and (SECRET_NAME.search(name) or SECRET_VALUE.search(str(value))):
            yield (
                f"container {container!r} has {name} as a plain value: pass it as a Secret "
                "Manager reference (valueSource.secretKeyRef)"
            )


def _registry_immutable(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if (
        props.get("format") == "DOCKER"
        and (props.get("dockerConfig") or {}).get("immutableTags") is not True
    ):
        yield "tags can be moved to other images (dockerConfig.immutableTags)"


def _members(props: Props) -> list[str]:
    return [str(m) for m in [props.get("member"), *_as_list(props.get("members"))] if m]


def _registry_public(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    for member in _members(props):
        if member in PUBLIC_MEMBERS:
            yield f"{member} is granted {props.get('role')} on the repository"


def _wif_pinned(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    if GITHUB_OIDC not in str((props.get("oidc") or {}).get("issuerUri", "")):
        return
    condition = str(props.get("attributeCondition") or "")
    for claim in ("repository_owner_id", "sub"):
        if not re.search(rf"assertion\.{claim}\s*==", condition):
            yield (
                f"the provider's attributeCondition does not pin assertion.{claim}: any "
                "GitHub repository could exchange its tokens"
            )


def _lb_tls(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    version = props.get("minTlsVersion") or "TLS_1_0"
    if version not in LB_TLS_VERSIONS:
        yield f"minTlsVersion {version} admits TLS before 1.2: set TLS_1_2"
    profile = props.get("profile") or "COMPATIBLE"
    if profile not in LB_TLS_PROFILES:
        yield f"profile {profile} admits weak cipher suites: use MODERN or RESTRICTED"


def _project_roles(props: Props, _config: Mapping[str, Any]) -> Iterator[str]:
    role = str(props.get("role", ""))
    if role in BASIC_ROLES:
        yield f"{role} is a basic role: grant predefined or custom roles"
    elif role in IMPERSONATION_ROLES:
        yield f"{role} on the project lets its members act as every service account in it"


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    rule(
        "cloudsql-private-ip-only",
        "Cloud SQL has no public IP and no authorized networks; it is reached on its VPC. "
        "CIS GCP 6.5/6.6, CKV_GCP_11, CKV_GCP_60.",
        SQL,
        _sql_private,
    ),
    rule(
        "cloudsql-ssl-enforced",
        "Cloud SQL refuses unencrypted connections. CIS GCP 6.4, CKV_GCP_6 (which also wants "
        "client certificates: waived, docs/gcp-controls.md).",
        SQL,
        _sql_ssl,
    ),
    rule(
        "cloudsql-backups",
        "Cloud SQL takes automated backups, with point-in-time recovery unless the tier's "
        "config sets pointInTimeRecovery false. CIS GCP 6.7, CKV_GCP_14.",
        SQL,
        _sql_backups,
        _schema(pointInTimeRecovery={"type": "boolean", "default": True}),
    ),
    rule(
        "cloudsql-deletion-protection",
        "The Cloud SQL instance cannot be deleted by accident, neither by Pulumi nor through "
        "the API. No CIS GCP or CKV_GCP id; the GCP form of CKV_AWS_293.",
        SQL,
        _sql_deletion,
    ),
    rule(
        "memorystore-auth-tls",
        "Memorystore clients authenticate (AUTH) and talk TLS. CKV_GCP_95, CKV_GCP_97.",
        REDIS,
        _redis,
    ),
    rule(
        "cloudrun-secrets-pinned",
        "Cloud Run reads Secret Manager secrets at a version number, never `latest`, so a "
        "secret change ships as a new revision that can be rolled back. No CIS GCP or CKV_GCP "
        "id; Google's Cloud Run secrets guidance.",
        (RUN, RUN_JOB),
        _run_secret_versions,
    ),
    rule(
        "cloudrun-no-plaintext-credentials",
        "No Cloud Run env value that looks like a credential (by name or value): those go by "
        "Secret Manager reference. Checkov secret scanning (CKV_SECRET_*), the GCP form of "
        "CKV_AWS_45.",
        (RUN, RUN_JOB),
        _run_plaintext_env,
    ),
    rule(
        "artifact-registry-immutable-tags",
        "Docker tags in Artifact Registry cannot be moved to other images. No CKV_GCP id; the "
        "GCP form of CKV_AWS_51.",
        "gcp:artifactregistry/repository:Repository",
        _registry_immutable,
    ),
    rule(
        "artifact-registry-not-public",
        "No allUsers or allAuthenticatedUsers grant on a repository. CKV_GCP_101.",
        REGISTRY_IAM,
        _registry_public,
    ),
    rule(
        "gcp-wif-github-pinned",
        "The Workload Identity provider for GitHub pins `repository_owner_id` and `sub` in its "
        "attribute condition. CKV_GCP_125.",
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
        _wif_pinned,
    ),
    rule(
        "gcp-no-basic-or-impersonation-roles",
        "No basic role (owner, editor, viewer) and no project-level Service Account User or "
        "Token Creator. CIS GCP 1.5/1.6, CKV_GCP_117, CKV_GCP_41, CKV_GCP_49.",
        PROJECT_IAM,
        _project_roles,
    ),
    rule(
        "gcp-lb-strong-tls",
        "The load balancer's SSL policy takes TLS 1.2 or later with the MODERN or RESTRICTED "
        "profile. CIS GCP 3.9, CKV_GCP_4.",
        "gcp:compute/sSLPolicy:SSLPolicy",
        _lb_tls,
    ),
    rule(
        "rds-storage-encrypted",
        "RDS storage is encrypted at rest. FSBP RDS.3, CIS AWS 2.3.1, CKV_AWS_16.",
        RDS,
        _flag("storageEncrypted", "storage is not encrypted (storageEncrypted)"),
    ),
    rule(
        "rds-not-public",
        "The database is not reachable from the internet. FSBP RDS.2, CIS AWS 2.3.3, CKV_AWS_17.",
        RDS,
        _refuse("publiclyAccessible", "the database is publicly accessible (publiclyAccessible)"),
    ),
    rule(
        "rds-backup-retention",
        "Automated backups are kept long enough (config minDays, default 7). FSBP RDS.11, "
        "CKV_AWS_133.",
        RDS,
        _rds_backups,
        _schema(minDays={"type": "integer", "minimum": 1, "default": 7}),
    ),
    rule(
        "rds-deletion-protection",
        "The database cannot be deleted by accident. FSBP RDS.8, CKV_AWS_293.",
        RDS,
        _flag("deletionProtection", "deletion protection is off (deletionProtection)"),
    ),
    rule(
        "rds-multi-az",
        "The database has a standby in another AZ. FSBP RDS.5, CKV_AWS_157.",
        RDS,
        _flag("multiAz", "the database runs in a single AZ (multiAz)"),
    ),
    rule(
        "rds-enhanced-monitoring",
        "OS-level metrics of the database are collected. FSBP RDS.6, CKV_AWS_118.",
        RDS,
        _rds_monitoring,
    ),
    rule(
        "rds-log-exports",
        "Database logs go to CloudWatch. FSBP RDS.9, CKV_AWS_129.",
        RDS,
        _rds_logs,
    ),
    rule(
        "rds-password-by-reference",
        "The master password is managed by RDS in Secrets Manager, never an input. "
        "FSBP ECS.8's principle (secrets by reference), CIS AWS 2.3 (RDS), Checkov secret "
        "scanning (CKV_SECRET_*).",
        RDS,
        _rds_password,
    ),
    rule(
        "rds-force-ssl",
        "PostgreSQL refuses connections without TLS (rds.force_ssl=1). CKV2_AWS_69.",
        "aws:rds/parameterGroup:ParameterGroup",
        _force_ssl,
    ),
    rule(
        "elasticache-encrypted",
        "The cache is encrypted at rest and in transit. FSBP ElastiCache.4/.5, CKV_AWS_29, "
        "CKV_AWS_30.",
        CACHE,
        _cache_encryption,
    ),
    rule(
        "elasticache-auth",
        "Clients authenticate to the cache. FSBP ElastiCache.6, CKV_AWS_31.",
        CACHE,
        _cache_auth,
    ),
    rule(
        "elasticache-failover",
        "The cache fails over automatically to another AZ. FSBP ElastiCache.3, CKV2_AWS_50.",
        CACHE,
        _cache_failover,
    ),
    rule(
        "elasticache-backups",
        "The cache takes automatic snapshots. FSBP ElastiCache.1.",
        CACHE,
        _cache_backups,
    ),
    rule(
        "no-world-ingress",
        "Nothing is open to 0.0.0.0/0 or ::/0 except the load balancer's listener ports "
        "(config allowedPorts, default 80 and 443). FSBP EC2.18/EC2.19, CIS AWS 5.2/5.3, "
        "CKV_AWS_24, CKV_AWS_25, CKV_AWS_260, CKV_AWS_277.",
        (
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        ),
        _world_ingress,
        _schema(allowedPorts={"type": "array", "items": {"type": "integer"}, "default": [80, 443]}),
    ),
    rule(
        "default-security-group-closed",
        "The VPC's default security group allows nothing. FSBP EC2.2, CIS AWS 5.4, CKV2_AWS_12.",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        _default_sg,
    ),
    rule(
        "subnet-no-public-ip",
        "Subnets do not hand out public IPs on launch. FSBP EC2.15, CKV_AWS_130.",
        "aws:ec2/subnet:Subnet",
        _refuse("mapPublicIpOnLaunch", "instances get public IPs on launch (mapPublicIpOnLaunch)"),
    ),
    rule(
        "alb-drop-invalid-headers",
        "The load balancer drops invalid HTTP headers. FSBP ELB.4, CKV_AWS_131.",
        LB,
        _flag("dropInvalidHeaderFields", "invalid headers are passed on (dropInvalidHeaderFields)"),
    ),
    rule(
        "alb-deletion-protection",
        "The load balancer cannot be deleted by accident. FSBP ELB.6, CKV_AWS_150.",
        LB,
        _flag("enableDeletionProtection", "deletion protection is off (enableDeletionProtection)"),
    ),
    rule(
        "alb-desync-mitigation",
        "HTTP desync mitigation is defensive or strictest. FSBP ELB.12, CKV_AWS_328.",
        LB,
        _lb_desync,
    ),
    rule(
        "alb-access-logs",
        "Load balancer access logs are kept. FSBP ELB.5, CKV_AWS_91.",
        LB,
        _lb_logs,
    ),
    rule(
        "alb-https-only",
        "Listeners serve HTTPS, and port 80 only redirects to it. FSBP ELB.1, CKV_AWS_2, "
        "CKV2_AWS_20.",
        LISTENER,
        _listener_https,
    ),
    rule(
        "alb-tls-policy",
        "HTTPS listeners use a TLS 1.2+ policy with strong ciphers. FSBP ELB.17, CKV_AWS_103, "
        "CKV2_AWS_74.",
        LISTENER,
        _listener_tls,
    ),
    rule(
        "target-group-health-check",
        "Target groups health-check a path. CKV_AWS_261.",
        ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"),
        _target_group,
    ),
    rule(
        "ecs-not-privileged",
        "Containers are not privileged and do not share the host PID namespace. FSBP ECS.4, "
        "ECS.3, CKV_AWS_334, CKV_AWS_335.",
        TASK,
        _privileged,
    ),
    rule(
        "ecs-container-logging",
        "Every container sends its logs somewhere. FSBP ECS.9.",
        TASK,
        _container_logs,
    ),
    rule(
        "ecs-secrets-by-reference",
        "No credential in a container's plain environment: secrets are references. FSBP ECS.8.",
        TASK,
        _plaintext_env,
    ),
    rule(
        "image-pinned-by-digest",
        "Task containers run an image pinned by digest, never a movable tag. CIS Docker 4.x "
        "(content trust), SLSA.",
        TASK,
        _image_digest,
    ),
    rule(
        "local-image-pinned",
        "Local containers run an image id, a digest or the content-derived `sha-<hash>` tag of "
        "the build, never a movable tag. CIS Docker 4.x.",
        "docker:index/container:Container",
        _local_image,
    ),
    rule(
        "ecs-no-public-ip",
        "Service tasks get no public IP. FSBP ECS.2, CKV_AWS_333.",
        "aws:ecs/service:Service",
        _service_public_ip,
    ),
    rule(
        "ecs-latest-platform",
        "Fargate services run the latest platform version. FSBP ECS.10, CKV_AWS_332.",
        "aws:ecs/service:Service",
        _platform,
    ),
    rule(
        "ecs-container-insights",
        "Container Insights is on. FSBP ECS.12, CKV_AWS_65.",
        "aws:ecs/cluster:Cluster",
        _insights,
    ),
    rule(
        "ecr-immutable-tags",
        "Image tags cannot be overwritten. FSBP ECR.2, CKV_AWS_51.",
        "aws:ecr/repository:Repository",
        _flag("imageTagMutability", "image tags are mutable", expected="IMMUTABLE"),
    ),
    rule(
        "ecr-scan-on-push",
        "Images are scanned on push. FSBP ECR.1, CKV_AWS_163.",
        "aws:ecr/repository:Repository",
        lambda p, _c: (
            []
            if (p.get("imageScanningConfiguration") or {}).get("scanOnPush") is True
            else ["images are not scanned on push"]
        ),
    ),
    rule(
        "log-retention",
        "Log groups have a retention of at least config minDays (default 365). FSBP "
        "CloudWatch.16, CKV_AWS_66, CKV_AWS_338.",
        "aws:cloudwatch/logGroup:LogGroup",
        _retention,
        _schema(minDays={"type": "integer", "minimum": 1, "default": 365}),
    ),
    rule(
        "alarm-has-action",
        "Every alarm notifies a target. FSBP CloudWatch.15, CKV_AWS_319.",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        _alarm_actions,
    ),
    rule(
        "sns-topic-cmk",
        "SNS topics are encrypted with a customer managed KMS key. FSBP SNS.1, CKV_AWS_26.",
        "aws:sns/topic:Topic",
        _topic_cmk,
    ),
    rule(
        "kms-key-rotation",
        "Customer managed KMS keys rotate. FSBP KMS.4, CIS AWS 3.6, CKV_AWS_7.",
        "aws:kms/key:Key",
        _flag("enableKeyRotation", "key rotation is off (enableKeyRotation)"),
    ),
    rule(
        "s3-public-access-blocked",
        "Buckets block every form of public access. FSBP S3.8, CIS AWS 2.1.4, CKV_AWS_53-56.",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _s3_public_block,
    ),
    rule(
        "iam-no-wildcard-actions",
        "IAM policies never allow `*` actions, nor a whole service on every resource. FSBP "
        "IAM.1/IAM.21, CIS AWS 1.16, CKV_AWS_1, CKV_AWS_62, CKV_AWS_63.",
        ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"),
        _wildcards,
    ),
    rule(
        "iam-no-admin-policy",
        "No AdministratorAccess or IAMFullAccess attachment. FSBP IAM.1, CKV_AWS_274.",
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",),
        _admin_attachment,
    ),
    rule(
        "github-oidc-trust-pinned",
        "Roles GitHub Actions assume pin `sub` to one repository and environment and `aud` to "
        "STS. CKV_AWS_358.",
        "aws:iam/role:Role",
        _oidc_trust,
    ),
    StackValidationPolicy(
        name="iam-power-user-bounded",
        description="PowerUserAccess only with a permissions boundary every created role must "
        "carry and cannot remove (no privilege escalation). FSBP IAM.1, CKV_AWS_286.",
        validate=_power_user_boundary,
        enforcement_level=ADVISORY,
    ),
    StackValidationPolicy(
        name="vpc-flow-logs",
        description="Every VPC has a flow log. FSBP EC2.6, CIS AWS 3.7, CKV2_AWS_11.",
        validate=_flow_logs,
        enforcement_level=ADVISORY,
    ),
    rule(
        "github-branch-protection",
        "The deploying branch takes reviewed, checked merges only: no force push or deletion, "
        "no admin bypass, an approval dismissed by new pushes, required status checks. "
        "OpenSSF Scorecard Branch-Protection, CIS Software Supply Chain 1.1.3/1.1.4/1.1.9.",
        "github:index/branchProtection:BranchProtection",
        _branch_protection,
    ),
    rule(
        "github-production-reviewers",
        "The GitHub production environment needs a reviewer who is not the deployer, from "
        "protected branches, without admin bypass (config environments). OpenSSF Scorecard "
        "Branch-Protection, CIS Software Supply Chain 1.1.",
        "github:index/repositoryEnvironment:RepositoryEnvironment",
        _github_production,
        _schema(
            environments={"type": "array", "items": {"type": "string"}, "default": ["production"]}
        ),
    ),
]
