"""The preview workflow's `cost` job: the monthly difference of each previewed stack, posted
as one pull-request comment that later pushes update instead of adding new ones."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- agent-deploy cost -->"


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    workflow = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    return workflow["jobs"]["cost"]


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name", "").startswith(name))


def test_cost_job_prices_the_previewed_stacks_against_the_pull_requests_base(job):
    workflow = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    previewed = workflow["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    pricing = step(job, "Price")
    assert pricing["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert f"for stack in {' '.join(previewed)}; do" in pricing["run"]
    assert '--stack "$stack" --base "$BASE_SHA" --markdown' in pricing["run"]
    checkout = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
    )
    assert checkout["with"]["fetch-depth"] == 0, "the base commit must be in the clone"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert not any("aws-actions" in str(s.get("uses", "")) for s in job["steps"]), "offline"


FAKE_GH = """#!/usr/bin/env bash
# Records each call; the listing prints what --jq would select: the ids in $STATE/ours.
echo "$*" >> "$STATE/calls"
case "$*" in
  *"--method POST"*) printf '%s\\n' "$@" > "$STATE/posted"; echo 101 > "$STATE/ours" ;;
  *"--method PATCH"*) printf '%s\\n' "$@" > "$STATE/patched" ;;
  *comments*) cat "$STATE/ours" 2>/dev/null || true ;;
esac
"""


def test_cost_comment_is_posted_once_then_updated_on_each_push(job, tmp_path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    (tmp_path / "cost-comment.md").write_text("**staging**: $99.84/month (+$24.82 vs `abc`)\n")
    script = step(job, "Post")["run"]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STATE": str(state),
        "REPOSITORY": "example-org/agent-deploy",
        "PR_NUMBER": "42",
        "GH_TOKEN": "token",
    }

    def push() -> None:
        subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=tmp_path, env=env, check=True, capture_output=True,
        )  # fmt: skip

    push()
    posted = (state / "posted").read_text()
    assert "repos/example-org/agent-deploy/issues/42/comments" in posted
    assert f"body={MARKER}\n**staging**: $99.84/month" in posted
    assert not (state / "patched").exists()

    push()
    patched = (state / "patched").read_text()
    assert "repos/example-org/agent-deploy/issues/comments/101" in patched
    assert f"body={MARKER}\n**staging**" in patched
    calls = (state / "calls").read_text().splitlines()
    assert sum("--method POST" in c for c in calls) == 1, "one comment, never a second"
    listing = next(c for c in calls if "--jq" in c)
    assert "github-actions[bot]" in listing and MARKER in listing, "only our own comment"
