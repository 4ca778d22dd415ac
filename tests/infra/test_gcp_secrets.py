"""GcpSecrets: one Secret Manager secret per variable (automatic replication), its value
never in plain text, its version number pinned for Cloud Run, and read access granted per
secret to named members only (never project-wide, never public)."""

from __future__ import annotations

import pulumi
import pytest

from infra.gcp.secrets import ACCESSOR_ROLE, GcpSecrets, GcpSecretsArgs
from tests.harness import run_components

SECRET = "gcp:secretmanager/secret:Secret"
VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
ACCESSOR = "gcp:secretmanager/secretIamMember:SecretIamMember"
RUN_SA = "serviceAccount:run@proj-1.iam.gserviceaccount.com"


def _run(**overrides: object):  # type: ignore[no-untyped-def]
    def program() -> dict[str, object]:
        args: dict[str, object] = {
            "project": "proj-1",
            "values": {
                "DATABASE_URL": pulumi.Output.secret("postgresql://u:pw@10.0.0.3/app"),
                "REDIS_URL": "rediss://:auth@10.0.0.4:6378/0",
            },
            "generated": ["AUTH_TOKENS"],
            "accessors": [RUN_SA],
            **overrides,
        }
        secrets = GcpSecrets("agent-staging-secrets", GcpSecretsArgs(**args))  # type: ignore[arg-type]
        return {"ids": secrets.secret_ids, "versions": secrets.versions}

    return run_components(program)


def test_one_automatically_replicated_secret_per_variable() -> None:
    run = _run()
    secrets = {s.plain["secretId"]: s.plain for s in run.of_type(SECRET)}
    assert set(secrets) == {
        "agent-staging-secrets-auth-tokens",
        "agent-staging-secrets-database-url",
        "agent-staging-secrets-redis-url",
    }
    for secret in secrets.values():
        assert secret["replication"] == {"auto": {}}
        assert secret["project"] == "proj-1"
    assert run.outputs["result"]["ids"] == {
        "AUTH_TOKENS": "agent-staging-secrets-auth-tokens",
        "DATABASE_URL": "agent-staging-secrets-database-url",
        "REDIS_URL": "agent-staging-secrets-redis-url",
    }


def test_values_are_secret_even_when_given_in_plain_text() -> None:
    versions = _run().of_type(VERSION)
    assert len(versions) == 3
    for version in versions:
        assert version.is_secret("secretData")
    by_name = {v.name: v.plain["secretData"] for v in versions}
    assert by_name["agent-staging-secrets-redis-url"] == "rediss://:auth@10.0.0.4:6378/0"
    # Generated here, by a random password that only this stack knows.
    password = _run().one("random:index/randomPassword:RandomPassword")
    assert password.plain["length"] == 48
    assert password.plain["special"] is False
    assert by_name["agent-staging-secrets-auth-tokens"].startswith("mockpw")


def test_versions_are_pinned_numbers_never_latest() -> None:
    versions = _run().outputs["result"]["versions"]
    assert set(versions) == {"AUTH_TOKENS", "DATABASE_URL", "REDIS_URL"}
    for number in versions.values():
        assert number.isdigit(), number


def test_replaced_versions_are_destroyed_unless_kept_for_rollbacks() -> None:
    assert {v.plain["deletionPolicy"] for v in _run().of_type(VERSION)} == {"DELETE"}
    kept = _run(keep_replaced_versions=True).of_type(VERSION)
    assert {v.plain["deletionPolicy"] for v in kept} == {"ABANDON"}


def test_read_access_is_granted_per_secret_to_the_named_members_only() -> None:
    run = _run()
    accessors = run.of_type(ACCESSOR)
    ids = {s.plain["secretId"] for s in run.of_type(SECRET)}
    assert sorted(a.plain["secretId"] for a in accessors) == sorted(ids)
    for accessor in accessors:
        assert accessor.plain["role"] == ACCESSOR_ROLE
        assert accessor.plain["member"] == RUN_SA
    # Never on the project: that would reach every secret of every stack there.
    assert not [r for r in run.resources if r.type.startswith("gcp:projects/")]


def test_grant_adds_a_member_to_every_secret_and_returns_what_to_depend_on() -> None:
    def program() -> dict[str, object]:
        secrets = GcpSecrets(
            "agent-secrets", GcpSecretsArgs(project="proj-1", values={"A_KEY": "x", "B": "y"})
        )
        grants = secrets.grant("serviceAccount:other@proj-1.iam.gserviceaccount.com", "other")
        return {"grants": [g.urn for g in grants], "all": [g.urn for g in secrets.grants]}

    run = run_components(program)
    accessors = run.of_type(ACCESSOR)
    assert len(accessors) == 2
    assert sorted(run.outputs["result"]["grants"]) == sorted(a.urn for a in accessors)
    assert run.outputs["result"]["all"] == run.outputs["result"]["grants"]


def test_bad_secrets_args_are_all_refused_before_anything_is_registered() -> None:
    with pytest.raises(ValueError, match="'database-url' is not an environment variable") as error:
        _run(
            values={"database-url": "x", "AUTH_TOKENS": "y"},
            accessors=["allUsers"],
        )
    assert "generated: AUTH_TOKENS also given a value" in str(error.value)
    assert "'allUsers' would let anyone read" in str(error.value)
    assert error.value.registered == []  # type: ignore[attr-defined]
