"""ContainerImage: build the service image once, tag it by content, push or load it.

Every target uses this one component, so an image deployed to staging is built exactly as the
one a developer runs locally. The tag is a hash of the build inputs: unchanged code gives the
same tag (no rebuild, no new image), any change gives a new one, and `latest` is never used.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

_PLATFORMS = {
    "linux/amd64": docker_build.Platform.LINUX_AMD64,
    "linux/arm64": docker_build.Platform.LINUX_ARM64,
}


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for the registry the image is pushed to (e.g. an ECR authorization)."""

    address: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class ContainerImageArgs:
    context: str
    dockerfile: str
    repository: pulumi.Input[str]
    tag: str
    platforms: Sequence[str] = ("linux/amd64",)
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    push: bool = False
    load: bool = False
    registry: RegistryLogin | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    cache_ref: pulumi.Input[str] | None = None


class ContainerImage(pulumi.ComponentResource):
    """An image built with BuildKit from a context directory.

    `ref` is what a runtime should run: `repository@sha256:…` when pushed (immutable, so a
    re-tag can never change what is deployed), the content tag when only loaded locally.
    """

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]
    tag: str

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:index:ContainerImage", name, None, opts)
        if not (args.push or args.load):
            raise ValueError("ContainerImage must push, load, or both: otherwise it is lost")
        tagged = pulumi.Output.concat(args.repository, ":", args.tag)
        cache_from = cache_to = None
        if args.cache_ref is not None:
            cache_from = [
                docker_build.CacheFromArgs(
                    registry=docker_build.CacheFromRegistryArgs(ref=args.cache_ref)
                )
            ]
            cache_to = [
                docker_build.CacheToArgs(
                    registry=docker_build.CacheToRegistryArgs(
                        ref=args.cache_ref, mode=docker_build.CacheMode.MAX
                    )
                )
            ]
        registries = None
        if args.registry is not None:
            registries = [
                docker_build.RegistryArgs(
                    address=args.registry.address,
                    username=args.registry.username,
                    password=pulumi.Output.secret(args.registry.password),
                )
            ]
        image = docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(location=args.context),
            dockerfile=docker_build.DockerfileArgs(location=args.dockerfile),
            platforms=[_PLATFORMS[p] for p in args.platforms],
            build_args=dict(args.build_args) or None,
            target=args.target,
            tags=[tagged],
            labels=dict(args.labels) or None,
            push=args.push,
            load=args.load,
            registries=registries,
            cache_from=cache_from,
            cache_to=cache_to,
            # A preview shows the image would change (its tag is the content hash) without
            # building it: previews run on any runner and never cross-build the platform.
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.tag = args.tag
        self.digest = image.digest
        if args.push:
            self.ref = pulumi.Output.concat(args.repository, "@", image.digest)
        else:
            self.ref = tagged
        self.register_outputs({"ref": self.ref, "digest": self.digest})


def _dockerignore(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def _ignored(relative: str, patterns: Sequence[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.removeprefix("!").removeprefix("/").removeprefix("**/")
        parts = relative.split("/")
        hit = any(
            fnmatch.fnmatchcase("/".join(parts[:i]), bare)
            or fnmatch.fnmatchcase(parts[i - 1], bare)
            for i in range(1, len(parts) + 1)
        )
        if hit:
            ignored = not negate
    return ignored


def content_tag(
    context: Path,
    dockerfile: Path,
    *,
    platforms: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> str:
    """A tag that changes exactly when what the build reads changes.

    Hashes the Dockerfile, the build settings and every file of the context that
    `.dockerignore` does not exclude, so editing a README outside the context or touching
    mtimes does not produce a new image.
    """
    digest = hashlib.sha256()
    digest.update(dockerfile.read_bytes())
    settings = [*sorted(platforms), *sorted((build_args or {}).items()), target or ""]
    digest.update(repr(settings).encode())
    patterns = _dockerignore(context)
    for directory, subdirs, files in os.walk(context):
        base = Path(directory).relative_to(context)
        subdirs[:] = sorted(d for d in subdirs if not _ignored((base / d).as_posix(), patterns))
        for filename in sorted(files):
            path = Path(directory) / filename
            relative = path.relative_to(context).as_posix()
            if _ignored(relative, patterns):
                continue
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha-{digest.hexdigest()[:16]}"
