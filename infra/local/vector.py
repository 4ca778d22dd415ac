"""Optional Chroma vector store, as in the seed's compose file, bound to loopback only."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.local.containers import backing_container, health

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
        backing_container(
            name,
            parent=self,
            image=args.image,
            network=args.network,
            hostname=args.hostname,
            data_path="/chroma/chroma",
            envs=["ANONYMIZED_TELEMETRY=FALSE", "IS_PERSISTENT=TRUE"],
            ports=[
                docker.ContainerPortArgs(
                    internal=CHROMA_PORT, external=args.host_port, ip="127.0.0.1"
                )
            ],
            healthcheck=health(["CMD", "python", "-c", _TCP_PROBE]),
        )
        self.env = {"CHROMA_HOST": args.hostname, "CHROMA_PORT": str(CHROMA_PORT)}
        self.register_outputs({})
