"""What every local backing container shares: a pinned image kept locally, a named volume for
its data, an alias on the stack's network, a health check, restarts, and `pulumi up` waiting
until it is healthy."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

RESTART_POLICY = "unless-stopped"
WAIT_TIMEOUT_SECONDS = 180


def health(
    test: list[str], *, interval: str = "5s", retries: int = 10, start_period: str = "10s"
) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval=interval, timeout="5s", retries=retries, start_period=start_period
    )


def backing_container(
    name: str,
    *,
    parent: pulumi.Resource,
    image: str,
    network: pulumi.Input[str],
    hostname: str,
    data_path: str,
    envs: Sequence[pulumi.Input[str]],
    healthcheck: docker.ContainerHealthcheckArgs,
    command: Sequence[str] | None = None,
    ports: Sequence[docker.ContainerPortArgs] | None = None,
) -> docker.Container:
    """Publishes no host port unless `ports` says so: the app reaches it over the network."""
    child = pulumi.ResourceOptions(parent=parent)
    remote = docker.RemoteImage(f"{name}-image", name=image, keep_locally=True, opts=child)
    volume = docker.Volume(f"{name}-data", name=f"{name}-data", opts=child)
    return docker.Container(
        name,
        name=name,
        image=remote.image_id,
        envs=list(envs),
        command=list(command) if command is not None else None,
        ports=list(ports) if ports is not None else None,
        volumes=[docker.ContainerVolumeArgs(container_path=data_path, volume_name=volume.name)],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network, aliases=[hostname])],
        healthcheck=healthcheck,
        restart=RESTART_POLICY,
        wait=True,
        wait_timeout=WAIT_TIMEOUT_SECONDS,
        opts=child,
    )
