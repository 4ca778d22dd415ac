"""The composed gcp stack (stacks/gcp.py) under mocks, per tier, for the real stack files.

Test names carry the CIS GCP 3.0 control or Checkov `CKV_GCP_*` id they implement. Controls
not met are listed in README.md ("Deploying to GCP", "Not covered").
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from cli.engine import ProgramRun, contains_secret
from infra.config import ConfigError, load_stack_config
from stacks import PROJECT_ROOT
from tests.harness import PROJECT_DIR, imported_by_a_run, run_stack, stack_inputs

STACKS = {"ephemeral": "gcp-pr", "staging": "gcp-staging", "production": "gcp-production"}
# gcp-pr is a slice of gcp-staging (tests/infra/test_gcp_slice.py); without its base it is the
# self-contained ephemeral stack these tests are about.
SELF_CONTAINED: dict[str, Any] = {"pullRequests": None}
RUN = "gcp:cloudrunv2/service:Service"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
REDIS = "gcp:redis/instance:Instance"
SECRET_VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
SECRET_READER = "gcp:secretmanager/secretIamMember:SecretIamMember"


@cache
def stack(tier: str) -> ProgramRun:
    return run_stack(
        STACKS[tier],
        {"app": {"secrets": ["OPENAI_API_KEY"]}, **(SELF_CONTAINED if tier == "ephemeral" else {})},
        secrets={"OPENAI_API_KEY": "sk-x"},
    )


def service(tier: str) -> dict[str, Any]:
    return stack(tier).one(RUN).plain


def container(tier: str) -> dict[str, Any]:
    containers = service(tier)["template"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def sql(tier: str) -> dict[str, Any]:
    return stack(tier).one(SQL).plain


tiers = pytest.mark.parametrize("tier", list(STACKS))


def test_a_gcp_stack_imports_no_pulumi_aws() -> None:
    resources, imported = imported_by_a_run("gcp-staging", ("pulumi_aws",))
    assert resources > 20
    assert imported == []


@tiers
def test_every_resource_uses_the_stack_provider_for_its_project(tier: str) -> None:
    run = stack(tier)
    provider = run.one("pulumi:providers:gcp")
    assert provider.plain["project"] == run.outputs["project"]
    assert provider.plain["region"] == "europe-west1"
    custom = [r for r in run.resources if r.custom and r.type.startswith("gcp:")]
    assert custom and all(provider.name in r.provider for r in custom)


@tiers
def test_cloud_run_is_deployed_by_digest_from_artifact_registry(tier: str) -> None:
    image = container(tier)["image"]
    assert "-docker.pkg.dev/" in image and "@sha256:" in image


@tiers
def test_cloud_run_probes_readiness_at_startup_and_liveness(tier: str) -> None:
    probes = container(tier)
    assert probes["startupProbe"]["httpGet"]["path"] == "/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/live"


@tiers
def test_cloud_run_scaling_billing_and_deletion_protection_follow_the_tier(tier: str) -> None:
    template = service(tier)["template"]
    minimum = template["scaling"]["minInstanceCount"]
    assert minimum == {"ephemeral": 0, "staging": 0, "production": 1}[tier]
    # Request-based billing unless production keeps CPU for runs after the response.
    assert container(tier)["resources"]["cpuIdle"] is (tier != "production")
    assert service(tier)["deletionProtection"] is (tier == "production")
    # The request outlasts the longest run (app.runTimeoutSeconds 100 + 30 s).
    assert template["timeout"] == "130s"


@tiers
def test_cloud_run_egress_goes_to_private_ranges_only_over_direct_vpc(tier: str) -> None:
    access = service(tier)["template"]["vpcAccess"]
    assert access["egress"] == "PRIVATE_RANGES_ONLY"
    assert access["networkInterfaces"][0]["subnetwork"]


@tiers
def test_cloud_run_runs_as_a_dedicated_service_account_without_project_roles(tier: str) -> None:
    run = stack(tier)
    account = service(tier)["template"]["serviceAccount"]
    assert account and "compute@developer" not in account
    project_grants = run.of_type("gcp:projects/iAMMember:IAMMember")
    assert not [g for g in project_grants if account in str(g.plain.get("member"))]


@tiers
def test_public_by_default_without_allusers_so_domain_restricted_orgs_work(tier: str) -> None:
    assert service(tier)["invokerIamDisabled"] is True
    assert not stack(tier).of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")


def test_how_the_app_migrates_is_the_stack_s_choice_not_app_env() -> None:
    config, secret_keys = stack_inputs("gcp-staging", {"app": {"env": {"MIGRATE_ON_START": "0"}}})
    with pytest.raises(ConfigError) as caught:
        load_stack_config("gcp-staging", config, secret_keys, root=PROJECT_ROOT)
    assert any("MIGRATE_ON_START" in str(p) and "app.env" in str(p) for p in caught.value.problems)


def test_invoker_all_users_grants_run_invoker_to_everyone() -> None:
    run = run_stack("gcp-staging", {"gcp": {"invoker": "allUsers"}})
    member = run.one("gcp:cloudrunv2/serviceIamMember:ServiceIamMember").plain
    assert (member["role"], member["member"]) == ("roles/run.invoker", "allUsers")
    assert not run.one(RUN).plain.get("invokerIamDisabled")


@tiers
def test_secrets_reach_cloud_run_by_reference_pinned_to_a_version(tier: str) -> None:
    envs = {e["name"]: e for e in container(tier)["envs"]}
    composed = ("DATABASE_URL", "REDIS_URL", "REDIS_CA_CERT", "DATABASE_CA_CERT", "AUTH_TOKENS")
    for name in (*composed, "OPENAI_API_KEY"):
        ref = envs[name]["valueSource"]["secretKeyRef"]
        assert str(ref["version"]).isdigit(), (name, ref)
        assert "value" not in envs[name]
    assert envs["FORWARDED_ALLOW_IPS"]["value"] == "*"
    run = stack(tier)
    for version in run.of_type(SECRET_VERSION):
        assert contains_secret(version.inputs.get("secretData")), version.name


@tiers
def test_cis_6_6_ckv_gcp_60_cloud_sql_has_no_public_ip(tier: str) -> None:
    ip = sql(tier)["settings"]["ipConfiguration"]
    assert ip["ipv4Enabled"] is False and ip["privateNetwork"]
    assert not ip.get("authorizedNetworks")


@tiers
def test_cis_6_4_cloud_sql_enforces_ssl(tier: str) -> None:
    assert sql(tier)["settings"]["ipConfiguration"]["sslMode"] == "ENCRYPTED_ONLY"


@tiers
def test_cloud_sql_tier_edition_and_availability_follow_the_tier(tier: str) -> None:
    settings = sql(tier)["settings"]
    expected = {
        "ephemeral": ("db-f1-micro", "ZONAL"),
        "staging": ("db-custom-1-3840", "ZONAL"),
        "production": ("db-custom-2-7680", "REGIONAL"),
    }[tier]
    assert (settings["tier"], settings["availabilityType"]) == expected
    assert settings["edition"] == "ENTERPRISE"
    assert sql(tier)["databaseVersion"] == "POSTGRES_16"


@tiers
def test_cis_6_7_ckv_gcp_14_backups_and_point_in_time_recovery(tier: str) -> None:
    backups = sql(tier)["settings"]["backupConfiguration"]
    assert backups["enabled"] is True
    assert backups["pointInTimeRecoveryEnabled"] is (tier != "ephemeral")


@tiers
def test_cloud_sql_deletion_protection_three_ways_in_production_only(tier: str) -> None:
    instance = stack(tier).one(SQL)
    production = tier == "production"
    assert instance.plain["deletionProtection"] is production
    assert instance.plain["settings"]["deletionProtectionEnabled"] is production
    assert instance.protect is production


@tiers
def test_ckv_gcp_95_97_redis_auth_and_tls_always_standard_ha_in_production(tier: str) -> None:
    redis = stack(tier).one(REDIS).plain
    assert redis["authEnabled"] is True
    assert redis["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    assert redis["tier"] == ("STANDARD_HA" if tier == "production" else "BASIC")
    assert redis["connectMode"] == "PRIVATE_SERVICE_ACCESS"


@tiers
def test_ckv_gcp_26_74_subnet_has_private_google_access_and_flow_logs_by_tier(tier: str) -> None:
    subnet = stack(tier).one("gcp:compute/subnetwork:Subnetwork").plain
    assert subnet["privateIpGoogleAccess"] is True
    assert bool(subnet.get("logConfig")) is (tier != "ephemeral")


@tiers
def test_artifact_registry_has_immutable_tags_and_scanning(tier: str) -> None:
    repository = stack(tier).one("gcp:artifactregistry/repository:Repository").plain
    assert repository["dockerConfig"]["immutableTags"] is True
    assert repository["format"] == "DOCKER"


@tiers
def test_the_image_is_built_once_and_pushed_with_a_short_lived_token(tier: str) -> None:
    run = stack(tier)
    images = run.of_type("docker-build:index:Image")
    assert len(images) == 1
    image = images[0]
    assert image.plain["platforms"] == ["linux/amd64"]  # Cloud Run runs amd64 only
    (registry,) = image.plain["registries"]
    assert registry["username"] == "oauth2accesstoken"
    assert image.is_secret("registries") or contains_secret(image.inputs["registries"])
    assert any(
        token == "gcp:organizations/getClientConfig:getClientConfig" for token, _ in run.invokes
    )


def test_ckv_gcp_118_125_the_deploy_identity_pins_owner_id_and_environment() -> None:
    run = stack("production")
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").plain
    condition = provider["attributeCondition"]
    assert "assertion.repository_owner_id == '1234567'" in condition
    assert "repo:example-org/agent-deploy:environment:gcp-production" in condition
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    assert run.outputs["workloadIdentityProvider"]


def test_ephemeral_stacks_create_no_deploy_identity() -> None:
    run = stack("ephemeral")
    assert not run.of_type("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")


@tiers
def test_monitoring_has_an_uptime_check_on_the_health_path_and_alert_policies(tier: str) -> None:
    run = stack(tier)
    uptime = run.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig").plain
    assert uptime["httpCheck"]["path"] == "/health"
    assert len(run.of_type("gcp:monitoring/alertPolicy:AlertPolicy")) >= 5
    channels = run.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert bool(channels) is (tier == "production")


def test_production_writes_the_gcp_variables_the_workflows_read() -> None:
    run = stack("production")
    variables = {
        (v.plain["environment"], v.plain["variableName"]): v.plain["value"]
        for v in run.of_type("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    own = {name for env, name in variables if env == "gcp-production"}
    assert {
        "GCP_PROJECT",
        "GCP_REGION",
        "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "GCP_DEPLOY_SERVICE_ACCOUNT",
        "SERVICE_URL",
        "PULUMI_STACK",
    } <= own
    preview = {name for env, name in variables if env == "gcp-production-preview"}
    assert {
        "GCP_PREVIEW_SERVICE_ACCOUNT",
        "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "GCP_PROJECT",
    } <= preview
    assert "GCP_DEPLOY_SERVICE_ACCOUNT" not in preview


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_cloud_run_runs_as_the_runtime_account_the_deploy_account_may_act_as(tier: str) -> None:
    run = stack(tier)
    runtime = run.one(
        "gcp:serviceaccount/account:Account", f"agent-{STACKS[tier]}-identity-deploy-run"
    )
    email = f"{runtime.plain['accountId']}@example-agent-{tier}.iam.gserviceaccount.com"
    assert service(tier)["template"]["serviceAccount"] == email
    readers = {g.plain["member"] for g in run.of_type(SECRET_READER)}
    assert readers == {f"serviceAccount:{email}"}


def test_check_lists_every_gcp_resource_with_its_key_settings() -> None:
    import contextlib
    import io

    from cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", "--stack", "gcp-production", "--project-dir", str(PROJECT_DIR)])
    text = out.getvalue()
    assert code == 0, text
    run = run_stack("gcp-production", preview=True)
    for resource in run.resources:
        assert resource.name in text, resource.name
    assert "availabilityType=REGIONAL" in text and "posture=backups,pitr" in text
    assert "egress=PRIVATE_RANGES_ONLY" in text and "flowLogs=on" in text
    assert "immutableTags=true" in text and "posture=auth" in text


def test_a_pr_stack_runs_as_the_runtime_account_staging_made_and_creates_none() -> None:
    email = "agent-g-3ac491f-ephemeral-run@example-agent-staging.iam.gserviceaccount.com"
    run = run_stack("gcp-pr", {"gcp": {"runServiceAccount": email}, **SELF_CONTAINED})
    assert run.one(RUN).plain["template"]["serviceAccount"] == email
    assert not run.of_type("gcp:serviceaccount/account:Account")
    readers = {g.plain["member"] for g in run.of_type(SECRET_READER)}
    assert readers == {f"serviceAccount:{email}"}


def test_staging_exports_the_runtime_accounts_pr_stacks_run_as() -> None:
    run = run_stack("gcp-staging")
    assert "deploy" in run.outputs["runtimeServiceAccounts"]
