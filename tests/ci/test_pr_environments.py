"""Workflows for pull-request environments that are slices of staging: the shipped template's
switch, the preview comment's environment URL, and the script that reads it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPT = ROOT / "scripts" / "environment-url.sh"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    return loaded


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name", "").startswith(name))


def test_the_template_is_a_slice_of_the_stack_deploy_yml_deploys_and_one_switch_undoes_it():
    text = (ROOT / "Pulumi.pr.yaml").read_text()
    config = yaml.safe_load(text)["config"]
    assert config["agent-deploy:pullRequests"] == {"base": "staging"}
    assert "Remove this section for a self-contained stack" in text
    # deploy.yml deploys it through the reusable deploy-stack.yml, on each push to main.
    deployed = {
        str((job.get("with") or {}).get("stack"))
        for job in workflow("deploy")["jobs"].values()
        if str(job.get("uses", "")).endswith("/.github/workflows/deploy-stack.yml")
    }
    assert config["agent-deploy:pullRequests"]["base"] in deployed  # the base exists first


def test_the_preview_comment_shows_the_environment_url_read_with_the_preview_role():
    jobs = workflow("preview")["jobs"]
    environment, cost = jobs["environment"], jobs["cost"]
    assert environment["environment"] == "staging-preview"  # read-only role and token
    assert environment["permissions"] == {"contents": "read", "id-token": "write"}
    assert not any("command" in (s.get("with") or {}) for s in environment["steps"])
    assert environment["env"]["STACK"] == "pr-${{ github.event.pull_request.number }}"
    roles = [s["with"]["role-to-assume"] for s in environment["steps"] if "aws-actions" in str(s)]
    assert roles == ["${{ vars.AWS_PREVIEW_ROLE_ARN }}"]
    read = step(environment, "serviceUrl of pr-<n>")
    assert read["run"] == 'scripts/environment-url.sh "$STACK" >> "$GITHUB_OUTPUT"'
    assert environment["outputs"]["url"] == "${{ steps.url.outputs.url }}"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in str(
        environment["if"]
    )
    # The cost comment waits for it, and is posted even when the URL could not be read.
    assert cost["needs"] == "environment" and cost["if"].startswith("always()")
    pricing = step(cost, "Price")
    assert pricing["env"]["ENVIRONMENT_URL"] == "${{ needs.environment.outputs.url }}"
    assert 'echo "**Environment \\`$PR_STACK\\`**: $ENVIRONMENT_URL"' in pricing["run"]
    assert 'cost --stack pr --base "$BASE_SHA" --markdown' in pricing["run"]


def _fake_pulumi(tmp_path: Path, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {tmp_path / "calls"}\n{body}\n')
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKEND_URL": "s3://b"}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            'echo "http://agent-staging-alb-1.eu-west-1.elb.amazonaws.com:10042"',
            "http://agent-staging-alb-1.eu-west-1.elb.amazonaws.com:10042",
        ),
        ('echo "https://pr-42.pr.example.com"', "https://pr-42.pr.example.com"),
        ('echo "error: no stack named pr-42" >&2; exit 255', ""),  # not created yet
        ('printf "https://x\\nurl=https://evil"', ""),  # never a second output line
        ('echo "[secret]"', ""),
    ],
)
def test_environment_url_is_the_stack_output_or_nothing(tmp_path, output, expected):
    body = f'case "$1" in login) exit 0;; stack) {output};; esac'
    env = _fake_pulumi(tmp_path, body)
    result = subprocess.run(
        [str(SCRIPT), "pr-42"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"url={expected}\n"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["login s3://b", "stack output serviceUrl --stack pr-42"]


def test_environment_url_is_empty_when_the_backend_refuses_the_login(tmp_path):
    env = _fake_pulumi(tmp_path, "exit 1")
    result = subprocess.run(
        [str(SCRIPT), "pr-42"], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "url=\n")
    assert "::warning::" in result.stderr
