"""`pullRequests`: only staging hosts pr-<n> slices, only ephemeral stacks are slices."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, base_stack_reference, load_stack_config
from infra.config.pull_requests import redis_access_string, slice_key_prefix
from stacks import PROJECT_ROOT
from tests.harness import stack_inputs


def problems(stack: str, override: dict[str, Any]) -> list[str]:
    config, secret_keys = stack_inputs(stack, override)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(stack, config, secret_keys, root=PROJECT_ROOT)
    return [str(p) for p in caught.value.problems]


def test_production_may_not_host_pull_request_slices() -> None:
    found = problems("production", {"pullRequests": {"host": True}})
    assert any(
        p.startswith("agent-deploy:pullRequests.host") and "'production'" in p for p in found
    ), found


def test_a_staging_stack_may_not_be_a_slice() -> None:
    found = problems("staging", {"pullRequests": {"base": "staging"}})
    assert any(p.startswith("agent-deploy:pullRequests.base") for p in found), found


def test_a_base_that_is_not_a_stack_name_is_refused_naming_the_key() -> None:
    found = problems("pr-7", {"pullRequests": {"base": "no such/stack name"}})
    assert any(
        p.startswith("agent-deploy:pullRequests.base") and "no such/stack name" in p for p in found
    ), found


def test_unknown_keys_in_the_section_are_refused() -> None:
    found = problems("pr-7", {"pullRequests": {"bse": "staging"}})
    assert any("pullRequests.bse" in p for p in found), found


def test_a_bare_base_name_is_a_stack_of_this_project() -> None:
    assert base_stack_reference("staging", "acme", "agent-deploy") == "acme/agent-deploy/staging"
    assert base_stack_reference("ops/infra/staging", "acme", "agent-deploy") == "ops/infra/staging"


def test_a_slice_redis_user_is_an_allow_list_on_its_own_prefix() -> None:
    """What real Redis enforces is proven in tests/app/test_redis_isolation.py."""
    rules = redis_access_string(slice_key_prefix("pr-42")).split()
    assert rules[:3] == ["on", "~pr-42:*", "-@all"]
    assert all(rule.startswith("+") and "@" not in rule for rule in rules[3:])
    assert not {"+scan", "+keys", "+eval", "+select", "+script"} & set(rules)
    assert not [rule for rule in rules if rule.startswith(("reset", ">", "#", "nopass"))]
    for bad in ("", "pr-*", "pr 4:", "pr[1]:"):
        with pytest.raises(ValueError, match="is not a key prefix"):
            redis_access_string(bad)


def test_a_gcp_slice_with_a_domain_is_refused_naming_app_domain() -> None:
    found = problems("gcp-pr", {"app": {"domain": "preview.example.com"}})
    assert any(
        p.startswith("agent-deploy:app.domain") and "pullRequests.base" in p for p in found
    ), found
