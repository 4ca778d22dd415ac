"""The delivery workflows keep the promises docs/bootstrapping.md makes.

These parse .github/workflows/*.yml and assert the behaviour that matters: which events
run what, with which permissions, in which GitHub environment, against which stack,
under which concurrency group, and that every stack a workflow names has a stack file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
EXPECTED = {"ci", "preview", "deploy", "ephemeral"}

PULUMI_ACTION = "pulumi/actions"
AWS_ACTION = "aws-actions/configure-aws-credentials"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
PR_STACK = "pr-${{ github.event.pull_request.number }}"
MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.(\w+)\s*\}\}")
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+v\d+\.\d+\.\d+\s*$"
)


# The policy pack is passed once it exists (policy/PulumiPolicy.yaml), never before: a
# `policyPacks` input pointing at nothing fails every preview and deploy.
EXPECTED_POLICY_PACK = (
    "policy"
    if (Path(__file__).resolve().parents[2] / "policy" / "PulumiPolicy.yaml").is_file()
    else None
)


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {p.stem: _load(p) for p in sorted(WORKFLOWS.glob("*.yml"))}


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as boolean True.
    on = wf.get("on", wf.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), "workflow has no triggers"
    return {k: (v or {}) for k, v in on.items()}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


def pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps(job) if uses(s) == PULUMI_ACTION]


def all_jobs(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for wf_name, wf in workflows.items():
        for job_name, job in (wf.get("jobs") or {}).items():
            yield wf_name, job_name, job


def matrix_values(job: dict[str, Any], text: str) -> list[str]:
    """Expand `${{ matrix.x }}` in text over the job's matrix (a list per key)."""
    match = MATRIX_REF.search(text)
    if not match:
        return [text]
    values = ((job.get("strategy") or {}).get("matrix") or {}).get(match.group(1))
    assert isinstance(values, list), f"matrix.{match.group(1)} is not a list"
    assert values, f"matrix.{match.group(1)} is empty"
    return [
        expanded
        for value in values
        for expanded in matrix_values(job, text.replace(match.group(0), str(value), 1))
    ]


def env_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        return str(env.get("name"))
    return None if env is None else str(env)


