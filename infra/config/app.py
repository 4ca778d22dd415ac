"""The `app` (with its `build`) and `local` sections."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.common import (
    _RESERVED_ENV,
    _SECRET_LIKE,
    PROJECT,
    EnvName,
    Platform,
    ResourceName,
    UrlPath,
    _default_platforms,
    _project_root,
    _Section,
)
from infra.config.github import _EPHEMERAL_STACK
from infra.config.problems import ConfigProblem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

# A certificate's first name is its subject common name, which X.509 limits to 64 characters
# (RFC 5280 ub-common-name): ACM and public CAs refuse longer ones.
CERTIFICATE_MAX_DOMAIN = 64
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _hostname(value: str) -> str:
    """A DNS name a certificate and an alias record can carry: lowercase LDH labels."""
    if value.startswith("*"):
        raise ValueError(
            "a wildcard is not a service address: set the one hostname the service answers on "
            "(pr-<n> stacks get pr-<n>.<domain> by themselves)"
        )
    if "://" in value or "/" in value or ":" in value:
        raise ValueError(
            "must be a hostname only, such as 'agent.example.com' (no scheme, port or path)"
        )
    if value.endswith("."):
        raise ValueError(f"write it without the trailing dot: '{value.rstrip('.')}'")
    if value != value.lower():
        raise ValueError(f"write it in lowercase: '{value.lower()}'")
    if not value.isascii():
        raise ValueError("write an internationalized name in its xn-- (punycode) form")
    labels = value.split(".")
    if len(labels) < 2 or len(value) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            "must be a hostname such as 'agent.example.com': at least two dot-separated labels of "
            "a-z, 0-9 and '-' (1-63 characters, no '-' first or last), 253 characters at most"
        )
    if labels[-1].isdigit():
        raise ValueError("an IP address has no certificate: use a hostname")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]


class BuildConfig(_Section):
    context: str = "app"
    dockerfile: str | None = None
    platforms: list[Platform] = Field(default_factory=_default_platforms, min_length=1)
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None

    @field_validator("context")
    @classmethod
    def _context_exists(cls, value: str, info: ValidationInfo) -> str:
        root = _project_root(info)
        if root is not None and not (root / value).is_dir():
            raise ValueError(f"build context directory '{value}' does not exist under {root}")
        return value

    @model_validator(mode="after")
    def _dockerfile_exists(self, info: ValidationInfo) -> BuildConfig:
        root = _project_root(info)
        if root is not None and (root / self.context).is_dir():
            dockerfile = root / self.dockerfile_path
            if not dockerfile.is_file():
                raise ValueError(f"Dockerfile '{self.dockerfile_path}' does not exist")
        return self

    @property
    def dockerfile_path(self) -> str:
        """The Dockerfile relative to the project root; `<context>/Dockerfile` unless set."""
        return self.dockerfile or f"{self.context.rstrip('/')}/Dockerfile"


class ApiTokenConfig(_Section):
    """`app.apiToken`: bump `rotation` (only ever up) for a new token; the previous one keeps
    working until `keepPrevious: false`, so clients move over without an outage."""

    rotation: int = Field(default=0, ge=0)
    keep_previous: bool = True


class AppConfig(_Section):
    name: ResourceName = "agent"
    build: BuildConfig = Field(default_factory=BuildConfig)
    image: str | None = Field(
        default=None, description="Prebuilt image reference; when set, nothing is built."
    )
    # A cloud stack given a digest-pinned `image` copies it into a registry of its own and runs
    # the copy (infra/promotion.py): production then never depends on staging's registry.
    copy_image: bool
    port: int = Field(default=8000, ge=1, le=65535)
    health_path: UrlPath = "/health"
    readiness_path: UrlPath = "/ready"
    liveness_path: UrlPath = "/live"
    run_timeout_seconds: int = Field(
        default=100,
        ge=1,
        le=3600,
        description="Longest run; every load balancer, drain and shutdown timeout derives from it.",
    )
    cpu: int = Field(gt=0, description="CPU units, 1024 = one vCPU.")
    memory: int = Field(gt=0, description="MiB.")
    min_instances: int = Field(ge=0)
    max_instances: int = Field(ge=1)
    env: dict[EnvName, str] = Field(default_factory=dict)
    secrets: list[EnvName] = Field(default_factory=list)
    # The hostname the service answers on over HTTPS (pr-<n> stacks: pr-<n>.<domain>).
    domain: Hostname | None = None
    api_token: ApiTokenConfig = Field(default_factory=ApiTokenConfig)

    @field_validator("env")
    @classmethod
    def _no_credentials_in_env(cls, value: dict[str, str]) -> dict[str, str]:
        found = []
        for name in value:
            if name in _RESERVED_ENV:
                found.append(f"'{name}' is set by the stack itself; remove it from app.env")
            elif _SECRET_LIKE.search(name):
                found.append(
                    f"'{name}' looks like a credential: set it with "
                    f"`pulumi config set --secret {name} ...` and list it in app.secrets"
                )
        if found:
            raise ValueError("; ".join(found))
        return value

    @field_validator("secrets")
    @classmethod
    def _unique_secrets(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        reserved = sorted(set(value) & _RESERVED_ENV)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} is composed by the stack; do not list it")
        return value


class LocalConfig(_Section):
    host_port: int = Field(default=8000, ge=1024, le=65535)
    postgres_image: str = "postgres:16-alpine"
    redis_image: str = "redis:7-alpine"
    chroma: bool = False
    chroma_image: str = "chromadb/chroma:0.6.3"
    chroma_host_port: int = Field(default=8001, ge=1024, le=65535)


def service_hostname(config: StackConfig) -> str | None:
    """The hostname a stack serves: `app.domain`, under `<stack>.` for pr-<n> stacks, whose
    template shares one domain."""
    domain = config.app.domain
    if domain is None or _EPHEMERAL_STACK.match(config.stack) is None:
        return domain
    return f"{config.stack}.{domain}"


def default_zone(domain: str) -> str:
    """The DNS zone a domain's records go in when none is named: its parent, or the domain
    itself when it is a two-label apex such as example.com."""
    parent = domain.partition(".")[2]
    return parent if "." in parent else domain


def copy_image_problems(app: AppConfig) -> list[ConfigProblem]:
    """A copy keeps a digest: it needs one to keep (a tag could move between copy and check)."""
    if not app.copy_image or app.image is None or "@sha256:" in app.image:
        return []
    return [
        ConfigProblem(
            f"{PROJECT}:app.copyImage",
            "copying app.image into this stack's registry needs it pinned by digest "
            "(<repository>@sha256:<digest>); pin it, or set copyImage to false",
            "true",
        )
    ]


def unpinned_image_problems(app: AppConfig) -> list[ConfigProblem]:
    """Production on any cloud runs a prebuilt image only by digest: a tag can move under it."""
    if app.image is None or "@sha256:" in app.image:
        return []
    return [
        ConfigProblem(
            f"{PROJECT}:app.image",
            "production runs an image pinned by digest: use <repository>@sha256:<digest>",
            json.dumps(app.image),
        )
    ]
