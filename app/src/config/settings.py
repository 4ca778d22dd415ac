"""Service settings, read once from the environment at start-up.

Why so strict: a typo in a connection string should stop the container at boot with the variable
named, not surface as a vague 500 under traffic. Secrets are `SecretStr` so they never appear in a
repr, a log line or a validation error (`hide_input_in_errors`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio.connection import parse_url as parse_redis_url

from src.services.redis_tls import check_ca_bundle

#: Environment names accepted for each field, in priority order (the first one set wins).
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "database_url": ("DATABASE_URL", "DATABASE_URI", "POSTGRES_URI"),
    "redis_url": ("REDIS_URL", "REDIS_URI"),
    "redis_ca_cert": ("REDIS_CA_CERT",),
    "redis_key_prefix": ("REDIS_KEY_PREFIX",),
    "database_ca_cert": ("DATABASE_CA_CERT",),
    "port": ("PORT",),
    "host": ("HOST",),
    "log_format": ("LOG_FORMAT",),
    "log_level": ("LOG_LEVEL",),
    "openai_api_key": ("OPENAI_API_KEY",),
    "anthropic_api_key": ("ANTHROPIC_API_KEY",),
    "chat_model": ("CHAT_MODEL",),
    "offline_model_latency_ms": ("OFFLINE_MODEL_LATENCY_MS",),
    "langsmith_tracing": ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"),
    "langsmith_api_key": ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"),
    "langsmith_project": ("LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"),
    "langsmith_endpoint": ("LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"),
    "rate_limit_per_minute": ("RATE_LIMIT_PER_MINUTE",),
    "run_timeout_seconds": ("RUN_TIMEOUT_SECONDS",),
    "keepalive_timeout_seconds": ("KEEPALIVE_TIMEOUT_SECONDS",),
    "shutdown_timeout_seconds": ("SHUTDOWN_TIMEOUT_SECONDS",),
    "database_password_file": ("DATABASE_PASSWORD_FILE",),
    "forwarded_allow_ips": ("FORWARDED_ALLOW_IPS",),
    "app_version": ("APP_VERSION",),
    "auth_tokens": ("AUTH_TOKENS",),
    "auth_disabled": ("AUTH_DISABLED",),
    "docs_enabled": ("DOCS_ENABLED",),
    "metrics_port": ("METRICS_PORT",),
    "max_body_bytes": ("MAX_BODY_BYTES",),
    "migrate_on_start": ("MIGRATE_ON_START",),
}

_POSTGRES_SCHEMES = {"postgresql", "postgres"}
#: SQLAlchemy-style driver suffixes (the seed's `postgresql+asyncpg://`): same server, other client.
_POSTGRES_DRIVER_SUFFIXES = {"asyncpg", "psycopg", "psycopg2", "psycopg3", "pg8000"}
_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_PROVIDERS = {"openai", "anthropic"}
#: Secrets that reach the process as plain environment variables (ECS `secrets`, init container).
SECRET_ENV_NAMES = ("PGPASSWORD", "DATABASE_APP_PASSWORD", "DATABASE_ADMIN_PASSWORD")
#: Comma-separated secrets (bearer tokens: several during a rotation).
SECRET_LIST_ENV_NAMES = ("AUTH_TOKENS",)
#: Seconds the graceful shutdown allows beyond the run timeout (the response must still be sent).
SHUTDOWN_MARGIN_SECONDS = 5.0
DEFAULT_MODELS = {"openai": "openai:gpt-4.1-mini", "anthropic": "anthropic:claude-haiku-4-5"}
#: Shortest bearer token accepted: a guessable token is no better than none.
MIN_TOKEN_LENGTH = 16


def _alias(field: str) -> AliasChoices:
    return AliasChoices(*ENV_NAMES[field])


def _package_version() -> str:
    """The project version from app/pyproject.toml (shipped in the image next to src/)."""
    try:
        with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _hide_password(text: str, url: str) -> str:
    """Remove the URL's password from a third-party error message before we quote it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def normalize_database_url(raw: str) -> str:
    """Return a libpq URI psycopg accepts, or raise ValueError saying what is wrong.

    Accepts `postgresql://` and `postgres://`; the SQLAlchemy form `postgresql+asyncpg://` is
    accepted by dropping the driver suffix (the server is the same), and asyncpg's `ssl=` query
    parameter becomes libpq's `sslmode=` so an RDS URL keeps TLS enforced.
    """
    parts = urlsplit(raw.strip())
    scheme, _, driver = parts.scheme.partition("+")
    if scheme not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"scheme {parts.scheme!r} is not PostgreSQL; expected "
            "postgresql://user:password@host:5432/dbname[?sslmode=require]"
        )
    if driver and driver not in _POSTGRES_DRIVER_SUFFIXES:
        raise ValueError(f"unknown driver suffix {driver!r} in scheme {parts.scheme!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _ in query}
    fixed: list[tuple[str, str]] = []
    for name, value in query:
        if name == "ssl":  # asyncpg spelling
            if "sslmode" in names:
                continue
            name, value = "sslmode", {"true": "require", "false": "disable"}.get(value, value)
        if name == "sslmode" and value not in _SSLMODES:
            raise ValueError(f"sslmode={value!r} is not one of {sorted(_SSLMODES)}")
        # libpq would only fail at the first connection; "system" is its OS-store keyword.
        if name == "sslrootcert" and value != "system" and not Path(value).is_file():
            raise ValueError(f"sslrootcert={value!r}: no such file (the CA bundle to verify with)")
        fixed.append((name, value))
    url = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(fixed), parts.fragment))
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"not a valid PostgreSQL URI: {_hide_password(str(exc), url)}") from None
    return url


