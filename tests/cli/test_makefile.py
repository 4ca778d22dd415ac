"""The Makefile verbs, against a recording stand-in `pulumi` (no real CLI can run here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import PROJECT_DIR

RECORDER = """#!/usr/bin/env bash
printf '%s|%s|%s\\n' "$*" "${PULUMI_BACKEND_URL-<unset>}" \
  "${PULUMI_CONFIG_PASSPHRASE-<unset>}" >> "$RECORD"
"""
# Stands in for `curl -fsSL https://get.pulumi.com`: records its arguments and prints an
# "installer" that records its own and installs the recording stand-in where Pulumi's does.
FAKE_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$RECORD"
cat <<'INSTALLER'
echo "installer $*" >> "$RECORD"
mkdir -p "$HOME/.pulumi/bin"
cp "$STANDIN" "$HOME/.pulumi/bin/pulumi"
chmod +x "$HOME/.pulumi/bin/pulumi"
INSTALLER
"""


def _path_without_pulumi() -> str:
    return os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "pulumi").exists()
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = tmp_path / "pulumi-standin"
    standin.write_text(RECORDER)
    standin.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PULUMI_") and k not in {"MAKEFLAGS", "MFLAGS"}
    }
    env |= {
        "RECORD": str(tmp_path / "record"),
        "STANDIN": str(standin),
        "HOME": str(tmp_path / "home"),
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
        "PATH": f"{bin_dir}{os.pathsep}{_path_without_pulumi()}",
        "BIN": str(bin_dir),
    }
    return env


def _with_pulumi_on_path(env: dict[str, str]) -> None:
    shutil.copy(env["STANDIN"], Path(env["BIN"]) / "pulumi")


def make(env: dict[str, str], *args: str) -> list[tuple[str, str, str]]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = Path(env["RECORD"])
    lines = record.read_text().splitlines() if record.exists() else []
    return [tuple(line.split("|")) for line in lines if "|" in line]  # type: ignore[misc]


STATE = f"file://{PROJECT_DIR}/.pulumi-state"


def test_make_up_selects_or_creates_local_and_deploys_with_a_repo_state_backend(sandbox):
    _with_pulumi_on_path(sandbox)
    calls = make(sandbox, "up")
    assert calls == [
        ("stack select --create local", STATE, ""),
        ("up --stack local --yes", STATE, ""),
    ]
    assert (PROJECT_DIR / ".pulumi-state").is_dir()


def test_cloud_stacks_get_no_empty_passphrase_and_no_auto_approve(sandbox):
    _with_pulumi_on_path(sandbox)
    calls = make(sandbox, "up", "STACK=staging")
    assert calls == [
        ("stack select --create staging", STATE, "<unset>"),
        ("up --stack staging", STATE, "<unset>"),
    ]


def test_preview_and_destroy_name_the_stack(sandbox):
    _with_pulumi_on_path(sandbox)
    assert (
        make(sandbox, "preview", "STACK=production")[-1][0] == "preview --stack production --diff"
    )
    assert make(sandbox, "destroy", "STACK=pr-42")[-1][0] == "destroy --stack pr-42"


def test_a_backend_from_the_environment_wins(sandbox):
    _with_pulumi_on_path(sandbox)
    sandbox["PULUMI_BACKEND_URL"] = "s3://acme-pulumi-state"
    calls = make(sandbox, "up", "STACK=staging")
    assert {backend for _, backend, _ in calls} == {"s3://acme-pulumi-state"}


def test_missing_cli_is_installed_with_the_official_installer_at_the_pinned_version(sandbox):
    (Path(sandbox["BIN"]) / "curl").write_text(FAKE_CURL)
    (Path(sandbox["BIN"]) / "curl").chmod(0o755)
    calls = make(sandbox, "up")
    record = Path(sandbox["RECORD"]).read_text().splitlines()
    assert record[0] == "curl -fsSL https://get.pulumi.com"
    assert record[1] == f"installer --version {_locked_cli(PROJECT_DIR / 'uv.lock')}"
    assert [c[0] for c in calls] == ["stack select --create local", "up --stack local --yes"]


