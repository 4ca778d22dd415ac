"""How a stack gets the image it runs: build it from config, or take a prebuilt reference."""

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
