"""Optional Chroma vector store, as in the seed's compose file, bound to loopback only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.local.containers import (
    RESTART_POLICY,
    WAIT_TIMEOUT_SECONDS,
    health,
    named_volume,
    remote_image,
)

CHROMA_PORT = 8000
_TCP_PROBE = (
    f"import socket; socket.create_connection(('127.0.0.1', {CHROMA_PORT}), timeout=3).close()"
)


@dataclass(frozen=True)
class LocalChromaArgs:
    network: pulumi.Input[str]
    image: str
    host_port: int
    hostname: str = "chroma"


class LocalChroma(pulumi.ComponentResource):
    env: dict[str, str]

    def __init__(
        self, name: str, args: LocalChromaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:local:Chroma", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = remote_image(name, args.image, self)
        volume = named_volume(name, self)
        docker.Container(
            name,
            name=name,
            image=image.image_id,
            envs=["ANONYMIZED_TELEMETRY=FALSE", "IS_PERSISTENT=TRUE"],
            volumes=[
                docker.ContainerVolumeArgs(container_path="/chroma/chroma", volume_name=volume.name)
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=CHROMA_PORT, external=args.host_port, ip="127.0.0.1"
                )
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[args.hostname])
            ],
            healthcheck=health(["CMD", "python", "-c", _TCP_PROBE]),
            restart=RESTART_POLICY,
            wait=True,
            wait_timeout=WAIT_TIMEOUT_SECONDS,
            opts=child,
        )
        self.env = {"CHROMA_HOST": args.hostname, "CHROMA_PORT": str(CHROMA_PORT)}
        self.register_outputs({})
