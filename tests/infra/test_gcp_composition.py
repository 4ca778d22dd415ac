"""The gcp-infra-a components wired as stacks/gcp.py composes them: the deploy account pushes
to the repository, the runtime account reads the secrets, and everything registers in preview
(what `check` runs) as in an update."""

from __future__ import annotations

from typing import Any

import pytest

from cli.engine import is_unknown
from infra.gcp.apis import GcpApis, GcpApisArgs
from infra.gcp.identity import GcpDeployIdentity, GcpDeployIdentityArgs, GcpGitHubRole
from infra.gcp.network import GcpNetwork, GcpNetworkArgs
from infra.gcp.registry import ArtifactRegistry, ArtifactRegistryArgs, registry_login
from infra.gcp.secrets import GcpSecrets, GcpSecretsArgs
from infra.image import ContainerImage, ContainerImageArgs
from tests.harness import PROJECT_DIR, run_components


def _program() -> dict[str, Any]:
    GcpApis("agent-staging-apis", GcpApisArgs(project="proj-1"))
    GcpNetwork(
        "agent-staging-net", GcpNetworkArgs("proj-1", "europe-west1", subnet_cidr="10.8.0.0/24")
    )
    identity = GcpDeployIdentity(
        "agent-staging-identity",
        GcpDeployIdentityArgs(
            project="proj-1",
            repository="example-org/agent-deploy",
            repository_owner_id="1234567",
            roles=[GcpGitHubRole("deploy", "staging"), GcpGitHubRole("preview", "staging-preview")],
        ),
    )
    registry = ArtifactRegistry(
        "agent-staging-registry",
        ArtifactRegistryArgs(
            "proj-1", "europe-west1", "agent", keep_count=10, writers=[identity.members["deploy"]]
        ),
    )
    image = ContainerImage(
        "agent-staging-image",
        ContainerImageArgs(
            context=str(PROJECT_DIR / "app"),
            dockerfile=str(PROJECT_DIR / "app" / "Dockerfile"),
            repository=registry.repository_url,
            push=True,
            registry=registry_login("europe-west1"),
        ),
    )
    runtime = identity.runtime_service_accounts["deploy"]
    secrets = GcpSecrets(
        "agent-staging-secrets",
        GcpSecretsArgs(
            project="proj-1",
            generated=["AUTH_TOKENS"],
            accessors=[runtime.apply(lambda email: f"serviceAccount:{email}")],
        ),
    )
    return {
        "image": image.ref,
        "versions": secrets.versions,
        "provider": identity.provider_name,
        "deployer": identity.members["deploy"],
        "runtime": runtime,
    }


def test_the_deploy_account_pushes_and_the_runtime_account_reads_the_secrets() -> None:
    run = run_components(_program)
    result = run.outputs["result"]
    writer = run.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember").plain
    assert writer["member"] == result["deployer"]
    (accessor,) = run.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert accessor.plain["member"] == f"serviceAccount:{result['runtime']}"
    assert result["image"].startswith("europe-west1-docker.pkg.dev/proj-1/agent@sha256:")
    assert result["versions"] == {"AUTH_TOKENS": "1"}


@pytest.mark.parametrize("preview", [True, False])
def test_everything_registers_in_preview_as_in_an_update(preview: bool) -> None:
    run = run_components(_program, preview=preview)
    types = {r.type for r in run.resources}
    assert len(run.resources) == len(run_components(_program).resources)
    assert "gcp:servicenetworking/connection:Connection" in types
    assert "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider" in types
    # In preview what the cloud assigns stays unknown, as `check` shows it.
    assert is_unknown(run.outputs["result"]) == preview
