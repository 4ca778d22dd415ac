"""What the gcp-infra-b component tests share: the tier values gcp-core's presets pass and a
private-services-access connection to hang components on."""

from __future__ import annotations

from typing import Any

import pulumi_gcp as gcp

PROJECT = "acme-agent-prod"
REGION = "europe-west1"
NETWORK = f"projects/{PROJECT}/global/networks/agent-vpc"
SUBNET = f"projects/{PROJECT}/regions/{REGION}/subnetworks/agent-run"
TIERS = ("ephemeral", "staging", "production")

# The settings issue 8 asks of each tier (notes/gcp.md, "Tiers").
DATABASE_TIERS: dict[str, dict[str, Any]] = {
    "ephemeral": {
        "tier": "db-f1-micro",
        "edition": "ENTERPRISE",
        "availability_type": "ZONAL",
        "backups": False,
        "pitr": False,
        "deletion_protection": False,
        "protect": False,
    },
    "staging": {
        "tier": "db-custom-1-3840",
        "edition": "ENTERPRISE",
        "availability_type": "ZONAL",
        "backups": True,
        "pitr": True,
        "deletion_protection": False,
        "protect": False,
    },
    "production": {
        "tier": "db-custom-2-7680",
        "edition": "ENTERPRISE",
        "availability_type": "REGIONAL",
        "backups": True,
        "pitr": True,
        "deletion_protection": True,
        "protect": True,
    },
}


def services_connection() -> gcp.servicenetworking.Connection:
    return gcp.servicenetworking.Connection(
        "psa",
        network=NETWORK,
        service="servicenetworking.googleapis.com",
        reserved_peering_ranges=["agent-psa"],
    )
