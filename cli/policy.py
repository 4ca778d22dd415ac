"""Run the CrossGuard pack (`policy/`) offline on what the program registered.

The Pulumi CLI serves the pack over gRPC; here the same policy objects are called directly, the
way the CLI calls them: camelCase inputs with secrets unwrapped, numbers as floats, values not
known yet as the SDK's unknown sentinel behind its checking proxy (a rule that touches one is
skipped, never a violation), enforcement levels and rule config resolved from a pack config file
(`{"all": ..., "<rule>": "mandatory" | {"enforcementLevel": ..., <config>}}`) with the schema's
defaults filled in.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pulumi.output import Unknown
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from cli.engine import ProgramRun, Resource, unwrap

Policy = ResourceValidationPolicy | StackValidationPolicy
LEVELS = {level.value: level for level in EnforcementLevel}
TIER_KEY = "agent-deploy:tier"


class PolicyConfigError(Exception):
    """A pack config file that names no rule of the pack, or a level or setting it lacks."""


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    type: str
    level: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "resource": self.resource,
            "type": self.type,
            "level": self.level,
            "message": self.message,
        }


def load_policies(project_dir: Path) -> list[Policy]:
    """`policy/policies.py` of the project (by path: `policy` is the pack, not a package);
    none for a project without a pack."""
    path = project_dir / "policy" / "policies.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location("agent_deploy_policies", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return list(module.POLICIES)


def config_path(project_dir: Path, stack_config: Mapping[str, str]) -> Path | None:
    """The tier's pack config (`policy/config/<tier>.json`), as the workflows pass it."""
    tier = stack_config.get(TIER_KEY, "ephemeral")
    path = project_dir / "policy" / "config" / f"{tier}.json"
    return path if path.is_file() else None


def resolve(
    policies: Sequence[Policy], config: Mapping[str, Any]
) -> dict[str, tuple[EnforcementLevel, dict[str, Any]]]:
    """Per rule: its level and config, as the CLI derives them from a pack config file."""
    names = {p.name for p in policies}
    problems = [
        f"{key!r} is not a rule of the pack" for key in config if key not in names | {"all"}
    ]
    default = config.get("all")
    resolved: dict[str, tuple[EnforcementLevel, dict[str, Any]]] = {}
    for policy in policies:
        entry = config.get(policy.name, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level_name = entry.pop("enforcementLevel", None) or default
        level = policy.enforcement_level or EnforcementLevel.ADVISORY
        if level_name is not None:
            if level_name not in LEVELS:
                problems.append(
                    f"{policy.name}: level {level_name!r} is not one of {sorted(LEVELS)}"
                )
                continue
            level = LEVELS[level_name]
        schema = policy.config_schema.properties if policy.config_schema else {}
        unknown = sorted(set(entry) - set(schema))
        if unknown:
            problems.append(f"{policy.name}: no setting {', '.join(unknown)}")
        for key in sorted(set(entry) & set(schema)):
            if not _matches(entry[key], schema[key]):
                problems.append(
                    f"{policy.name}: {key} {entry[key]!r} is not {_describe(schema[key])}"
                )
        settings = {k: v["default"] for k, v in schema.items() if "default" in v} | entry
        resolved[policy.name] = (level, settings)
    if problems:
        raise PolicyConfigError("; ".join(problems))
    return resolved


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _matches(value: Any, schema: Mapping[str, Any]) -> bool:
    """The JSON Schema subset the pack's settings use: type, items, minimum."""
    kind = schema.get("type")
    if kind is not None:
        if isinstance(value, bool) and kind in ("integer", "number"):
            return False
        if not isinstance(value, _JSON_TYPES[kind]):
            return False
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        return False
    items = schema.get("items")
    return not (items and isinstance(value, list) and not all(_matches(v, items) for v in value))


def _describe(schema: Mapping[str, Any]) -> str:
    text = f"a{'n' if schema.get('type', '')[:1] in 'aeiou' else ''} {schema.get('type', 'value')}"
    if "items" in schema:
        text += f" of {schema['items'].get('type', 'values')}s"
    if "minimum" in schema:
        text += f" >= {schema['minimum']}"
    return text


def _wire(value: Any) -> Any:
    """Inputs as the CLI hands them to a pack: secrets plain, unknowns as the sentinel."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    value = unwrap(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


_OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def evaluate(
    run: ProgramRun, policies: Sequence[Policy], config: Mapping[str, Any] | None = None
) -> list[Violation]:
    """Every violation of every enabled rule, resource rules first, in registration order."""
    levels = resolve(policies, config or {})
    resources = [r for r in run.resources if r.custom]
    by_urn = {r.urn: r for r in resources}
    violations: list[Violation] = []

    def reporter(policy: str, level: EnforcementLevel, default: Resource | None) -> Any:
        def report(message: str, urn: str | None = None) -> None:
            resource = by_urn.get(urn or "", default)
            violations.append(
                Violation(
                    policy,
                    resource.name if resource else run.stack,
                    resource.type if resource else "pulumi:pulumi:Stack",
                    level.value,
                    message,
                )
            )

        return report

    for policy in policies:
        level, settings = levels[policy.name]
        if level == EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.type,
                    unknown_checking_proxy(_wire(resource.inputs)),
                    resource.urn,
                    resource.name,
                    _OPTS,
                    None,
                    settings,
                )
                try:
                    policy.validate(args, reporter(policy.name, level, resource))
                except UnknownValueError:
                    continue
        else:
            stack = _stack_resources(resources)
            try:
                policy.validate(
                    StackValidationArgs(stack, settings), reporter(policy.name, level, None)
                )
            except UnknownValueError:
                continue
    return violations


def _stack_resources(resources: Sequence[Resource]) -> list[PolicyResource]:
    """The stack as a stack rule sees it, with the graph: which resource each input came from."""
    made = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(_wire(r.inputs)),
            r.urn,
            r.name,
            _OPTS,
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        made[r.urn].dependencies = [made[u] for u in r.depends_on if u in made]
        made[r.urn].property_dependencies = {
            key: [made[u] for u in urns if u in made]
            for key, urns in r.property_dependencies.items()
        }
    return list(made.values())


def load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyConfigError(f"{path}: {error}") from error
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: not a JSON object")
    return data
