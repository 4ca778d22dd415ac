"""`agent-deploy check`: the offline check that PRs from forks and pre-commit run."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.main import main
from cli.stackfile import stack_names
from tests.harness import PROJECT_DIR


def check(*args: str, project_dir: Path = PROJECT_DIR) -> tuple[int, str, str]:
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", *args, "--project-dir", str(project_dir)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the real program and app, and stack files the test writes."""
    (tmp_path / "__main__.py").symlink_to(PROJECT_DIR / "__main__.py")
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


def test_console_script_lists_the_local_stack() -> None:
    result = subprocess.run(
        ["uv", "run", "--frozen", "agent-deploy", "check", "--stack", "local"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "docker:index/network:Network  agent-local-net" in out
    assert out.count("docker:index/volume:Volume") == 2
    assert out.count("docker:index/container:Container") == 4  # postgres, redis, migrate, app
    assert "docker-build:index:Image  agent-local-image" in out
    assert out.count("docker:index/remoteImage:RemoteImage") == 2
    assert "serviceUrl: http://127.0.0.1:8000" in out
    assert "ports=127.0.0.1:8000->8000" in out


@pytest.mark.parametrize("stack", stack_names(PROJECT_DIR))
def test_every_stack_file_in_the_repo_checks_clean(stack: str) -> None:
    code, out, err = check("--stack", stack)
    assert code == 0, err
    assert f"stack {stack} " in out


def test_json_output_is_complete_and_honest_about_unknowns() -> None:
    code, out, _ = check("--stack", "local", "--json")
    assert code == 0
    data = json.loads(out)
    containers = [r for r in data["resources"] if r["type"] == "docker:index/container:Container"]
    assert len(containers) == 4  # postgres, redis, migrate, app
    postgres = next(r for r in containers if r["name"] == "agent-local-postgres")
    # The image id is computed by Docker at deployment; check must not invent one.
    assert postgres["inputs"]["image"] == "<unknown until deployment>"
    assert postgres["inputs"]["envs"] == "[secret]"
    assert data["outputs"]["serviceUrl"] == "http://127.0.0.1:8000"


def test_secure_values_are_never_printed(project: Path) -> None:
    (project / "Pulumi.demo.yaml").write_text(
        "config:\n"
        "  agent-deploy:app:\n"
        f"    build: {{context: {PROJECT_DIR / 'app'}}}\n"
        "    secrets: [OPENAI_API_KEY]\n"
        "  agent-deploy:OPENAI_API_KEY:\n"
        "    secure: v1:Zm9vYmFyY2lwaGVydGV4dA==\n"
    )
    for flags in ((), ("--json",)):
        code, out, err = check("--stack", "demo", *flags, project_dir=project)
        assert code == 0, err
        assert "Zm9vYmFy" not in out + err
    assert "envs=[secret]" in check("--stack", "demo", project_dir=project)[1]


def test_config_problems_exit_1_and_name_every_key(project: Path) -> None:
    (project / "Pulumi.bad.yaml").write_text(
        "config:\n"
        "  agent-deploy:tier: prod\n"
        "  agent-deploy:database:\n"
        "    backupDays: -1\n"
        "  agent-deploy:OPENAI_API_KEY: sk-plain\n"
        "  agent-deploy:app:\n"
        "    secrets: [OPENAI_API_KEY]\n"
    )
    code, out, err = check("--stack", "bad", project_dir=project)
    assert code == 1
    assert out == ""
    for key in (
        "agent-deploy:tier",
        "agent-deploy:database.backupDays",
        "agent-deploy:OPENAI_API_KEY",
    ):
        assert key in err
    assert "sk-plain" not in err
    code, out, _ = check("--stack", "bad", "--json", project_dir=project)
    assert code == 1
    keys = {e["key"] for e in json.loads(out)["errors"]}
    assert {"agent-deploy:tier", "agent-deploy:database.backupDays"} <= keys


def test_unknown_stack_exits_2_and_lists_the_stack_files(project: Path) -> None:
    code, _, err = check("--stack", "nope", project_dir=project)
    assert code == 2
    assert "no stack file for 'nope'" in err


def test_pr_stacks_fall_back_to_the_ephemeral_template(project: Path) -> None:
    (project / "Pulumi.pr.yaml").write_text(
        f"config:\n  agent-deploy:app:\n    build: {{context: {PROJECT_DIR / 'app'}}}\n"
    )
    code, out, err = check("--stack", "pr-42", project_dir=project)
    assert code == 0, err
    assert out.startswith("stack pr-42 (Pulumi.pr.yaml)")
    assert "agent-pr-42" in out


def test_project_level_defaults_apply(project: Path) -> None:
    (project / "Pulumi.bare.yaml").write_text(
        f"config:\n  agent-deploy:app:\n    build: {{context: {PROJECT_DIR / 'app'}}}\n"
    )
    code, out, _ = check("--stack", "bare", "--json", project_dir=project)
    assert code == 0
    assert json.loads(out)["outputs"]["target"] == "local"  # Pulumi.yaml's default
