"""The app container: env from config, secrets from Pulumi secrets, port on loopback only,
hardened as on ECS (read-only root filesystem with a /tmp scratch mount, no capabilities, no
privilege escalation).

It generates the stack's API token (`AUTH_TOKENS`), exposed as `api_token` for the stack output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra.app_commands import MIGRATE
from infra.local.containers import RESTART_POLICY, WAIT_TIMEOUT_SECONDS, health
from infra.probe import http_probe
from infra.timeouts import Timeouts
from infra.tokens import TokenRotation, rotating_token

#: The app writes nothing outside /tmp (app/Dockerfile); it listens above 1024 as uid 10001.
SCRATCH = {"/tmp": "rw,nosuid,nodev,size=256m,mode=1777"}  # noqa: S108 - the container's own tmpfs

NO_CAPABILITIES = docker.ContainerCapabilitiesArgs(drops=["ALL"])
NO_NEW_PRIVILEGES = ["no-new-privileges:true"]


@dataclass(frozen=True)
class LocalServiceArgs:
    image: pulumi.Input[str]
    network: pulumi.Input[str]
    port: int
    host_port: int
    liveness_path: str
    timeouts: Timeouts
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()
    token_rotation: TokenRotation = field(default_factory=TokenRotation)


class LocalService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    container_name: pulumi.Output[str]
    api_token: pulumi.Output[str]

    def __init__(
        self, name: str, args: LocalServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:local:Service", name, None, opts)
        token = rotating_token(f"{name}-api-token", self, args.token_rotation)
        self.api_token = token.current
        env = {**args.env, **args.timeouts.app_env(load_balanced=False)}
        plain: list[pulumi.Input[str]] = [f"{k}={v}" for k, v in sorted(env.items())]
        secret_env = {**args.secret_env, "AUTH_TOKENS": token.accepted}
        secret: list[pulumi.Input[str]] = [
            pulumi.Output.secret(pulumi.Output.concat(k, "=", v))
            for k, v in sorted(secret_env.items())
        ]
        # The schema first, with the same image and credentials: `attach` waits for it to exit,
        # and the app container is created only after it (a new image runs it again).
        migrate = docker.Container(
            f"{name}-migrate",
            name=f"{name}-migrate",
            image=args.image,
            command=list(MIGRATE),
            envs=plain + secret,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network)],
            must_run=False,
            attach=True,
            logs=True,
            read_only=True,
            tmpfs=SCRATCH,
            capabilities=NO_CAPABILITIES,
            security_opts=NO_NEW_PRIVILEGES,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
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
                http_probe(args.port, args.liveness_path),
                interval="10s",
                retries=6,
                start_period="20s",
            ),
            restart=RESTART_POLICY,
            # `docker stop` waits out the app's graceful shutdown before SIGKILL.
            stop_timeout=args.timeouts.stop,
            must_run=True,
            wait=True,
            wait_timeout=WAIT_TIMEOUT_SECONDS,
            read_only=True,
            tmpfs=SCRATCH,
            capabilities=NO_CAPABILITIES,
            security_opts=NO_NEW_PRIVILEGES,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, migrate]),
        )
        self.container_name = container.name
        self.url = pulumi.Output.from_input(f"http://127.0.0.1:{args.host_port}")
        self.register_outputs({"url": self.url, "containerName": self.container_name})
