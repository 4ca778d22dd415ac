"""Issue 11's flows in the workflows: promotion by digest, rollback, drift detection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.ci.test_workflows import (
    ARM64_LABELS,
    AWS_ACTION,
    PULUMI_ACTION,
    WORKFLOWS,
    _load,
    cli_steps,
    commands,
    env_name,
    job_stacks,
    load_expanded,
    pulumi_steps,
    reusable,
    runner_label,
    runs,
    steps,
    triggers,
    uses,
)
from tests.harness import run_stack

ROOT = WORKFLOWS.parents[1]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-staging-registry-repo@sha256:" + (
    "ab" * 32
)


def wf(name: str) -> dict[str, Any]:
    """The workflow as it runs: a job calling deploy-stack.yml is that job with its inputs."""
    return load_expanded(WORKFLOWS / f"{name}.yml")


def step_index(job: dict[str, Any], predicate: Any) -> int:
    return next(i for i, s in enumerate(steps(job)) if predicate(s))


def pin_then_up(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step that pins app.image, and the `up` after it."""
    pin = step_index(job, lambda s: "config set --path app.image" in str(s.get("run", "")))
    up = step_index(job, lambda s: (s.get("with") or {}).get("command") == "up")
    assert pin < up, "app.image is pinned before pulumi up"
    return steps(job)[pin], steps(job)[up]


def test_staging_records_the_digest_it_ran_only_after_its_smoke_test():
    jobs = wf("deploy")["jobs"]
    assert jobs["staging"]["outputs"]["image"] == "${{ steps.up.outputs.image }}"
    record = jobs["record"]
    assert record["needs"] == ["staging"]  # the staging job ends with the smoke test
    smoke = step_index(jobs["staging"], lambda s: s.get("id") == "smoke")
    assert smoke == len(steps(jobs["staging"])) - 1
    assert record["permissions"] == {"checks": "write"}
    assert not cli_steps(record) and not any(uses(s) == AWS_ACTION for s in steps(record))
    (step,) = steps(record)
    assert step["env"]["IMAGE"] == "${{ needs.staging.outputs.image }}"
    assert "name=staging-image" in step["run"] and '"output[summary]=$IMAGE"' in step["run"]
    assert "@sha256:[0-9a-f]{64}$" in step["run"]  # only a digest-pinned reference


def test_production_promotes_the_recorded_digest_and_builds_nothing():
    jobs = wf("production")["jobs"]
    gate, production = jobs["staged"], jobs["production"]
    assert gate["outputs"]["image"] == "${{ steps.image.outputs.image }}"
    reader = next(s for s in steps(gate) if s.get("id") == "image")
    assert "commits/$SHA/check-runs?check_name=staging-image" in reader["run"]
    assert "GITHUB_STEP_SUMMARY" in reader["run"]  # the run shows the digest it promotes
    assert "exit 1" in reader["run"]
    pin, up = pin_then_up(production)
    assert pin["env"]["IMAGE"] == "${{ needs.staged.outputs.image }}"
    assert '--path app.image "$IMAGE" --stack "$STACK"' in pin["run"]
    assert production["env"]["STACK"] == up["with"]["stack-name"] == "production"
    # No build: an x64 runner, no architecture check, and the program registers none.
    assert runner_label(production) not in ARM64_LABELS
    assert "uname -m" not in runs(production)
    promoted = run_stack("production", {"app": {"image": IMAGE}})
    assert promoted.of_type("docker-build:index:Image") == []
    # It runs its own copy of those bytes: same digest, production's registry.
    (copy,) = promoted.of_type("command:local:Command")
    assert copy.plain["environment"]["SOURCE"] == IMAGE
    assert promoted.outputs["image"].partition("@")[2] == IMAGE.partition("@")[2]
    assert "/agent-production-registry-repo@" in promoted.outputs["image"]
    # The copy runs skopeo on the deploying runner: checked before `pulumi up`.
    shared = _load(WORKFLOWS / "deploy-stack.yml")
    (job,) = shared["jobs"].values()
    check = next(s for s in job["steps"] if "skopeo" in s.get("name", ""))
    assert check["if"] == "inputs.mode != 'build'"
    names = [s.get("name") for s in job["steps"]]
    assert names.index(check["name"]) < names.index("pulumi up")
    # Run as written against stand-in tools: Ubuntu 22.04's skopeo 1.4 lacks --preserve-digests.
    assert _skopeo_check(check["run"], "1.13.3", "aws").returncode == 0
    old = _skopeo_check(check["run"], "1.4.1", "aws")
    assert old.returncode == 1 and "skopeo 1.6 or later" in old.stdout
    missing = _skopeo_check(check["run"], "1.13.3", "aws", with_cli=False)
    assert missing.returncode == 1 and "aws is missing" in missing.stdout


