"""ContainerImage: build the service image once, tag it by content, push or load it.

Every target uses this one component, so an image deployed to staging is built exactly as the
one a developer runs locally. The tag is a hash of every input that shapes the image's bytes
(Dockerfile, context files with their modes, platforms, build args, target, labels): unchanged
inputs give the same tag and no rebuild, any change gives a new tag, and `latest` is never used.

Registries with immutable tags (ECR) refuse a second, different image under an existing tag.
The build is not bit-for-bit reproducible (floating base images, file times of `RUN` layers), so
the guarantee is the other way round: nothing that makes the provider rebuild may leave the tag
unchanged. Hence no per-commit metadata in the image (a revision label would rebuild every
commit under the same tag), and context/Dockerfile passed as paths relative to the project, so a
checkout in another directory (a laptop, then CI) is not a change either.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
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
        # Derived here from the very inputs passed to the build, so none can be left out.
        self.tag = content_tag(
            Path(args.context),
            Path(args.dockerfile),
            platforms=args.platforms,
            build_args=args.build_args,
            target=args.target,
            labels=args.labels,
        )
        tagged = pulumi.Output.concat(args.repository, ":", self.tag)
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
        self.digest = image.digest
        if args.push:
            self.ref = pulumi.Output.concat(args.repository, "@", image.digest)
        else:
            self.ref = tagged
        self.register_outputs({"ref": self.ref, "digest": self.digest})


def _dockerignore(context: Path, dockerfile: Path) -> list[str]:
    """The patterns BuildKit applies: `<Dockerfile>.dockerignore` first, else the context's."""
    for ignore in (
        dockerfile.with_name(dockerfile.name + ".dockerignore"),
        context / ".dockerignore",
    ):
        if ignore.is_file():
            lines = (line.strip() for line in ignore.read_text().splitlines())
            return [line for line in lines if line and not line.startswith("#")]
    return []


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    parts: tuple[str, ...]
    negate: bool


def _compile(line: str) -> _Pattern:
    """Docker's pattern syntax (moby/patternmatcher): `*` and `?` stay within one path
    segment, `**` spans any number of them (also none), paths are relative to the context."""
    negate = line.startswith("!")
    pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            regex += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                regex += re.escape(char)
            else:
                regex += pattern[i : end + 1].replace("[!", "[^")
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(char)
        i += 1
    return _Pattern(re.compile(f"^{regex}$"), tuple(pattern.split("/")), negate)


def _ignored(relative: str, patterns: Sequence[_Pattern]) -> bool:
    """A pattern matches a path or any of its parent directories; the last match wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        if any(pattern.regex.match(c) for c in candidates):
            ignored = not pattern.negate
    return ignored


def _may_reinclude(directory: str, patterns: Sequence[_Pattern]) -> bool:
    """Whether a `!` pattern could match something below an ignored directory."""
    parts = directory.split("/")
    for pattern in patterns:
        if not pattern.negate:
            continue
        for mine, theirs in zip(parts, pattern.parts, strict=False):
            if any(c in theirs for c in "*?[\\"):
                return True
            if mine != theirs:
                break
        else:
            return True
    return False


def content_tag(
    context: Path,
    dockerfile: Path,
    *,
    platforms: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A tag that changes exactly when what the build reads changes.

    Hashes the Dockerfile, the build settings and every file of the context that the ignore
    file does not exclude, with its path and permission bits (`COPY` keeps them, and a checkout
    under another umask is another image), so editing a file outside the context or touching
    mtimes does not produce a new image.
    """
    digest = hashlib.sha256()
    digest.update(dockerfile.read_bytes())
    settings = [
        sorted(platforms),
        sorted((build_args or {}).items()),
        target or "",
        sorted((labels or {}).items()),
    ]
    digest.update(repr(settings).encode())
    patterns = [_compile(line) for line in _dockerignore(context, dockerfile)]
    for directory, subdirs, files in os.walk(context):
        base = Path(directory).relative_to(context)
        subdirs[:] = sorted(
            d
            for d in subdirs
            if not _ignored((base / d).as_posix(), patterns)
            or _may_reinclude((base / d).as_posix(), patterns)
        )
        for filename in sorted(files):
            path = Path(directory) / filename
            relative = path.relative_to(context).as_posix()
            if _ignored(relative, patterns):
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            digest.update(f"{relative}\0{mode:o}\0".encode() + path.read_bytes() + b"\0")
    return f"sha-{digest.hexdigest()[:16]}"
