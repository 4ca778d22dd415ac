"""ECR lifecycle: untagged leftovers expire, the newest builds are kept, and the policy obeys
the rules ECR applies when it is put (checked here, offline)."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from tests.harness import run_stack
from tests.infra.test_aws_fixtures import TIERS, policy, tier_run

LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def _rules(run: Any) -> list[dict[str, Any]]:
    rules = policy(run.one(LIFECYCLE))["rules"]
    assert isinstance(rules, list)
    return rules


@pytest.mark.parametrize("tier", TIERS)
def test_untagged_images_expire_and_the_newest_builds_are_kept(tier: str) -> None:
    run = tier_run(tier)
    untagged, builds = _rules(run)
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    }
    assert builds["selection"]["tagStatus"] == "tagged"
    assert builds["selection"]["countType"] == "imageCountMoreThan"
    assert builds["selection"]["countNumber"] == 20
    # The kept builds are exactly the tags this stack pushes.
    (tag,) = run.one("docker-build:index:Image").plain["tags"]
    patterns = builds["selection"]["tagPatternList"]
    assert any(fnmatch.fnmatchcase(tag.rsplit(":", 1)[1], p) for p in patterns)
    assert all(rule["action"] == {"type": "expire"} for rule in (untagged, builds))


def test_the_number_of_kept_builds_comes_from_config() -> None:
    _, builds = _rules(run_stack("staging", {"aws": {"ecrKeepImages": 5}}))
    assert builds["selection"]["countNumber"] == 5


@pytest.mark.parametrize("tier", TIERS)
def test_the_policy_is_one_ecr_accepts(tier: str) -> None:
    rules = _rules(tier_run(tier))
    priorities = [rule["rulePriority"] for rule in rules]
    # Unique priorities, listed in order (ECR reorders them, which would be a perpetual diff).
    assert priorities == sorted(set(priorities))
    for rule in rules:
        selection = rule["selection"]
        if selection["tagStatus"] == "tagged":
            # A tagged rule must name its tags, with one of the two lists only.
            assert bool(selection.get("tagPatternList")) != bool(selection.get("tagPrefixList"))
        else:
            assert "tagPatternList" not in selection and "tagPrefixList" not in selection
        if selection["countType"] == "sinceImagePushed":
            assert selection["countUnit"] == "days"
        else:
            assert "countUnit" not in selection
        assert selection["countNumber"] >= 1
    # A rule on `any` must come last; there is none, so untagged index children never count.
    assert all(rule["selection"]["tagStatus"] != "any" for rule in rules)
