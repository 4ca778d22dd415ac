"""Postgres for the local stack, with a generated password that never appears in plain text."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.local.containers import backing_container, health

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
        container = backing_container(
            name,
            parent=self,
            image=args.image,
            network=args.network,
            hostname=args.hostname,
            data_path="/var/lib/postgresql/data",
            envs=[f"POSTGRES_USER={args.username}", f"POSTGRES_DB={args.database}", password_env],
            healthcheck=health(["CMD", "pg_isready", "-U", args.username, "-d", args.database]),
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
