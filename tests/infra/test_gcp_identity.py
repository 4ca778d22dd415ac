"""GcpDeployIdentity: GitHub's OIDC provider trusts one repository (owner pinned by id) in the
listed environments only (CKV_GCP_118/125); each service account can be impersonated by
exactly one environment; no account holds a basic, admin or impersonation role on the project
(CKV_GCP_41/42/46/49/117, CIS 1.5/1.6), none has a key (CKV2_GCP_3, CIS 1.4); the deploy
accounts act as their own runtime account only and cannot grant themselves more."""

from __future__ import annotations

import re
from typing import Any

import celpy
import pytest

from infra.gcp.identity import (
    DEPLOY_PERMISSIONS,
    ESCALATING_PERMISSIONS,
    GITHUB_ISSUER,
    PREVIEW_PERMISSIONS,
    GcpDeployIdentity,
    GcpDeployIdentityArgs,
    GcpGitHubRole,
    pool_id,
    role_id,
    runtime_account_email,
)
from tests.harness import run_components

POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
ACCOUNT = "gcp:serviceaccount/account:Account"
ACCOUNT_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
REPOSITORY = "example-org/agent-deploy"
OWNER_ID = "1234567"
ROLES = (
    GcpGitHubRole("deploy", "staging"),
    GcpGitHubRole("preview", "staging-preview"),
    GcpGitHubRole("ephemeral", "ephemeral"),
)
NAME = "agent-gcp-staging-identity"
# Checkov 3.3.30's sets, by meaning: basic roles (CKV_GCP_117), admin-like names (CKV_GCP_42),
# roles that act as or manage service accounts at project level (CKV_GCP_41/49).
BASIC = {"roles/owner", "roles/editor", "roles/viewer"}
ADMIN = re.compile(r".*(Admin|admin|editor|owner)")
IMPERSONATION = {
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.workloadIdentityUser",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountKeyAdmin",
    "roles/iam.securityAdmin",
    "roles/iam.serviceAccountOpenIdTokenCreator",
}
ABUSABLE_FIRST_CLAIMS = {"workflow", "environment", "ref", "context", "head_ref", "base_ref"}


def _run(**overrides: object):  # type: ignore[no-untyped-def]
    def program() -> dict[str, object]:
        args: dict[str, Any] = {
            "project": "proj-1",
            "repository": REPOSITORY,
            "repository_owner_id": OWNER_ID,
            "roles": ROLES,
            **overrides,
        }
        identity = GcpDeployIdentity(NAME, GcpDeployIdentityArgs(**args))
        return {
            "provider": identity.provider_name,
            "accounts": identity.service_accounts,
            "members": identity.members,
            "runtime": identity.runtime_service_accounts,
        }

    return run_components(program)


def _accounts(run: Any) -> dict[str, dict[str, Any]]:
    """Service accounts by kind (deploy, preview, ephemeral, deploy-run, ...)."""
    return {a.name.removeprefix(f"{NAME}-"): a for a in run.of_type(ACCOUNT)}


def _email(run: Any, account: Any) -> str:
    return f"{account.plain['accountId']}@proj-1.iam.gserviceaccount.com"


def test_ckv_gcp_118_125_the_provider_trusts_one_repository_and_its_environments() -> None:
    provider = _run().one(PROVIDER).plain
    assert provider["oidc"] == {"issuerUri": GITHUB_ISSUER}
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    condition = provider["attributeCondition"]
    assert f"assertion.repository_owner_id == '{OWNER_ID}' && (" in condition
    subjects = re.findall(r"assertion\.sub == '([^']+)'", condition)
    assert subjects == [f"repo:{REPOSITORY}:environment:{r.environment}" for r in ROLES]
    # Checkov's reading: the first asserted sub starts with a repo claim naming owner/repo.
    first, value, *_ = subjects[0].split(":")
    assert first == "repo" and first not in ABUSABLE_FIRST_CLAIMS
    assert value == REPOSITORY and "*" not in condition
    # Every alternative is joined by ||, all under the owner pin: no clause escapes it.
    assert condition.count("&&") == 1 and condition.endswith(")")


