"""Pieces every local container shares: a pinned image kept locally and a named volume."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

# Databases publish no host port: only the app reaches them, over the stack's network.
RESTART_POLICY = "unless-stopped"
WAIT_TIMEOUT_SECONDS = 180


def remote_image(name: str, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
    return docker.RemoteImage(
        f"{name}-image",
        name=reference,
        keep_locally=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def named_volume(name: str, parent: pulumi.Resource) -> docker.Volume:
    return docker.Volume(
        f"{name}-data", name=f"{name}-data", opts=pulumi.ResourceOptions(parent=parent)
    )


def health(
    test: list[str], *, interval: str = "5s", retries: int = 10, start_period: str = "10s"
) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval=interval, timeout="5s", retries=retries, start_period=start_period
    )