def test_installed_cli_is_not_reinstalled(sandbox):
    _with_pulumi_on_path(sandbox)
    (Path(sandbox["BIN"]) / "curl").write_text('#!/bin/sh\necho curl-called >> "$RECORD"\n')
    (Path(sandbox["BIN"]) / "curl").chmod(0o755)
    make(sandbox, "up")
    assert "curl-called" not in Path(sandbox["RECORD"]).read_text()


def _locked_cli(lock: Path) -> str:
    result = subprocess.run(
        [str(PROJECT_DIR / "scripts" / "pulumi-version.sh"), str(lock)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_cli_version_follows_the_locked_sdk(tmp_path: Path) -> None:
    """Dependabot edits only uv.lock: the CLI version must move with it, with no second pin."""
    lock = (PROJECT_DIR / "uv.lock").read_text()
    locked = re.search(r'^name = "pulumi"\nversion = "([^"]+)"', lock, re.M)
    assert locked and _locked_cli(PROJECT_DIR / "uv.lock") == locked.group(1)
    bumped = tmp_path / "uv.lock"
    bumped.write_text(lock.replace(locked.group(0), 'name = "pulumi"\nversion = "3.999.1"'))
    assert _locked_cli(bumped) == "3.999.1"
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert re.search(
        r"^PULUMI_VERSION \?= \$\(shell .*scripts/pulumi-version\.sh\)$", makefile, re.M
    )


def test_make_check_runs_the_offline_check(sandbox):
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), "check", "STACK=local"],
        env=sandbox,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "docker:index/container:Container  agent-local" in result.stdout
    assert not Path(sandbox["RECORD"]).exists()  # no Pulumi CLI involved


def _run_make(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _tool(env: dict[str, str], name: str, script: str) -> None:
    path = Path(env["BIN"]) / name
    path.write_text(script)
    path.chmod(0o755)


def test_an_unreachable_installer_stops_make_up_with_one_clear_line(sandbox):
    # Offline: curl fails like a DNS error. Its message says nothing about what to do, so make
    # hides it and says what to install and how, in one line.
    _tool(sandbox, "curl", '#!/bin/sh\necho "curl: (6) Could not resolve host" >&2\nexit 6\n')
    result = _run_make(sandbox, "up")
    assert result.returncode != 0
    # (`deps` ran first: uv's own lines come before.)
    ours = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("make: ") and not line.startswith("make: ***")
    ]
    assert len(ours) == 1, result.stderr
    version = _locked_cli(PROJECT_DIR / "uv.lock")
    assert re.fullmatch(
        r"make: cannot download Pulumi's installer from https://get\.pulumi\.com "
        r"\(no network\?\)\. "
        rf"Install the Pulumi CLI {re.escape(version)} yourself \(https://www\.pulumi\.com/docs/"
        r"iac/download-install/, or the .*release unpacked into .*/\.pulumi/bin\), then run make "
        r"again\.",
        ours[0],
    ), result.stderr
    assert "curl:" not in result.stderr
    assert not Path(sandbox["RECORD"]).exists()  # no `pulumi stack select` was attempted


def test_an_installer_that_fails_stops_make_up_pointing_at_its_output(sandbox):
    _tool(sandbox, "curl", "#!/bin/sh\necho 'echo \"installer: no space left\" >&2; exit 1'\n")
    result = _run_make(sandbox, "up")
    assert result.returncode != 0
    errors = result.stderr.splitlines()
    assert "installer: no space left" in errors
    assert any(
        re.fullmatch(r"make: installing the Pulumi CLI \S+ failed \(see above\)\. Install it .*", e)
        for e in errors
    ), result.stderr
    assert "No such file or directory" not in result.stderr  # make stopped at the cause
    assert not Path(sandbox["RECORD"]).exists()


