"""`app.apiToken`: rotating the API token with an overlap, on every target. A bumped rotation
issues a new token (`apiToken`) while the service still accepts the previous one (the
`AUTH_TOKENS` it reads: current first), until `keepPrevious: false` retires it. A stack that
never rotated keeps its token: no keepers appear on the generator it already has."""

from __future__ import annotations

from typing import Any

import pytest

from cli.engine import ProgramRun
from stacks import StackConfigError
from tests.harness import run_stack

PASSWORD = "random:index/randomPassword:RandomPassword"
#: The generator each target already had (its URN must not change).
GENERATORS = {
    "local": "agent-local-api-token",
    "staging": "agent-staging-secrets-auth-tokens",
    "gcp-staging": "agent-gcp-staging-secrets-auth-tokens",
}


def accepted(run: ProgramRun, stack: str) -> str:
    """The AUTH_TOKENS value the service gets, where each target puts it."""
    if stack == "local":
        envs = run.one("docker:index/container:Container", "agent-local").plain["envs"]
        (value,) = [e.split("=", 1)[1] for e in envs if e.startswith("AUTH_TOKENS=")]
        return str(value)
    if stack == "staging":
        version = run.one("aws:secretsmanager/secretVersion:SecretVersion", f"{GENERATORS[stack]}")
        return str(version.plain["secretString"])
    version = run.one("gcp:secretmanager/secretVersion:SecretVersion", GENERATORS[stack])
    return str(version.plain["secretData"])


def tokens(run: ProgramRun, stack: str) -> dict[str, Any]:
    base = GENERATORS[stack]
    return {r.name: r for r in run.of_type(PASSWORD) if r.name in (base, f"{base}-b")}


def rotated(stack: str, **api_token: object) -> ProgramRun:
    return run_stack(stack, {"app": {"apiToken": api_token}} if api_token else None)


@pytest.mark.parametrize("stack", sorted(GENERATORS))
def test_a_stack_that_never_rotated_keeps_its_one_token(stack: str) -> None:
    run = rotated(stack)
    (generator,) = tokens(run, stack).values()
    assert generator.name == GENERATORS[stack] and not generator.plain.get("keepers")
    assert accepted(run, stack) == run.outputs["apiToken"]


@pytest.mark.parametrize("stack", sorted(GENERATORS))
def test_a_rotation_issues_a_new_token_and_keeps_the_previous_one_working(stack: str) -> None:
    base = GENERATORS[stack]
    first = rotated(stack, rotation=1)
    slots = tokens(first, stack)
    assert not slots[base].plain.get("keepers")  # the token clients had: unchanged
    assert slots[f"{base}-b"].plain["keepers"] == {"rotation": "1"}
    new, old = first.outputs["apiToken"], rotated(stack).outputs["apiToken"]
    assert new != old
    assert accepted(first, stack) == f"{new},{old}"
    # The next rotation renews the first slot; the token of rotation 1 is now the previous.
    second = rotated(stack, rotation=2)
    slots = tokens(second, stack)
    assert slots[base].plain["keepers"] == {"rotation": "2"}
    assert slots[f"{base}-b"].plain["keepers"] == {"rotation": "1"}
    assert accepted(second, stack) == f"{second.outputs['apiToken']},{new}"
    # Two at once (a leaked token): both slots renewed.
    third = tokens(rotated(stack, rotation=3), stack)
    assert third[base].plain["keepers"] == {"rotation": "2"}
    assert third[f"{base}-b"].plain["keepers"] == {"rotation": "3"}


@pytest.mark.parametrize("stack", sorted(GENERATORS))
def test_keep_previous_false_retires_the_previous_token(stack: str) -> None:
    run = rotated(stack, rotation=1, keepPrevious=False)
    assert accepted(run, stack) == run.outputs["apiToken"]


def test_a_negative_rotation_is_refused_naming_the_key() -> None:
    with pytest.raises(StackConfigError) as refused:
        rotated("staging", rotation=-1)
    assert "app.apiToken.rotation" in str(refused.value)
