"""Placeholder with the contract's names only: helper pr-db replaces this package."""

from __future__ import annotations

import pulumi

HANDLER = "handler.handler"
RUNTIME = "python3.12"
PROVISIONER_USER = "agent_provisioner"


def provisioner_archive() -> pulumi.AssetArchive:
    return pulumi.AssetArchive(
        {
            "handler.py": pulumi.StringAsset(
                "def handler(event, context):\n    raise NotImplementedError\n"
            )
        }
    )
