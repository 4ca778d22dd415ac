"""How a stack gets the image it runs: build it from config, or take a prebuilt reference."""

from __future__ import annotations

import os

import pulumi

from infra.config import StackConfig
from infra.image import ContainerImage, ContainerImageArgs, RegistryLogin, content_tag
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
    context = PROJECT_ROOT / build.context
    dockerfile = PROJECT_ROOT / build.dockerfile_path
    tag = content_tag(
        context, dockerfile, platforms=build.platforms, build_args=build.args, target=build.target
    )
    labels = {"org.opencontainers.image.title": config.app.name}
    revision = os.environ.get("GITHUB_SHA")
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    return ContainerImage(
        f"{config.app.name}-{config.stack}-image",
        ContainerImageArgs(
            context=str(context),
            dockerfile=str(dockerfile),
            repository=repository,
            tag=tag,
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
