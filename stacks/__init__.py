"""Composition roots: each module wires one target's runtime from a validated StackConfig.

Only this package and `__main__.py` read Pulumi config; the components in `infra/` get
everything through typed args.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from infra.config import PROJECT, ConfigError, ConfigProblem, StackConfig, load_stack_config
from stacks.claims import codeowners_problems, github_claim_problems

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
    """The validated config, or every problem at once, before any resource is registered:
    the stack's own rules and the rules across stack files (GitHub ownership) alike."""
    raw, secret = raw_config()
    stack = pulumi.get_stack()
    warnings: list[str] = []
    problems = github_claim_problems(PROJECT_ROOT, stack, raw, warnings)
    for warning in warnings:
        pulumi.log.warn(warning)
    try:
        config = load_stack_config(stack, raw, secret, root=PROJECT_ROOT)
    except ConfigError as error:
        problems = error.problems + problems
    else:
        problems += codeowners_problems(PROJECT_ROOT, config)
    if problems:
        raise StackConfigError(ConfigError(stack, problems))
    return config


def secret_values(names: list[str]) -> dict[str, pulumi.Output[str]]:
    """The app's secrets, still wrapped as secrets (validation already proved they are)."""
    config = pulumi.Config(PROJECT)
    return {name: config.require_secret(name) for name in names}