def test_each_account_can_be_impersonated_by_its_own_environment_only() -> None:
    run = _run()
    accounts = _accounts(run)
    pool = run.one(POOL).plain
    pool_name = (
        "projects/123456789012/locations/global/workloadIdentityPools/"
        f"{pool['workloadIdentityPoolId']}"
    )
    wif = [b.plain for b in run.of_type(ACCOUNT_IAM) if b.plain["role"].endswith("IdentityUser")]
    assert len(wif) == len(ROLES)
    for role in ROLES:
        account = accounts[role.kind]
        (binding,) = [b for b in wif if b["serviceAccountId"].endswith(_email(run, account))]
        assert binding["role"] == "roles/iam.workloadIdentityUser"
        # One subject (principal://), never a whole repository (principalSet://).
        assert binding["member"] == (
            f"principal://iam.googleapis.com/{pool_name}/subject/"
            f"repo:{REPOSITORY}:environment:{role.environment}"
        )
    assert run.outputs["result"]["provider"] == f"{pool_name}/providers/github"


def test_ckv_gcp_41_42_46_49_117_no_project_role_is_basic_admin_or_impersonating() -> None:
    run = _run()
    bindings = [b.plain for b in run.of_type(PROJECT_IAM)]
    assert len(bindings) == len(ROLES)
    for binding in bindings:
        role = binding["role"]
        assert role not in BASIC
        assert role not in IMPERSONATION
        assert not ADMIN.match(role), role
        assert role.startswith("projects/proj-1/roles/")
        assert binding["member"].endswith("@proj-1.iam.gserviceaccount.com")
        assert "-compute@developer" not in binding["member"]  # CKV_GCP_46
        assert "@appspot" not in binding["member"]


def test_ckv2_gcp_3_no_account_has_a_key() -> None:
    run = _run()
    assert not [r for r in run.resources if r.type.startswith("gcp:serviceaccount/key")]


def test_deploy_accounts_act_as_their_runtime_account_only() -> None:
    run = _run()
    accounts = _accounts(run)
    users = [b.plain for b in run.of_type(ACCOUNT_IAM) if b.plain["role"].endswith("AccountUser")]
    # deploy and ephemeral each on their own runtime account; the preview account on none.
    assert len(users) == 2
    for kind in ("deploy", "ephemeral"):
        runtime = accounts[f"{kind}-run"]
        (binding,) = [u for u in users if u["serviceAccountId"].endswith(_email(run, runtime))]
        assert binding["role"] == "roles/iam.serviceAccountUser"
        assert binding["member"] == f"serviceAccount:{_email(run, accounts[kind])}"
    assert run.outputs["result"]["runtime"] == {
        kind: _email(run, accounts[f"{kind}-run"]) for kind in ("deploy", "ephemeral")
    }
    # A runtime account holds no project role at all.
    members = {b.plain["member"] for b in run.of_type(PROJECT_IAM)}
    assert not [m for m in members if m.endswith("-run@proj-1.iam.gserviceaccount.com")]
    assert not [a for a in accounts if a.startswith("preview-")]


def test_a_stack_without_the_identity_can_name_the_runtime_account_it_runs_as() -> None:
    runtime = _run().outputs["result"]["runtime"]
    assert runtime["ephemeral"] == runtime_account_email(NAME, "ephemeral", "proj-1")
    assert runtime["deploy"] == runtime_account_email(NAME, "deploy", "proj-1")


