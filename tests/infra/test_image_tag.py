"""The image tag names the image's bytes: immutable registries (ECR) refuse a second, different
image under a tag they already hold, so every build input must move the tag, and nothing that
varies per commit or per checkout may reach the build without moving it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.image import content_tag
from tests.harness import run_stack

IMAGE = "docker-build:index:Image"


def _image(run: Any) -> dict[str, Any]:
    plain = run.one(IMAGE).plain
    assert isinstance(plain, dict)
    return plain


def test_commits_that_change_only_infra_rebuild_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two CI runs of the same app/ at different commits, and a local run without GITHUB_SHA.
    images = []
    for sha in ("aaaa1111", "bbbb2222", None):
        if sha is None:
            monkeypatch.delenv("GITHUB_SHA", raising=False)
        else:
            monkeypatch.setenv("GITHUB_SHA", sha)
        images.append(_image(run_stack("staging")))
    first = images[0]
    for other in images[1:]:
        assert other["tags"] == first["tags"]
        assert other.get("labels") == first.get("labels")
        assert other.get("buildArgs") == first.get("buildArgs")
    assert "org.opencontainers.image.revision" not in first["labels"]
    assert first["labels"] == {"org.opencontainers.image.title": "agent"}


def test_build_locations_do_not_depend_on_where_the_project_is_checked_out() -> None:
    image = _image(run_stack("staging"))
    # docker-build rebuilds when a location changes: absolute paths differ between a laptop
    # and a CI runner, the tag would not.
    assert image["context"]["location"] == "app"
    assert image["dockerfile"]["location"] == "app/Dockerfile"


@pytest.mark.parametrize(
    "build",
    [
        {"args": {"FEATURE": "on"}},
        {"target": "runtime"},
        {"platforms": ["linux/amd64"]},
        {"platforms": ["linux/arm64", "linux/amd64"]},
    ],
)
def test_every_build_setting_of_the_stack_moves_the_tag(build: dict[str, Any]) -> None:
    base = _image(run_stack("staging"))
    changed = _image(run_stack("staging", {"app": {"build": build}}))
    assert changed["tags"] != base["tags"]
    (tag,) = changed["tags"]
    context = Path("app")
    assert tag.endswith(
        ":"
        + content_tag(
            context,
            context / "Dockerfile",
            platforms=build.get("platforms", ["linux/arm64"]),
            build_args=build.get("args"),
            target=build.get("target"),
            labels=changed["labels"],
        )
    )


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    (context / "src" / "pkg").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    (context / ".dockerignore").write_text("*\n!src/\n!Dockerfile\nsrc/**/*.pyc\n")
    (context / "src" / "main.py").write_text("print('hi')\n")
    (context / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (context / "notes.md").write_text("ignored\n")
    (tmp_path / "outside.txt").write_text("not in the context\n")
    return context


def _tag(context: Path, **settings: Any) -> str:
    defaults: dict[str, Any] = {
        "platforms": ["linux/arm64"],
        "build_args": {"A": "1"},
        "target": "runtime",
        "labels": {"org.opencontainers.image.title": "agent"},
    }
    return content_tag(context, context / "Dockerfile", **{**defaults, **settings})


def _write(path: str, text: str) -> Callable[[Path], None]:
    return lambda context: (context / path).write_text(text)


CHANGES: dict[str, Callable[[Path], None]] = {
    "Dockerfile": _write("Dockerfile", "FROM scratch\nCOPY src /app\n"),
    "a context file": _write("src/pkg/mod.py", "X = 2\n"),
    "a new context file": _write("src/pkg/new.py", ""),
    "a renamed file": lambda c: (c / "src/main.py").rename(c / "src/app.py"),
    "a file mode": lambda c: (c / "src/main.py").chmod(0o755),
    "a directory-specific ignore file": _write("Dockerfile.dockerignore", "src/pkg\n"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_the_build_reads_moves_the_tag(tmp_path: Path, change: str) -> None:
    context = _context(tmp_path)
    before = _tag(context)
    CHANGES[change](context)
    assert _tag(context) != before


@pytest.mark.parametrize(
    "setting",
    [
        {"platforms": ["linux/amd64"]},
        {"build_args": {"A": "2"}},
        {"build_args": {"A": "1", "B": "1"}},
        {"target": "deps"},
        {"labels": {"org.opencontainers.image.title": "other"}},
        {"labels": {"org.opencontainers.image.title": "agent", "extra": "x"}},
    ],
)
def test_a_build_setting_moves_the_tag(tmp_path: Path, setting: dict[str, Any]) -> None:
    context = _context(tmp_path)
    assert _tag(context, **setting) != _tag(context)


def test_what_the_build_does_not_read_leaves_the_tag(tmp_path: Path) -> None:
    context = _context(tmp_path)
    before = _tag(context)
    (context / "notes.md").write_text("edited\n")  # excluded by .dockerignore
    (tmp_path / "outside.txt").write_text("edited\n")  # outside the context
    # `**` spans zero directories too, as in Docker: src/x.pyc and src/pkg/x.pyc are excluded.
    (context / "src" / "cached.pyc").write_bytes(b"\0")
    (context / "src" / "pkg" / "cached.pyc").write_bytes(b"\0")
    os.utime(context / "src" / "main.py", (0, 0))  # only the mtime
    assert _tag(context) == before


def test_a_reincluded_file_under_an_ignored_directory_counts(tmp_path: Path) -> None:
    context = _context(tmp_path)
    (context / ".dockerignore").write_text("*\n!Dockerfile\n!src/pkg/mod.py\n")
    before = _tag(context)
    (context / "src" / "main.py").write_text("ignored\n")
    assert _tag(context) == before
    (context / "src" / "pkg" / "mod.py").write_text("X = 3\n")
    assert _tag(context) != before
