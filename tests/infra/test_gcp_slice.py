"""Shared pull-request environments on GCP (stacks/gcp_slice.py): gcp-staging's `prBase`, and
a pr-<n> slice of it built from Pulumi.gcp-pr.yaml (as Pulumi.pr.yaml once copied over it).

The slice reads the outputs of the real gcp-staging program (the engine runs it for the
StackReference); a test that needs a broken base passes its own outputs instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any, get_type_hints

import pytest

from cli.engine import ProgramRun, run_program
from infra.config.pull_requests import slice_database, slice_key_prefix
from stacks.gcp_slice import SHARED_WARNING, PrBaseError
from stacks.pr_base import PR_BASE_VERSION, GcpPrBase
from tests.harness import PROJECT_DIR, run_stack, stack_inputs

RUN = "gcp:cloudrunv2/service:Service"
SQL_USER = "gcp:sql/user:User"
SQL_DATABASE = "gcp:sql/database:Database"
SECRET = "gcp:secretmanager/secret:Secret"
SECRET_VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
SECRET_READER = "gcp:secretmanager/secretIamMember:SecretIamMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
# A staging that also has the `ephemeral` GitHub identity pr-<n> stacks are deployed with.
WITH_EPHEMERAL = {
    "github": {
        "owner": "example-org",
        "repository": "agent-deploy",
        "plan": "team",
        "ephemeralEnvironment": "gcp-ephemeral",
    }
}
SHARED = {
    "gcp:compute/network:Network",
    "gcp:compute/subnetwork:Subnetwork",
    "gcp:compute/globalAddress:GlobalAddress",
    "gcp:servicenetworking/connection:Connection",
    "gcp:compute/firewall:Firewall",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:redis/instance:Instance",
    "gcp:monitoring/alertPolicy:AlertPolicy",
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig",
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
    "gcp:projects/service:Service",
}


@cache
def staging(extra: str = "") -> ProgramRun:
    return run_stack("gcp-staging", WITH_EPHEMERAL if extra == "ephemeral" else None)


def slice_run(
    stack: str = "pr-42",
    override: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """`stack` from Pulumi.gcp-pr.yaml; `base` replaces gcp-staging's real outputs."""
    config, secret_keys = stack_inputs("gcp-pr", override)
    references = None if base is None else {"gcp-staging": base}
    return run_program(
        stack,
        config,
        secret_keys,
        project_dir=PROJECT_DIR,
        preview=preview,
        stack_references=references,
    )


@cache
def pr42() -> ProgramRun:
    return slice_run()


def prbase() -> dict[str, Any]:
    value: dict[str, Any] = staging().outputs["prBase"]
    return value


