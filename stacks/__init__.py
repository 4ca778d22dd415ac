"""Composition roots: each module wires one target's runtime from a validated StackConfig.

Only this package and `__main__.py` read Pulumi config; the components in `infra/` get
everything through typed args.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from infra.config import PROJECT, ConfigError, ConfigProblem, StackConfig, load_stack_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StackConfigError(pulumi.RunError):
    """A ConfigError raised as Pulumi's RunError, so `pulumi up` prints it without a trace."""

    def __init__(self, error: ConfigError) -> None:
        self.problems: list[ConfigProblem] = error.problems
        super().__init__(str(error))


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every config key the engine passed the program, and which of them are secrets."""
    raw: dict[str, str] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    secret |= {key for key in raw if runtime_config.is_config_secret(key)}
    return raw, secret


def load_config() -> StackConfig:
    raw, secret = raw_config()
    try:
        return load_stack_config(pulumi.get_stack(), raw, secret, root=PROJECT_ROOT)
    except ConfigError as error:
        raise StackConfigError(error) from None


def secret_values(names: list[str]) -> dict[str, pulumi.Output[str]]:
    """The app's secrets, still wrapped as secrets (validation already proved they are)."""
    config = pulumi.Config(PROJECT)
    return {name: config.require_secret(name) for name in names}
