"""Promotion by copy (infra/promotion.py), for real: the command the component registers, run
with skopeo between two registries on loopback (Debian's `docker-registry`), copies a
two-platform image index byte for byte, is a no-op the second time, and refuses a copy whose
digest is not the promoted one. The stacks' use of it is in test_lifecycle.py."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.engine import Resource, contains_secret
from infra.promotion import PromotedImage, PromotedImageArgs, promoted_tag
from tests.harness import run_components
from tests.infra.support import free_port, need_binary

COMMAND = "command:local:Command"


@dataclass(frozen=True)
class Registries:
    source: str
    destination: str
    env: dict[str, str]

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [need_binary("skopeo"), *args],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=True,
        )


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Registries]:
    """Two plain-HTTP registries on loopback; skopeo is told they are insecure by a
    registries.conf in the test's own HOME, not by the script."""
    need_binary("skopeo")
    binary = need_binary("docker-registry")
    hosts, processes = [], []
    for label in ("source", "destination"):
        port = free_port()
        config = tmp_path / f"{label}.yml"
        config.write_text(
            "version: 0.1\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp_path / label}\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
        processes.append(
            subprocess.Popen(
                [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        hosts.append(f"127.0.0.1:{port}")
    home = tmp_path / "home"
    conf = home / ".config" / "containers" / "registries.conf"  # the user's file wins
    conf.parent.mkdir(parents=True)
    conf.write_text("".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n\n' for h in hosts))
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    try:
        for host in hosts:
            deadline = time.monotonic() + 15
            while True:
                try:
                    urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield Registries(hosts[0], hosts[1], env)
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def two_platform_index(root: Path) -> str:
    """An OCI layout holding an index of an amd64 and an arm64 image; returns the index digest."""
    manifests = []
    for arch in ("amd64", "arm64"):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            content = f"built for {arch}\n".encode()
            info = tarfile.TarInfo("hello")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({
            "architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers",
                       "diff_ids": [f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"]},
        }).encode()  # fmt: skip
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       **_blob(root, config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        **_blob(root, layer)}],
        }).encode()  # fmt: skip
        manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(root, manifest), "platform": {"architecture": arch, "os": "linux"},
        })  # fmt: skip
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }).encode()  # fmt: skip
    descriptor = _blob(root, index)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", **descriptor,
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }]}))  # fmt: skip
    return str(descriptor["digest"])


def staged(registries: Registries, tmp_path: Path) -> str:
    """Push a two-platform image to the source registry, as staging's build did; its digest."""
    digest = two_platform_index(tmp_path / "layout")
    registries.skopeo(
        "copy", "--all", "--preserve-digests", f"oci:{tmp_path / 'layout'}:v1",
        f"docker://{registries.source}/agent-staging:sha-0123456789abcdef",
    )  # fmt: skip
    return digest


def registered_copy(source: str, repository: str) -> Resource:
    """The command PromotedImage registers (the program's own component, under the mocks)."""

    def program() -> None:
        PromotedImage("agent-production-image", PromotedImageArgs(source, repository))

    (copy,) = run_components(program).of_type(COMMAND)
    return copy


