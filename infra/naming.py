"""Physical-name rules of every resource type the program registers, in one table.

A name AWS (or Docker, or GitHub) refuses fails only at deploy time, often after half a stack
exists. The table below is what the mocks engine (cli/engine.py) enforces on every
registration, the way the real engine and cloud would, so a name that breaks a limit fails
`agent-deploy check` and the tests. `fit` derives short, stable names where a limit is tight.

How Pulumi names a resource whose name property is left unset (pulumi-terraform-bridge
`ComputeAutoNameDefault`): the logical name, `-`, then 7 random hex characters; when that is
longer than the provider's maximum the engine fails with "name '<logical>-' plus 7 random chars
is longer than maximum length N". A `namePrefix` turns Pulumi's auto-naming off (defaults never
override a conflicting input); the AWS provider then appends its own 26-character unique id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

AUTONAME_SUFFIX = 8  # "-" + 7 random hex characters
PREFIX_SUFFIX = 26  # the AWS provider's unique id after a name_prefix
_HASH = 7


@dataclass(frozen=True)
class NameRule:
    property: str  # input (wire name) holding the physical name
    max_length: int
    pattern: str  # the whole name must match
    allowed: str  # what the pattern means, for messages
    autonamed: bool = True  # Pulumi fills the property from the logical name when unset
    prefix_max: int | None = None  # longest `namePrefix` the provider accepts

    def problems(self, name: str) -> list[str]:
        found = []
        if len(name) > self.max_length:
            found.append(f"{len(name)} characters, more than the {self.max_length} allowed")
        if not re.fullmatch(self.pattern, name):
            found.append(f"allowed: {self.allowed}")
        return found


_IDENTIFIER = r"[a-z](?:[a-z0-9]|-(?!-))*(?<!-)"
_IDENTIFIER_TEXT = (
    "lowercase letters, digits and hyphens, starting with a letter, no '--' and no trailing '-'"
)
_ALNUM_HYPHEN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ALNUM_HYPHEN_TEXT = "letters, digits and hyphens, not starting or ending with '-'"
_ECS = r"[A-Za-z0-9_-]+"
_ECS_TEXT = "letters, digits, hyphens and underscores"
_IAM = r"[\w+=,.@-]+"
_IAM_TEXT = "letters, digits and + = , . @ _ -"
_DOCKER = r"[a-zA-Z0-9][a-zA-Z0-9_.-]+"
_DOCKER_TEXT = "letters, digits and _ . -, starting with a letter or digit"
_PRINTABLE = r"[ -~]+"

# Keyed by type token. Sources: the AWS API references for each Create* call (names, lengths,
# characters), pulumi-aws `resources.go` for the auto-name maximum (target group: 32).
NAME_RULES: dict[str, NameRule] = {
    "aws:lb/loadBalancer:LoadBalancer": NameRule(
        "name", 32, _ALNUM_HYPHEN, _ALNUM_HYPHEN_TEXT, prefix_max=6
    ),
    "aws:lb/targetGroup:TargetGroup": NameRule(
        "name", 32, _ALNUM_HYPHEN, _ALNUM_HYPHEN_TEXT, prefix_max=6
    ),
    "aws:iam/role:Role": NameRule("name", 64, _IAM, _IAM_TEXT, prefix_max=38),
    "aws:iam/rolePolicy:RolePolicy": NameRule("name", 128, _IAM, _IAM_TEXT, prefix_max=100),
    # CreatePolicy: 1-128 characters.
    "aws:iam/policy:Policy": NameRule("name", 128, _IAM, _IAM_TEXT, prefix_max=96),
    "aws:elasticache/replicationGroup:ReplicationGroup": NameRule(
        "replicationGroupId", 40, _IDENTIFIER, _IDENTIFIER_TEXT
    ),
    # ElastiCache RBAC (CreateUser, CreateUserGroup): ids of 1 to 40 characters.
    "aws:elasticache/user:User": NameRule(
        "userId", 40, _IDENTIFIER, _IDENTIFIER_TEXT, autonamed=False
    ),
    "aws:elasticache/userGroup:UserGroup": NameRule(
        "userGroupId", 40, _IDENTIFIER, _IDENTIFIER_TEXT, autonamed=False
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": NameRule("name", 255, _IDENTIFIER, _IDENTIFIER_TEXT),
    "aws:rds/instance:Instance": NameRule(
        "identifier", 63, _IDENTIFIER, _IDENTIFIER_TEXT, prefix_max=37
    ),
    "aws:rds/subnetGroup:SubnetGroup": NameRule(
        "name",
        255,
        r"(?!default$)[a-z0-9._ -]+",
        "lowercase letters, digits, '.', '_', ' ' and '-' (not 'default')",
        prefix_max=229,
    ),
    "aws:rds/parameterGroup:ParameterGroup": NameRule(
        "name", 255, _IDENTIFIER, _IDENTIFIER_TEXT, prefix_max=229
    ),
    "aws:ecr/repository:Repository": NameRule(
        "name",
        256,
        r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
        "lowercase letters and digits, separated by single '.', '_', '-' or '/'",
    ),
    # Lambda CreateFunction: 64 characters.
    "aws:lambda/function:Function": NameRule(
        "name", 64, r"[A-Za-z0-9_-]+", "letters, digits, hyphens and underscores"
    ),
    "aws:ecs/cluster:Cluster": NameRule("name", 255, _ECS, _ECS_TEXT),
    "aws:ecs/service:Service": NameRule("name", 255, _ECS, _ECS_TEXT),
    "aws:ecs/taskDefinition:TaskDefinition": NameRule(
        "family", 255, _ECS, _ECS_TEXT, autonamed=False
    ),
    "aws:cloudwatch/logGroup:LogGroup": NameRule(
        "name", 512, r"[.\-_/#A-Za-z0-9]+", "letters, digits and . - _ / #", prefix_max=483
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule(
        "name", 255, _PRINTABLE, "printable ASCII characters"
    ),
    "aws:appautoscaling/policy:Policy": NameRule(
        "name", 255, r"[ -9;-~]+", "printable ASCII characters except ':'"
    ),
    "aws:secretsmanager/secret:Secret": NameRule(
        "name", 512, r"[A-Za-z0-9/_+=.@-]+", "letters, digits and / _ + = . @ -", prefix_max=486
    ),
    "aws:s3/bucket:Bucket": NameRule(
        "bucket",
        63,
        r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?",
        "lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
        prefix_max=37,
    ),
    "aws:sns/topic:Topic": NameRule(
        "name", 256, r"[A-Za-z0-9_-]+", "letters, digits, hyphens and underscores"
    ),
    "aws:ec2/securityGroup:SecurityGroup": NameRule(
        "name",
        255,
        r"(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+",
        "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* (not starting with 'sg-')",
        prefix_max=100,
    ),
    "docker:index/container:Container": NameRule("name", 255, _DOCKER, _DOCKER_TEXT),
    "docker:index/network:Network": NameRule("name", 255, _DOCKER, _DOCKER_TEXT),
    "docker:index/volume:Volume": NameRule("name", 255, _DOCKER, _DOCKER_TEXT),
    **{
        f"github:index/{token}": NameRule(
            prop,
            255,
            r"(?i)(?!github_)[A-Za-z_][A-Za-z0-9_]*",
            "letters, digits and _, not starting with a digit or GITHUB_",
            autonamed=False,
        )
        for token, prop in (
            ("actionsEnvironmentVariable:ActionsEnvironmentVariable", "variableName"),
            ("actionsEnvironmentSecret:ActionsEnvironmentSecret", "secretName"),
            ("actionsVariable:ActionsVariable", "variableName"),
            ("actionsSecret:ActionsSecret", "secretName"),
        )
    },
    "github:index/repositoryEnvironment:RepositoryEnvironment": NameRule(
        "environment", 255, r"[^,:;'\"`\\/]+", "no , : ; ' \" ` \\ or /", autonamed=False
    ),
    # GCP (gcp-infra-b): the Memorystore, Cloud Run and IAM API references.
    "gcp:redis/instance:Instance": NameRule("name", 40, _IDENTIFIER, _IDENTIFIER_TEXT),
    "gcp:cloudrunv2/service:Service": NameRule("name", 49, _IDENTIFIER, _IDENTIFIER_TEXT),
    # 63 for a job, less its execution token's 21 (infra/gcp/migration.py): the two share one limit.
    "gcp:cloudrunv2/job:Job": NameRule("name", 41, _IDENTIFIER, _IDENTIFIER_TEXT, autonamed=False),
    "gcp:serviceaccount/account:Account": NameRule(
        "accountId",
        30,
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
        "6 to 30 lowercase letters, digits and hyphens, starting with a letter",
        autonamed=False,
    ),
}

# GCP (pulumi-gcp 10.x): compute names follow RFC 1035 and are auto-named; the others are ids a
# component always sets. Sources: the API references of each create call (Compute Engine
# `name`, IAM `accountId`, `workloadIdentityPoolId`/`ProviderId` ("gcp-" is reserved), Artifact
# Registry `repositoryId`, Secret Manager `secretId`, IAM custom role `roleId`).
_RFC1035 = r"[a-z](?:[-a-z0-9]*[a-z0-9])?"
_RFC1035_TEXT = "lowercase letters, digits and hyphens, starting with a letter, not ending in '-'"
_WIF_ID = r"(?!gcp-)[a-z0-9][-a-z0-9]{2,}[a-z0-9]"
_WIF_TEXT = "4+ lowercase letters, digits and hyphens, not starting or ending in '-' or with 'gcp-'"
NAME_RULES.update(
    {
        **{
            f"gcp:compute/{token}": NameRule("name", 63, _RFC1035, _RFC1035_TEXT)
            for token in (
                "network:Network",
                "subnetwork:Subnetwork",
                "globalAddress:GlobalAddress",
                "firewall:Firewall",
                "regionNetworkEndpointGroup:RegionNetworkEndpointGroup",
                "backendService:BackendService",
                "uRLMap:URLMap",
                "managedSslCertificate:ManagedSslCertificate",
                "sSLPolicy:SSLPolicy",
                "targetHttpsProxy:TargetHttpsProxy",
                "targetHttpProxy:TargetHttpProxy",
                "globalForwardingRule:GlobalForwardingRule",
                "securityPolicy:SecurityPolicy",
            )
        },
        "gcp:serviceaccount/account:Account": NameRule(
            "accountId",
            30,
            r"[a-z][-a-z0-9]{4,28}[a-z0-9]",
            "6 to 30 lowercase letters, digits and hyphens, starting with a letter",
            autonamed=False,
        ),
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": NameRule(
            "workloadIdentityPoolId", 32, _WIF_ID, _WIF_TEXT, autonamed=False
        ),
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider": NameRule(
            "workloadIdentityPoolProviderId", 32, _WIF_ID, _WIF_TEXT, autonamed=False
        ),
        "gcp:artifactregistry/repository:Repository": NameRule(
            "repositoryId", 63, _RFC1035, _RFC1035_TEXT, autonamed=False
        ),
        "gcp:secretmanager/secret:Secret": NameRule(
            "secretId",
            255,
            r"[A-Za-z0-9_-]+",
            "letters, digits, hyphens and underscores",
            autonamed=False,
        ),
        "gcp:projects/iAMCustomRole:IAMCustomRole": NameRule(
            "roleId",
            64,
            r"[A-Za-z0-9_.]{3,}",
            "3 or more letters, digits, '_' and '.'",
            autonamed=False,
        ),
    }
)


def autoname(logical: str) -> str:
    """A stable stand-in for the engine's `<logical>-<7 random hex>`: same length, digits only
    (a subset of hex), so the tests can predict it."""
    number = int(hashlib.sha256(logical.encode()).hexdigest(), 16) % 10**_HASH
    return f"{logical}-{number:0{_HASH}d}"


def physical_name(type_: str, logical: str, inputs: dict[str, object]) -> object:
    """The name the cloud gets: the input when set, else the engine's auto-name (or None)."""
    rule = NAME_RULES[type_]
    if rule.property in inputs or not rule.autonamed or "namePrefix" in inputs:
        return inputs.get(rule.property)
    return autoname(logical)