def job_stacks(job: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for step in pulumi_steps(job):
        names += matrix_values(job, str((step.get("with") or {}).get("stack-name", "")))
    return names


def commands(job: dict[str, Any]) -> set[str]:
    return {str((s.get("with") or {}).get("command")) for s in pulumi_steps(job)}


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def write_scopes(perms: Any) -> set[str]:
    if perms in ("write-all",):
        return {"*"}
    if not isinstance(perms, dict):
        return set()
    return {scope for scope, level in perms.items() if level == "write"}


# --- inventory and triggers -------------------------------------------------------------


def test_the_four_workflows_exist(workflows):
    assert set(workflows) >= EXPECTED, f"missing: {EXPECTED - set(workflows)}"
    assert not list(WORKFLOWS.glob("*.yaml")), "use the .yml extension (tests and docs glob it)"


def test_no_trigger_runs_untrusted_code_with_repository_privileges(workflows):
    for name, wf in workflows.items():
        on = triggers(wf)
        assert "pull_request_target" not in on, name
        assert "workflow_run" not in on, name


def test_ci_runs_on_pull_requests_and_pushes(workflows):
    on = triggers(workflows["ci"])
    assert "pull_request" in on
    assert "push" in on


def test_ci_is_credential_free_so_fork_prs_get_it(workflows):
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    assert "secrets." not in text
    ci = workflows["ci"]
    assert not write_scopes(ci.get("permissions"))
    for name, job in ci["jobs"].items():
        assert "environment" not in job, name
        assert not write_scopes(job.get("permissions")), name
        assert not any(uses(s) in (AWS_ACTION, PULUMI_ACTION) for s in steps(job)), name
        if "if" in job:
            assert "head.repo" not in str(job["if"]), f"{name} must not skip fork PRs"


def test_ci_installs_frozen_with_bytecode_and_runs_every_check(workflows):
    ci = workflows["ci"]
    text = "\n".join(runs(job) for job in ci["jobs"].values())
    syncs = re.findall(r"uv sync[^\n]*", text)
    assert syncs, "no uv sync"
    bytecode_env = str((ci.get("env") or {}).get("UV_COMPILE_BYTECODE")) == "1"
    for sync in syncs:
        assert "--frozen" in sync, sync
        assert "--compile-bytecode" in sync or bytecode_env, sync
    for verb in ("make lint", "make lint-workflows", "make test", "make check-all"):
        assert re.search(rf"^\s*{re.escape(verb)}\s*$", text, re.M), f"CI never runs {verb}"


def test_preview_runs_on_same_repository_pull_requests_for_staging_and_production(workflows):
    wf = workflows["preview"]
    assert set(triggers(wf)) == {"pull_request"}
    previewed: set[str] = set()
    for name, job in wf["jobs"].items():
        if not pulumi_steps(job):
            continue
        assert SAME_REPO in str(job.get("if", "")), f"{name}: fork PRs have no OIDC token"
        assert commands(job) == {"preview"}, name
        for step in pulumi_steps(job):
            args = step.get("with") or {}
            assert args.get("comment-on-pr") is True, name
            assert args.get("policyPacks") == EXPECTED_POLICY_PACK, name
        previewed |= set(job_stacks(job))
    assert previewed == {"staging", "production"}


def test_deploy_pushes_to_main_go_to_staging_and_production_is_manual(workflows):
    wf = workflows["deploy"]
    on = triggers(wf)
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"].get("branches") == ["main"]
    assert "pull_request" not in on

    by_stack = {stack: job for _, job in wf["jobs"].items() for stack in job_stacks(job)}
    assert set(by_stack) == {"staging", "production"}
    staging, production = by_stack["staging"], by_stack["production"]
    assert commands(staging) == {"up"}
    assert commands(production) == {"up"}
    assert env_name(staging) == "staging"
    assert env_name(production) == "production"
    condition = str(production.get("if", ""))
    assert "github.event_name == 'workflow_dispatch'" in condition
    assert "refs/heads/main" in condition
    needs = production.get("needs")
    assert "staging" in ([needs] if isinstance(needs, str) else needs or []), (
        "production must be promoted through staging"
    )
    for job in (staging, production):
        for step in pulumi_steps(job):
            assert (step.get("with") or {}).get("policyPacks") == EXPECTED_POLICY_PACK


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_deploy_smoke_tests_the_health_path_after_up(workflows, stack):
    job = next(j for j in workflows["deploy"]["jobs"].values() if stack in job_stacks(j))
    job_steps = steps(job)
    up_index = next(i for i, s in enumerate(job_steps) if uses(s) == PULUMI_ACTION)
    smoke = [s for s in job_steps[up_index + 1 :] if "curl" in str(s.get("run", ""))]
    assert smoke, f"{stack}: no smoke test after pulumi up"
    run, env = str(smoke[0]["run"]), smoke[0].get("env") or {}
    assert "vars.SERVICE_URL" in str(env.get("SERVICE_URL")), "URL must come in via env"
    assert "vars.HEALTH_PATH" in str(env.get("HEALTH_PATH"))
    assert "$SERVICE_URL" in run
    assert "HEALTH_PATH" in run
    assert "--fail" in run, "an HTTP error must count as a failed try"
    assert "--max-time" in run, "each try must fail fast"
    assert "until " in run, "must retry"
    assert "deadline" in run, "retries must stop at a deadline"


def smoke_steps() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for name in ("deploy", "ephemeral"):
        wf = _load(WORKFLOWS / f"{name}.yml")
        for job_name, job in wf["jobs"].items():
            for step in steps(job):
                if "curl" in str(step.get("run", "")) and "SERVICE_URL" in (step.get("env") or {}):
                    found.append((f"{name}.{job_name}", wf, step))
    return found


class _Health(BaseHTTPRequestHandler):
    failures_left = 0
    paths: list[str] = []  # noqa: RUF012 - reset per test

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        healthy = self.path == "/ok" and type(self).failures_left <= 0
        type(self).failures_left -= 1
        self.send_response(200 if healthy else 503)
        self.end_headers()
        self.wfile.write(b"ok" if healthy else b"starting")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"paths": [], "failures_left": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _run_smoke(
    step: dict[str, Any], tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    output = tmp_path / "github_output"
    output.touch()
    full_env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "GITHUB_OUTPUT": str(output),
        "STACK": "pr-1",
        "SMOKE_INTERVAL_SECONDS": "0.1",
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SMOKE_STEPS = smoke_steps()


def test_every_deploying_job_has_a_smoke_test():
    assert sorted(where for where, _, _ in SMOKE_STEPS) == [
        "deploy.production",
        "deploy.staging",
        "ephemeral.up",
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_retries_until_healthy(where, wf, step, health_server, tmp_path):
    base, handler = health_server
    handler.failures_left = 2
    assert int(wf["env"]["SMOKE_DEADLINE_SECONDS"]) >= 60, "cold starts need time"
    result = _run_smoke(
        step, tmp_path, SERVICE_URL=base + "/", HEALTH_PATH="/ok", SMOKE_DEADLINE_SECONDS="20"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert handler.paths == ["/ok", "/ok", "/ok"], "one request per try, on the health path"
    assert f"url={base}/ok" in (tmp_path / "github_output").read_text()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_fails_at_its_deadline(where, wf, step, health_server, tmp_path):
    base, handler = health_server
    handler.failures_left = 10**6
    started = time.monotonic()
    result = _run_smoke(
        step, tmp_path, SERVICE_URL=base, HEALTH_PATH="/ok", SMOKE_DEADLINE_SECONDS="2"
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 15, "must give up at the deadline"
    assert len(handler.paths) > 1, "must retry before giving up"


@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_fails_at_once_without_a_url(where, wf, step, tmp_path):
    started = time.monotonic()
    result = _run_smoke(
        step, tmp_path, SERVICE_URL="", HEALTH_PATH="/ok", SMOKE_DEADLINE_SECONDS="30"
    )
    assert result.returncode != 0
    assert "::error::" in result.stdout, "say why, in the run's annotations"
    assert time.monotonic() - started < 10, "an empty URL is a configuration error, not a retry"


def test_workflows_read_only_stack_outputs_the_program_exports():
    """`steps.up.outputs.X` is the stack output X: a renamed export would empty the URL."""
    referenced = set()
    for path in WORKFLOWS.glob("*.yml"):
        referenced |= set(re.findall(r"steps\.up\.outputs\.(\w+)", path.read_text("utf-8")))
    assert referenced, "the smoke tests read the URL from the stack outputs"
    exported = "\n".join(p.read_text("utf-8") for p in (ROOT / "stacks").glob("*.py"))
    for name in sorted(referenced):
        assert f'"{name}"' in exported, f"no stack program exports {name!r}"


def test_deploy_notifies_slack_only_when_the_webhook_exists(workflows):
    jobs = workflows["deploy"]["jobs"]
    slack = [
        (name, job)
        for name, job in jobs.items()
        if "SLACK_WEBHOOK_URL" in str([s.get("env") for s in steps(job)])
    ]
    assert len(slack) == 1, "exactly one job may see the webhook"
    name, job = slack[0]
    assert not pulumi_steps(job), "the webhook must not sit in a job running Pulumi"
    assert "always()" in str(job.get("if", "")), "failed deploys must notify too"
    assert re.search(r'-z "\$SLACK_WEBHOOK_URL"', runs(job)), f"{name}: must no-op without it"


def test_ephemeral_lifecycle_follows_the_pull_request(workflows):
    wf = workflows["ephemeral"]
    on = triggers(wf)
    assert set(on) == {"pull_request"}
    assert {"opened", "synchronize", "reopened", "closed"} <= set(on["pull_request"]["types"])

    by_command = {}
    for name, job in wf["jobs"].items():
        if pulumi_steps(job):
            assert SAME_REPO in str(job.get("if", "")), f"{name}: forks get no OIDC token"
            assert env_name(job) == "ephemeral", name
            assert [s["with"]["stack-name"] for s in pulumi_steps(job)] == [PR_STACK], name
            (command,) = commands(job)
            by_command[command] = job
    assert set(by_command) == {"up", "destroy"}

    up, destroy = by_command["up"], by_command["destroy"]
    assert "github.event.action != 'closed'" in str(up["if"])
    assert "github.event.action == 'closed'" in str(destroy["if"])
    assert pulumi_steps(up)[0]["with"].get("upsert") is True
    assert pulumi_steps(up)[0]["with"].get("policyPacks") == EXPECTED_POLICY_PACK
    assert pulumi_steps(destroy)[0]["with"].get("remove") is True
    assert "comments" in runs(up), "the URL must be commented on the PR"


@pytest.mark.parametrize("command", ["up", "destroy"])
def test_ephemeral_stack_file_is_copied_from_the_template_first(workflows, command):
    job = next(j for j in workflows["ephemeral"]["jobs"].values() if commands(j) == {command})
    job_steps = steps(job)
    up_index = next(i for i, s in enumerate(job_steps) if uses(s) == PULUMI_ACTION)
    copy = 'cp Pulumi.pr.yaml "Pulumi.pr-${PR_NUMBER}.yaml"'
    assert any(copy in str(s.get("run", "")) for s in job_steps[:up_index])
    pr_number = (job.get("env") or {}).get("PR_NUMBER")
    assert pr_number == "${{ github.event.pull_request.number }}"


# --- cross-cutting rules ----------------------------------------------------------------


def test_permissions_are_read_by_default_and_write_only_where_needed(workflows):
    for wf_name, wf in workflows.items():
        assert "permissions" in wf, f"{wf_name}: set top-level permissions"
        assert not write_scopes(wf["permissions"]), f"{wf_name}: top level must be read-only"
    for wf_name, job_name, job in all_jobs(workflows):
        where = f"{wf_name}.{job_name}"
        granted = write_scopes(job.get("permissions"))
        assert granted <= {"id-token", "pull-requests"}, f"{where}: {granted}"
        assumes_role = any(uses(s) == AWS_ACTION for s in steps(job))
        assert ("id-token" in granted) == assumes_role, f"{where}: id-token iff OIDC"
        comments = any(
            (s.get("with") or {}).get("comment-on-pr") is True for s in pulumi_steps(job)
        ) or bool(re.search(r"gh api .*comments", runs(job)))
        assert ("pull-requests" in granted) == comments, f"{where}: pull-requests iff comments"


def test_pulumi_changes_are_serialised_per_stack_and_never_cancelled(workflows):
    groups: dict[str, set[str]] = {}
    for wf_name, job_name, job in all_jobs(workflows):
        if not pulumi_steps(job):
            continue
        where = f"{wf_name}.{job_name}"
        top = workflows[wf_name].get("concurrency")
        if isinstance(top, dict):
            assert top.get("cancel-in-progress") is False, f"{wf_name}: top-level cancels"
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{where}: needs a job concurrency group"
        assert concurrency.get("cancel-in-progress") is False, where
        group = str(concurrency["group"])
        if commands(job) & {"up", "destroy", "refresh"}:
            stacks = set(job_stacks(job))
            assert len(stacks) == 1, f"{where}: one stack per changing job"
            assert group == f"pulumi-{stacks.pop()}", f"{where}: group {group!r}"
        else:
            # A preview queued in a deploy's group would replace a queued deploy.
            assert not group.startswith("pulumi-"), where
            assert "pull_request.number" in group, where
        groups.setdefault(group, set()).add(where)
    assert groups["pulumi-staging"]
    assert groups["pulumi-production"]


def test_jobs_that_touch_a_stack_run_in_its_environment(workflows):
    for wf_name, job_name, job in all_jobs(workflows):
        if not pulumi_steps(job):
            continue
        where = f"{wf_name}.{job_name}"
        env = env_name(job)
        assert env, f"{where}: OIDC trust is pinned to an environment"
        envs = matrix_values(job, env)
        stacks = job_stacks(job)
        for stack, environment in zip(stacks, envs, strict=True):
            if commands(job) == {"preview"}:
                expected = f"{stack}-preview"
            elif stack == PR_STACK:
                expected = "ephemeral"
            else:
                expected = stack
            assert environment == expected, f"{where}: {stack} runs in {environment}"


def test_every_stack_a_workflow_names_has_a_stack_file(workflows):
    named = {stack for _, _, job in all_jobs(workflows) for stack in job_stacks(job)}
    assert named, "no workflow names a stack"
    for stack in sorted(named):
        if stack == PR_STACK:
            assert (ROOT / "Pulumi.pr.yaml").is_file(), "ephemeral template Pulumi.pr.yaml"
            continue
        assert re.fullmatch(r"[a-z][a-z0-9-]*", stack), f"unexpected stack name {stack!r}"
        assert (ROOT / f"Pulumi.{stack}.yaml").is_file(), f"no Pulumi.{stack}.yaml"


def test_cloud_credentials_come_from_oidc_only(workflows):
    for wf_name, job_name, job in all_jobs(workflows):
        for step in steps(job):
            blob = str(step.get("with")) + str(step.get("env"))
            assert "AWS_SECRET_ACCESS_KEY" not in blob, f"{wf_name}.{job_name}"
            assert "aws-secret-access-key" not in blob, f"{wf_name}.{job_name}"
            if uses(step) == AWS_ACTION:
                role = str(step["with"]["role-to-assume"])
                assert role.startswith("${{ vars.AWS_"), f"{wf_name}.{job_name}: {role}"
        if pulumi_steps(job) and commands(job) != {"preview"}:
            assert any(uses(s) == AWS_ACTION for s in steps(job)), f"{wf_name}.{job_name}"


def test_every_action_is_pinned_to_a_full_sha_with_a_version_comment():
    seen: dict[str, str] = {}
    count = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not re.match(r"^\s*(?:-\s+)?uses:", line):
                continue
            count += 1
            match = PINNED.match(line)
            assert match, f"{path.name}:{number}: not pinned to sha + '# vX.Y.Z': {line.strip()}"
            action, sha = match["action"], match["sha"]
            assert seen.setdefault(action, sha) == sha, f"{action} pinned to two SHAs"
    assert count >= 4


def test_checkout_never_persists_credentials(workflows):
    checkouts = 0
    for wf_name, job_name, job in all_jobs(workflows):
        for step in steps(job):
            if uses(step) == "actions/checkout":
                checkouts += 1
                assert (step.get("with") or {}).get("persist-credentials") is False, (
                    f"{wf_name}.{job_name}"
                )
    assert checkouts >= len(EXPECTED)


def test_no_expression_is_interpolated_into_a_shell_script(workflows):
    for wf_name, job_name, job in all_jobs(workflows):
        for step in steps(job):
            assert "${{" not in str(step.get("run", "")), (
                f"{wf_name}.{job_name}: pass values through env:, not into run:"
            )


def test_dependabot_keeps_actions_and_uv_current():
    config = _load(ROOT / ".github" / "dependabot.yml")
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert {"github-actions", "uv"} <= set(ecosystems)
    for update in ecosystems.values():
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] in {"daily", "weekly"}


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


@pytest.mark.parametrize(
    "argv",
    [
        ["actionlint", "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))],
        ["zizmor", "--offline", "--no-progress", ".github"],
    ],
    ids=["actionlint", "zizmor"],
)
def test_workflow_linters_report_nothing(argv):
    tool = _tool(argv[0])
    if tool is None:
        pytest.skip(f"{argv[0]} is not installed (dev group)")
    result = subprocess.run(
        [tool, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
