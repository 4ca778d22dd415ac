"""How a stack gets the image it runs: build it from config, or take a prebuilt reference
(`app.image`: how production promotes staging's digest and how a rollback pins an earlier one)."""

from __future__ import annotations

import os

import pulumi

from infra.config import StackConfig
from infra.image import ContainerImage, ContainerImageArgs, RegistryLogin
from stacks import PROJECT_ROOT


def build_image(
    config: StackConfig,
    *,
    repository: pulumi.Input[str],
    push: bool,
    registry: RegistryLogin | None = None,
    cache_ref: pulumi.Input[str] | None = None,
) -> ContainerImage:
    build = config.app.build
    # Relative to the project directory, Pulumi's working directory: the provider rebuilds when
    # a location changes, and an absolute path differs per checkout while the tag would not.
    context = os.path.relpath(PROJECT_ROOT / build.context)
    dockerfile = os.path.relpath(PROJECT_ROOT / build.dockerfile_path)
    # No revision label: it would change the image on every commit under the same content
    # tag, which an immutable registry refuses. Which commit deployed it is Pulumi's history.
    labels = {"org.opencontainers.image.title": config.app.name}
    return ContainerImage(
        f"{config.app.name}-{config.stack}-image",
        ContainerImageArgs(
            context=context,
            dockerfile=dockerfile,
            repository=repository,
            platforms=build.platforms,
            build_args=build.args,
            target=build.target,
            push=push,
            load=not push,
            registry=registry,
            labels=labels,
            cache_ref=cache_ref,
        ),
    )


#: How many digests a stack remembers for `make rollback` / the rollback workflow.
HISTORY_LENGTH = 10


def image_history(image: pulumi.Input[str]) -> pulumi.Output[list[str]]:
    """The digest-pinned images this stack ran, newest first (output `imageHistory`).

    Why a reference to the stack itself: a program cannot see its previous outputs otherwise,
    and "previous" for a rollback is the entry after the current one. A first deploy reads none.
    """
    own = pulumi.StackReference(
        f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    )
    previous = own.get_output("imageHistory")
    return pulumi.Output.all(image, previous).apply(lambda v: next_history(v[0], v[1]))


def next_history(current: str, previous: object) -> list[str]:
    """`current` first, then the earlier entries of other digests; only digest-pinned references.

    By digest, not by reference: a promoted digest is the same image in staging's registry and
    in the copy production runs (infra/promotion.py).
    """
    earlier = [p for p in previous if isinstance(p, str)] if isinstance(previous, list) else []
    digest = current.partition("@")[2]
    pinned = [current] if digest.startswith("sha256:") else []
    return (pinned + [p for p in earlier if not digest or p.partition("@")[2] != digest])[
        :HISTORY_LENGTH
    ]


def given_image_digest(image: str) -> str:
    """The digest of an `app.image` reference, or a note that it has none (output `imageDigest`)."""
    return image.partition("@")[2] or "unpinned: app.image has no digest"
