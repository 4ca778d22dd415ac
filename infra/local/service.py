"""The app container: env from config, secrets from Pulumi secrets, port on loopback only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra.local.containers import RESTART_POLICY, WAIT_TIMEOUT_SECONDS, health


@dataclass(frozen=True)
class LocalServiceArgs:
    image: pulumi.Input[str]
    network: pulumi.Input[str]
    port: int
    host_port: int
    health_path: str
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()


def _health_probe(port: int, path: str) -> list[str]:
    # The image's own Python: no curl or wget needed in a slim image.
    url = f"http://127.0.0.1:{port}{path}"
    code = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('{url}', timeout=4).status != 200)"
    )
    return ["CMD", "python", "-c", code]


class LocalService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    container_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LocalServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:local:Service", name, None, opts)
        plain: list[pulumi.Input[str]] = [f"{k}={v}" for k, v in sorted(args.env.items())]
        secret: list[pulumi.Input[str]] = [
            pulumi.Output.secret(pulumi.Output.concat(k, "=", v))
            for k, v in sorted(args.secret_env.items())
        ]
        container = docker.Container(
            name,
            name=name,
            image=args.image,
            envs=plain + secret,
            ports=[
                docker.ContainerPortArgs(
                    internal=args.port, external=args.host_port, ip="127.0.0.1"
                )
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network)],
            healthcheck=health(
                _health_probe(args.port, args.health_path),
                interval="10s",
                retries=6,
                start_period="20s",
            ),
            restart=RESTART_POLICY,
            must_run=True,
            wait=True,
            wait_timeout=WAIT_TIMEOUT_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.container_name = container.name
        self.url = pulumi.Output.from_input(f"http://127.0.0.1:{args.host_port}")
        self.register_outputs({"url": self.url, "containerName": self.container_name})