def test_deploy_role_manages_the_stack_types_and_grants_nothing() -> None:
    run = _run()
    roles = {r.plain["roleId"]: r.plain for r in run.of_type(CUSTOM_ROLE)}
    deploy = roles["agent_gcp_staging_identity_deploy"]["permissions"]
    assert deploy == sorted(DEPLOY_PERMISSIONS)
    assert not set(deploy) & set(ESCALATING_PERMISSIONS)
    assert not [p for p in deploy if p.startswith(("iam.serviceAccountKeys.", "orgpolicy."))]
    # IAM is read only, except per-resource policies of what the stack owns.
    writes = [p for p in deploy if p.startswith(("iam.", "resourcemanager."))]
    assert all(p.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy") for p in writes)
    set_policy = {p.rsplit(".", 2)[0] for p in deploy if p.endswith("setIamPolicy")}
    assert set_policy == {"run", "secretmanager"}
    # A pr-<n> stack's new repository carries no writer grant: the role itself may push.
    assert {
        "artifactregistry.repositories.uploadArtifacts",
        "artifactregistry.tags.create",
    } <= set(deploy)
    # GcpApis enables APIs (a no-op when on); nothing here may switch one off.
    assert "serviceusage.services.enable" in deploy
    assert "serviceusage.services.disable" not in deploy
    # REMOVE_PEERING (ephemeral networks) removes the peering through the network.
    assert "compute.networks.removePeering" in deploy
    # Each resource type the gcp stacks register can be created and deleted.
    for resource in (
        "run.services",
        "cloudsql.instances",
        "cloudsql.databases",
        "cloudsql.users",
        "redis.instances",
        "secretmanager.secrets",
        "monitoring.alertPolicies",
        "monitoring.uptimeCheckConfigs",
        "monitoring.notificationChannels",
        "compute.networks",
        "compute.subnetworks",
        "compute.firewalls",
        "compute.globalAddresses",
    ):
        assert {f"{resource}.create", f"{resource}.delete"} <= set(deploy), resource


def test_the_preview_role_reads_metadata_and_no_data() -> None:
    run = _run()
    roles = {r.plain["roleId"]: r.plain for r in run.of_type(CUSTOM_ROLE)}
    preview = roles["agent_gcp_staging_identity_preview"]["permissions"]
    assert preview == sorted(PREVIEW_PERMISSIONS)
    assert set(preview) < set(DEPLOY_PERMISSIONS)
    assert all(p.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy") for p in preview)
    assert "secretmanager.versions.access" not in preview
    assert "redis.instances.getAuthString" not in preview
    accounts = _accounts(run)
    preview_member = f"serviceAccount:{_email(run, accounts['preview'])}"
    (binding,) = [b.plain for b in run.of_type(PROJECT_IAM) if b.plain["member"] == preview_member]
    assert binding["role"] == "projects/proj-1/roles/agent_gcp_staging_identity_preview"


def test_only_deploy_kinds_get_a_deploy_role() -> None:
    run = _run(roles=(GcpGitHubRole("preview", "production-preview"),))
    assert [r.plain["roleId"] for r in run.of_type(CUSTOM_ROLE)] == [
        "agent_gcp_staging_identity_preview"
    ]
    assert run.outputs["result"]["runtime"] == {}


def test_account_ids_fit_googles_30_character_limit() -> None:
    run = _run()
    for kind, account in _accounts(run).items():
        account_id = account.plain["accountId"]
        assert 6 <= len(account_id) <= 30
        assert re.fullmatch(r"[a-z][-a-z0-9]*[a-z0-9]", account_id)
        # Shortened from the start, the kind kept readable in the console.
        assert account_id.startswith("agent-") and account_id.endswith(f"-{kind}")
    assert len({a.plain["accountId"] for a in run.of_type(ACCOUNT)}) == len(run.of_type(ACCOUNT))


def test_the_state_bucket_and_secrets_key_are_shared_by_role() -> None:
    key = "projects/proj-1/locations/global/keyRings/pulumi/cryptoKeys/state"
    run = _run(state_bucket="proj-1-pulumi-state", secrets_key_id=key)
    buckets = {b.name: b.plain for b in run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")}
    assert buckets[f"{NAME}-deploy-state"]["role"] == "roles/storage.objectUser"
    assert buckets[f"{NAME}-preview-state"]["role"] == "roles/storage.objectViewer"
    assert all(b["bucket"] == "proj-1-pulumi-state" for b in buckets.values())
    keys = {k.name: k.plain for k in run.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")}
    assert keys[f"{NAME}-preview-secrets-key"]["role"] == "roles/cloudkms.cryptoKeyDecrypter"
    assert keys[f"{NAME}-deploy-secrets-key"]["cryptoKeyId"] == key


def test_bad_identity_args_are_all_refused_before_anything_is_registered() -> None:
    with pytest.raises(ValueError, match=r"repository: 'example-org/\*'") as error:
        _run(
            repository="example-org/*",
            repository_owner_id="example-org",
            roles=(
                GcpGitHubRole("deploy", "staging"),
                GcpGitHubRole("deploy", "prod'uction"),
                GcpGitHubRole("ephemeral-review-x", "review"),
            ),
        )
    message = str(error.value)
    assert "kind 'ephemeral-review-x' must be 2 to 16" in message
    assert "repository_owner_id: 'example-org' must be the owner's numeric" in message
    assert "kind listed more than once: deploy" in message
    assert "environment 'prod'uction' may not contain quotes" in message
    assert error.value.registered == []  # type: ignore[attr-defined]


def test_pool_and_provider_ids_google_refuses_are_named() -> None:
    with pytest.raises(ValueError, match="pool_id: 'gcp-github' must be 4 to 32") as error:
        _run(pool_id="gcp-github", provider_id="GH")
    assert "provider_id: 'GH' must be 4 to 32" in str(error.value)


def test_a_subject_longer_than_google_subject_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the 127 bytes"):
        _run(repository="example-org/" + "r" * 100)


def test_long_and_reserved_names_still_give_ids_google_accepts() -> None:
    long_a = "customer-support-assistant-bot-production-eu-identity"
    long_b = "customer-support-assistant-bot-production-us-identity"
    for kind in ("deploy", "preview"):
        ids = {role_id(long_a, kind), role_id(long_b, kind)}
        assert len(ids) == 2
        for value in ids:
            assert len(value) <= 64 and re.fullmatch(r"[A-Za-z0-9_.]+", value)
            assert value.endswith(f"_{kind}")
    # "gcp-" starts pool ids Google keeps for itself; the engine refuses them like the API.
    assert not pool_id("gcp-agent-staging-identity").startswith("gcp-")

    def program() -> None:
        GcpDeployIdentity(
            "gcp-agent-staging-identity",
            GcpDeployIdentityArgs(
                project="proj-1",
                repository=REPOSITORY,
                repository_owner_id=OWNER_ID,
                roles=[GcpGitHubRole("deploy", "e" * 80)],
            ),
        )

    run = run_components(program)
    for account in run.of_type(ACCOUNT):
        assert len(account.plain["displayName"]) <= 100


def _cel(expression: str, claims: dict[str, str]) -> object:
    """Evaluates a WIF CEL expression on a token's claims, as Google's STS does."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    result = program.evaluate({"assertion": celpy.json_to_cel(claims)})
    # As plain Python values; an evaluation error stays what it is, and fails the comparison.
    if isinstance(result, celpy.celtypes.BoolType):
        return bool(result)
    if isinstance(result, celpy.celtypes.StringType):
        return str(result)
    return result


def _token(sub: str, owner_id: str = OWNER_ID) -> dict[str, str]:
    # GitHub sends every claim as a string, the owner id too.
    return {
        "sub": sub,
        "repository": sub.split(":")[1],
        "repository_owner_id": owner_id,
        "environment": sub.rsplit(":", 1)[1],
    }


def test_ckv_gcp_125_the_condition_admits_exactly_the_listed_environments() -> None:
    provider = _run().one(PROVIDER).plain
    condition = provider["attributeCondition"]
    for role in ROLES:
        sub = f"repo:{REPOSITORY}:environment:{role.environment}"
        assert _cel(condition, _token(sub)) is True, sub
        # The subject the token maps to is the one the account's binding names.
        assert _cel(provider["attributeMapping"]["google.subject"], _token(sub)) == sub
    refused = [
        _token(f"repo:{REPOSITORY}:environment:production"),
        _token(f"repo:{REPOSITORY}:environment:staging-evil"),
        _token(f"repo:{REPOSITORY}:pull_request"),
        _token(f"repo:{REPOSITORY}:ref:refs/heads/main"),
        _token("repo:example-org/other-repo:environment:staging"),
        # Same names under another owner (a deleted and re-registered organization).
        _token(f"repo:{REPOSITORY}:environment:staging", owner_id="7654321"),
    ]
    for claims in refused:
        assert _cel(condition, claims) is False, claims


def test_every_attribute_mapping_is_valid_cel() -> None:
    mapping = _run().one(PROVIDER).plain["attributeMapping"]
    claims = _token(f"repo:{REPOSITORY}:environment:staging")
    assert {key: _cel(expression, claims) for key, expression in mapping.items()} == {
        "google.subject": claims["sub"],
        "attribute.repository": REPOSITORY,
        "attribute.repository_owner_id": OWNER_ID,
        "attribute.environment": "staging",
    }
