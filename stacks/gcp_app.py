"""The app on gcp as every composition (a tier stack, a pr-<n> slice) builds it: its image and
its Cloud Run service, in one place, so a slice never drifts from the stack it previews."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.app_commands import MIGRATE
from infra.config import StackConfig
from infra.config.gcp import CLOUD_RUN_TIMEOUT_MARGIN_SECONDS
from infra.gcp.registry import ArtifactRegistry, ArtifactRegistryArgs, registry_login
from infra.gcp.service import CloudRunServiceArgs
from infra.promotion import PromotedImage, PromotedImageArgs
from infra.timeouts import Timeouts
from stacks.images import build_image, given_image_digest

# Cloud Run's front end is the only way to the container (no other ingress path exists), so
# the X-Forwarded-For it sets is trusted whatever address it connects from.
FORWARDED_ALLOW_IPS = "*"


def app_service_args(
    config: StackConfig,
    *,
    project: pulumi.Input[str],
    region: str,
    image: pulumi.Input[str],
    secret_env: Mapping[str, tuple[pulumi.Input[str], pulumi.Input[str]]],
    env: Mapping[str, str] | None = None,
    **placement: Any,
) -> CloudRunServiceArgs:
    """Sizes, probes, timeouts, invoker and migration from config; `env` adds variables of
    the composition's own, `placement` its network, account, dependencies and ingress."""
    gcp_config = config.gcp
    assert gcp_config is not None  # validated: target gcp has a gcp section
    timeouts = Timeouts(config.app.run_timeout_seconds)
    return CloudRunServiceArgs(
        project=project,
        region=region,
        image=image,
        port=config.app.port,
        cpu=str(config.app.cpu // 1024),
        memory=f"{config.app.memory}Mi",
        min_instances=config.app.min_instances,
        max_instances=config.app.max_instances,
        cpu_idle=gcp_config.cpu_idle,
        timeout_seconds=config.app.run_timeout_seconds + CLOUD_RUN_TIMEOUT_MARGIN_SECONDS,
        readiness_path=config.app.readiness_path,
        liveness_path=config.app.liveness_path,
        env={
            **config.app.env,
            "FORWARDED_ALLOW_IPS": FORWARDED_ALLOW_IPS,
            **(env or {}),
            **timeouts.app_env(load_balanced=False),
        },
        secret_env={key: secret_env[key] for key in sorted(secret_env)},
        deletion_protection=gcp_config.service_deletion_protection,
        public=gcp_config.invoker != "private",
        invoker_iam_disabled=gcp_config.invoker == "public",
        migrate_command=MIGRATE,
        **placement,
    )


def app_image(
    config: StackConfig,
    name: str,
    provider: gcp.Provider,
    opts: pulumi.ResourceOptions,
    writers: Sequence[pulumi.Input[str]] = (),
) -> tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str] | None]:
    """(image, digest, repository URL): `app.image` as given (no repository), copied into an
    Artifact Registry repository of this stack's own (`app.copyImage`: production), or built
    and pushed to one (immutable tags; `writers` may push to it too)."""
    image = config.app.image
    if image is not None and not config.app.copy_image:
        return image, given_image_digest(image), None
    gcp_config = config.gcp
    assert gcp_config is not None  # validated: target gcp has a gcp section
    registry = ArtifactRegistry(
        f"{name}-registry",
        ArtifactRegistryArgs(
            project=gcp_config.project,
            region=gcp_config.region,
            repository_id=name,
            keep_count=gcp_config.registry_keep_images,
            immutable_tags=True,
            # A copy is pushed by the deploy account's project-level role: no binding to add
            # (which would need setIamPolicy, which that role never has).
            writers=writers if image is None else (),
            readers=gcp_config.image_readers,
        ),
        opts,
    )
    # Artifact Registry names an image under the repository: <repository>/<image>.
    image_path = pulumi.Output.concat(registry.repository_url, "/", config.app.name)
    if image is not None:
        promoted = PromotedImage(
            f"{name}-image", PromotedImageArgs(source=image, repository=image_path), opts
        )
        return promoted.ref, promoted.digest, registry.repository_url
    built = build_image(
        config,
        repository=image_path,
        push=True,
        registry=registry_login(gcp_config.region, pulumi.InvokeOptions(provider=provider)),
    )
    return built.ref, built.digest, registry.repository_url