def env(run: ProgramRun) -> dict[str, Any]:
    container = run.one(RUN).plain["template"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueSource")) for e in container["envs"]}


def secret_value(run: ProgramRun, variable: str) -> str:
    name = f"agent-{run.stack}-secrets-{variable.lower().replace('_', '-')}"
    version = run.one(SECRET_VERSION, name)
    assert version.is_secret("secretData")
    value: str = version.plain["secretData"]
    return value


# --- host --------------------------------------------------------------------------------


def test_staging_with_host_exports_pr_base_with_every_gcp_pr_base_field() -> None:
    base = prbase()
    assert set(base) == set(get_type_hints(GcpPrBase))
    assert (base["target"], base["version"]) == ("gcp", PR_BASE_VERSION)
    run = staging()
    assert (
        base["databaseInstance"]
        == run.one("gcp:sql/databaseInstance:DatabaseInstance").plain["name"]
    )
    assert base["network"] == "agent-gcp-staging-net-vpc-id"
    assert base["subnet"] == "agent-gcp-staging-net-subnet-id"
    assert base["redisInstance"] == run.one("gcp:redis/instance:Instance").plain["name"]
    assert (base["databasePort"], base["redisPort"]) == (5432, 6378)
    assert base["registryUrl"].endswith("/agent-gcp-staging")


def test_pr_base_names_the_ca_secrets_never_the_hosts_connection_strings() -> None:
    base = prbase()
    assert base["databaseCaSecretId"] == "agent-gcp-staging-secrets-database-ca-cert"
    assert base["redisCaSecretId"] == "agent-gcp-staging-secrets-redis-ca-cert"
    assert base["databaseCaSecretVersion"].isdigit() and base["redisCaSecretVersion"].isdigit()
    assert "prBase" not in staging().secret_outputs
    text = repr(base)
    assert "url" not in text.lower() or "registryUrl" in text
    assert "database-url" not in text and "redis-url" not in text and "mockauth" not in text


def test_without_host_staging_registers_exactly_the_same_and_exports_no_pr_base() -> None:
    plain = run_stack("gcp-staging", {"pullRequests": None})
    assert "prBase" not in plain.outputs
    assert sorted((r.type, r.name) for r in plain.resources) == sorted(
        (r.type, r.name) for r in staging().resources
    )
    assert {k: v for k, v in staging().outputs.items() if k != "prBase"} == plain.outputs


def test_a_host_with_the_ephemeral_identity_lets_its_runtime_account_read_only_the_cas() -> None:
    run = staging("ephemeral")
    reader = run.outputs["prBase"]["caReaderServiceAccount"]
    assert reader == run.outputs["runtimeServiceAccounts"]["ephemeral"]
    granted = {
        g.plain["secretId"] for g in run.of_type(SECRET_READER)
        if g.plain["member"] == f"serviceAccount:{reader}"
    }  # fmt: skip
    assert granted == {
        "agent-gcp-staging-secrets-database-ca-cert",
        "agent-gcp-staging-secrets-redis-ca-cert",
    }
    assert prbase()["caReaderServiceAccount"] is None


# --- slice -------------------------------------------------------------------------------


def test_the_slice_creates_only_its_own_pieces_and_re_creates_nothing_shared() -> None:
    custom = {r.type for r in pr42().resources if r.custom}
    assert custom == {
        "pulumi:providers:gcp",
        "random:index/randomPassword:RandomPassword",
        "docker-build:index:Image",
        "gcp:artifactregistry/repository:Repository",
        SQL_USER,
        SQL_DATABASE,
        SECRET,
        SECRET_VERSION,
        SECRET_READER,
        ACCOUNT,
        RUN,
        # `migrate` with the new image before the revision (infra/gcp/migration.py).
        "gcp:cloudrunv2/job:Job",
        "random:index/randomId:RandomId",
    }
    assert not custom & SHARED


def test_the_slice_gets_its_own_database_and_user_on_the_host_instance() -> None:
    run = pr42()
    user, database = run.one(SQL_USER).plain, run.one(SQL_DATABASE).plain
    assert user["name"] == database["name"] == slice_database("pr-42") == "pr_42"
    assert user["instance"] == database["instance"] == prbase()["databaseInstance"]
    assert user["type"] == "BUILT_IN" and run.one(SQL_USER).is_secret("password")
    assert user["deletionPolicy"] == database["deletionPolicy"] == "DELETE"
    # The database goes first on destroy: the user still owns the objects in it until then.
    assert run.one(SQL_USER).urn in run.one(SQL_DATABASE).depends_on
    assert run.one(SQL_DATABASE).urn in run.one(RUN).depends_on


def test_the_slice_connects_with_its_own_user_to_the_host_servers_through_its_secrets() -> None:
    run, base = pr42(), prbase()
    url = secret_value(run, "DATABASE_URL")
    password = run.one(SQL_USER).plain["password"]
    assert url == (
        f"postgresql://pr_42:{password}@{base['databaseHost']}:5432/pr_42?sslmode=require"
    )
    redis = secret_value(run, "REDIS_URL")
    assert redis.startswith("rediss://:mockauth-")
    assert redis.endswith(f"@{base['redisHost']}:6378/0")
    assert ("gcp:redis/getInstance:getInstance", {"name": base["redisInstance"],
            "project": base["project"], "region": base["region"]}) in [
        (token, {k: v for k, v in args.items() if k in ("name", "project", "region")})
        for token, args in run.invokes
    ]  # fmt: skip


def test_the_slice_reads_the_host_cas_pinned_and_its_own_secrets_never_the_host_urls() -> None:
    run, base = pr42(), prbase()
    refs = {k: v["secretKeyRef"] for k, v in env(run).items() if isinstance(v, dict)}
    assert refs["DATABASE_CA_CERT"] == {
        "secret": base["databaseCaSecretId"],
        "version": base["databaseCaSecretVersion"],
    }
    assert refs["REDIS_CA_CERT"]["secret"] == base["redisCaSecretId"]
    for own in ("DATABASE_URL", "REDIS_URL", "AUTH_TOKENS"):
        assert refs[own]["secret"] == f"agent-pr-42-secrets-{own.lower().replace('_', '-')}"
    host_secrets = [k for k, ref in refs.items() if ref["secret"].startswith("agent-gcp-staging")]
    assert sorted(host_secrets) == ["DATABASE_CA_CERT", "REDIS_CA_CERT"]


def test_the_slice_runs_as_its_own_account_on_the_host_subnet_with_a_run_app_url() -> None:
    run, base = pr42(), prbase()
    service = run.one(RUN).plain
    account = run.one(ACCOUNT).plain["accountId"]
    assert service["template"]["serviceAccount"].startswith(f"{account}@")
    interface = service["template"]["vpcAccess"]["networkInterfaces"][0]
    assert (interface["network"], interface["subnetwork"]) == (base["network"], base["subnet"])
    assert service["template"]["vpcAccess"]["egress"] == "PRIVATE_RANGES_ONLY"
    assert run.outputs["serviceUrl"].endswith(".run.app")
    assert run.outputs["database"] == "pr_42" and run.outputs["base"] == "gcp-staging"
    readers = {g.plain["member"] for g in run.of_type(SECRET_READER)}
    assert readers == {f"serviceAccount:{service['template']['serviceAccount']}"}


def test_each_slice_keeps_its_redis_keys_under_its_own_prefix() -> None:
    other = slice_run("pr-7")
    assert env(pr42())["REDIS_KEY_PREFIX"] == slice_key_prefix("pr-42") == "pr-42:"
    assert env(other)["REDIS_KEY_PREFIX"] == "pr-7:"
    assert other.one(SQL_DATABASE).plain["name"] == "pr_7"


@pytest.mark.parametrize("preview", [False, True])
def test_every_slice_run_warns_that_staging_data_is_reachable_and_names_the_way_out(
    preview: bool,
) -> None:
    run = slice_run(preview=preview)
    expected = SHARED_WARNING.format(stack="pr-42", base="gcp-staging", prefix="pr-42:")
    assert expected in run.warnings
    assert "cloudsqlsuperuser" in expected and "staging's keys" in expected
    assert "remove pullRequests.base" in expected


def test_a_slice_running_as_staging_s_ephemeral_account_grants_nothing_on_host_secrets() -> None:
    base = staging("ephemeral").outputs["prBase"]
    account = base["caReaderServiceAccount"]
    run = slice_run(override={"gcp": {"runServiceAccount": account}}, base={"prBase": base})
    assert not run.of_type(ACCOUNT)
    granted = {g.plain["secretId"] for g in run.of_type(SECRET_READER)}
    assert granted and all(s.startswith("agent-pr-42-") for s in granted)
    assert run.one(RUN).plain["template"]["serviceAccount"] == account


def test_a_shared_runtime_account_the_base_does_not_let_read_its_cas_is_refused() -> None:
    email = "someone@example-agent-staging.iam.gserviceaccount.com"
    with pytest.raises(PrBaseError, match=r"gcp-staging.*lets None read its CA secrets"):
        slice_run(override={"gcp": {"runServiceAccount": email}})


def _broken(**changes: Any) -> dict[str, Any]:
    return {"prBase": {**prbase(), **changes}}


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({}, "exports no 'prBase' output"),
        ({"serviceUrl": "https://x"}, "exports no 'prBase' output"),
        (_broken(version=PR_BASE_VERSION + 1), f"version is {PR_BASE_VERSION + 1}"),
        (_broken(target="aws"), "target is 'aws', not 'gcp'"),
        (_broken(databaseInstance=None), "missing databaseInstance"),
        (_broken(project="another-project"), "it is in another-project/europe-west1"),
    ],
)
def test_a_base_without_a_usable_pr_base_is_refused_naming_it_and_pull_requests_host(
    outputs: dict[str, Any], expected: str
) -> None:
    with pytest.raises(PrBaseError) as raised:
        slice_run(base=outputs)
    message = str(raised.value)
    assert expected in message
    assert "'gcp-staging'" in message and "pullRequests: {host: true}" in message
    # Checked before the slice registers anything: no half-made slice.
    assert raised.value.registered == []  # type: ignore[attr-defined]