def validate_redis_url(raw: str) -> str:
    """Accept redis://, rediss:// (TLS, e.g. ElastiCache in-transit encryption) and unix://."""
    url = raw.strip()
    scheme = urlsplit(url).scheme
    if scheme not in _REDIS_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} is not Redis; expected redis://[:password@]host:6379/0 "
            "or rediss:// for TLS"
        )
    try:
        parse_redis_url(url)
    except ValueError as exc:
        raise ValueError(f"not a valid Redis URL: {_hide_password(str(exc), url)}") from None
    return url


class Settings(BaseSettings):
    """Everything the service reads from its environment (see app/README.md for the contract)."""

    model_config = SettingsConfigDict(
        extra="ignore", hide_input_in_errors=True, case_sensitive=False, frozen=True
    )

    database_url: SecretStr = Field(validation_alias=_alias("database_url"))
    redis_url: SecretStr = Field(validation_alias=_alias("redis_url"))
    # PEM text of the CA(s) a rediss:// server is verified against, and the only ones trusted
    # (Memorystore's per-instance CA); unset: the system store and the usual hostname check.
    redis_ca_cert: str | None = Field(None, validation_alias=_alias("redis_ca_cert"))
    #: Starts every key the service writes (an ACL user may be limited to `<prefix>*`).
    redis_key_prefix: str = Field("", validation_alias=_alias("redis_key_prefix"))
    # PEM text of the CA(s) Postgres's server certificate must chain to (Cloud SQL's server CA):
    # the connection becomes sslmode=verify-ca (verify-full stays verify-full).
    database_ca_cert: str | None = Field(None, validation_alias=_alias("database_ca_cert"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_alias("port"))
    # Containers must listen on all interfaces for the load balancer to reach them.
    host: str = Field("0.0.0.0", validation_alias=_alias("host"))  # noqa: S104
    log_format: Literal["json", "console"] = Field("json", validation_alias=_alias("log_format"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_alias("log_level")
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=_alias("openai_api_key"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_alias("anthropic_api_key"))
    chat_model: str | None = Field(None, validation_alias=_alias("chat_model"))
    offline_model_latency_ms: int = Field(
        0, ge=0, le=60_000, validation_alias=_alias("offline_model_latency_ms")
    )
    langsmith_tracing: bool = Field(False, validation_alias=_alias("langsmith_tracing"))
    langsmith_api_key: SecretStr | None = Field(None, validation_alias=_alias("langsmith_api_key"))
    langsmith_project: str | None = Field(None, validation_alias=_alias("langsmith_project"))
    langsmith_endpoint: str | None = Field(None, validation_alias=_alias("langsmith_endpoint"))
    rate_limit_per_minute: int = Field(
        60, ge=0, le=1_000_000, validation_alias=_alias("rate_limit_per_minute")
    )
    run_timeout_seconds: float = Field(
        120.0, gt=0, le=3600, validation_alias=_alias("run_timeout_seconds")
    )
    # Above the load balancer's idle timeout, or it reuses connections uvicorn closed (502s).
    keepalive_timeout_seconds: int = Field(
        75, ge=1, le=4000, validation_alias=_alias("keepalive_timeout_seconds")
    )
    # Unset: run timeout + SHUTDOWN_MARGIN_SECONDS, so a deploy never cuts a run that may finish.
    shutdown_timeout_seconds: float | None = Field(
        None, gt=0, le=3600, validation_alias=_alias("shutdown_timeout_seconds")
    )
    database_password_file: Path | None = Field(
        None, validation_alias=_alias("database_password_file")
    )
    forwarded_allow_ips: str = Field("127.0.0.1", validation_alias=_alias("forwarded_allow_ips"))
    app_version: str = Field(
        default_factory=_package_version, validation_alias=_alias("app_version")
    )
    auth_disabled: bool = Field(False, validation_alias=_alias("auth_disabled"))
    auth_tokens: SecretStr | None = Field(
        None, validate_default=True, validation_alias=_alias("auth_tokens")
    )
    docs_enabled: bool = Field(False, validation_alias=_alias("docs_enabled"))
    metrics_port: int = Field(
        9464, ge=1, le=65535, validate_default=True, validation_alias=_alias("metrics_port")
    )
    max_body_bytes: int = Field(
        65536, ge=1024, le=64 * 1024 * 1024, validation_alias=_alias("max_body_bytes")
    )
    # For targets without an init step (Cloud Run): run `migrate` before the schema check.
    migrate_on_start: bool = Field(False, validation_alias=_alias("migrate_on_start"))

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return normalize_database_url(raw) if isinstance(raw, str) else value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return validate_redis_url(raw) if isinstance(raw, str) else value

    @field_validator("redis_ca_cert", "database_ca_cert", mode="before")
    @classmethod
    def _check_redis_ca_cert(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return check_ca_bundle(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_redis_tls(self) -> Settings:
        if self.redis_ca_cert and urlsplit(self.redis_url.get_secret_value()).scheme != "rediss":
            raise ValueError("REDIS_CA_CERT is set but REDIS_URL is not rediss:// (TLS)")
        database = psycopg.conninfo.conninfo_to_dict(self.database_url.get_secret_value())
        if self.database_ca_cert and database.get("sslmode") == "disable":
            raise ValueError("DATABASE_CA_CERT is set but DATABASE_URL has sslmode=disable")
        return self

    @field_validator("redis_key_prefix")
    @classmethod
    def _check_redis_key_prefix(cls, value: str) -> str:
        """The prefix is also an ACL key pattern (`~<prefix>*`): glob characters would widen it."""
        bad = sorted({c for c in value if c in "*?[]\\" or not c.isprintable() or c.isspace()})
        if bad or len(value) > 64:
            raise ValueError(
                f"{value!r} is not a key prefix: at most 64 printable characters, no spaces and "
                f"none of * ? [ ] \\ (found {bad or 'too many characters'}); e.g. 'pr-42:'"
            )
        return value

    @field_validator("database_password_file")
    @classmethod
    def _check_password_file(cls, value: Path | None) -> Path | None:
        """Read once at start-up so a wrong path stops the container, not the first run."""
        if value is None:
            return None
        try:
            password = value.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {str(value)!r}: {type(exc).__name__}") from None
        if not password:
            raise ValueError(f"{str(value)!r} is empty")
        return value

    @field_validator("openai_api_key", "anthropic_api_key", "langsmith_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty `OPENAI_API_KEY=` (common in .env templates) means "not configured"."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        """`LOG_LEVEL=debug` and `warn`, `LOG_FORMAT=JSON`: the intent is unambiguous."""
        if not isinstance(value, str):
            return value
        if info.field_name == "log_format":
            return value.strip().lower()
        level = value.strip().upper()
        return "WARNING" if level == "WARN" else level

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        """uvicorn silently treats a malformed entry as a literal that never matches: refuse it."""
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                try:  # 10.0.7.9/16: uvicorn would never match it, say what was meant
                    hint = f"; did you mean {ipaddress.ip_network(entry, strict=False)}?"
                except ValueError:
                    hint = ""
                raise ValueError(
                    f"{entry!r} is not an IP address or CIDR{hint} Expected a comma-separated "
                    "list such as 10.0.0.0/16,127.0.0.1 (the load balancer's addresses)"
                ) from None
        return ",".join(entries)

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _check_auth_tokens(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        tokens = [token.strip() for token in raw.split(",") if token.strip()]
        if not tokens:
            return None
        for position, token in enumerate(tokens, start=1):
            printable = token.isascii() and token.isprintable() and " " not in token
            if len(token) < MIN_TOKEN_LENGTH or not printable:
                raise ValueError(
                    f"token {position} must be at least {MIN_TOKEN_LENGTH} printable ASCII "
                    "characters without spaces or commas"
                )
        return ",".join(tokens)

    @field_validator("auth_tokens")
    @classmethod
    def _require_auth_tokens(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None and info.data.get("auth_disabled") is False:
            raise ValueError(
                "not set: give one or more bearer tokens (comma-separated), or set "
                "AUTH_DISABLED=true when the app does its own authentication"
            )
        return value

    @field_validator("metrics_port")
    @classmethod
    def _metrics_port_is_separate(cls, value: int, info: ValidationInfo) -> int:
        if value == info.data.get("port"):
            raise ValueError(
                f"must differ from PORT ({value}): /metrics is never served on the public listener"
            )
        return value

    @model_validator(mode="after")
    def _check_cross_field(self) -> Settings:
        if self.langsmith_tracing and self.langsmith_api_key is None:
            raise ValueError("LANGSMITH_TRACING is true but LANGSMITH_API_KEY is not set")
        if self.chat_model and self.chat_model != "offline":
            provider, sep, name = self.chat_model.partition(":")
            if not sep or not name or provider not in _PROVIDERS:
                raise ValueError(
                    f"CHAT_MODEL={self.chat_model!r} must be 'offline' or '<provider>:<model>' "
                    f"with provider in {sorted(_PROVIDERS)}"
                )
            if self.provider_key(provider) is None:
                raise ValueError(
                    f"CHAT_MODEL uses {provider} but {provider.upper()}_API_KEY is not set"
                )
        return self

    def provider_key(self, provider: str) -> SecretStr | None:
        """The API key for a model provider, if configured."""
        return {"openai": self.openai_api_key, "anthropic": self.anthropic_api_key}.get(provider)

    def resolved_chat_model(self) -> str:
        """`provider:model` to serve, or `offline` when no provider key is configured."""
        if self.chat_model:
            return self.chat_model
        for provider in ("openai", "anthropic"):
            if self.provider_key(provider) is not None:
                return DEFAULT_MODELS[provider]
        return "offline"

    @property
    def graceful_shutdown_seconds(self) -> float:
        """How long SIGTERM waits for in-flight requests."""
        if self.shutdown_timeout_seconds is not None:
            return self.shutdown_timeout_seconds
        return self.run_timeout_seconds + SHUTDOWN_MARGIN_SECONDS

    def tokens(self) -> list[str]:
        """The accepted bearer tokens (empty when auth is disabled)."""
        if self.auth_disabled or self.auth_tokens is None:
            return []
        return self.auth_tokens.get_secret_value().split(",")

    def secret_values(self) -> list[str]:
        """Every secret this process knows, so the log redactor can strip them anywhere."""
        values: list[str] = [os.environ[n] for n in SECRET_ENV_NAMES if os.environ.get(n)]
        for name in SECRET_LIST_ENV_NAMES:
            values.extend(t.strip() for t in os.environ.get(name, "").split(",") if t.strip())
        if self.database_password_file is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                values.append(self.database_password_file.read_text("utf-8").rstrip("\r\n"))
        for url in (self.database_url, self.redis_url):
            password = urlsplit(url.get_secret_value()).password
            if password:  # as written and decoded: a URL-encoded token is logged decoded too
                values.extend({password, unquote(password)})
        for key in (self.openai_api_key, self.anthropic_api_key, self.langsmith_api_key):
            if key is not None:
                values.append(key.get_secret_value())
        if self.auth_tokens is not None:
            values.extend(self.auth_tokens.get_secret_value().split(","))
        return values


class SettingsError(RuntimeError):
    """Start-up configuration error whose message names the environment variables involved."""


def describe_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's error into lines naming env variables, never quoting their values."""
    lines = ["invalid configuration:"]
    for error in exc.errors(include_input=False, include_url=False):
        loc = str(error["loc"][0]) if error["loc"] else ""
        field = next((f for f, names in ENV_NAMES.items() if loc == f or loc in names), None)
        if field is None:
            label = "settings"
        else:
            first, *others = ENV_NAMES[field]
            label = f"{first} (or {', '.join(others)})" if others else first
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {label}: {message}")
    return "\n".join(lines)


def load_settings() -> Settings:
    """Read settings from the environment or raise SettingsError with a readable message."""
    try:
        return Settings()  # values come from the environment
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