def physical_name_problems(type_: str, logical: str, inputs: dict[str, object]) -> list[str]:
    """Why the engine or the cloud would refuse this registration's name; empty when it fits."""
    rule = NAME_RULES.get(type_)
    if rule is None:
        return []
    where = f"{type_} '{logical}'"
    explicit = inputs.get(rule.property)
    prefix = inputs.get("namePrefix")
    if isinstance(explicit, str):
        return [f"{where}: {rule.property} '{explicit}': {p}" for p in rule.problems(explicit)]
    if explicit is not None:
        return []  # an output of another resource: known only at deployment
    if isinstance(prefix, str) and rule.prefix_max is not None:
        found = rule.problems(prefix + "a" * PREFIX_SUFFIX)
        if len(prefix) > rule.prefix_max:
            found.insert(0, f"namePrefix may have at most {rule.prefix_max} characters")
        return [f"{where}: namePrefix '{prefix}': {p}" for p in found]
    if not rule.autonamed:
        return []
    if len(logical) + AUTONAME_SUFFIX > rule.max_length:
        return [
            f"{where}: name '{logical}-' plus 7 random chars is longer than maximum length "
            f"{rule.max_length}"
        ]
    return [
        f"{where}: auto-name '{autoname(logical)}': {p}" for p in rule.problems(autoname(logical))
    ]


