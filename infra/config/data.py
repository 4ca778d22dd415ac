"""The `database` and `cache` sections, shared by every target."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.common import (
    _Section,
)
from infra.config.presets import DEFAULT_ENGINE_VERSIONS, ENGINE_VERSIONS

# PostgreSQL's reserved key words (src/include/parser/kwlist.h, RESERVED_KEYWORD, 17): RDS
# refuses them as the master user and database name, PostgreSQL as a role name.
_POSTGRES_RESERVED = """
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign from
    grant group having in initially intersect into lateral leading limit localtime localtimestamp
    not null offset on only or order placing primary references returning select session_user
    some symmetric system_user table then to trailing true union unique user using variadic when
    where window with"""
POSTGRES_RESERVED_WORDS = frozenset(_POSTGRES_RESERVED.split())
# Role names PostgreSQL itself refuses ('public', 'none', 'pg_*') and RDS's own roles.
_RESERVED_ROLE = re.compile(r"^(public|none|pg_.*|rds_.*|rdsrepladmin|rdstopmgr)$")
# Databases every RDS for PostgreSQL instance already has.
_RESERVED_DATABASES = frozenset({"template0", "template1", "rdsadmin"})


def _version_text(value: object) -> object:
    """YAML reads an unquoted version as a number and drops digits (8.0 arrives as 8 from the
    Pulumi CLI, 7.10 as 7.1), so only a whole major version such as 16 is taken as written."""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        raise ValueError(
            f"write the version in quotes, e.g. engineVersion: '{value}': YAML reads an "
            "unquoted version as a number and drops digits (8.0 becomes 8, 7.10 becomes 7.1)"
        )
    return value


def _major_version_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"write the major version in quotes, e.g. engineVersion: '{int(value)}'")
    return value


def _postgres_version(value: str) -> str:
    versions = ENGINE_VERSIONS["postgres"]
    if value not in versions:
        listed = [f"'{v}'" for v in versions]
        raise ValueError(f"Input should be {', '.join(listed[:-1])} or {listed[-1]}")
    return value


class DatabaseConfig(_Section):
    engine_version: Annotated[
        str, BeforeValidator(_major_version_text), AfterValidator(_postgres_version)
    ] = DEFAULT_ENGINE_VERSIONS["postgres"]
    name: str = Field(default="agent", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    username: str = Field(default="agent_admin", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    storage_gb: int = Field(ge=20, le=65536)
    max_storage_gb: int = Field(ge=20, le=65536)
    backup_days: int = Field(ge=0, le=35)
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    protect: bool
    encrypted: bool = True
    # RDS refuses a major engine upgrade (engineVersion 16 -> 17) unless this is true.
    allow_major_version_upgrade: bool = False

    @field_validator("username")
    @classmethod
    def _not_default_admin(cls, value: str) -> str:
        if value in {"postgres", "admin", "root", "rdsadmin"}:
            raise ValueError(f"'{value}' is a well-known admin name; choose another")
        if _RESERVED_ROLE.match(value):
            raise ValueError(
                f"'{value}' is reserved for PostgreSQL's and RDS's own roles "
                "(public, none, pg_*, rds_*); choose another"
            )
        return value

    @field_validator("name", "username")
    @classmethod
    def _not_reserved_word(cls, value: str, info: ValidationInfo) -> str:
        if value in POSTGRES_RESERVED_WORDS:
            raise ValueError(
                f"'{value}' is a PostgreSQL reserved word, which RDS refuses as a name; "
                "choose another"
            )
        if info.field_name == "name" and value in _RESERVED_DATABASES:
            raise ValueError(f"'{value}' is a database RDS creates itself; choose another")
        return value


class CacheConfig(_Section):
    engine: Literal["valkey", "redis"] = "valkey"
    engine_version: Annotated[str, BeforeValidator(_version_text)] = Field(pattern=r"^\d+(\.\d+)?$")
    node_type: str = Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    nodes: int = Field(ge=1, le=6)
    automatic_failover: bool
    snapshot_days: int = Field(ge=0, le=35)
    encrypted: bool = True

    @model_validator(mode="before")
    @classmethod
    def _engine_default_version(cls, data: Any) -> Any:
        """The default version depends on the engine: Redis OSS has no 8.0."""
        if not isinstance(data, dict) or {"engineVersion", "engine_version"} & set(data):
            return data
        engine = data.get("engine", "valkey")
        default = DEFAULT_ENGINE_VERSIONS.get(engine if isinstance(engine, str) else "valkey")
        return {**data, "engineVersion": default or DEFAULT_ENGINE_VERSIONS["valkey"]}

    @field_validator("engine_version")
    @classmethod
    def _engine_offers_version(cls, value: str, info: ValidationInfo) -> str:
        engine = info.data.get("engine")
        versions = ENGINE_VERSIONS.get(engine) if isinstance(engine, str) else None
        if versions is None or value in versions:
            return value
        label = {"valkey": "Valkey", "redis": "Redis OSS"}.get(str(engine), engine)
        why = " (Redis OSS stops at 7.1: use engine: valkey for newer)" if engine == "redis" else ""
        raise ValueError(f"ElastiCache {label} offers {', '.join(versions)}{why}")
