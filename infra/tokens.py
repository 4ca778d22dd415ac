"""Credentials a stack generates for itself (API tokens, database passwords)."""

from __future__ import annotations

import pulumi
import pulumi_random as random

TOKEN_LENGTH = 48


def generate_token(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A random alphanumeric credential as a Pulumi secret.

    Alphanumeric: it goes unescaped into headers, URLs and comma-separated token lists.
    """
    password = random.RandomPassword(
        name, length=TOKEN_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(password.result)
