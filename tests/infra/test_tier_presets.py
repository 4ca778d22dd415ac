"""Tier presets: the one place defaults live, relaxed only downward from production."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import TIER_PRESETS, TIERS, StackConfig, load_stack_config
from stacks import PROJECT_ROOT
from tests.harness import stack_inputs


def effective(tier: str, override: dict[str, Any] | None = None) -> StackConfig:
    config, secret_keys = stack_inputs("local", {"tier": tier, **(override or {})})
    return load_stack_config("local", config, secret_keys, root=PROJECT_ROOT)


@pytest.mark.parametrize("tier", TIERS)
def test_unset_values_come_from_the_tier_preset(tier: str) -> None:
    config = effective(tier)
    for section in ("app", "database", "cache"):
        model = getattr(config, section).model_dump(by_alias=True)
        for key, value in TIER_PRESETS[tier][section].items():
            assert model[key] == value, f"{tier} {section}.{key}"


def test_explicit_config_overrides_the_preset() -> None:
    config = effective("staging", {"database": {"backupDays": 10}, "app": {"maxInstances": 9}})
    assert config.database.backup_days == 10
    assert config.app.max_instances == 9
    assert config.database.instance_class == TIER_PRESETS["staging"]["database"]["instanceClass"]


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("app", "cpu"),
        ("app", "memory"),
        ("app", "minInstances"),
        ("app", "maxInstances"),
        ("database", "backupDays"),
        ("database", "storageGb"),
        ("cache", "nodes"),
        ("cache", "snapshotDays"),
        ("aws", "logRetentionDays"),
    ],
)
def test_capacity_and_retention_never_shrink_as_the_tier_rises(section: str, key: str) -> None:
    values = [TIER_PRESETS[tier][section][key] for tier in TIERS]
    assert values == sorted(values), f"{section}.{key}: {values}"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("database", "multiAz"),
        ("database", "deletionProtection"),
        ("database", "finalSnapshot"),
        ("database", "protect"),
        ("cache", "automaticFailover"),
        ("aws", "flowLogs"),
        ("aws", "loadBalancerDeletionProtection"),
    ],
)
def test_protections_are_on_in_production_and_only_relaxed_below(section: str, key: str) -> None:
    values = [TIER_PRESETS[tier][section][key] for tier in TIERS]
    assert values[-1] is True
    assert values == sorted(values), f"{section}.{key} relaxes upward: {values}"


@pytest.mark.parametrize("tier", TIERS)
def test_encryption_is_on_in_every_tier_by_default(tier: str) -> None:
    config = effective(tier)
    assert config.database.encrypted and config.cache.encrypted


def test_only_ephemeral_trades_reliability_for_cost_on_spot() -> None:
    assert [TIER_PRESETS[t]["aws"]["fargateSpot"] for t in TIERS] == [True, False, False]
    assert [TIER_PRESETS[t]["aws"]["natGateways"] for t in TIERS] == ["none", "none", "perAz"]


def test_production_backups_meet_the_floor() -> None:
    assert effective("production").database.backup_days >= 14


def test_target_defaults_sit_under_the_presets() -> None:
    local = effective("ephemeral")
    assert local.app.env["LOG_FORMAT"] == "console"
    assert local.app.build.platforms == ["linux/amd64"]
    assert effective("staging", {"app": {"env": {"LOG_FORMAT": "json"}}}).app.env == {
        "LOG_FORMAT": "json"
    }
