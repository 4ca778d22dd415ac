"""The schema migration as a Cloud Run job that `pulumi up` runs, and waits for, before the
service gets a revision of the new image.

Why a job: Cloud Run has no init container, and migrating from every starting instance races
and hides failures in request logs. `run_execution_token` makes the provider start an execution
on create/update and report the job ready only once it completed; the service depends on this
component, so a failed migration fails the `up` while the old revision keeps serving. Its logs
are the execution's (Cloud Logging, `run.googleapis.com/execution_name`).

The token must be new on every update of the job: the API names the execution
`<job>-<token>` and refuses one that exists. So it is the image digest's start (which deploy
ran it, at a glance) and a random part renewed whenever the job's spec changes (a rollback to an
earlier digest included). An execution started by hand clears the token Cloud Run reports
(GoogleCloudPlatform/magic-modules#19060): the next `up` then re-sends it and fails with
"already exists" until the random part is replaced (docs/bootstrapping.md).

Outputs: `job_name`, `execution_token`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.app_commands import MIGRATE
from infra.naming import fit

JOB = "gcp:cloudrunv2/job:Job"
# The job's name and the token share Cloud Run's limit: their lengths sum to less than 63.
EXECUTION_NAME_MAX = 62
DIGEST_CHARS = 12
RANDOM_BYTES = 4
TOKEN_LENGTH = DIGEST_CHARS + 1 + 2 * RANDOM_BYTES
_HEX = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class CloudRunMigrationArgs:
    project: pulumi.Input[str]
    region: str
    image: pulumi.Input[str]  # the service's, by digest
    # The container env entries of the service (plain values and pinned secret references).
    envs: Sequence[Any]
    service_account: pulumi.Input[str]
    network: pulumi.Input[str]
    subnet: pulumi.Input[str]
    cpu: str
    memory: str
    deletion_protection: bool
    command: Sequence[str] = MIGRATE
    # The migration holds an advisory lock; a stuck one must not hold the deploy for long.
    timeout_seconds: int = 600
    # One retry for a transient failure (a database restarting); a real failure fails twice.
    max_retries: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    # What the execution needs first: the database, its secrets' read grants.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


def digest_part(image: str) -> str:
    """The digest's first hex characters, or a hash of an unpinned reference."""
    found = _HEX.search(image)
    text = found.group(1) if found else hashlib.sha256(image.encode()).hexdigest()
    return text[:DIGEST_CHARS]


class CloudRunMigration(pulumi.ComponentResource):
    job_name: pulumi.Output[str]
    execution_token: pulumi.Output[str]

    def __init__(
        self, name: str, args: CloudRunMigrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:gcp:CloudRunMigration", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        template: dict[str, Any] = {
            "service_account": args.service_account,
            "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
            "timeout": f"{args.timeout_seconds}s",
            "max_retries": args.max_retries,
            "vpc_access": {
                "network_interfaces": [{"network": args.network, "subnetwork": args.subnet}],
                "egress": "PRIVATE_RANGES_ONLY",
            },
            "containers": [
                {
                    "image": args.image,
                    "args": list(args.command),
                    "envs": list(args.envs),
                    "resources": {"limits": {"cpu": args.cpu, "memory": args.memory}},
                }
            ],
        }
        spec: Any = {"task_count": 1, "parallelism": 1, "template": template}
        labels = dict(args.labels)
        # Renewed (replaced) whenever anything the job runs changes.
        nonce = random.RandomId(
            f"{name}-token",
            byte_length=RANDOM_BYTES,
            keepers={
                "spec": pulumi.Output.json_dumps({"template": template, "labels": labels}),
            },
            opts=child,
        )
        token = pulumi.Output.all(pulumi.Output.from_input(args.image), nonce.hex).apply(
            lambda v: f"{digest_part(v[0])}-{v[1]}"
        )
        job = gcp.cloudrunv2.Job(
            name,
            name=fit(JOB, name),
            project=args.project,
            location=args.region,
            deletion_protection=args.deletion_protection,
            labels=labels,
            run_execution_token=token,
            template=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.job_name = job.name
        self.execution_token = token
        self.register_outputs({"jobName": job.name, "executionToken": token})
