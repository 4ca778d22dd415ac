"""The Google APIs a gcp stack uses, enabled in its project and never disabled by it.

Outputs: `ready`, the `projects.Service` resources to depend on (a resource that calls an API
must wait for it to be enabled, or its create fails with SERVICE_DISABLED).

Disabling an API on `pulumi destroy` would break every other stack of the project that uses it
(and `disable_dependent_services` even more), so each stays enabled after its stack is gone.
A freshly enabled API may still answer 403 for a few minutes (TPG#10510): a second
`pulumi up` then succeeds; that propagation delay cannot be checked offline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# What the gcp stacks call: Cloud Run, Cloud SQL, Memorystore, the PSA peering, the VPC,
# Artifact Registry (+ its scanning), Secret Manager, WIF (iam, iamcredentials, sts), alerts,
# and project IAM bindings (cloudresourcemanager). Service Usage itself must already be on.
REQUIRED_SERVICES = (
    "run.googleapis.com",
    "sqladmin.googleapis.com",
    "redis.googleapis.com",
    "servicenetworking.googleapis.com",
    "compute.googleapis.com",
    "artifactregistry.googleapis.com",
    "containerscanning.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
    "monitoring.googleapis.com",
    "cloudresourcemanager.googleapis.com",
)
# What a stack with app.domain adds: its A record in Cloud DNS (the load balancer is compute).
DOMAIN_SERVICES = ("dns.googleapis.com",)
_SERVICE = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*\.googleapis\.com")


@dataclass(frozen=True)
class GcpApisArgs:
    project: pulumi.Input[str]
    services: Sequence[str] = REQUIRED_SERVICES


def service_problems(services: Sequence[str]) -> list[str]:
    """Why the Service Usage API would refuse `services` (all problems, for one message)."""
    problems = [
        f"services: '{s}' is not an API name like 'run.googleapis.com'"
        for s in services
        if not _SERVICE.fullmatch(s)
    ]
    duplicates = sorted({s for s in services if list(services).count(s) > 1})
    if duplicates:
        problems.append(f"services: listed more than once: {', '.join(duplicates)}")
    if not services:
        problems.append("services: at least one API is required")
    return problems


class GcpApis(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, args: GcpApisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = service_problems(args.services)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:GcpApis", name, None, opts)
        services = [
            gcp.projects.Service(
                f"{name}-{service.removesuffix('.googleapis.com').replace('.', '-')}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.services
        ]
        self.ready = list(services)
        self.register_outputs({"services": [s.service for s in services]})
