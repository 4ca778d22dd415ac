"""Credentials a stack generates for itself (API tokens, database passwords)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.config.app import AppConfig

TOKEN_LENGTH = 48


def generate_token(
    name: str, parent: pulumi.Resource, keepers: dict[str, str] | None = None
) -> pulumi.Output[str]:
    """A random alphanumeric credential as a Pulumi secret (a new one when `keepers` change).

    Alphanumeric: it goes unescaped into headers, URLs and comma-separated token lists.
    """
    password = random.RandomPassword(
        name,
        length=TOKEN_LENGTH,
        special=False,
        keepers=keepers,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(password.result)


@dataclass(frozen=True)
class TokenRotation:
    """`app.apiToken`: bump `rotation` to issue a new token while the previous one keeps
    working (`keep_previous`), so clients move over without an outage; then set `keep_previous`
    to false to retire it. Bumping by two replaces both (a leaked token)."""

    rotation: int = 0
    keep_previous: bool = True


def token_rotation(app: AppConfig) -> TokenRotation:
    """The rotation `app.apiToken` asks for."""
    return TokenRotation(app.api_token.rotation, app.api_token.keep_previous)


@dataclass(frozen=True)
class RotatingToken:
    # What clients use now (the stack's `apiToken` output).
    current: pulumi.Output[str]
    # What the service accepts (`AUTH_TOKENS`): the current token, then the previous one.
    accepted: pulumi.Output[str]


def rotating_token(name: str, parent: pulumi.Resource, rotation: TokenRotation) -> RotatingToken:
    """Two slots take turns: even rotations renew `name`, odd ones `name-b`.

    The first slot keeps no keepers until rotation 2, so a stack that never rotated keeps the
    token it has (adding keepers would replace it).
    """
    step = rotation.rotation
    if step < 0:
        raise ValueError(f"rotation {step}: must be 0 or more")
    even, odd = step - step % 2, step - 1 + step % 2
    first = generate_token(name, parent, None if even == 0 else {"rotation": str(even)})
    if step == 0:
        return RotatingToken(first, first)
    second = generate_token(f"{name}-b", parent, {"rotation": str(odd)})
    current, previous = (first, second) if step % 2 == 0 else (second, first)
    both: pulumi.Output[str] = pulumi.Output.concat(current, ",", previous)
    return RotatingToken(current, pulumi.Output.secret(both) if rotation.keep_previous else current)
