"""The delivery workflows keep the promises docs/bootstrapping.md makes.

These parse .github/workflows/*.yml and assert the behaviour that matters: which events
run what, with which permissions, in which GitHub environment, against which stack,
under which concurrency group, and that every stack a workflow names has a stack file.
"""

from __future__ import annotations

import json
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
EXPECTED = {"ci", "preview", "deploy", "production", "ephemeral", "janitor"}

PULUMI_ACTION = "pulumi/actions"
AWS_ACTION = "aws-actions/configure-aws-credentials"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
PR_STACK = "pr-${{ github.event.pull_request.number }}"
MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.(\w+)\s*\}\}")
PINS_IMAGE = "config set --path app.image"
INPUT_REF = re.compile(r"\$\{\{\s*inputs\.(\w+)\s*\}\}")
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


# A job that calls a reusable workflow of this repository (`$/` pins it to the caller's commit).
LOCAL_CALL = re.compile(r"^[$.]/(?P<path>\.github/workflows/[\w.-]+\.yml)$")
INPUT_EXPR = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")
INPUT_TEST = re.compile(r"^inputs\.([\w-]+)\s*(==|!=)\s*'([^']*)'$")
CALLER_KEYS = ("name", "if", "needs", "permissions", "concurrency", "strategy")


def reusable(wf: dict[str, Any]) -> bool:
    """Only ever called by other workflows: checked through its callers' jobs."""
    return set(triggers(wf)) == {"workflow_call"}


def called(job: dict[str, Any]) -> Path | None:
    match = LOCAL_CALL.match(str(job.get("uses", "")))
    return ROOT / match["path"] if match else None


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _substitute(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, inputs) for v in value]
    if isinstance(value, str):
        return INPUT_EXPR.sub(lambda m: _text(inputs[m.group(1)]), value)
    return value


def _decided(condition: str, inputs: dict[str, Any]) -> str | None:
    """A step's `if:` with the conjuncts the caller's literal inputs decide taken out; None when
    one of them is false (GitHub skips the step for that caller)."""
    left = []
    for part in (p.strip() for p in condition.split("&&")):
        test = INPUT_TEST.match(part)
        value = inputs.get(test.group(1)) if test else None
        if test is None or "${{" in _text(value):
            left.append(part)
        elif (_text(value) == test.group(3)) != (test.group(2) == "=="):
            return None
    return " && ".join(left)


def expand(job: dict[str, Any]) -> dict[str, Any]:
    """A caller's job as it runs: the called workflow's job with the caller's inputs (and the
    defaults) filled in, the steps its inputs skip left out, the called workflow's env under
    the job's own, and the caller's name, condition, needs, permissions and concurrency."""
    path = called(job)
    if path is None:
        return job
    target = _load(path)
    declared = triggers(target)["workflow_call"].get("inputs") or {}
    unknown = set(job.get("with") or {}) - set(declared)
    assert not unknown, f"{path.name} has no input {sorted(unknown)}"
    inputs = {k: spec.get("default", "") for k, spec in declared.items()}
    inputs |= dict(job.get("with") or {})
    (inner,) = target["jobs"].values()
    result = _substitute(dict(inner), inputs)
    kept = []
    for step in result.get("steps") or []:
        condition = _decided(str(step["if"]), inputs) if "if" in step else ""
        if condition is None:
            continue
        kept.append(
            {k: v for k, v in step.items() if k != "if"} | ({"if": condition} if condition else {})
        )
    result["steps"] = kept
    result["env"] = {**(target.get("env") or {}), **(result.get("env") or {})}
    result["calls"] = path.name
    return result | {k: job[k] for k in CALLER_KEYS if k in job}


def load_expanded(path: Path) -> dict[str, Any]:
    wf = _load(path)
    return {**wf, "jobs": {name: expand(job) for name, job in (wf.get("jobs") or {}).items()}}


def load_workflows() -> dict[str, dict[str, Any]]:
    """Every workflow a trigger starts, its calls to reusable workflows expanded."""
    loaded = {p.stem: load_expanded(p) for p in sorted(WORKFLOWS.glob("*.yml"))}
    return {
        name: wf for name, wf in loaded.items() if not reusable(_load(WORKFLOWS / f"{name}.yml"))
    }