def run_copy(copy: Resource, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    plain = copy.plain
    return subprocess.run(
        [*plain["interpreter"], plain["create"]],
        env={**env, **plain["environment"]},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_promotion_copies_the_index_byte_for_byte_once(
    registries: Registries, tmp_path: Path
) -> None:
    digest = staged(registries, tmp_path)
    source = f"{registries.source}/agent-staging@{digest}"
    copy = registered_copy(source, f"{registries.destination}/agent-production")
    # No credential is an input (nothing to store, nothing that changes between runs).
    assert set(copy.plain["environment"]) == {"SOURCE", "DESTINATION", "DIGEST"}
    assert not contains_secret(copy.inputs)
    assert copy.plain["environment"]["SOURCE"] == source
    assert copy.plain["triggers"] == [source, f"{copy.plain['environment']['DESTINATION']}"]

    done = run_copy(copy, registries.env)

    assert done.returncode == 0, done.stderr
    target = f"{registries.destination}/agent-production:{promoted_tag(digest)}"
    raw = registries.skopeo("inspect", "--raw", f"docker://{target}").stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == digest  # the same bytes
    for child in json.loads(raw)["manifests"]:  # and both platforms' images
        registries.skopeo(
            "inspect",
            "--raw",
            f"docker://{registries.destination}/agent-production@{child['digest']}",
        )
    again = run_copy(copy, registries.env)
    assert again.returncode == 0, again.stderr
    assert "already promoted" in again.stdout


def test_a_copy_that_is_not_the_promoted_digest_fails(
    registries: Registries, tmp_path: Path
) -> None:
    digest = staged(registries, tmp_path)
    copy = registered_copy(
        f"{registries.source}/agent-staging@{digest}", f"{registries.destination}/agent-production"
    )
    # The destination tag already holds other bytes: the image converted to Docker's format.
    taken = f"{registries.destination}/agent-production:{promoted_tag(digest)}"
    registries.skopeo(
        "copy", "--all", "--format", "v2s2", f"oci:{tmp_path / 'layout'}:v1", f"docker://{taken}"
    )

    done = run_copy(copy, registries.env)

    assert done.returncode != 0
    assert f"not the promoted {digest}" in done.stderr


MANIFEST = b'{"schemaVersion":2}'
FAKE_DIGEST = f"sha256:{hashlib.sha256(MANIFEST).hexdigest()}"


def fake_tools(bin_dir: Path) -> Path:
    """Stand-in aws, gcloud and skopeo that log their arguments (skopeo also the auth file it
    was given) and answer as a registry without the tag would; the real coreutils beside them."""
    log = bin_dir / "calls.log"
    scripts = {
        "aws": 'echo "aws $*" >> "$LOG"; echo "pw-$4"',
        "gcloud": 'echo "gcloud $*" >> "$LOG"; echo gtoken',
        "skopeo": (
            'echo "skopeo $1" >> "$LOG"\n'
            'for a in "$@"; do [ "$prev" = --authfile ] && cp "$a" "$LOG.auth"; prev="$a"; done\n'
            'case "$1" in copy) touch "$LOG.copied" ;; inspect) [ -e "$LOG.copied" ] || exit 1;'
            f" printf '%s' '{MANIFEST.decode()}' ;; esac"
        ),
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nLOG={log}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    for tool in ("mktemp", "rm", "base64", "tr", "sha256sum", "cut", "cp", "touch"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return log


STAGING_ECR = f"{'1' * 12}.dkr.ecr.eu-west-1.amazonaws.com"
PRODUCTION_ECR = f"{'2' * 12}.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("source_host", "destination_host", "logins"),
    [
        (STAGING_ECR, PRODUCTION_ECR,
         {STAGING_ECR: "AWS:pw-eu-west-1", PRODUCTION_ECR: "AWS:pw-us-east-1"}),
        ("europe-west1-docker.pkg.dev", "us-central1-docker.pkg.dev",
         {"europe-west1-docker.pkg.dev": "oauth2accesstoken:gtoken",
          "us-central1-docker.pkg.dev": "oauth2accesstoken:gtoken"}),
        # Another registry's host gets no credential at all.
        ("ghcr.io", PRODUCTION_ECR, {PRODUCTION_ECR: "AWS:pw-us-east-1"}),
    ],
)  # fmt: skip
def test_the_copy_logs_in_to_registry_hosts_only_with_the_deploying_identity(
    tmp_path: Path, source_host: str, destination_host: str, logins: dict[str, str]
) -> None:
    log = fake_tools(tmp_path)
    copy = registered_copy(f"{source_host}/a@{FAKE_DIGEST}", f"{destination_host}/b")

    done = run_copy(copy, {"PATH": str(tmp_path), "HOME": str(tmp_path)})

    assert done.returncode == 0, done.stderr
    auths = json.loads((tmp_path / "calls.log.auth").read_text())["auths"]
    assert {host: base64.b64decode(e["auth"]).decode() for host, e in auths.items()} == logins
    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("skopeo")] == [
        "skopeo inspect", "skopeo copy", "skopeo inspect"
    ]  # fmt: skip
    assert not [c for c in calls if "ghcr" in c]
