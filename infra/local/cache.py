"""Redis for the local stack: password-protected and persistent, like the managed ones."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.local.containers import backing_container, health

REDIS_PORT = 6379


@dataclass(frozen=True)
class LocalRedisArgs:
    network: pulumi.Input[str]
    image: str
    hostname: str = "redis"


class LocalRedis(pulumi.ComponentResource):
    """`url` is a secret `redis://` URL with the generated password."""

    url: pulumi.Output[str]
    container_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LocalRedisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:local:Redis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        password_env: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.concat("REDISCLI_AUTH=", password.result)
        )
        container = backing_container(
            name,
            parent=self,
            image=args.image,
            network=args.network,
            hostname=args.hostname,
            data_path="/data",
            # REDISCLI_AUTH serves both the server flag and redis-cli in the health check,
            # so the password is never written into the command line of the resource.
            envs=[password_env],
            command=[
                "sh",
                "-c",
                'exec redis-server --appendonly yes --requirepass "$REDISCLI_AUTH"',
            ],
            healthcheck=health(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
        )
        self.container_name = container.name
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "redis://:", password.result, "@", args.hostname, ":", str(REDIS_PORT), "/0"
            )
        )
        self.register_outputs({"containerName": self.container_name})
