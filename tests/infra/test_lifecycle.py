"""Issue 11 under mocks: production promotes staging's digest, every stack remembers the
digests it ran (what a rollback redeploys)."""

from __future__ import annotations

import json

import pytest

from cli import engine
from stacks.images import HISTORY_LENGTH
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import container, tier_run

STAGING_REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-staging-registry-repo"


def pinned(n: int) -> str:
    return f"{STAGING_REPO}@sha256:{n:064x}"


def test_production_promoting_stagings_digest_registers_no_build() -> None:
    """What the production workflow does: `app.image` = staging's `image` output."""
    run = run_stack("production", {"app": {"image": pinned(7)}})
    assert run.of_type("docker-build:index:Image") == []
    assert run.of_type("aws:ecr/repository:Repository") == []
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    images = {c["image"] for c in json.loads(task.plain["containerDefinitions"])}
    assert images == {pinned(7)}  # app, db-init and migrate: the very bytes staging ran
    assert run.outputs["imageDigest"] == f"sha256:{7:064x}"
    # The execution role may pull exactly staging's repository.
    execution = run.one("aws:iam/rolePolicy:RolePolicy", "agent-production-execution").plain
    statements = json.loads(execution["policy"])["Statement"]
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert [p["Resource"] for p in pulls] == [
        ["arn:aws:ecr:eu-west-1:123456789012:repository/agent-staging-registry-repo"]
    ]


def test_staging_builds_and_starts_its_history_with_the_digest_it_runs() -> None:
    run = tier_run("staging")
    assert len(run.of_type("docker-build:index:Image")) == 1
    assert run.outputs["imageHistory"] == [container(run)["image"]]


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_history_keeps_the_previous_digests_newest_first(
    tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = [pinned(n) for n in range(1, 15)]
    monkeypatch.setattr(engine, "PREVIOUS_OUTPUTS", {"imageHistory": earlier})
    run = run_stack(tier, {"app": {"image": pinned(3)}})
    history = run.outputs["imageHistory"]
    # A rollback to an earlier digest moves it to the front; it appears once.
    assert history[0] == pinned(3) and history.count(pinned(3)) == 1
    assert history[1:] == [p for p in earlier if p != pinned(3)][: HISTORY_LENGTH - 1]
    assert len(history) == HISTORY_LENGTH
