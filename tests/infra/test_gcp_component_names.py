"""The mocks refuse the ids GCP refuses for the types the gcp components register (the rules
in infra/naming.py), so a too-long or malformed name fails `check`, not a deploy."""

from __future__ import annotations

from collections.abc import Callable

import pulumi_gcp as gcp
import pytest

from cli.engine import PhysicalNameError
from tests.harness import run_components


@pytest.mark.parametrize(
    ("register", "fragment"),
    [
        (lambda: gcp.serviceaccount.Account("a", account_id="agent-" + "x" * 25), "30 allowed"),
        (lambda: gcp.serviceaccount.Account("a", account_id="short"), "6 to 30"),
        (lambda: gcp.serviceaccount.Account("a", account_id="Agent-deploy"), "6 to 30"),
        (
            lambda: gcp.iam.WorkloadIdentityPool("p", workload_identity_pool_id="gcp-github"),
            "not starting or ending in '-' or with 'gcp-'",
        ),
        (
            lambda: gcp.iam.WorkloadIdentityPool("p", workload_identity_pool_id="p" * 33),
            "32 allowed",
        ),
        (
            lambda: gcp.artifactregistry.Repository(
                "r", repository_id="Agent_Images", location="europe-west1", format="DOCKER"
            ),
            "starting with a letter",
        ),
        (
            lambda: gcp.secretmanager.Secret(
                "s", secret_id="agent/db-url", replication={"auto": {}}
            ),
            "hyphens and underscores",
        ),
        (
            lambda: gcp.projects.IAMCustomRole(
                "c", role_id="agent-deploy", title="t", permissions=["run.services.get"]
            ),
            "'_' and '.'",
        ),
        (lambda: gcp.compute.Network("n", name="Agent-VPC"), "starting with a letter"),
        (lambda: gcp.compute.Network("n" * 60), "maximum length 63"),
    ],
)
def test_the_mocks_refuse_gcp_ids_the_api_refuses(
    register: Callable[[], object], fragment: str
) -> None:
    with pytest.raises(PhysicalNameError, match=fragment):
        run_components(lambda: register() and None)


def test_ids_gcp_accepts_pass() -> None:
    def program() -> None:
        gcp.serviceaccount.Account("a", account_id="agent-staging-deploy")
        gcp.iam.WorkloadIdentityPool("p", workload_identity_pool_id="agent-github")
        gcp.secretmanager.Secret("s", secret_id="agent_DB-url", replication={"auto": {}})
        gcp.compute.Network("agent-staging-vpc")

    assert len(run_components(program).resources) == 4
