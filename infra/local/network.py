"""A private bridge network so the containers find each other by name, not by host port."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker


class LocalNetwork(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-deploy:local:Network", name, None, opts)
        network = docker.Network(
            f"{name}-net",
            name=f"{name}-net",
            driver="bridge",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = network.name
        self.register_outputs({"name": self.name})
