"""Issue 11 under mocks: production promotes staging's digest, every stack remembers the
digests it ran (what a rollback redeploys)."""

from __future__ import annotations

import json

import pytest

from cli import engine
from infra.promotion import promoted_tag
from stacks import StackConfigError
from stacks.images import HISTORY_LENGTH
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import container, tier_run

STAGING_REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-staging-registry-repo"
PRODUCTION_REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-production-registry-repo"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def pinned(n: int) -> str:
    return f"{STAGING_REPO}@sha256:{n:064x}"


def test_production_copies_stagings_digest_into_its_own_registry_and_builds_nothing() -> None:
    """What the production workflow does: `app.image` = staging's `image` output."""
    run = run_stack("production", {"app": {"image": pinned(7)}})
    assert run.of_type("docker-build:index:Image") == []
    (repository,) = run.of_type("aws:ecr/repository:Repository")
    assert repository.name == "agent-production-registry-repo"
    assert repository.plain["imageTagMutability"] == "IMMUTABLE"
    (copy,) = run.of_type("command:local:Command")
    # A new digest must reach the script: ignoring environment changes would re-copy the old one.
    assert copy.ignore_changes == []
    environment = copy.plain["environment"]
    assert environment["SOURCE"] == pinned(7) and environment["DIGEST"] == f"sha256:{7:064x}"
    assert environment["DESTINATION"] == f"{PRODUCTION_REPO}:{promoted_tag(f'sha256:{7:064x}')}"
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    # Tasks start only once the copy is there and verified.
    assert copy.urn in task.property_dependencies["containerDefinitions"]
    images = {c["image"] for c in json.loads(task.plain["containerDefinitions"])}
    # App, db-init and migrate: the very bytes staging ran, from production's own registry.
    assert images == {f"{PRODUCTION_REPO}@sha256:{7:064x}"}
    assert run.outputs["imageDigest"] == f"sha256:{7:064x}"
    # Promoted copies are what its lifecycle keeps the newest of.
    lifecycle = json.loads(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").plain["policy"])
    assert lifecycle["rules"][1]["selection"]["tagPatternList"] == ["promoted-*"]
    # The execution role pulls exactly production's own repository, never staging's.
    execution = run.one("aws:iam/rolePolicy:RolePolicy", "agent-production-execution").plain
    statements = json.loads(execution["policy"])["Statement"]
    pulls = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert [p["Resource"] for p in pulls] == [
        ["arn:aws:ecr:us-east-1:123456789012:agent-production-registry-repo"]
    ]


def test_without_copy_image_production_would_pull_stagings_repository() -> None:
    run = run_stack("production", {"app": {"image": pinned(7), "copyImage": False}})
    assert run.of_type("command:local:Command") == []
    assert run.of_type("aws:ecr/repository:Repository") == []
    images = {c["image"] for c in json.loads(run.one(TASK).plain["containerDefinitions"])}
    assert images == {pinned(7)}


def test_copy_image_needs_a_digest_and_staging_grants_production_its_pulls() -> None:
    with pytest.raises(StackConfigError) as refused:
        run_stack("staging", {"app": {"image": f"{STAGING_REPO}:v1", "copyImage": True}})
    assert "agent-deploy:app.copyImage = true" in str(refused.value)
    with pytest.raises(StackConfigError) as refused:
        run_stack("staging", {"aws": {"imageReaders": ["12345"]}})
    assert "aws.imageReaders" in str(refused.value) and "12-digit" in str(refused.value)
    run = run_stack("staging", {"aws": {"imageReaders": ["210987654321"]}})
    (policy,) = run.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")
    (statement,) = json.loads(policy.plain["policy"])["Statement"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::210987654321:root"]}
    assert sorted(statement["Action"]) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"
    ]  # fmt: skip
    assert not tier_run("staging").of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")


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
    # Production runs its own copy of the digest (the same bytes, its own registry).
    current = pinned(3) if tier == "staging" else f"{PRODUCTION_REPO}@sha256:{3:064x}"
    # A rollback to an earlier digest moves it to the front; the digest appears once.
    assert history[0] == current
    assert [h.partition("@")[2] for h in history].count(f"sha256:{3:064x}") == 1
    assert history[1:] == [p for p in earlier if p != pinned(3)][: HISTORY_LENGTH - 1]
    assert len(history) == HISTORY_LENGTH
