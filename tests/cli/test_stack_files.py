"""Stack files that used to crash `check`: each is a key-named error, never a traceback.

A bad file exits 2 for itself, and is a named warning (not a crash) for the other stacks,
whose GitHub ownership check reads every sibling. `--json` prints JSON on every exit code.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_check import check, project  # noqa: F401 - the fixture
from tests.harness import PROJECT_DIR, run_stack

# (case id, file content (bytes), fragment of the message, key in --json or None for the file)
BAD_FILES: list[tuple[str, bytes, str, str | None]] = [
    (
        "yaml-date",
        b"config:\n  agent-deploy:app:\n    env:\n      RELEASE: 2024-01-01\n",
        'read as a date: quote it ("2024-01-01")',
        "agent-deploy:app.env.RELEASE",
    ),
    (
        "yaml-timestamp",
        b"config:\n  agent-deploy:app:\n    env:\n      AT: 2024-01-01T10:00:00Z\n",
        "read as a date",
        "agent-deploy:app.env.AT",
    ),
    ("config-list", b"config:\n  - agent-deploy:tier\n", "must be a mapping", "config"),
    ("int-key", b"config:\n  1: 2\n", "config key 1 must be a string", "1"),
    (
        "nested-int-key",
        b"config:\n  agent-deploy:app:\n    env:\n      1: x\n",
        "key 1 must be a string",
        "agent-deploy:app.env",
    ),
    (
        "duplicate-key",
        b"config:\n  agent-deploy:tier: staging\n  agent-deploy:tier: production\n",
        "given twice (again on line 3)",
        "agent-deploy:tier",
    ),
    (
        "duplicate-nested-key",
        b"config:\n  agent-deploy:app:\n    port: 8000\n    port: 9000\n",
        "given twice",
        "port",
    ),
    (
        "utf-16",
        "config:\n  agent-deploy:tier: ephemeral\n".encode("utf-16"),
        "is not UTF-8 text",
        None,
    ),
    ("not-yaml", b"config: [unclosed\n", "Pulumi.qa.yaml", None),
]


@pytest.mark.parametrize(
    ("content", "fragment", "key"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_a_bad_stack_file_is_a_named_error_with_exit_2(
    project: Path,  # noqa: F811
    content: bytes,
    fragment: str,
    key: str | None,
) -> None:
    (project / "Pulumi.qa.yaml").write_bytes(content)
    code, out, err = check("--stack", "qa", "--json", project_dir=project)
    assert code == 2
    assert fragment in err and "Traceback" not in err
    (error,) = json.loads(out)["errors"][:1]
    assert error["key"] == key and fragment in error["message"]


def test_a_directory_named_like_a_stack_file(project: Path) -> None:  # noqa: F811
    (project / "Pulumi.qa.yaml").mkdir()
    code, out, err = check("--stack", "qa", "--json", project_dir=project)
    assert code == 2
    assert "Pulumi.qa.yaml is a directory, not a stack file" in err
    assert json.loads(out)["stack"] == "qa"


def test_a_bad_sibling_is_a_warning_for_the_other_stacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ownership check reads every stack file of the project, bad ones included.
    (tmp_path / "app").symlink_to(PROJECT_DIR / "app")
    (tmp_path / ".github").symlink_to(PROJECT_DIR / ".github")  # CODEOWNERS
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    for case, content, _, _ in BAD_FILES:
        (tmp_path / f"Pulumi.qa-{case}.yaml").write_bytes(content)
    (tmp_path / "Pulumi.qa-dir.yaml").mkdir()
    monkeypatch.setattr("stacks.PROJECT_ROOT", tmp_path)
    run = run_stack("staging", preview=True)
    assert run.resources
    skipped = " ".join(run.warnings)
    for case, *_ in BAD_FILES:
        assert f"skipped Pulumi.qa-{case}.yaml" in skipped
    assert "Pulumi.qa-dir.yaml is a directory" in skipped
    # `check` shows them, and still passes.
    (tmp_path / "__main__.py").symlink_to(PROJECT_DIR / "__main__.py")
    code, _, err = check("--stack", "staging", project_dir=tmp_path)
    assert code == 0, err
    assert "warning: skipped Pulumi.qa-utf-16.yaml in the GitHub ownership check" in err


def test_a_namespace_typo_gets_a_did_you_mean(project: Path) -> None:  # noqa: F811
    (project / "Pulumi.qa.yaml").write_text(
        "config:\n  agent-deply:database:\n    storageGb: 1000\n"
    )
    code, out, _ = check("--stack", "qa", "--json", project_dir=project)
    assert code == 1
    (error,) = json.loads(out)["errors"]
    assert error["key"] == "agent-deply:database"
    assert "did you mean 'agent-deploy:database'?" in error["message"]


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--stack", "nope"], 2), ([], 2), (["--stack", "local", "--bogus"], 2)],
    ids=["unknown-stack", "missing-stack", "unknown-option"],
)
def test_json_output_on_every_exit_code(
    args: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    try:
        exit_code = main(["check", *args, "--json", "--project-dir", str(PROJECT_DIR)])
    except SystemExit as usage:  # argparse
        exit_code = int(str(usage.code))
    assert exit_code == code
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] and document["errors"][0]["message"]


def test_a_closed_pipe_is_not_a_traceback() -> None:
    # `agent-deploy check | head -1`: the reader leaves before the listing is written.
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "check", "--stack", "local"],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.wait(timeout=300)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_a_run_leaves_no_event_loop_open() -> None:
    """An unclosed loop collected at exit printed "Exception ignored ... Invalid file
    descriptor: -1" (one run in forty): every loop the runtime's threads made is closed."""
    run_stack("pr-3", preview=True)
    run_stack("pr-4", preview=True)
    gc.collect()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    # Only the main thread's loop stays open between runs; it is closed at exit (atexit).
    assert [loop for loop in loops if not loop.is_closed()] == [asyncio.get_event_loop()]


def test_repeated_runs_end_with_clean_stderr() -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "check", "--stack", f"pr-{n}"],
            cwd=PROJECT_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(1, 5)  # pull requests are numbered from 1 (a slice refuses pr-0)
    ]
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0
        assert "Exception ignored" not in stderr and "Traceback" not in stderr, stderr


def test_a_bad_project_file_is_a_named_error_too(project: Path) -> None:  # noqa: F811
    (project / "Pulumi.yaml").write_text("name: agent-deploy\nruntime: python\nconfig: [x]\n")
    (project / "Pulumi.qa.yaml").write_text("config: {}\n")
    code, out, err = check("--stack", "qa", "--json", project_dir=project)
    assert code == 2 and "Pulumi.yaml: `config` must be a mapping" in err
    assert json.loads(out)["errors"][0]["key"] == "config"
