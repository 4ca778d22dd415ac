"""The tier presets and target defaults: the only place defaults live."""

from __future__ import annotations

from typing import Any

from infra.config.common import Target, Tier

# --------------------------------------------------------------------------------------------
# Tier presets: the one place where defaults are relaxed for cheaper, throw-away stacks.
# Keys are the wire names a user writes in Pulumi.<stack>.yaml, so an override is a copy-paste.
# --------------------------------------------------------------------------------------------
TIER_PRESETS: dict[Tier, dict[str, dict[str, Any]]] = {
    "ephemeral": {
        "app": {
            "cpu": 256,
            "memory": 512,
            "minInstances": 1,
            "maxInstances": 1,
            "copyImage": False,
        },
        "database": {
            "instanceClass": "db.t4g.micro",
            "storageGb": 20,
            "maxStorageGb": 20,
            "backupDays": 1,
            "multiAz": False,
            "deletionProtection": False,
            "finalSnapshot": False,
            "protect": False,
        },
        "cache": {
            "nodeType": "cache.t4g.micro",
            "nodes": 1,
            "automaticFailover": False,
            "snapshotDays": 0,
        },
        "github": {
            "branchPolicy": "none",
            "preventSelfReview": False,
            "canAdminsBypass": True,
            "previewEnvironment": False,
        },
        "aws": {
            "natGateways": "none",
            "logRetentionDays": 7,
            "fargateSpot": True,
            "flowLogs": False,
            "autoscaling": False,
            "loadBalancerDeletionProtection": False,
            # pr-<n> stacks deploy with the shared `ephemeral` role staging creates (see
            # infra/aws/identity.py): they create no role and no OIDC provider of their own.
            "deployRole": False,
            "createOidcProvider": False,
            # Deleted secrets go at once, so `pulumi destroy` then `up` can reuse the stack.
            "secretRecoveryDays": 0,
        },
        "gcp": {
            "sql": {
                "tier": "db-f1-micro",
                "edition": "ENTERPRISE",
                "availabilityType": "ZONAL",
                "diskLimitGb": 20,
                "pointInTimeRecovery": False,
            },
            "redis": {"tier": "BASIC", "memoryGb": 1},
            "cpuIdle": True,
            "serviceDeletionProtection": False,
            "flowLogs": False,
            # gcp-pr-<n> stacks deploy with the identity gcp-staging creates.
            "deployIdentity": False,
            "cloudArmor": False,
        },
    },
    "staging": {
        "app": {
            "cpu": 512,
            "memory": 1024,
            "minInstances": 1,
            "maxInstances": 3,
            "copyImage": False,
        },
        "database": {
            "instanceClass": "db.t4g.small",
            "storageGb": 20,
            "maxStorageGb": 100,
            "backupDays": 7,
            "multiAz": False,
            "deletionProtection": False,
            "finalSnapshot": True,
            "protect": False,
        },
        "cache": {
            "nodeType": "cache.t4g.small",
            "nodes": 1,
            "automaticFailover": False,
            "snapshotDays": 1,
        },
        "github": {
            "branchPolicy": "default",
            "preventSelfReview": False,
            "canAdminsBypass": True,
            "previewEnvironment": True,
        },
        "aws": {
            "natGateways": "none",
            "logRetentionDays": 30,
            "fargateSpot": False,
            "flowLogs": False,
            "autoscaling": True,
            "loadBalancerDeletionProtection": False,
            "deployRole": True,
            "createOidcProvider": True,
            "secretRecoveryDays": 7,
        },
        "gcp": {
            "sql": {
                "tier": "db-custom-1-3840",
                "edition": "ENTERPRISE",
                "availabilityType": "ZONAL",
                "diskLimitGb": 100,
                "pointInTimeRecovery": True,
            },
            "redis": {"tier": "BASIC", "memoryGb": 1},
            "cpuIdle": True,
            "serviceDeletionProtection": False,
            "flowLogs": True,
            "deployIdentity": True,
            "cloudArmor": False,
        },
    },
    "production": {
        # Promoted digests are copied into production's own registry (infra/promotion.py).
        "app": {
            "cpu": 1024,
            "memory": 2048,
            "minInstances": 2,
            "maxInstances": 6,
            "copyImage": True,
        },
        # Sized to start, not to peak (README: "Growing production"): the service mostly
        # waits on model APIs; Postgres holds checkpoints, the cache a lock and a rate limit.
        "database": {
            "instanceClass": "db.t4g.medium",
            "storageGb": 20,
            "maxStorageGb": 200,
            "backupDays": 14,
            "multiAz": True,
            "deletionProtection": True,
            "finalSnapshot": True,
            "protect": True,
        },
        "cache": {
            "nodeType": "cache.t4g.small",
            "nodes": 2,
            "automaticFailover": True,
            "snapshotDays": 7,
        },
        "github": {
            "branchPolicy": "protected",
            "preventSelfReview": True,
            "canAdminsBypass": False,
            "previewEnvironment": True,
        },
        "aws": {
            "natGateways": "perAz",
            "logRetentionDays": 365,
            "fargateSpot": False,
            "flowLogs": True,
            "autoscaling": True,
            "loadBalancerDeletionProtection": True,
            "deployRole": True,
            # One stack owns the account's GitHub OIDC provider (staging, in the one-account
            # layout); production looks it up. Its own account: set createOidcProvider: true.
            "createOidcProvider": False,
            "secretRecoveryDays": 30,
        },
        "gcp": {
            "sql": {
                "tier": "db-custom-2-7680",
                "edition": "ENTERPRISE",
                "availabilityType": "REGIONAL",
                "diskLimitGb": 200,
                "pointInTimeRecovery": True,
            },
            "redis": {"tier": "STANDARD_HA", "memoryGb": 1},
            # Instance-based billing: a run keeps its CPU after the response has been sent.
            "cpuIdle": False,
            "serviceDeletionProtection": True,
            "flowLogs": True,
            "deployIdentity": True,
            # Rate limiting per client IP (and the Log4Shell rule) on the load balancer.
            "cloudArmor": True,
        },
    },
}