def _skopeo_check(
    script: str, version: str, cloud: str, with_cli: bool = True
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as bin_dir:
        tools = {"skopeo": f"echo 'skopeo version {version}'"}
        if with_cli:
            tools["aws" if cloud == "aws" else "gcloud"] = "true"
        for tool, body in tools.items():
            path = Path(bin_dir) / tool
            path.write_text(f"#!/bin/sh\n{body}\n")
            path.chmod(0o755)
        sed = shutil.which("sed")
        assert sed is not None
        (Path(bin_dir) / "sed").symlink_to(sed)  # the only other tool it uses: PATH is just this
        return subprocess.run(
            ["/bin/bash", "-c", script],
            env={"PATH": bin_dir, "CLOUD": cloud},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip


SHARED = "$/.github/workflows/deploy-stack.yml"
DEPLOYERS = {"deploy": "staging", "production": "production", "rollback": "${{ inputs.stack }}"}


def caller(name: str) -> dict[str, Any]:
    """The job of workflow `name` that calls the shared deploy definition, as written."""
    (job,) = [j for j in _load(WORKFLOWS / f"{name}.yml")["jobs"].values() if "uses" in j]
    return job


def test_staging_production_and_rollback_deploy_through_one_definition():
    shared = _load(WORKFLOWS / "deploy-stack.yml")
    assert reusable(shared)
    (job,) = shared["jobs"].values()
    assert env_name(job) == "${{ inputs.stack }}"  # the environment's rules apply to this job
    for name, stack in DEPLOYERS.items():
        assert caller(name)["uses"] == SHARED, name
        assert caller(name)["with"]["stack"] == stack, name
        assert "steps" not in caller(name), f"{name}: no deploy steps of its own"
    # No other copy: every other `pulumi up` of a long-lived stack is gone.
    for path in WORKFLOWS.glob("*.yml"):
        if path.name == "deploy-stack.yml":
            continue
        for job_name, raw in _load(path)["jobs"].items():
            if "up" in commands(raw):
                assert all(s.startswith("pr-") for s in job_stacks(raw)), f"{path.name}.{job_name}"


def test_callers_grant_exactly_what_the_shared_deploy_job_needs():
    shared = _load(WORKFLOWS / "deploy-stack.yml")
    assert shared["permissions"] == {}
    (job,) = shared["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    for name in DEPLOYERS:
        assert caller(name)["permissions"] == job["permissions"], name
        assert "secrets" not in caller(name), f"{name}: Pulumi's secrets are the environment's"


def test_staging_builds_on_arm64_and_production_passes_the_digest_and_never_builds():
    staging, production = caller("deploy"), caller("production")
    assert staging["with"]["mode"] == "build" and "image" not in staging["with"]
    assert runner_label({"runs-on": staging["with"]["runner"]}) in ARM64_LABELS
    assert production["with"] == {
        "stack": "production",
        "mode": "promote",
        "image": "${{ needs.staged.outputs.image }}",
        "require-https": True,
    }
    assert production["needs"] == "staged"
    # As it runs: no architecture check, no emulation, the promoted image pinned before `up`.
    job = wf("production")["jobs"]["production"]
    assert runner_label(job) not in ARM64_LABELS
    assert not [s for s in steps(job) if "qemu" in uses(s) or "uname -m" in str(s.get("run"))]
    assert not [s for s in steps(job) if "rollback-image.sh" in str(s.get("run"))]
    pin, _ = pin_then_up(job)
    assert pin["env"]["IMAGE"] == "${{ needs.staged.outputs.image }}"


def check_inputs(mode: str, image: str) -> subprocess.CompletedProcess[str]:
    (job,) = _load(WORKFLOWS / "deploy-stack.yml")["jobs"].values()
    script = next(s for s in steps(job) if s.get("name") == "Check the inputs")["run"]
    env = {"PATH": os.environ["PATH"], "MODE": mode, "IMAGE": image}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False, timeout=30
    )


@pytest.mark.parametrize(
    ("mode", "image", "refusal"),
    [
        ("build", "", None),
        ("promote", IMAGE, None),
        ("rollback", "", None),
        ("rollback", "sha256:" + "cd" * 32, None),
        ("promote", "agent:latest", "digest-pinned"),
        ("promote", "", "digest-pinned"),
        ("build", IMAGE, "image must be empty"),
        ("deploy", "", "allowed: build, promote, rollback"),
    ],
)
def test_the_shared_deploy_refuses_inputs_it_cannot_deploy(mode, image, refusal):
    """Before any credential: production never `up`s an unpinned image, a build never pins."""
    result = check_inputs(mode, image)
    if refusal is None:
        assert result.returncode == 0, result.stdout
    else:
        assert result.returncode == 1 and "::error::" in result.stdout
        assert refusal in result.stdout


def test_rollback_runs_through_the_stacks_protected_environment_building_nothing():
    rollback = wf("rollback")
    assert set(triggers(rollback)) == {"workflow_dispatch"}
    inputs = triggers(rollback)["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["options"] == ["staging", "production"]
    assert inputs["to"]["required"] is False
    (job,) = rollback["jobs"].values()
    assert env_name(job) == "${{ inputs.stack }}"  # production: its reviewers and branch policy
    assert job["if"] == "github.ref == 'refs/heads/main'"
    assert job["concurrency"] == {
        "group": "pulumi-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    pin, up = pin_then_up(job)
    assert 'scripts/rollback-image.sh "$STACK" "$TO"' in pin["run"]
    assert pin["env"]["TO"] == "${{ inputs.to }}"
    assert up["with"]["stack-name"] == "${{ inputs.stack }}"
    assert commands(job) == {"up"} and runner_label(job) not in ARM64_LABELS
    assert "smoke-test.sh" in runs(job)


def test_drift_previews_each_stack_read_only_and_only_the_report_writes_issues():
    drift = wf("drift")
    assert "schedule" in triggers(drift)
    jobs = drift["jobs"]
    preview = jobs["drift"]
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "production"]
    assert preview["strategy"]["fail-fast"] is False
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    role = next(s for s in steps(preview) if uses(s) == AWS_ACTION)["with"]["role-to-assume"]
    assert role == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    (run,) = pulumi_steps(preview)
    assert run["with"]["command"] == "preview"
    assert run["with"]["refresh"] is True and run["with"]["expect-no-changes"] is True
    pin = steps(preview)[step_index(preview, lambda s: "app.image" in str(s.get("run")))]
    # Drift pins what the last `up` was given: production's promoted source (its copy's inputs
    # then match), and nothing for staging, which builds (pinning would drop its build).
    assert "pulumi stack output imageSource" in pin["run"] and '[ -n "$source" ]' in pin["run"]
    promoted = run_stack("production", {"app": {"image": IMAGE}})
    assert promoted.outputs["imageSource"] == IMAGE != promoted.outputs["image"]
    assert run_stack("staging").outputs["imageSource"] == ""

    report = jobs["report"]
    assert report["needs"] == ["drift"] and report["if"].startswith("always()")
    assert report["permissions"] == {"actions": "read", "issues": "write"}
    assert not cli_steps(report) and not any(uses(s) == AWS_ACTION for s in steps(report))
    for name, job in jobs.items():
        if name != "report":
            assert "issues" not in (job.get("permissions") or {}), name


# --- the report script, with a stand-in `gh` -------------------------------------------------
FAKE_GH = """#!/usr/bin/env bash
all="$*"; echo "${all//$'\n'/ }" >> "$RECORD"  # one line per call
case "$1 $2" in
  "api repos/"*) printf '%s\\n' "$JOBS" | jq -r "${@: -1}";;
  "issue list") printf '%s\\n' "$ISSUES" | jq -r "${@: -1}";;
esac
"""


def report(tmp_path: Path, jobs: list[dict[str, str]], issues: list[dict[str, Any]]) -> str:
    (tmp_path / "gh").write_text(FAKE_GH)
    (tmp_path / "gh").chmod(0o755)
    (step,) = steps(wf("drift")["jobs"]["report"])
    env = {
        **os.environ,
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        "RECORD": str(tmp_path / "record"),
        "JOBS": json.dumps({"jobs": jobs}),
        "ISSUES": json.dumps(issues),
        "GH_TOKEN": "t",
        "REPOSITORY": "example-org/agent-deploy",
        "RUN_ID": "42",
        "RUN_URL": "https://github.com/example-org/agent-deploy/actions/runs/42",
    }
    subprocess.run(["bash", "-c", step["run"]], env=env, check=True, timeout=30)
    record = tmp_path / "record"
    return record.read_text() if record.exists() else ""


def job(stack: str, conclusion: str) -> dict[str, str]:
    return {"name": f"drift ({stack})", "conclusion": conclusion, "html_url": f"https://x/{stack}"}


TITLE = {"number": 7, "title": "Infrastructure drift detected"}


@pytest.fixture(autouse=True)
def _needs_jq() -> None:
    if subprocess.run(["which", "jq"], capture_output=True, check=False).returncode:
        pytest.skip("jq not installed")


def test_drift_opens_one_issue_naming_the_drifted_stack(tmp_path: Path):
    calls = report(tmp_path, [job("staging", "success"), job("production", "failure")], [])
    (create,) = [c for c in calls.splitlines() if c.startswith("issue create")]
    assert "--title Infrastructure drift detected" in create
    assert "`production`: failure" in create and "https://x/production" in create
    assert "`staging`" not in create


def test_drift_again_updates_the_open_issue(tmp_path: Path):
    calls = report(tmp_path, [job("staging", "failure"), job("production", "success")], [TITLE])
    assert "issue create" not in calls
    assert "issue edit 7 " in calls and "issue comment 7 " in calls


def test_a_clean_run_closes_the_issue_and_otherwise_does_nothing(tmp_path: Path):
    clean = [job("staging", "success"), job("production", "success")]
    assert "issue close 7 " in report(tmp_path, clean, [TITLE])
    (tmp_path / "record").unlink()
    calls = report(tmp_path, clean, [])
    assert not [c for c in calls.splitlines() if c.startswith("issue ") and "list" not in c]


def test_every_pulumi_action_is_the_pinned_one():
    for name in ("drift", "rollback", "production"):
        for job_ in wf(name)["jobs"].values():
            for step in cli_steps(job_):
                assert uses(step) == PULUMI_ACTION and "pulumi-version" in step["with"]
