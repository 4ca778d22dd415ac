"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program.

The CLI passes every key as a string (structured values as JSON) plus the list of secret keys.
Offline there is no secrets provider, so a `secure:` value becomes a placeholder that is still
marked secret: the program sees a secret, never its ciphertext, and no output shows it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret: decrypted only at deployment]"  # noqa: S105 - a marker
EPHEMERAL_STACK = re.compile(r"^pr-\d+$")
EPHEMERAL_TEMPLATE = "pr"


class StackFileError(Exception):
    pass


@dataclass(frozen=True)
class StackFile:
    stack: str
    path: Path
    config: dict[str, str]
    secret_keys: set[str]


def project_name(project_dir: Path) -> str:
    project = _read_yaml(project_dir / "Pulumi.yaml")
    name = project.get("name")
    if not isinstance(name, str):
        raise StackFileError(f"{project_dir / 'Pulumi.yaml'} has no project name")
    return name


def stack_file_path(project_dir: Path, stack: str) -> Path:
    """`Pulumi.<stack>.yaml`, or the ephemeral template for a `pr-<n>` stack without one."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file() and EPHEMERAL_STACK.match(stack):
        path = project_dir / f"Pulumi.{EPHEMERAL_TEMPLATE}.yaml"
    if not path.is_file():
        known = sorted(p.name for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack file for '{stack}' (found: {', '.join(known)})")
    return path


def stack_names(project_dir: Path) -> list[str]:
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in project_dir.glob("Pulumi.*.yaml")
    )


def load_stack_file(project_dir: Path, stack: str) -> StackFile:
    project = _read_yaml(project_dir / "Pulumi.yaml")
    namespace = project_name(project_dir)
    path = stack_file_path(project_dir, stack)
    config: dict[str, str] = {}
    secret_keys: set[str] = set()

    declared = project.get("config") or {}
    for key, declaration in declared.items():
        full = key if ":" in key else f"{namespace}:{key}"
        if isinstance(declaration, dict) and "default" in declaration:
            config[full] = _as_config_string(declaration["default"])[0]
        elif not isinstance(declaration, dict):
            config[full] = _as_config_string(declaration)[0]

    for key, value in (_read_yaml(path).get("config") or {}).items():
        full = key if ":" in key else f"{namespace}:{key}"
        config[full], secret = _as_config_string(value)
        if secret:
            secret_keys.add(full)
    return StackFile(stack, path, config, secret_keys)


def _as_config_string(value: Any) -> tuple[str, bool]:
    """The string the CLI would pass, and whether any part of it was `secure:`."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict | list):
        found: list[bool] = []
        cleaned = _replace_secure(value, found)
        return json.dumps(cleaned), bool(found)
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    return ("" if value is None else str(value)), False


def _replace_secure(value: Any, found: list[bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            found.append(True)
            return SECRET_PLACEHOLDER
        return {k: _replace_secure(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, found) for v in value]
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except yaml.YAMLError as err:
        raise StackFileError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{path} must be a YAML mapping")
    return data
