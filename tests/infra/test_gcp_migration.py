"""Issue 11 on gcp: the schema migration runs as a Cloud Run job, with the new image, before the
service gets a revision of it (infra/gcp/migration.py), instead of in every starting instance."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from cli.engine import ProgramRun
from infra.gcp.migration import DIGEST_CHARS, TOKEN_LENGTH, digest_part
from infra.naming import NAME_RULES
from tests.harness import run_stack

JOB = "gcp:cloudrunv2/job:Job"
RUN = "gcp:cloudrunv2/service:Service"
NONCE = "random:index/randomId:RandomId"
REPO = "europe-west1-docker.pkg.dev/acme-staging/agent-gcp-staging/agent"
# Production's copy of a promoted digest (infra/promotion.py): its own repository, same bytes.
OWN = "europe-west1-docker.pkg.dev/example-agent-production/agent-gcp-production/agent"
STACKS = {"ephemeral": "gcp-pr", "staging": "gcp-staging", "production": "gcp-production"}
tiers = pytest.mark.parametrize("tier", list(STACKS))


def hex64(n: int) -> str:
    return f"{n:02x}" * 32


def pinned(n: int, repository: str = REPO) -> str:
    return f"{repository}@sha256:{hex64(n)}"


@cache
def promoted(n: int) -> ProgramRun:
    return run_stack("gcp-production", {"app": {"image": pinned(n)}})


@cache
def built(tier: str) -> ProgramRun:
    return run_stack(STACKS[tier])


def job(run: ProgramRun) -> dict[str, Any]:
    return run.one(JOB).plain


def task(run: ProgramRun) -> dict[str, Any]:
    (container,) = job(run)["template"]["template"]["containers"]
    return dict(container)


def service_container(run: ProgramRun) -> dict[str, Any]:
    (container,) = run.one(RUN).plain["template"]["containers"]
    return dict(container)


def test_the_job_runs_migrate_with_the_promoted_digest():
    run = promoted(7)
    assert task(run)["image"] == service_container(run)["image"] == pinned(7, OWN)
    (copy,) = run.of_type("command:local:Command")
    assert copy.plain["environment"]["SOURCE"] == pinned(7)
    assert copy.urn in run.one(JOB).property_dependencies["template"]
    assert task(run)["args"] == ["python", "-m", "src", "migrate"]


@tiers
def test_the_job_sees_the_database_as_the_app_does(tier: str):
    """Same env and secret references (pinned versions), same account, same egress."""
    run = built(tier)
    app, migrate = service_container(run), task(run)
    assert migrate["envs"] == app["envs"]
    names = {e["name"] for e in migrate["envs"]}
    assert {"DATABASE_URL", "DATABASE_CA_CERT"} <= names
    assert "MIGRATE_ON_START" not in names, "the service no longer migrates at start-up"
    template, service = job(run)["template"]["template"], run.one(RUN).plain["template"]
    assert template["serviceAccount"] == service["serviceAccount"]
    assert template["vpcAccess"] == service["vpcAccess"]
    assert template["executionEnvironment"] == service["executionEnvironment"]


@tiers
def test_a_failing_migration_is_bounded_and_retried_at_most_once(tier: str):
    template = job(built(tier))["template"]
    assert template["taskCount"] == 1 and template["parallelism"] == 1
    assert template["template"]["maxRetries"] <= 1
    timeout = int(template["template"]["timeout"].removesuffix("s"))
    assert 0 < timeout <= 600


def test_each_new_digest_starts_a_new_execution():
    tokens = {n: job(promoted(n))["runExecutionToken"] for n in (7, 8)}
    assert tokens[7] != tokens[8]
    assert tokens[7].startswith(hex64(7)[:DIGEST_CHARS])
    for token in tokens.values():
        assert len(token) == TOKEN_LENGTH
    # The same image twice (a rollback to it) still gets a fresh token: the random part is
    # renewed whenever the job's spec changes, and it keeps the spec.
    run = promoted(7)
    (nonce,) = [r for r in run.of_type(NONCE) if r.parent == run.one(JOB).parent]
    assert pinned(7, OWN) in str(nonce.plain["keepers"]["spec"])


def test_an_unpinned_image_still_gives_a_valid_token():
    assert digest_part("agent:latest") == digest_part("agent:latest")
    assert len(digest_part("agent:latest")) == DIGEST_CHARS
    assert digest_part(pinned(9)) == hex64(9)[:DIGEST_CHARS]


def test_job_name_and_token_fit_cloud_runs_execution_name_limit():
    assert NAME_RULES[JOB].max_length + TOKEN_LENGTH < 63
    for tier in STACKS:
        name = job(built(tier))["name"]
        assert not NAME_RULES[JOB].problems(name), name


@tiers
def test_the_service_waits_for_the_migration(tier: str):
    """`up` creates the new revision only after the execution completed: a failure stops it
    there, with the old revision serving."""
    run = built(tier)
    migration = run.one(JOB)
    assert migration.urn in run.one(RUN).depends_on
    # ...and the job itself waits for the database and its secret grants.
    # (a slice: its own database on the host instance; otherwise the instance)
    assert any("sql/database" in urn or "CloudSql" in urn for urn in migration.depends_on)
    grants = run.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert grants and {g.urn for g in grants} & set(migration.depends_on)


@pytest.mark.parametrize("tier", ["ephemeral", "staging"])
def test_gcp_stacks_start_their_rollback_history_with_the_digest_they_run(tier: str) -> None:
    """`make rollback` / rollback.yml read `imageHistory`: gcp stacks keep it as aws ones do."""
    run = built(tier)
    assert run.outputs["imageHistory"] == [service_container(run)["image"]]
    assert "@sha256:" in run.outputs["imageHistory"][0]


def test_a_promoted_gcp_digest_moves_to_the_front_of_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli import engine

    monkeypatch.setattr(engine, "PREVIOUS_OUTPUTS", {"imageHistory": [pinned(1), pinned(2)]})
    run = run_stack("gcp-production", {"app": {"image": pinned(2)}})
    # Its own copy of digest 2 replaces staging's reference to it.
    assert run.outputs["imageHistory"] == [pinned(2, OWN), pinned(1)]
