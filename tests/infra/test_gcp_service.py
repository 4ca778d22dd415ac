"""Cloud Run v2: least-privilege identity, probes, billing, private egress, pinned secrets,
invokers. Checkov has no v2 run check (CKV_GCP_102 covers v1 IAM only); the ids below are Google's
guidance and the issue's list."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest

from cli.engine import ProgramRun, Resource
from infra.gcp.service import CloudRunService, CloudRunServiceArgs
from tests.harness import run_components
from tests.infra.gcp_support import NETWORK, PROJECT, REGION, SUBNET

SERVICE = "gcp:cloudrunv2/service:Service"
ACCOUNT = "gcp:serviceaccount/account:Account"
INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
SECRET_GRANT = "gcp:secretmanager/secretIamMember:SecretIamMember"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/agent/agent@sha256:" + "a" * 64
DATABASE_SECRET = f"projects/{PROJECT}/secrets/agent-staging-database-url"


def run(name: str = "agent-staging", **override: Any) -> ProgramRun:
    def program() -> None:
        extra = gcp.serviceaccount.Account("unrelated", account_id="unrelated-sa", project=PROJECT)
        values: dict[str, Any] = {
            "project": PROJECT,
            "region": REGION,
            "image": IMAGE,
            "port": 8000,
            "cpu": "1",
            "memory": "1Gi",
            "min_instances": 0,
            "max_instances": 4,
            "cpu_idle": True,
            "timeout_seconds": 900,
            "readiness_path": "/ready",
            "liveness_path": "/live",
            "env": {"LOG_FORMAT": "json"},
            "secret_env": {
                "DATABASE_URL": (DATABASE_SECRET, "3"),
                "REDIS_URL": ("agent-staging-redis-url", pulumi.Output.from_input("1")),
            },
            "network": NETWORK,
            "subnet": SUBNET,
            "deletion_protection": False,
            "public": True,
            "invoker_iam_disabled": False,
            "depends_on": [extra],
            **override,
        }
        service = CloudRunService(name, CloudRunServiceArgs(**values))
        pulumi.export("url", service.url)
        pulumi.export("email", service.service_account_email)
        pulumi.export("name", service.name)

    return run_components(program)


def service(result: ProgramRun) -> Resource:
    return result.one(SERVICE)


def container(result: ProgramRun) -> dict[str, Any]:
    found: dict[str, Any] = service(result).plain["template"]["containers"][0]
    return found


def test_runs_as_its_own_service_account_with_no_project_role() -> None:
    result = run()
    account = result.one(ACCOUNT, "agent-staging-sa")
    assert account.plain["accountId"] == "agent-staging-run"
    assert service(result).plain["template"]["serviceAccount"] == result.outputs["email"]
    assert result.outputs["email"] == f"agent-staging-run@{PROJECT}.iam.gserviceaccount.com"
    # Not the default compute SA (Editor), and no grant beyond its secrets and the invoker.
    component = result.one("agent-deploy:gcp:CloudRunService")
    assert {r.type for r in result.descendants(component)} == {
        ACCOUNT,
        SECRET_GRANT,
        SERVICE,
        INVOKER,
    }


def test_reads_exactly_the_secrets_it_references() -> None:
    result = run()
    grants = {r.plain["secretId"]: r.plain for r in result.of_type(SECRET_GRANT)}
    assert set(grants) == {DATABASE_SECRET, "agent-staging-redis-url"}
    for grant in grants.values():
        assert grant["role"] == "roles/secretmanager.secretAccessor"
        assert grant["member"] == f"serviceAccount:{result.outputs['email']}"
    # The first revision fails if it starts before it may read its secrets.
    depends = service(result).depends_on
    assert {r.urn for r in result.of_type(SECRET_GRANT)} <= set(depends)
    assert result.one(ACCOUNT, "unrelated").urn in depends


def test_an_existing_runtime_account_is_used_and_granted_its_secrets() -> None:
    email = f"agent-runtime@{PROJECT}.iam.gserviceaccount.com"
    result = run(service_account=email)
    assert [r.name for r in result.of_type(ACCOUNT)] == ["unrelated"]
    assert service(result).plain["template"]["serviceAccount"] == email
    members = {r.plain["member"] for r in result.of_type(SECRET_GRANT)}
    assert members == {f"serviceAccount:{email}"}


def test_secret_grants_can_be_left_to_the_caller() -> None:
    result = run(grant_secret_access=False)
    assert result.of_type(SECRET_GRANT) == []
    assert len(container(result)["envs"]) == 3


def test_secrets_by_reference_pinned_to_a_version_never_latest() -> None:
    envs = {e["name"]: e for e in container(run())["envs"]}
    assert envs["LOG_FORMAT"] == {"name": "LOG_FORMAT", "value": "json"}
    assert envs["DATABASE_URL"]["valueSource"]["secretKeyRef"] == {
        "secret": DATABASE_SECRET,
        "version": "3",
    }
    assert envs["REDIS_URL"]["valueSource"]["secretKeyRef"]["version"] == "1"
    assert "value" not in envs["DATABASE_URL"]


def test_latest_is_refused_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="secret_env 'DATABASE_URL': version 'latest'"):
        run(secret_env={"DATABASE_URL": (DATABASE_SECRET, "latest")})


def test_deployed_by_digest() -> None:
    assert container(run())["image"] == IMAGE


def test_startup_probe_on_readiness_and_liveness_probe_on_liveness() -> None:
    found = container(run())
    assert found["startupProbe"]["httpGet"] == {"path": "/ready", "port": 8000}
    assert found["livenessProbe"]["httpGet"] == {"path": "/live", "port": 8000}
    assert found["ports"] == {"containerPort": 8000}


@pytest.mark.parametrize("cpu_idle", [True, False])
def test_billing_mode_is_always_explicit(cpu_idle: bool) -> None:
    # With limits set, leaving cpu_idle out moves the service to instance-based billing.
    resources = container(run(cpu_idle=cpu_idle))["resources"]
    assert resources["cpuIdle"] is cpu_idle
    assert resources["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_scaling_and_timeout_from_args() -> None:
    template = service(run(min_instances=1, max_instances=10, timeout_seconds=1800)).plain[
        "template"
    ]
    assert template["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 10}
    assert template["timeout"] == "1800s"
    assert template["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"


def test_direct_vpc_egress_to_private_ranges_only() -> None:
    vpc = service(run()).plain["template"]["vpcAccess"]
    assert vpc["networkInterfaces"] == [{"network": NETWORK, "subnetwork": SUBNET}]
    assert vpc["egress"] == "PRIVATE_RANGES_ONLY"  # model API calls leave directly, no NAT


@pytest.mark.parametrize("protected", [True, False])
def test_deletion_protection_as_given(protected: bool) -> None:
    # The provider's default is true: it must be false outside production or destroy fails.
    assert service(run(deletion_protection=protected)).plain["deletionProtection"] is protected


def test_public_service_lets_all_users_invoke() -> None:
    result = run()
    invoker = result.one(INVOKER).plain
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "allUsers"
    assert invoker["name"] == result.outputs["name"]
    assert service(result).plain["invokerIamDisabled"] is False


def test_domain_restricted_orgs_use_invoker_iam_disabled_instead_of_all_users() -> None:
    result = run(invoker_iam_disabled=True)
    assert service(result).plain["invokerIamDisabled"] is True
    assert result.of_type(INVOKER) == []


def test_private_service_has_no_invoker_binding() -> None:
    result = run(public=False)
    assert result.of_type(INVOKER) == []
    assert service(result).plain["invokerIamDisabled"] is False


def test_contradictions_are_refused_all_at_once_before_any_resource() -> None:
    with pytest.raises(ValueError, match="CloudRunService 'agent-staging'") as error:
        run(
            min_instances=5,
            max_instances=2,
            public=False,
            invoker_iam_disabled=True,
            env={"DATABASE_URL": "x"},
        )
    message = str(error.value)
    assert "min_instances 5 > max_instances 2" in message
    assert "invoker_iam_disabled makes the service public" in message
    assert "['DATABASE_URL'] are both in env and secret_env" in message
    registered = [r.type for r in error.value.registered]  # type: ignore[attr-defined]
    assert SERVICE not in registered and ACCOUNT in registered  # only the unrelated account


def test_names_fit_cloud_run_and_iam_limits() -> None:
    result = run(name="agent-pr-123456-a-rather-long-feature-branch-name-service")
    assert len(service(result).plain["name"]) <= 49
    account_id = result.one(ACCOUNT, "agent-pr-123456-a-rather-long-feature-branch-name-service-sa")
    assert 6 <= len(account_id.plain["accountId"]) <= 30
