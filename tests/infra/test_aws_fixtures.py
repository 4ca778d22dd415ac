"""Shared runs of the real AWS stacks under mocks, one per tier (and a few variants), cached
for the whole session so each test module asserts on the same registrations.

Control ids in the test modules are AWS Security Hub "Foundational Security Best Practices"
controls (see shared notes: security-controls.md).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cli.engine import ProgramRun, Resource
from tests.harness import SELF_CONTAINED, run_stack

APP_SECRETS = {"OPENAI_API_KEY": "sk-test-aws-openai", "LANGSMITH_API_KEY": "lsv2-test-aws"}
TIERS = {"ephemeral": "pr-42", "staging": "staging", "production": "production"}


@cache
def tier_run(tier: str) -> ProgramRun:
    """The stack file of `tier` with two app secrets set, as a user would set them; the
    ephemeral tier self-contained (tests/infra/test_pr_slice.py covers its slice)."""
    override: dict[str, Any] = {"app": {"secrets": sorted(APP_SECRETS)}}
    if tier == "ephemeral":
        override |= SELF_CONTAINED
    return run_stack(TIERS[tier], secrets=APP_SECRETS, override=override)


@cache
def variant_run(label: str) -> ProgramRun:
    overrides: dict[str, dict[str, Any]] = {
        "tls": {
            "aws": {
                "certificateArn": (
                    "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-123456789abc"
                ),
                "alarmEmail": "oncall@example.com",
            }
        },
        "prebuilt": {"app": {"image": "ghcr.io/example/agent@sha256:" + "ab" * 32}},
        "three-azs": {"aws": {"availabilityZones": 3, "natGateways": "single"}},
        "existing-oidc": {
            "aws": {
                "createOidcProvider": False,
                "oidcProviderArn": (
                    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
                ),
            }
        },
    }
    return run_stack("staging", overrides[label])


def containers(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """The task definition's containers by name (the app and its `db-init` init container)."""
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    return {c["name"]: c for c in json.loads(task.plain["containerDefinitions"])}


def container(run: ProgramRun, name: str = "app") -> dict[str, Any]:
    return containers(run)[name]


def policy(resource: Resource, key: str = "policy") -> dict[str, Any]:
    document = json.loads(resource.plain[key])
    assert isinstance(document, dict)
    return document
