"""Postgres for the local stack, with a generated password that never appears in plain text."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from infra.local.containers import (
    RESTART_POLICY,
    WAIT_TIMEOUT_SECONDS,
    health,
    named_volume,
    remote_image,
)

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class LocalPostgresArgs:
    network: pulumi.Input[str]
    image: str
    database: str
    username: str
    hostname: str = "postgres"


class LocalPostgres(pulumi.ComponentResource):
    """`url` is a secret `postgresql://` URL reachable from containers on `network`."""

    url: pulumi.Output[str]
    container_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LocalPostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:local:Postgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Alphanumeric only: the password is embedded in a URL without escaping.
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        password_env: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.concat("POSTGRES_PASSWORD=", password.result)
        )
        image = remote_image(name, args.image, self)
        volume = named_volume(name, self)
        container = docker.Container(
            name,
            name=name,
            image=image.image_id,
            envs=[
                f"POSTGRES_USER={args.username}",
                f"POSTGRES_DB={args.database}",
                password_env,
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    container_path="/var/lib/postgresql/data", volume_name=volume.name
                )
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[args.hostname])
            ],
            healthcheck=health(["CMD", "pg_isready", "-U", args.username, "-d", args.database]),
            restart=RESTART_POLICY,
            wait=True,
            wait_timeout=WAIT_TIMEOUT_SECONDS,
            opts=child,
        )
        self.container_name = container.name
        self.url = pulumi.Output.secret(
            pulumi.Output.concat(
                "postgresql://",
                args.username,
                ":",
                password.result,
                "@",
                args.hostname,
                ":",
                str(POSTGRES_PORT),
                "/",
                args.database,
            )
        )
        self.register_outputs({"containerName": self.container_name})