def _path_without_uv(env: dict[str, str]) -> None:
    uv = shutil.which("uv")
    assert uv is not None
    env["PATH"] = os.pathsep.join(
        d for d in env["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists()
    )


def test_a_pip_that_refuses_installs_pep_668_says_what_to_run(sandbox):
    _path_without_uv(sandbox)
    _tool(
        sandbox,
        "python3",
        '#!/bin/sh\necho "error: externally-managed-environment" >&2\nexit 1\n',
    )
    result = _run_make(sandbox, "uv")
    assert result.returncode != 0
    assert "make: this Python refuses pip installs (PEP 668)" in result.stderr
    assert "pipx install uv" in result.stderr


def test_uv_is_installed_with_pip_when_pip_allows_it(sandbox):
    _path_without_uv(sandbox)
    _tool(sandbox, "python3", '#!/bin/sh\necho "python3 $*" >> "$RECORD"\n')
    result = _run_make(sandbox, "uv")
    assert result.returncode == 0, result.stderr
    assert Path(sandbox["RECORD"]).read_text() == "python3 -m pip install --quiet uv\n"


def test_check_all_checks_every_stack_and_names_the_bad_ones(sandbox, tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "__main__.py").symlink_to(PROJECT_DIR / "__main__.py")
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(PROJECT_DIR / name, stacks / name)
    (stacks / "Pulumi.a-date.yaml").write_text(
        "config:\n  agent-deploy:app:\n    env:\n      D: 2024-01-01\n"
    )
    result = _run_make(sandbox, "check-all", f"STACKS_DIR={stacks}")
    assert result.returncode != 0
    # The bad file sorts first: the good one after it was still checked.
    assert result.stdout.splitlines() == ["== a-date", "== local"]
    assert "invalid stacks: a-date" in result.stderr
    assert "read as a date" in result.stderr


def test_help_lists_every_documented_verb():
    makefile = (PROJECT_DIR / "Makefile").read_text()
    documented = re.findall(r"^([^\s:#=]+):[^\n]*## ", makefile, re.M)
    assert "e2e-local" in documented
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_DIR), "help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == documented


# Issue 11: rollback ------------------------------------------------------------------------
REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent-staging-registry-repo"
HISTORY_STANDIN = (
    RECORDER
    + """
if [ "$1 $2 $3" = "stack output imageHistory" ]; then printf '%s\\n' "$HISTORY"; fi
"""
)


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def history(sandbox: dict[str, str]) -> dict[str, str]:
    Path(sandbox["STANDIN"]).write_text(HISTORY_STANDIN)
    _with_pulumi_on_path(sandbox)
    sandbox["HISTORY"] = f'["{REPO}@{_digest(3)}", "{REPO}@{_digest(2)}", "{REPO}@{_digest(1)}"]'
    return sandbox


def test_make_rollback_redeploys_the_previous_digest_without_building(history):
    calls = [c[0] for c in make(history, "rollback", "STACK=staging")]
    assert calls == [
        "stack output imageHistory --stack staging --json",
        f"config set --path app.image {REPO}@{_digest(2)} --stack staging",
        "up --stack staging",  # no --yes: the preview is confirmed, as with `make up`
    ]


@pytest.mark.parametrize("to", [_digest(1), f"{REPO}@{_digest(1)}"])
def test_make_rollback_to_a_given_digest(history, to: str):
    calls = [c[0] for c in make(history, "rollback", "STACK=production", f"TO={to}")]
    assert calls[1] == f"config set --path app.image {REPO}@{_digest(1)} --stack production"
    assert calls[2] == "up --stack production"


@pytest.mark.parametrize(
    ("stack_history", "to", "message"),
    [
        (f'["{REPO}@{_digest(3)}"]', "", "has no previous image (1 entries); pass TO=<digest>"),
        ("null", "", "has no previous image (0 entries)"),
        ("[]", "latest", "TO=latest is neither sha256:<64 hex>"),
    ],
)
def test_make_rollback_without_a_target_changes_nothing(history, stack_history, to, message):
    history["HISTORY"] = stack_history
    result = _run_make(history, "rollback", "STACK=staging", f"TO={to}")
    assert result.returncode != 0
    assert message in result.stderr
    recorded = Path(history["RECORD"]).read_text()
    assert "config set" not in recorded and "up --stack" not in recorded
