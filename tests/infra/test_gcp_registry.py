"""ArtifactRegistry: a Docker repository with immutable tags, cleanup policies and scanning,
no public access (CKV_GCP_101), and the short-lived login ContainerImage pushes with."""

from __future__ import annotations

import pulumi
import pytest

from cli.engine import is_secret
from infra.gcp.apis import REQUIRED_SERVICES
from infra.gcp.registry import (
    ACCESS_TOKEN_USER,
    ArtifactRegistry,
    ArtifactRegistryArgs,
    registry_login,
)
from infra.image import ContainerImage, ContainerImageArgs
from tests.harness import PROJECT_DIR, run_components

REPOSITORY = "gcp:artifactregistry/repository:Repository"
WRITER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
IMAGE = "docker-build:index:Image"
CLIENT_CONFIG = "gcp:organizations/getClientConfig:getClientConfig"


def _args(**overrides: object) -> ArtifactRegistryArgs:
    base: dict[str, object] = {
        "project": "proj-1",
        "region": "europe-west1",
        "repository_id": "agent",
        "keep_count": 10,
    }
    return ArtifactRegistryArgs(**{**base, **overrides})  # type: ignore[arg-type]


def _run(**overrides: object):  # type: ignore[no-untyped-def]
    def program() -> dict[str, object]:
        registry = ArtifactRegistry("agent-registry", _args(**overrides))
        return {"url": registry.repository_url, "id": registry.repository_id}

    return run_components(program)


def test_a_docker_repository_whose_tags_cannot_be_moved() -> None:
    repo = _run().one(REPOSITORY).plain
    assert repo["format"] == "DOCKER"
    assert repo["location"] == "europe-west1"
    assert repo["repositoryId"] == "agent"
    assert repo["dockerConfig"] == {"immutableTags": True}


def test_the_url_is_the_one_docker_pushes_to() -> None:
    assert _run().outputs["result"] == {
        "url": "europe-west1-docker.pkg.dev/proj-1/agent",
        "id": "agent",
    }


def test_cleanup_keeps_the_newest_builds_and_deletes_untagged_and_old_ones() -> None:
    repo = _run(keep_count=7, delete_after_days=14).one(REPOSITORY).plain
    assert repo["cleanupPolicyDryRun"] is False
    policies = {p["id"]: p for p in repo["cleanupPolicies"]}
    assert policies["delete-untagged"]["action"] == "DELETE"
    assert policies["delete-untagged"]["condition"] == {
        "tagState": "UNTAGGED",
        "olderThan": "86400s",
    }
    old = policies["delete-old-builds"]
    assert old["action"] == "DELETE"
    assert old["condition"]["tagState"] == "TAGGED"
    assert old["condition"]["olderThan"] == f"{14 * 86400}s"
    # Keep wins over delete in Artifact Registry: the newest 7 stay whatever their age.
    keep = policies["keep-recent-builds"]
    assert keep["action"] == "KEEP"
    assert keep["mostRecentVersions"] == {"keepCount": 7}
    assert "condition" not in keep


def test_the_old_builds_rule_matches_the_tags_container_image_pushes() -> None:
    def program() -> None:
        registry = ArtifactRegistry("agent-registry", _args())
        ContainerImage(
            "agent-image",
            ContainerImageArgs(
                context=str(PROJECT_DIR / "app"),
                dockerfile=str(PROJECT_DIR / "app" / "Dockerfile"),
                repository=registry.repository_url,
                push=True,
                registry=registry_login("europe-west1"),
            ),
        )

    run = run_components(program)
    (tag,) = run.one(IMAGE).plain["tags"]
    prefixes = next(
        p["condition"]["tagPrefixes"]
        for p in run.one(REPOSITORY).plain["cleanupPolicies"]
        if p["id"] == "delete-old-builds"
    )
    assert tag.startswith("europe-west1-docker.pkg.dev/proj-1/agent:")
    assert any(tag.rsplit(":", 1)[1].startswith(prefix) for prefix in prefixes)


def test_the_push_logs_in_with_a_short_lived_token_kept_secret() -> None:
    def program() -> None:
        ContainerImage(
            "agent-image",
            ContainerImageArgs(
                context=str(PROJECT_DIR / "app"),
                dockerfile=str(PROJECT_DIR / "app" / "Dockerfile"),
                repository="europe-west1-docker.pkg.dev/proj-1/agent",
                push=True,
                registry=registry_login("europe-west1"),
            ),
        )

    run = run_components(program)
    image = run.one(IMAGE)
    # The password makes the whole registries input secret (and so never shown or stored).
    assert is_secret(image.inputs["registries"])
    (registry,) = image.plain["registries"]
    assert registry == {
        "address": "europe-west1-docker.pkg.dev",
        "username": ACCESS_TOKEN_USER,
        "password": "mock-gcp-access-token",
    }
    # The token is the caller's, fetched on each run (never a stored key).
    assert [token for token, _ in run.invokes] == [CLIENT_CONFIG]


def test_scanning_follows_the_container_scanning_api_which_the_stack_enables() -> None:
    repo = _run().one(REPOSITORY).plain
    assert repo["vulnerabilityScanningConfig"] == {"enablementConfig": "INHERITED"}
    assert "containerscanning.googleapis.com" in REQUIRED_SERVICES
    off = _run(scanning=False).one(REPOSITORY).plain
    assert off["vulnerabilityScanningConfig"] == {"enablementConfig": "DISABLED"}


def test_ckv_gcp_84_a_customer_managed_key_when_given_google_managed_otherwise() -> None:
    assert "kmsKeyName" not in _run().one(REPOSITORY).plain
    key = "projects/proj-1/locations/europe-west1/keyRings/r/cryptoKeys/k"
    assert _run(kms_key_name=key).one(REPOSITORY).plain["kmsKeyName"] == key


def test_ckv_gcp_101_pushers_are_granted_on_the_repository_only() -> None:
    run = _run(writers=["serviceAccount:ci@proj-1.iam.gserviceaccount.com"])
    (writer,) = run.of_type(WRITER)
    assert writer.plain["role"] == "roles/artifactregistry.writer"
    assert writer.plain["member"] == "serviceAccount:ci@proj-1.iam.gserviceaccount.com"
    assert writer.plain["repository"] == "agent"
    assert writer.plain["location"] == "europe-west1"
    assert not [r for r in run.resources if r.type.startswith("gcp:projects/iAM")]
    assert _run().of_type(WRITER) == []


def test_bad_registry_args_are_all_refused_before_anything_is_registered() -> None:
    with pytest.raises(ValueError, match="repository_id: 'Agent_Repo'") as error:
        _run(repository_id="Agent_Repo", keep_count=0, writers=["allUsers"])
    assert "keep_count: 0 must be at least 1" in str(error.value)
    assert "'allUsers' would let anyone push" in str(error.value)
    assert error.value.registered == []  # type: ignore[attr-defined]


def test_a_secret_writer_member_is_accepted() -> None:
    member = pulumi.Output.secret("serviceAccount:ci@proj-1.iam.gserviceaccount.com")
    assert len(_run(writers=[member]).of_type(WRITER)) == 1
