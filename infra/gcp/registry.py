"""The Artifact Registry Docker repository the service image is pushed to, and the short-lived
login that pushes it.

Outputs: `repository_url` (`REGION-docker.pkg.dev/PROJECT/REPO`, what `ContainerImageArgs`
takes as `repository`), `repository_id`, `repository_name`. `registry_login(region)` gives
the `RegistryLogin` for `ContainerImageArgs.registry`.

Tags are immutable: a content tag (infra/image.py) always names the same bytes, so what runs
is what was reviewed. Hence no `cache_ref` into this repository either (a cache tag is
overwritten every build, which an immutable repository refuses).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.secrets import PUBLIC_MEMBERS
from infra.image import RegistryLogin

# The content tags ContainerImage pushes (infra/image.py): `sha-<16 hex>`.
IMAGE_TAG_PREFIX = "sha-"
# Leftovers of interrupted pushes; a day leaves a running push alone.
UNTAGGED_AFTER = "86400s"
# Google's registry login: this user name, an OAuth access token as the password.
ACCESS_TOKEN_USER = "oauth2accesstoken"  # noqa: S105 (a fixed user name)
_REPOSITORY_ID = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
DAY_SECONDS = 86400


@dataclass(frozen=True)
class ArtifactRegistryArgs:
    project: pulumi.Input[str]
    region: str
    repository_id: str
    # Newest versions kept whatever their age (see cleanup_policies: an index's children count);
    # older builds beyond them go after `delete_after_days`.
    keep_count: int
    immutable_tags: bool = True
    delete_after_days: int = 30
    # CKV_GCP_84: a customer-managed key; None keeps Google-managed encryption.
    kms_key_name: pulumi.Input[str] | None = None
    scanning: bool = True
    # Members (e.g. `serviceAccount:ci@…`) that push: `artifactregistry.writer` on this
    # repository only, never on the project.
    writers: Sequence[pulumi.Input[str]] = ()
    # Members that pull (production's deployer copying a promoted digest): the reader role on
    # this repository only.
    readers: Sequence[str] = ()


def registry_problems(args: ArtifactRegistryArgs) -> list[str]:
    problems = []
    if not _REPOSITORY_ID.fullmatch(args.repository_id):
        problems.append(
            f"repository_id: '{args.repository_id}' must be 1 to 63 lowercase letters, digits "
            "and hyphens, starting with a letter and not ending in '-'"
        )
    if args.keep_count < 1:
        problems.append(f"keep_count: {args.keep_count} must be at least 1")
    # CKV_GCP_101: never public.
    problems += [
        f"writers: '{member}' would let anyone push to the repository"
        for member in args.writers
        if isinstance(member, str) and member in PUBLIC_MEMBERS
    ]
    problems += [
        f"readers: '{member}' would let anyone pull from the repository"
        for member in args.readers
        if member in PUBLIC_MEMBERS
    ]
    if args.delete_after_days < 1:
        problems.append(f"delete_after_days: {args.delete_after_days} must be at least 1")
    return problems


def cleanup_policies(
    keep_count: int, delete_after_days: int
) -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgsDict]:
    """Untagged versions go after a day; builds older than `delete_after_days` go too, except
    the newest `keep_count` versions, which a keep policy protects (keep wins over delete).

    The per-platform and attestation manifests of a pushed index are untagged versions too.
    Artifact Registry refuses to delete a manifest an index still references
    (GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE, gcr-cleaner#118), so those of a kept build stay;
    they do count towards `keep_count`, which is therefore a number of versions, not builds.
    """
    return [
        {
            "id": "delete-untagged",
            "action": "DELETE",
            "condition": {"tag_state": "UNTAGGED", "older_than": UNTAGGED_AFTER},
        },
        {
            "id": "delete-old-builds",
            "action": "DELETE",
            "condition": {
                "tag_state": "TAGGED",
                "tag_prefixes": [IMAGE_TAG_PREFIX],
                "older_than": f"{delete_after_days * DAY_SECONDS}s",
            },
        },
        {
            "id": "keep-recent-builds",
            "action": "KEEP",
            "most_recent_versions": {"keep_count": keep_count},
        },
    ]


def registry_host(region: str) -> str:
    return f"{region}-docker.pkg.dev"


def registry_login(region: str, opts: pulumi.InvokeOptions | None = None) -> RegistryLogin:
    """A login for `ContainerImage` that lasts about an hour: the access token of whoever runs
    `pulumi up` (in CI the deploy service account impersonated through WIF), never a key."""
    token = gcp.organizations.get_client_config_output(opts=opts).access_token
    return RegistryLogin(
        address=registry_host(region),
        username=ACCESS_TOKEN_USER,
        password=pulumi.Output.secret(token),
    )


class ArtifactRegistry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_id: pulumi.Output[str]
    repository_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = registry_problems(args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:ArtifactRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = gcp.artifactregistry.Repository(
            f"{name}-repo",
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            description=f"{name}: service images, tagged by content",
            docker_config={"immutable_tags": args.immutable_tags},
            cleanup_policies=cleanup_policies(args.keep_count, args.delete_after_days),
            cleanup_policy_dry_run=False,
            # Scans on push when the Container Scanning API is on (GcpApis enables it).
            vulnerability_scanning_config={
                "enablement_config": "INHERITED" if args.scanning else "DISABLED"
            },
            kms_key_name=args.kms_key_name,
            opts=child,
        )
        grants: list[tuple[str, Sequence[pulumi.Input[str]]]] = [
            ("writer", args.writers),
            ("reader", args.readers),
        ]
        for kind, members in grants:
            for index, member in enumerate(members):
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-{kind}-{index}",
                    project=args.project,
                    location=args.region,
                    repository=repository.name,
                    role=f"roles/artifactregistry.{kind}",
                    member=member,
                    opts=child,
                )
        self.repository_url = repository.registry_uri
        self.repository_id = repository.repository_id
        self.repository_name = repository.name
        self.register_outputs({"repositoryUrl": self.repository_url})