def test_a_missing_base_stack_is_refused_the_same_way() -> None:
    with pytest.raises(PrBaseError, match="'gcp-nowhere' exports no 'prBase'"):
        slice_run(override={"pullRequests": {"base": "gcp-nowhere"}})


def test_without_base_the_gcp_pr_stack_is_self_contained_again() -> None:
    run = run_stack("gcp-pr", {"pullRequests": None})
    types = {r.type for r in run.resources}
    assert {"gcp:sql/databaseInstance:DatabaseInstance", "gcp:redis/instance:Instance"} <= types
    assert "gcp:compute/network:Network" in types
    assert not any("cloudsqlsuperuser" in warning for warning in run.warnings)


def test_staging_s_ephemeral_deploy_account_may_do_what_a_slice_up_does_and_no_more_iam() -> None:
    run = staging("ephemeral")
    account = run.one(ACCOUNT, "agent-gcp-staging-identity-ephemeral").plain["accountId"]
    binding = next(
        b.plain
        for b in run.of_type("gcp:projects/iAMMember:IAMMember")
        if b.plain["member"].startswith(f"serviceAccount:{account}@")
    )
    role = next(
        r.plain
        for r in run.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
        if binding["role"].endswith(f"/roles/{r.plain['roleId']}")
    )
    needed = {
        "cloudsql.databases.create",
        "cloudsql.databases.delete",
        "cloudsql.users.create",
        "cloudsql.users.update",
        "cloudsql.users.delete",
        "redis.instances.get",
        "redis.instances.getAuthString",
        "run.services.create",
        "run.jobs.create",
        "run.jobs.run",
        "run.services.delete",
        "secretmanager.secrets.create",
        "secretmanager.secrets.setIamPolicy",
        "secretmanager.versions.add",
        "artifactregistry.repositories.create",
        "artifactregistry.repositories.uploadArtifacts",
    }
    assert needed <= set(role["permissions"])
    # It creates no service account: a CI-deployed slice runs as the shared runtime account.
    assert "iam.serviceAccounts.create" not in role["permissions"]


def test_the_example_stack_checked_under_its_own_name_gets_names_derived_from_it() -> None:
    run = slice_run("gcp-pr", preview=True)
    assert run.one(SQL_DATABASE).plain["name"] == run.one(SQL_USER).plain["name"] == "pr_gcp_pr"
    assert env(run)["REDIS_KEY_PREFIX"] == "gcp-pr:"