# Defaults that depend on where the stack runs, not on how much it matters.
TARGET_DEFAULTS: dict[Target, dict[str, dict[str, Any]]] = {
    "local": {"app": {"build": {"platforms": ["linux/amd64"]}, "env": {"LOG_FORMAT": "console"}}},
    # Graviton: cheaper per vCPU on Fargate, and the reference image is multi-arch.
    "aws": {"app": {"build": {"platforms": ["linux/arm64"]}, "env": {"LOG_FORMAT": "json"}}},
    "gcp": {"app": {"build": {"platforms": ["linux/amd64"]}, "env": {"LOG_FORMAT": "json"}}},
}

# Tier presets that differ by target, applied over TIER_PRESETS: Cloud Run sizes in whole
# vCPUs and scales an ephemeral service to zero.
TARGET_TIER_PRESETS: dict[Target, dict[Tier, dict[str, dict[str, Any]]]] = {
    "gcp": {
        "ephemeral": {"app": {"cpu": 1024, "memory": 512, "minInstances": 0, "maxInstances": 2}},
        "staging": {"app": {"cpu": 1024, "memory": 1024, "minInstances": 0, "maxInstances": 3}},
        "production": {"app": {"cpu": 1024, "memory": 2048, "minInstances": 1, "maxInstances": 10}},
    },
}

# Production may tune these but never switch them off.
PRODUCTION_MIN_BACKUP_DAYS = 7

# Engine versions this program deploys, per engine; checked 2026-11 against the RDS for
# PostgreSQL release calendar and ElastiCache "Supported engines and versions" (Redis OSS
# stops at 7.1; 4.0/5.0 are in paid extended support and not offered here). The parameter
# group family is derived from the major version, so a new major needs a line here only.
ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "postgres": ("16", "17"),
    "valkey": ("7.2", "8.0", "8.1", "8.2", "9.0", "9.1"),
    "redis": ("6.0", "6.2", "7.0", "7.1"),
}
# The version a stack gets when it names none: it depends on the engine (Redis OSS has no 8.0).
DEFAULT_ENGINE_VERSIONS: dict[str, str] = {"postgres": "16", "valkey": "8.0", "redis": "7.1"}
