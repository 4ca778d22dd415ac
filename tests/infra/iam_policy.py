"""Decide an IAM request against the policy documents a stack registers.

AWS's evaluation for one principal's identity policies: an explicit Deny wins, else an Allow
allows, else the request is implicitly denied. Only what our policies use is modelled: Action/
NotAction, Resource/NotResource with `*` and `?` wildcards, and the String/Arn condition
operators, where a negated operator holds when the request lacks the key (as in AWS).
`decide_bounded` adds a permissions boundary: a request is allowed only when both the identity
policies and the boundary allow it, and a Deny in either wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

Decision = Literal["Allow", "Deny", "ImplicitDeny"]


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: Any, value: str, *, case: bool = True) -> bool:
    if case:
        return any(fnmatchcase(value, p) for p in _list(patterns))
    return any(fnmatchcase(value.lower(), p.lower()) for p in _list(patterns))


def _condition_holds(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, keys in condition.items():
        negated = "Not" in operator
        like = operator.endswith("Like")
        for key, expected in keys.items():
            actual = context.get(key)
            if actual is None:
                if not negated:
                    return False
                continue
            hit = _matches(expected, actual) if like else actual in _list(expected)
            if hit == negated:
                return False
    return True


def _applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "Action" in statement and not _matches(statement["Action"], action, case=False):
        return False
    if "NotAction" in statement and _matches(statement["NotAction"], action, case=False):
        return False
    if "Resource" in statement and not _matches(statement["Resource"], resource):
        return False
    if "NotResource" in statement and _matches(statement["NotResource"], resource):
        return False
    return _condition_holds(statement.get("Condition", {}), context)


def decide(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    statements = [s for document in documents for s in document["Statement"]]
    applying = [s for s in statements if _applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in applying):
        return "Deny"
    return "Allow" if applying else "ImplicitDeny"


def decide_bounded(
    identity: Iterable[Mapping[str, Any]],
    boundary: Mapping[str, Any] | None,
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    decisions = [decide(identity, action, resource, context)]
    if boundary is not None:
        decisions.append(decide([boundary], action, resource, context))
    if "Deny" in decisions:
        return "Deny"
    return "Allow" if set(decisions) == {"Allow"} else "ImplicitDeny"
