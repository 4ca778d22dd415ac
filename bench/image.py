"""Image benchmark: cold build time, code-only rebuild time, final and base image sizes.

Usage (repository root, as root or a docker-group user): `python3 bench/image.py`
Stdlib only. Builds app/Dockerfile unchanged, from a temporary copy of app/ so the code-only
edit never touches the work tree. "Cold" means no layer cache (`--no-cache`) and no uv download
cache (BuildKit cache mounts pruned first): every wheel comes from the index again. Starts a
Docker engine and the base-image stand-ins if needed (tests/app/support/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "tests" / "app" / "support"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
TAG = "agent-app:bench"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def docker(*args: str) -> str:
    """Run the Docker CLI with BuildKit; raise with its stderr on failure."""
    result = subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"docker {args[0]} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def timed_build(context: Path, *extra: str) -> float:
    """Seconds taken by one `docker build` of the context."""
    build_args = [f"--build-arg={n}={os.environ[n]}" for n in PROXY_VARS if n in os.environ]
    started = time.perf_counter()
    docker("build", "--network", "host", *build_args, *extra, "--tag", TAG, str(context))
    return time.perf_counter() - started


def image_size(reference: str) -> int:
    """Uncompressed image size in bytes as the engine reports it."""
    return int(docker("image", "inspect", "--format", "{{.Size}}", reference).strip())


def base_image(dockerfile: Path) -> str:
    """The runtime base the Dockerfile names (its last FROM)."""
    froms = [
        line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("FROM ")
    ]
    return froms[-1]


def main() -> int:
    """Run the benchmark and print a table plus one JSON line."""
    subprocess.run(["bash", str(SUPPORT / "start-dockerd.sh")], check=True)
    subprocess.run(["bash", str(SUPPORT / "build-standins.sh")], check=True)
    with tempfile.TemporaryDirectory(prefix="agent-app-bench-") as tmp:
        context = Path(tmp) / "app"
        shutil.copytree(
            ROOT / "app", context, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".*cache")
        )
        docker("builder", "prune", "--force", "--filter", "type=exec.cachemount")
        cold = timed_build(context, "--no-cache")
        with (context / "src" / "api" / "app.py").open("a") as source:
            source.write("\n# bench: code-only change\n")
        rebuild = timed_build(context)
    base = base_image(ROOT / "app" / "Dockerfile")
    figures = {
        "cold_build_s": round(cold, 1),
        "code_only_rebuild_s": round(rebuild, 1),
        "image_mb": round(image_size(TAG) / 1e6, 1),
        "base_image_mb": round(image_size(base) / 1e6, 1),
        "base_image": base,
        "cpus": os.cpu_count(),
    }
    print(f"cold build (no layer cache, no uv cache): {figures['cold_build_s']:>7} s")
    print(f"code-only rebuild:                        {figures['code_only_rebuild_s']:>7} s")
    print(f"final image size:                         {figures['image_mb']:>7} MB")
    print(f"base image size ({base}):   {figures['base_image_mb']:>7} MB")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
