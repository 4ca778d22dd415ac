"""The `pullRequests` section: which stack hosts pr-<n> slices, and which base a slice uses.

A staging stack with `host: true` builds the pieces pull-request stacks share (its load
balancer, database server and cache, plus what lets a slice use them) and exports them as the
`prBase` output. A pr-<n> stack with `base: <stack>` reads that output and creates only its own
slice; without `base` it is self-contained (its own network, database and cache).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from infra.config.common import PROJECT, _Section
from infra.config.problems import ConfigProblem

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

_STACK_REFERENCE = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}/)?[A-Za-z0-9_.-]{1,100}$"
)


def _stack_reference(value: str) -> str:
    if not _STACK_REFERENCE.match(value):
        raise ValueError(
            f"'{value}' is not a stack name: give the base stack's name (e.g. 'staging') or "
            "its full 'organization/project/stack'"
        )
    return value


class PullRequestsConfig(_Section):
    """Shared pull-request environments (see the module docstring)."""

    host: bool = False
    """This stack exports `prBase` and carries the pieces pr-<n> slices share."""
    base: Annotated[str, AfterValidator(_stack_reference)] | None = None
    """The stack whose `prBase` a pr-<n> stack builds its slice on; unset: self-contained."""


def base_stack_reference(base: str, organization: str, project: str) -> str:
    """The full stack reference for `pullRequests.base` (a bare name is in this project)."""
    return base if "/" in base else f"{organization}/{project}/{base}"


#: ElastiCache user ids: 1-40 characters. A slice's is `<app>-pr-<n>`, never shortened.
SLICE_USER_MAX = 40

#: The output a hosting stack exports and a slice reads.
PR_BASE_OUTPUT = "prBase"


def pull_request_problems(config: StackConfig) -> list[ConfigProblem]:
    """Who may host slices and who may be one: never production, never a local stack."""
    section = config.pull_requests
    problems = []
    if section.host and (config.tier != "staging" or config.target == "local"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:pullRequests.host",
                "only a cloud stack of tier 'staging' hosts pull-request slices (pr-<n> code must "
                f"never share production's servers); this stack is tier '{config.tier}', "
                f"target '{config.target}'",
                "true",
            )
        )
    if section.host and config.target == "aws":
        problems += _aws_host_cache_problems(config)
    if section.base is not None and (config.tier != "ephemeral" or config.target == "local"):
        problems.append(
            ConfigProblem(
                f"{PROJECT}:pullRequests.base",
                "only a cloud stack of tier 'ephemeral' (a pr-<n> stack) is built on a shared "
                f"base; this stack is tier '{config.tier}', target '{config.target}': remove it",
                section.base,
            )
        )
    if section.base is not None and config.target == "gcp" and config.app.domain is not None:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.domain",
                "a gcp slice (pullRequests.base) serves on Cloud Run's own https://*.run.app name "
                "and has no load balancer for a domain: remove app.domain, or pullRequests.base "
                "for a self-contained stack that serves pr-<n>.<domain>",
                config.app.domain,
            )
        )
    slice_user = f"{config.app.name}-{config.stack}"
    if section.base is not None and config.target == "aws" and len(slice_user) > SLICE_USER_MAX:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:app.name",
                f"a slice's ElastiCache user id '{slice_user}' (app.name + '-' + stack) has "
                f"{len(slice_user)} characters, ElastiCache allows {SLICE_USER_MAX}; it must keep "
                "that exact form (the ephemeral role may manage only '<app>-pr-*' users): "
                f"shorten app.name to at most {SLICE_USER_MAX - len(config.stack) - 1} characters",
                config.app.name,
            )
        )
    if section.base is not None and section.host:
        problems.append(
            ConfigProblem(
                f"{PROJECT}:pullRequests",
                "a stack either hosts slices (host: true) or is one (base: <stack>), not both",
            )
        )
    return problems


def _aws_host_cache_problems(config: StackConfig) -> list[ConfigProblem]:
    """A host's cleanup cache user signs in with IAM, which needs engine 7 or later.

    (Its RBAC users also need in-transit encryption, which every aws cache has.)
    """
    version = config.cache.engine_version
    if int(version.split(".")[0]) >= 7:
        return []
    return [
        ConfigProblem(
            f"{PROJECT}:cache.engineVersion",
            "a stack hosting pull-request slices deletes a destroyed slice's keys as an "
            "IAM-authenticated cache user, which ElastiCache offers from Valkey 7.2 and "
            "Redis OSS 7.0: choose 7.0 or later",
            version,
        )
    ]


#: Without a domain, a slice gets its own listener on the base's load balancer at this port + n.
PR_PORT_OFFSET = 10000

_PR_NUMBER = re.compile(r"^pr-([0-9]{1,9})$")


def pr_number(stack: str) -> int:
    """42 for `pr-42`: the slice's listener rule priority and port derive from it."""
    found = _PR_NUMBER.match(stack)
    if found is None:
        raise ValueError(f"'{stack}' is not a pr-<n> stack name")
    return int(found.group(1))


def slice_database(stack: str) -> str:
    """The database and role a slice owns on the base's Postgres server (`pr-42` -> `pr_42`)."""
    return f"pr_{pr_number(stack)}"


def slice_key_prefix(stack: str) -> str:
    """Every Redis key a slice's app writes starts with this (`REDIS_KEY_PREFIX`)."""
    return f"pr-{pr_number(stack)}:"


#: Every command a slice's app sends, and nothing else: the guards' SET NX / INCRBY / TTL in
#: MULTI/EXEC, redis-py's lock and scripts (EVALSHA, SCRIPT LOAD; GET, DEL, DECR, PTTL, PEXPIRE
#: inside their Lua, which Redis checks against the same rules) and PING for readiness. Not
#: granted, among others: SCAN, KEYS and RANDOMKEY (key names are not filtered by `~`), SELECT,
#: INFO, CONFIG, FLUSH*, CLIENT, SCRIPT FLUSH/KILL, EVAL, FUNCTION, pub/sub, MONITOR.
SLICE_REDIS_COMMANDS = (
    "ping",
    "get",
    "set",
    "incrby",
    "decr",
    "del",
    "ttl",
    "pttl",
    "pexpire",
    "multi",
    "exec",
    "discard",
    "evalsha",
    "script|load",
)


#: The host's cleanup cache user: the provisioner signs in as it (IAM, no password) when a slice
#: is destroyed, to list and unlink that slice's `pr-<n>:` keys. `pr-*` only: staging's own keys
#: (under `agent:`) are out of its reach. SCAN is keyless, so it sees key names, and it is no
#: slice's: only the host's function may connect as it.
CLEANUP_ACCESS_STRING = "on ~pr-* -@all +ping +scan +unlink"


def redis_access_string(prefix: str) -> str:
    """The Redis ACL rules of a slice's user: keys under its prefix, the app's commands only.

    An allow-list, not categories: `+@read` would include SCAN and RANDOMKEY, which list every
    key name of the shared cache (staging's rate-limit keys carry client addresses). Only
    syntax ElastiCache RBAC documents is used (`on`, `~pattern`, `-@all`, `+command`,
    `+command|subcommand`; no `reset*`, no passwords). Residual risk: Redis has no per-user
    memory or CPU quota, so a slice can still fill memory or run a long Lua script.
    """
    if not prefix or any(c in "*?[]\\" or c.isspace() or not c.isprintable() for c in prefix):
        raise ValueError(f"{prefix!r} is not a key prefix: no spaces, no * ? [ ] \\")
    return f"on ~{prefix}* -@all " + " ".join(f"+{c}" for c in SLICE_REDIS_COMMANDS)
