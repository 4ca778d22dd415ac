"""The `local` stack: the seed's docker-compose, on the local Docker daemon, no cloud account."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from infra.config import StackConfig
from infra.local.cache import LocalRedis, LocalRedisArgs
from infra.local.database import LocalPostgres, LocalPostgresArgs
from infra.local.network import LocalNetwork
from infra.local.service import LocalService, LocalServiceArgs
from infra.local.vector import LocalChroma, LocalChromaArgs
from infra.timeouts import Timeouts
from infra.tokens import token_rotation
from stacks import secret_values
from stacks.images import build_image


def build(config: StackConfig) -> dict[str, pulumi.Input[object]]:
    name = f"{config.app.name}-{config.stack}"
    local = config.local
    network = LocalNetwork(name)
    database = LocalPostgres(
        f"{name}-postgres",
        LocalPostgresArgs(
            network=network.name,
            image=local.postgres_image,
            database=config.database.name,
            username=config.database.username,
        ),
    )
    cache = LocalRedis(
        f"{name}-redis", LocalRedisArgs(network=network.name, image=local.redis_image)
    )
    env = {**config.app.env, "PORT": str(config.app.port)}
    if local.chroma:
        chroma = LocalChroma(
            f"{name}-chroma",
            LocalChromaArgs(
                network=network.name, image=local.chroma_image, host_port=local.chroma_host_port
            ),
        )
        env |= chroma.env

    image: pulumi.Input[str]
    if config.app.image is not None:
        image = docker.RemoteImage(
            f"{name}-image", name=config.app.image, keep_locally=True
        ).image_id
        image_ref: pulumi.Input[str] = config.app.image
    else:
        built = build_image(config, repository=f"agent-deploy/{config.app.name}", push=False)
        image = image_ref = built.ref

    service = LocalService(
        name,
        LocalServiceArgs(
            image=image,
            network=network.name,
            port=config.app.port,
            host_port=local.host_port,
            liveness_path=config.app.liveness_path,
            timeouts=Timeouts(config.app.run_timeout_seconds),
            token_rotation=token_rotation(config.app),
            env=env,
            secret_env={
                # The LangGraph server reads the *_URI names; our reference app reads both.
                "DATABASE_URL": database.url,
                "DATABASE_URI": database.url,
                "REDIS_URL": cache.url,
                "REDIS_URI": cache.url,
                **secret_values(config.app.secrets),
            },
            depends_on=[database, cache],
        ),
    )
    return {
        "target": config.target,
        "tier": config.tier,
        "serviceUrl": service.url,
        "healthUrl": pulumi.Output.concat(service.url, config.app.health_path),
        "image": image_ref,
        # Clients send it as `Authorization: Bearer`; read with --show-secrets, never printed.
        "apiToken": service.api_token,
    }