def fit(type_: str, base: str) -> str:
    """`base`, or a stable shortened form of it that fits `type_`'s limit.

    Auto-named types keep room for Pulumi's suffix. A shortened name keeps the start of `base`
    (so prefix-scoped IAM policies still match) and ends in a hash of the whole of it, so two
    stacks never collide and the result never ends in '-'.
    """
    rule = NAME_RULES[type_]
    room = rule.max_length - (AUTONAME_SUFFIX if rule.autonamed else 0)
    if len(base) <= room:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:_HASH]
    return f"{base[: room - _HASH - 1].rstrip('-')}-{digest}"


def fit_user_id(base: str) -> str:
    """An ElastiCache user or user group id from `base` (both: 40 characters)."""
    return fit("aws:elasticache/user:User", base)


# --------------------------------------------------------------------------------------------
# What config loading checks: the parts every derived name is made of.
# --------------------------------------------------------------------------------------------
STACK_NAME = re.compile(_IDENTIFIER)
STACK_NAME_TEXT = (
    "lowercase letters, digits and hyphens, starting with a letter, ending with a letter or "
    "digit, no '--' (e.g. staging, pr-42)"
)
# IAM roles are named `<app>-<stack>-<role>` and the deploy role may manage only roles under
# `<app>-<stack>-`: that prefix must survive `fit` for IAM roles whole.
IAM_PREFIX_MAX = NAME_RULES["aws:iam/role:Role"].max_length - AUTONAME_SUFFIX - _HASH - 1


def stack_name_problems(stack: str, app_name: str, iam: bool) -> list[tuple[str, str, str]]:
    """(key, message, value) for the stack name and for `app.name` with it, checked at config
    load so that no resource is registered under a name the cloud would refuse. `iam`: the
    stack names IAM roles (the aws target)."""
    problems = []
    if not STACK_NAME.fullmatch(stack):
        problems.append(("stack name", f"not allowed: use {STACK_NAME_TEXT}", stack))
    if "--" in app_name:
        problems.append(
            (
                "app.name",
                "must not contain '--': RDS and ElastiCache identifiers refuse it",
                app_name,
            )
        )
    prefix = f"{app_name}-{stack}-"
    if iam and len(prefix) > IAM_PREFIX_MAX:
        problems.append(
            (
                "app.name",
                f"with stack '{stack}', IAM role names start with '{prefix}' "
                f"({len(prefix)} characters) and at most {IAM_PREFIX_MAX} fit IAM's 64 with "
                f"Pulumi's suffix: app.name and the stack name may have "
                f"{IAM_PREFIX_MAX - 2} characters together; shorten one by "
                f"{len(prefix) - IAM_PREFIX_MAX}",
                app_name,
            )
        )
    return problems