def job_env(wf: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    return {**(wf.get("env") or {}), **(job.get("env") or {})}


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return load_workflows()


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
    """The pulumi/actions steps that run a command (not those that only install the CLI)."""
    return [
        s for s in steps(job) if uses(s) == PULUMI_ACTION and (s.get("with") or {}).get("command")
    ]


def cli_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pulumi/actions step: each installs the CLI."""
    return [s for s in steps(job) if uses(s) == PULUMI_ACTION]


def destroys_pr_stacks(job: dict[str, Any]) -> bool:
    return "scripts/pr-stacks.sh" in runs(job)


def all_jobs(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for wf_name, wf in workflows.items():
        for job_name, job in (wf.get("jobs") or {}).items():
            yield wf_name, job_name, job


def dispatch_choices() -> dict[str, list[str]]:
    """`workflow_dispatch` choice inputs of every workflow, by input name."""
    choices: dict[str, list[str]] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        on = yaml.safe_load(path.read_text()).get(True) or {}
        dispatch = on.get("workflow_dispatch") if isinstance(on, dict) else None
        for name, spec in ((dispatch or {}).get("inputs") or {}).items():
            if spec.get("type") == "choice":
                choices[name] = list(spec["options"])
    return choices


def matrix_values(job: dict[str, Any], text: str) -> list[str]:
    """Expand `${{ matrix.x }}` in text over the job's matrix (a list per key), and
    `${{ inputs.x }}` over a dispatch input's choices."""
    choice = INPUT_REF.search(text)
    if choice:
        options = dispatch_choices()[choice.group(1)]
        return [v for o in options for v in matrix_values(job, text.replace(choice.group(0), o))]
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
    for verb in (
        "make lint",
        "make lint-workflows",
        "make test",
        "make check-all",
        "make e2e-local",
    ):
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
            # Production's preview is not published on a public repository.
            assert args.get("comment-on-pr") == (
                "${{ matrix.stack != 'production' || github.event.repository.private }}"
            ), name
            assert args.get("policyPacks") == EXPECTED_POLICY_PACK, name
        previewed |= set(job_stacks(job))
    assert previewed == {"staging", "production"}


def test_deploy_pushes_to_main_go_to_staging_and_production_is_manual(workflows):
    wf = workflows["deploy"]
    on = triggers(wf)
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"].get("branches") == ["main"]
    by_stack = {stack: job for _, job in wf["jobs"].items() for stack in job_stacks(job)}
    assert set(by_stack) == {"staging"}, "production has its own workflow"
    assert commands(by_stack["staging"]) == {"up"}
    assert env_name(by_stack["staging"]) == "staging"

    release = workflows["production"]
    assert set(triggers(release)) == {"workflow_dispatch"}
    by_stack = {stack: job for _, job in release["jobs"].items() for stack in job_stacks(job)}
    assert set(by_stack) == {"production"}
    production = by_stack["production"]
    assert commands(production) == {"up"}
    assert env_name(production) == "production"
    assert "refs/heads/main" in str(production.get("if", ""))
    for job in (*wf["jobs"].values(), *release["jobs"].values()):
        for step in pulumi_steps(job):
            assert (step.get("with") or {}).get("policyPacks") == EXPECTED_POLICY_PACK


def test_production_dispatch_never_waits_in_the_staging_queue_and_needs_a_staged_commit(
    workflows,
):
    """A pending job in `pulumi-staging` is cancelled by the next push to main: production
    must not wait behind one, and deploys only a commit staging already runs."""
    jobs = workflows["production"]["jobs"]
    groups = [str((j.get("concurrency") or {}).get("group")) for j in jobs.values()]
    assert "pulumi-staging" not in groups
    production = next(j for j in jobs.values() if "production" in job_stacks(j))
    needs = production.get("needs")
    (gate,) = [needs] if isinstance(needs, str) else needs
    gate_run = runs(jobs[gate])
    assert "actions/workflows/deploy.yml/runs" in gate_run and "head_sha=$SHA" in gate_run
    assert "status=success" in gate_run
    assert jobs[gate]["permissions"] == {"actions": "read", "checks": "read"}
    assert "exit 1" in gate_run, "an unstaged commit must stop the dispatch"


def test_deploy_smoke_tests_the_readiness_path_with_the_api_token_after_up(workflows):
    for name in ("deploy", "production", "ephemeral"):
        wf = workflows[name]
        for job in wf["jobs"].values():
            job_steps = steps(job)
            if commands(job) != {"up"}:
                continue
            up_index = next(i for i, s in enumerate(job_steps) if uses(s) == PULUMI_ACTION)
            smoke = [s for s in job_steps[up_index + 1 :] if "SERVICE_URL" in (s.get("env") or {})]
            assert smoke and smoke[0]["run"] == "scripts/smoke-test.sh", name
            assert "steps.up.outputs.serviceUrl" in str(smoke[0]["env"]["SERVICE_URL"])
            # The stack writes READY_PATH (app.readinessPath); the script defaults to /ready.
            assert smoke[0]["env"]["READY_PATH"] == "${{ vars.READY_PATH }}", name
            assert (job.get("env") or {}).get("STACK"), f"{name}: the token is read per stack"
    script = SMOKE_SCRIPT.read_text()
    assert "pulumi stack output apiToken --show-secrets" in script
    assert script.index("::add-mask::") < script.index("curl"), "mask before any use"
    for flag in ("--fail", "--max-time", "until ", "deadline"):
        assert flag in script


SMOKE_SCRIPT = ROOT / "scripts" / "smoke-test.sh"
TOKEN = "tok3n-from-the-stack"


def smoke_steps() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, the env the step's job runs with, the step)."""
    found = []
    for name in ("deploy", "production", "ephemeral"):
        wf = load_expanded(WORKFLOWS / f"{name}.yml")
        for job_name, job in wf["jobs"].items():
            for step in steps(job):
                if "SERVICE_URL" in (step.get("env") or {}) and "smoke" in str(step.get("id")):
                    found.append((f"{name}.{job_name}", {"env": job_env(wf, job)}, step))
    return found


class _Ready(BaseHTTPRequestHandler):
    failures_left = 0
    paths: list[str] = []  # noqa: RUF012 - reset per test
    tokens: list[str | None] = []  # noqa: RUF012 - reset per test

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        type(self).tokens.append(self.headers.get("Authorization"))
        if self.path.startswith("/threads/"):  # an authenticated read, as the app answers it
            known = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.send_response(404 if known else 401)
            self.end_headers()
            return
        ready = self.path == "/ready" and type(self).failures_left <= 0
        type(self).failures_left -= 1
        self.send_response(200 if ready else 503)
        self.end_headers()
        self.wfile.write(b"ok" if ready else b"starting")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ready_server() -> Iterator[tuple[str, type[_Ready]]]:
    handler = type("Ready", (_Ready,), {"paths": [], "tokens": [], "failures_left": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _fake(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + script)
    path.chmod(0o755)


def _run_smoke(
    wf: dict[str, Any], step: dict[str, Any], tmp_path: Path, token: str = TOKEN, **env: str
) -> subprocess.CompletedProcess[str]:
    """The step's own command, from the repository root, with the workflow's env and a
    stand-in `pulumi` that prints the stack's apiToken output."""
    output = tmp_path / "github_output"
    output.touch()
    _fake(
        tmp_path / "bin",
        "pulumi",
        f'echo "$*" >> "{tmp_path}/pulumi-calls"\n'
        f'[ "$1 $2 $3" = "stack output apiToken" ] && printf %s "{token}"\n',
    )
    full_env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin:/usr/local/bin",
        "GITHUB_OUTPUT": str(output),
        **{k: str(v) for k, v in wf["env"].items()},
        "STACK": "pr-1",
        "READY_PATH": "",
        "SMOKE_INTERVAL_SECONDS": "0.1",
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SMOKE_STEPS = smoke_steps()


def test_every_deploying_job_has_a_smoke_test():
    assert sorted(where for where, _, _ in SMOKE_STEPS) == [
        "deploy.staging",
        "ephemeral.up",
        "production.production",
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_retries_until_ready_with_the_stack_token(
    where, wf, step, ready_server, tmp_path
):
    base, handler = ready_server
    handler.failures_left = 2
    assert int(wf["env"]["SMOKE_DEADLINE_SECONDS"]) >= 60, "cold starts need time"
    result = _run_smoke(wf, step, tmp_path, SERVICE_URL=base + "/", SMOKE_DEADLINE_SECONDS="20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert handler.paths == ["/ready", "/ready", "/ready", "/threads/smoke-check/state"], (
        "one request per try, on /ready, then one authenticated read"
    )
    assert handler.tokens == [f"Bearer {TOKEN}"] * 4
    assert f"::add-mask::{TOKEN}" in result.stdout, "the token is masked in the log"
    assert (tmp_path / "pulumi-calls").read_text().split("\n")[0] == (
        "stack output apiToken --show-secrets --stack pr-1"
    )
    assert f"url={base}/ready" in (tmp_path / "github_output").read_text()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_fails_when_the_service_refuses_the_stacks_token(
    where, wf, step, ready_server, tmp_path
):
    base, handler = ready_server
    result = _run_smoke(wf, step, tmp_path, token="a-token-the-service-never-had", SERVICE_URL=base)
    assert result.returncode != 0
    assert "refused the stack's apiToken (401)" in result.stdout
    assert handler.paths[-1] == "/threads/smoke-check/state"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_smoke_test_fails_at_its_deadline(where, wf, step, ready_server, tmp_path):
    base, handler = ready_server
    handler.failures_left = 10**6
    started = time.monotonic()
    result = _run_smoke(wf, step, tmp_path, SERVICE_URL=base, SMOKE_DEADLINE_SECONDS="2")
    assert result.returncode != 0
    assert time.monotonic() - started < 15, "must give up at the deadline"
    assert len(handler.paths) > 1, "must retry before giving up"


@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
@pytest.mark.parametrize("missing", ["url", "token"])
def test_smoke_test_fails_at_once_without_a_url_or_token(where, wf, step, missing, tmp_path):
    started = time.monotonic()
    result = _run_smoke(
        wf,
        step,
        tmp_path,
        token="" if missing == "token" else TOKEN,
        SERVICE_URL="" if missing == "url" else "http://127.0.0.1:9",
        SMOKE_DEADLINE_SECONDS="30",
    )
    assert result.returncode != 0
    assert "::error::" in result.stdout, "say why, in the run's annotations"
    assert time.monotonic() - started < 10, "a configuration error, not a retry"


@pytest.mark.parametrize(("where", "wf", "step"), SMOKE_STEPS, ids=[w for w, _, _ in SMOKE_STEPS])
def test_the_production_smoke_test_refuses_a_plain_http_url(where, wf, step, tmp_path):
    require = str((step.get("env") or {}).get("REQUIRE_HTTPS", ""))
    assert (require == "true") is where.startswith("production."), where
    if require != "true":
        return
    result = _run_smoke(
        wf,
        step,
        tmp_path,
        SERVICE_URL="http://127.0.0.1:9",
        REQUIRE_HTTPS=require,
        SMOKE_DEADLINE_SECONDS="30",
    )
    assert result.returncode != 0
    assert "::error::" in result.stdout and "app.domain" in result.stdout
    assert not (tmp_path / "pulumi-calls").exists(), "refused before anything else"


def test_workflows_read_only_stack_outputs_the_program_exports():
    """`steps.up.outputs.X` is the stack output X: a renamed export would empty the URL."""
    referenced = set()
    for path in WORKFLOWS.glob("*.yml"):
        referenced |= set(re.findall(r"steps\.up\.outputs\.(\w+)", path.read_text("utf-8")))
    assert referenced, "the smoke tests read the URL from the stack outputs"
    exported = "\n".join(p.read_text("utf-8") for p in (ROOT / "stacks").glob("*.py"))
    for name in sorted(referenced):
        assert f'"{name}"' in exported, f"no stack program exports {name!r}"


@pytest.mark.parametrize("name", ["deploy", "production"])
def test_deploy_notifies_slack_only_when_the_webhook_exists(workflows, name):
    jobs = workflows[name]["jobs"]
    slack = [
        (job_name, job)
        for job_name, job in jobs.items()
        if "SLACK_WEBHOOK_URL" in str([s.get("env") for s in steps(job)])
    ]
    assert len(slack) == 1, "exactly one job may see the webhook"
    job_name, job = slack[0]
    assert not cli_steps(job), "the webhook must not sit in a job running Pulumi"
    assert "always()" in str(job.get("if", "")), "failed deploys must notify too"
    assert re.search(r'-z "\$SLACK_WEBHOOK_URL"', runs(job)), f"{job_name}: must no-op without it"
    assert "concurrency" not in job, "a per-run group limits nothing"


def test_ephemeral_lifecycle_follows_the_pull_request(workflows):
    wf = workflows["ephemeral"]
    on = triggers(wf)
    assert set(on) == {"pull_request"}
    assert {"opened", "synchronize", "reopened", "closed"} <= set(on["pull_request"]["types"])

    jobs = wf["jobs"]
    (up,) = [j for j in jobs.values() if commands(j) == {"up"}]
    (destroy,) = [j for j in jobs.values() if destroys_pr_stacks(j)]
    for job in (up, destroy):
        assert SAME_REPO in str(job.get("if", "")), "forks get no OIDC token"
        assert env_name(job) == "ephemeral"
    assert [s["with"]["stack-name"] for s in pulumi_steps(up)] == [PR_STACK]
    assert "github.event.action != 'closed'" in str(up["if"])
    assert "github.event.action == 'closed'" in str(destroy["if"])
    assert pulumi_steps(up)[0]["with"].get("upsert") is True
    assert pulumi_steps(up)[0]["with"].get("policyPacks") == EXPECTED_POLICY_PACK
    assert 'scripts/pr-stacks.sh destroy "$PR_NUMBER"' in runs(destroy)
    assert (destroy.get("env") or {}).get("PR_NUMBER") == "${{ github.event.pull_request.number }}"
    assert "comments" in runs(up), "the URL must be commented on the PR"


def test_ephemeral_stack_file_is_copied_from_the_template_first(workflows):
    job = next(j for j in workflows["ephemeral"]["jobs"].values() if commands(j) == {"up"})
    job_steps = steps(job)
    up_index = next(i for i, s in enumerate(job_steps) if uses(s) == PULUMI_ACTION)
    copy = 'cp Pulumi.pr.yaml "Pulumi.pr-${PR_NUMBER}.yaml"'
    assert any(copy in str(s.get("run", "")) for s in job_steps[:up_index])
    pr_number = (job.get("env") or {}).get("PR_NUMBER")
    assert pr_number == "${{ github.event.pull_request.number }}"


@pytest.mark.parametrize("name", ["ephemeral", "janitor"])
def test_pr_stacks_keep_the_secrets_provider_they_were_created_with(workflows, name):
    """The copied stack file has no `secretsprovider:`; without this Pulumi would fall back
    to the backend's default (a passphrase) from a PR stack's second run."""
    assert workflows[name]["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"


def test_janitor_sweeps_closed_pull_requests_daily_with_the_ephemeral_role_only(workflows):
    wf = workflows["janitor"]
    on = triggers(wf)
    assert set(on) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    _minute, hour, day, month, weekday = cron.split()
    assert (day, month, weekday) == ("*", "*", "*") and hour.isdigit(), "once a day"
    (job,) = wf["jobs"].values()
    assert env_name(job) == "ephemeral", "only the role that may touch pr-* stacks"
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "read",
    }
    assert "scripts/pr-stacks.sh sweep" in runs(job)
    assert "refs/heads/main" in str(job.get("if")), "the sweep runs the default branch's code"


# --- cross-cutting rules ----------------------------------------------------------------


def test_permissions_are_read_by_default_and_write_only_where_needed(workflows):
    for wf_name, wf in workflows.items():
        assert "permissions" in wf, f"{wf_name}: set top-level permissions"
        assert not write_scopes(wf["permissions"]), f"{wf_name}: top level must be read-only"
    for wf_name, job_name, job in all_jobs(workflows):
        where = f"{wf_name}.{job_name}"
        granted = write_scopes(job.get("permissions"))
        assert granted <= {"id-token", "pull-requests", "checks", "issues"}, f"{where}: {granted}"
        assumes_role = any(uses(s) == AWS_ACTION for s in steps(job))
        if granted & {"checks", "issues"}:
            # Recording the tested image / the drift issue: never beside Pulumi or the cloud.
            assert not cli_steps(job) and not assumes_role, where
        assert ("issues" in granted) == ("gh issue" in runs(job)), f"{where}: issues"
        assert ("checks" in granted) == ('/check-runs" -f' in runs(job)), f"{where}: checks"
        assert ("id-token" in granted) == assumes_role, f"{where}: id-token iff OIDC"
        comments = any(
            (s.get("with") or {}).get("comment-on-pr") not in (None, False)
            for s in pulumi_steps(job)
        ) or bool(re.search(r"gh api .*comments", runs(job)))
        assert ("pull-requests" in granted) == comments, f"{where}: pull-requests iff comments"


def test_pulumi_changes_are_serialised_per_stack_and_never_cancelled(workflows):
    groups: dict[str, set[str]] = {}
    for wf_name, job_name, job in all_jobs(workflows):
        if not cli_steps(job):
            continue
        where = f"{wf_name}.{job_name}"
        top = workflows[wf_name].get("concurrency")
        if isinstance(top, dict):
            assert top.get("cancel-in-progress") is False, f"{wf_name}: top-level cancels"
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{where}: needs a job concurrency group"
        assert concurrency.get("cancel-in-progress") is False, where
        group = str(concurrency["group"])
        if destroys_pr_stacks(job):
            assert group.startswith("pulumi-pr-"), f"{where}: group {group!r}"
        elif commands(job) & {"up", "destroy", "refresh"}:
            # One stack per run (a dispatch input may choose which).
            expanded = matrix_values(job, group)
            assert expanded == [f"pulumi-{s}" for s in job_stacks(job)], f"{where}: {group!r}"
            for one in expanded:
                groups.setdefault(one, set()).add(where)
            continue
        else:
            # A preview queued in a deploy's group would replace a queued deploy.
            assert not group.startswith("pulumi-"), where
            assert "pull_request.number" in group or group.startswith("drift-"), where
        groups.setdefault(group, set()).add(where)
    assert groups["pulumi-staging"]
    assert groups["pulumi-production"]


def test_jobs_that_touch_a_stack_run_in_its_environment(workflows):
    for wf_name, job_name, job in all_jobs(workflows):
        if not cli_steps(job):
            continue
        where = f"{wf_name}.{job_name}"
        env = env_name(job)
        assert env, f"{where}: OIDC trust is pinned to an environment"
        if destroys_pr_stacks(job):
            assert env == "ephemeral", where
            continue
        if "scripts/environment-url.sh" in runs(job):
            # Reads pr-<n>'s serviceUrl for the preview comment: the read-only preview role.
            assert env == "staging-preview", where
            continue
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
            local = re.match(r"^\s*uses:\s+(\S+)\s*$", line)
            if local and LOCAL_CALL.match(local.group(1)):
                continue  # this repository's own reusable workflow, at the caller's commit
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


def test_dependabot_keeps_actions_both_locks_and_the_base_images_current():
    config = _load(ROOT / ".github" / "dependabot.yml")
    covered = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    # The program's lock, the runtime image's lock (app/uv.lock) and its Dockerfile's bases.
    assert {("github-actions", "/"), ("uv", "/"), ("uv", "/app"), ("docker", "/app")} <= covered
    assert (ROOT / "app" / "uv.lock").is_file() and (ROOT / "app" / "Dockerfile").is_file()
    for update in config["updates"]:
        assert update["schedule"]["interval"] in {"daily", "weekly"}


# --- runner, CLI and credentials ----------------------------------------------------------

ARM64_LABELS = {"ubuntu-24.04-arm", "ubuntu-22.04-arm"}
ARCH_CHECK = 'if [ "$(uname -m)" != "aarch64" ]'


def runner_label(job: dict[str, Any]) -> str:
    """The label a job runs on, or the default of a `vars.X || 'label'` expression."""
    runs_on = str(job["runs-on"])
    default = re.fullmatch(r"\$\{\{\s*vars\.\w+\s*\|\|\s*'([\w.-]+)'\s*\}\}", runs_on)
    return default.group(1) if default else runs_on


@pytest.fixture(scope="module")
def built_images() -> dict[str, list[Any]]:
    """What each deployed stack builds, from the real program under mocks."""
    from cli.stackfile import program_stack
    from tests.harness import run_stack

    return {
        stack: run_stack(program_stack(stack)).of_type("docker-build:index:Image")
        for stack in ("staging", "production", "pr")
    }


def test_jobs_that_build_images_run_natively_and_check_the_architecture_first(
    workflows, built_images
):
    for wf_name, job_name, job in all_jobs(workflows):
        if commands(job) != {"up"} or PINS_IMAGE in runs(job):
            continue  # a pinned app.image builds nothing (tests/ci/test_lifecycle.py)
        where = f"{wf_name}.{job_name}"
        stacks = ["pr" if s == PR_STACK else s for s in job_stacks(job)]
        platforms = {
            p for s in stacks for image in built_images[s] for p in image.plain["platforms"]
        }
        assert platforms == {"linux/arm64"}, f"{where}: builds {platforms}"
        assert runner_label(job) in ARM64_LABELS, f"{where}: runs on {job['runs-on']}"
        job_steps = steps(job)
        check = next(i for i, s in enumerate(job_steps) if ARCH_CHECK in str(s.get("run", "")))
        first_pulumi = next(i for i, s in enumerate(job_steps) if uses(s) == PULUMI_ACTION)
        assert check < first_pulumi, f"{where}: the architecture is checked before any build"
        assert "exit 1" in str(job_steps[check]["run"])


def test_previews_build_no_image(workflows, built_images):
    """Previews run on x64 runners: they must not build the arm64 image."""
    for images in built_images.values():
        assert images and all(i.plain["buildOnPreview"] is False for i in images)
    for _, _, job in all_jobs(workflows):
        if commands(job) == {"preview"}:
            assert runner_label(job) not in ARM64_LABELS


def test_every_pulumi_step_runs_the_cli_version_locked_with_the_sdk(workflows, tmp_path):
    lock = (ROOT / "uv.lock").read_text()
    locked = re.search(r'^name = "pulumi"\nversion = "([^"]+)"', lock, re.M)
    assert locked
    count = 0
    for wf_name, job_name, job in all_jobs(workflows):
        job_steps = steps(job)
        for index, step in enumerate(job_steps):
            if uses(step) != PULUMI_ACTION:
                continue
            count += 1
            where = f"{wf_name}.{job_name}"
            assert step["with"].get("pulumi-version") == "${{ steps.cli.outputs.version }}", where
            (cli,) = [s for s in job_steps[:index] if s.get("id") == "cli"]
            output = tmp_path / f"{wf_name}-{job_name}-{index}"
            subprocess.run(
                ["bash", "-eo", "pipefail", "-c", cli["run"]],
                cwd=ROOT,
                env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output)},
                check=True,
            )
            assert output.read_text() == f"version={locked.group(1)}\n", where
    assert count >= 6


PULUMI_SECRETS = ("secrets.PULUMI_ACCESS_TOKEN", "secrets.PULUMI_CONFIG_PASSPHRASE")


def test_pulumi_credentials_are_environment_secrets_and_never_exported_empty(workflows):
    """Repository secrets reach every branch's workflow; environment secrets only the jobs
    that passed the environment's rules. An empty passphrase is a passphrase to Pulumi."""
    seen = 0
    for wf_name, job_name, job in all_jobs(workflows):
        for step in steps(job):
            env = {k: str(v) for k, v in (step.get("env") or {}).items()}
            if not any(ref in value for value in env.values() for ref in PULUMI_SECRETS):
                continue
            seen += 1
            where = f"{wf_name}.{job_name}"
            assert env_name(job), f"{where}: Pulumi credentials outside an environment"
            assert step.get("run") == "scripts/check-bootstrap.sh", (
                f"{where}: only the bootstrap check reads them, and exports what is set"
            )
            assert "PULUMI_ACCESS_TOKEN" not in env and "PULUMI_CONFIG_PASSPHRASE" not in env
    assert seen >= 6
    docs = (ROOT / "docs" / "bootstrapping.md").read_text()
    for name in ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"):
        row = next(line for line in docs.splitlines() if line.lstrip().startswith(f"| `{name}`"))
        assert "repository" not in row.split("|")[3], f"docs put {name} at repository scope"


def _check_bootstrap(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    result = subprocess.run(
        [str(ROOT / "scripts" / "check-bootstrap.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "GITHUB_ENV": str(github_env),
            "ENVIRONMENT": "staging",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return result, github_env.read_text()


BOOTSTRAPPED = {"ROLE_ARN": "arn:aws:iam::1:role/x", "REGION": "eu-west-1", "BACKEND_URL": "s3://b"}


def test_bootstrap_check_exports_only_the_credentials_that_are_set(tmp_path):
    result, exported = _check_bootstrap(tmp_path, **BOOTSTRAPPED, PASSPHRASE="", ACCESS_TOKEN="")
    assert result.returncode == 0, result.stdout
    assert exported == "", "nothing unset is exported, least of all an empty passphrase"
    result, exported = _check_bootstrap(tmp_path, **BOOTSTRAPPED, PASSPHRASE="p4ss")
    assert result.returncode == 0 and exported == "PULUMI_CONFIG_PASSPHRASE=p4ss\n"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ({"ROLE_ARN": ""}, "AWS_DEPLOY_ROLE_ARN"),
        ({"REGION": ""}, "AWS_REGION"),
        ({"BACKEND_URL": ""}, "PULUMI_BACKEND_URL"),
        ({"NEEDS_GITHUB_TOKEN": "true"}, "PULUMI_GITHUB_TOKEN"),
    ],
)
def test_bootstrap_check_names_what_the_environment_lacks(tmp_path, missing, named):
    result, exported = _check_bootstrap(tmp_path, **{**BOOTSTRAPPED, **missing})
    assert result.returncode == 1
    assert "::error::environment 'staging'" in result.stdout and named in result.stdout
    assert exported == ""


def test_deploy_jobs_check_the_github_token_before_pulumi_runs(workflows):
    for wf_name, job_name, job in all_jobs(workflows):
        if commands(job) != {"up"} or env_name(job) == "ephemeral":
            continue
        (check,) = [s for s in steps(job) if s.get("run") == "scripts/check-bootstrap.sh"]
        assert check["env"]["NEEDS_GITHUB_TOKEN"] == "true", f"{wf_name}.{job_name}"


@pytest.fixture(scope="module")
def max_session_seconds() -> int:
    """The shortest session any role the stacks create allows (IAM's max_session_duration)."""
    from tests.harness import run_stack

    durations = [
        int(role.plain.get("maxSessionDuration") or 3600)
        for stack in ("staging", "production")
        for role in run_stack(stack).of_type("aws:iam/role:Role")
    ]
    assert durations
    return min(durations)


def test_aws_sessions_outlast_every_job_that_uses_them(workflows, max_session_seconds):
    """Credentials that expire mid-`up` fail it and can leave the stack locked."""
    for wf_name, job_name, job in all_jobs(workflows):
        for step in steps(job):
            if uses(step) != AWS_ACTION:
                continue
            where = f"{wf_name}.{job_name}"
            duration = str(step["with"]["role-duration-seconds"])
            assert duration == "${{ env.AWS_SESSION_SECONDS }}", where
            seconds = int(job_env(workflows[wf_name], job)["AWS_SESSION_SECONDS"])
            assert seconds <= max_session_seconds, f"{where}: longer than the role allows"
            assert int(job["timeout-minutes"]) * 60 <= seconds, f"{where}: job outlives session"


def _pr_stacks(
    tmp_path: Path,
    stacks: list[str],
    states: dict[str, str],
    *args: str,
    env: dict[str, str] | None = None,
):
    work = tmp_path / "repo"
    work.mkdir(exist_ok=True)
    shutil.copy(ROOT / "Pulumi.pr.yaml", work / "Pulumi.pr.yaml")
    listing = json.dumps([{"name": f"example-org/agent-deploy/{s}"} for s in stacks])
    calls = tmp_path / "calls"
    _fake(
        tmp_path / "bin",
        "pulumi",
        f'echo "pulumi $*" >> "{calls}"\n'
        f"if [ \"$1 $2\" = 'stack ls' ]; then echo '{listing}'; fi\n",
    )
    cases = "".join(f"  {n}) echo {state};;\n" for n, state in states.items())
    _fake(
        tmp_path / "bin",
        "gh",
        f'echo "gh $*" >> "{calls}"\ncase "$3" in\n{cases}  *) exit 1;;\nesac\n',
    )
    result = subprocess.run(
        [str(ROOT / "scripts" / "pr-stacks.sh"), *args],
        cwd=work,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "REPOSITORY": "example-org/agent-deploy",
            "GH_TOKEN": "t",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return result, [line for line in lines if "stack ls" not in line], work


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_destroy_tolerates_a_stack_that_was_never_created(tmp_path):
    result, calls, _ = _pr_stacks(tmp_path, ["pr-7"], {}, "destroy", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == [] and "pr-8 does not exist" in result.stdout


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_destroy_removes_an_existing_stack_from_the_template(tmp_path):
    result, calls, work = _pr_stacks(tmp_path, ["pr-7"], {}, "destroy", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == ["pulumi destroy --stack pr-7 --yes --non-interactive --remove"]
    assert (work / "Pulumi.pr-7.yaml").read_text() == (ROOT / "Pulumi.pr.yaml").read_text()


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_sweep_destroys_only_stacks_of_closed_pull_requests(tmp_path):
    stacks = ["pr-1", "pr-2", "pr-3", "pr-4", "staging"]
    states = {"1": "OPEN", "2": "CLOSED", "3": "MERGED"}  # pr-4: lookup fails, kept
    result, calls, _ = _pr_stacks(tmp_path, stacks, states, "sweep")
    assert result.returncode == 0, result.stdout + result.stderr
    destroyed = [c.split()[3] for c in calls if c.startswith("pulumi destroy")]
    assert destroyed == ["pr-2", "pr-3"]
    assert "::warning::pr-4" in result.stdout


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_sweep_starts_no_destroy_its_job_could_not_finish(tmp_path):
    # A job killed at its timeout mid-destroy leaves the stack locked for every later sweep.
    result, calls, _ = _pr_stacks(
        tmp_path,
        ["pr-2", "pr-3"],
        {"2": "CLOSED", "3": "MERGED"},
        "sweep",
        env={"SWEEP_BUDGET_SECONDS": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [c for c in calls if c.startswith("pulumi destroy")]
    assert "::warning::pr-2" in result.stdout and "::warning::pr-3" in result.stdout
    janitor = yaml.safe_load((WORKFLOWS / "janitor.yml").read_text())
    assert int(janitor["jobs"]["sweep"]["timeout-minutes"]) * 60 > 2100


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


def test_every_preview_and_up_gets_its_tiers_policy_config(workflows):
    """Production's levels (all mandatory) reach the CLI only through the config file."""
    root = Path(__file__).resolve().parents[2]
    tiers = {"staging": "staging", "production": "production", PR_STACK: "ephemeral"}
    seen = set()
    for wf in workflows.values():
        for job in wf["jobs"].values():
            for step in pulumi_steps(job):
                args = step.get("with") or {}
                for stack in matrix_values(job, str(args.get("stack-name", ""))):
                    # The config follows the same expression as the stack it deploys.
                    text = str(args.get("policyPackConfigs"))
                    text = text.replace(str(args.get("stack-name")), stack)
                    configs = matrix_values(
                        {**job, "strategy": {"matrix": {"stack": [stack]}}}, text
                    )
                    assert configs == [f"policy/config/{tiers[stack]}.json"], stack
                    assert (root / configs[0]).is_file()
                    seen.add(stack)
    assert seen == set(tiers)


GOOGLE_AUTH = "google-github-actions/auth"
# google-github-actions/auth v3.0.0, as pinned in public workflows that name the tag beside it.
GOOGLE_AUTH_SHA = "7c6bc770dae815cd3e89ee6cdf493a5fab2cc093"


def test_every_cloud_job_authenticates_to_the_cloud_its_stack_file_names(workflows):
    """AWS by default, Google Cloud (keyless, Workload Identity Federation) when the stack's
    target is gcp: a team moves a stack by editing its stack file, never a workflow."""
    jobs = 0
    for wf_name, job_name, job in all_jobs(workflows):
        job_steps = steps(job)
        aws = [i for i, s in enumerate(job_steps) if uses(s) == AWS_ACTION]
        if not aws:
            continue
        jobs += len(aws)
        where = f"{wf_name}.{job_name}"
        google = [i for i, s in enumerate(job_steps) if uses(s) == GOOGLE_AUTH]
        targets = [i for i, s in enumerate(job_steps) if s.get("id") == "target"]
        assert len(google) == len(aws) == len(targets) == 1, where
        target, aws_step, google_step = (
            job_steps[targets[0]],
            job_steps[aws[0]],
            job_steps[google[0]],
        )
        assert targets[0] < aws[0] < google[0], where
        assert target["run"] == 'scripts/stack-cloud.sh "$TARGET_STACK" >> "$GITHUB_OUTPUT"'
        assert aws_step["if"] == "steps.target.outputs.cloud != 'gcp'", where
        assert google_step["if"] == "steps.target.outputs.cloud == 'gcp'", where
        assert google_step["uses"].split("@")[1] == GOOGLE_AUTH_SHA
        with_ = google_step["with"]
        assert with_["workload_identity_provider"] == "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"
        preview = "PREVIEW" in aws_step["with"]["role-to-assume"]
        account = "GCP_PREVIEW_SERVICE_ACCOUNT" if preview else "GCP_DEPLOY_SERVICE_ACCOUNT"
        assert with_["service_account"] == f"${{{{ vars.{account} }}}}", where
        assert "credentials_json" not in with_, f"{where}: no service account keys"
        (check,) = [s for s in job_steps if s.get("run") == "scripts/check-bootstrap.sh"]
        assert check["env"]["CLOUD"] == "${{ steps.target.outputs.cloud }}", where
    assert jobs >= 6


@pytest.mark.parametrize(
    ("stack", "cloud"),
    [("staging", "aws"), ("gcp-staging", "gcp"), ("gcp-production", "gcp"), ("pr-7", "aws")],
)
def test_stack_cloud_reads_the_target_from_the_stack_file(stack, cloud):
    result = subprocess.run(
        [str(ROOT / "scripts" / "stack-cloud.sh"), stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == f"cloud={cloud}"


GCP_BOOTSTRAPPED = {
    "CLOUD": "gcp",
    "GCP_PROVIDER": "projects/1/locations/global/workloadIdentityPools/p/providers/github",
    "GCP_ACCOUNT": "deploy@p.iam.gserviceaccount.com",
    "BACKEND_URL": "gs://b",
}


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ({"GCP_PROVIDER": ""}, "GCP_WORKLOAD_IDENTITY_PROVIDER"),
        ({"GCP_ACCOUNT": ""}, "GCP_DEPLOY_SERVICE_ACCOUNT"),
    ],
)
def test_bootstrap_check_names_what_a_gcp_environment_lacks(tmp_path, missing, named):
    result, _ = _check_bootstrap(tmp_path, **GCP_BOOTSTRAPPED)
    assert result.returncode == 0, result.stdout  # no AWS variable is asked of a gcp stack
    result, exported = _check_bootstrap(tmp_path, **{**GCP_BOOTSTRAPPED, **missing})
    assert result.returncode == 1 and named in result.stdout
    assert exported == ""
