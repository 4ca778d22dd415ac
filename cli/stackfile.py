"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program.

The CLI passes every key as a string (structured values as JSON) plus the list of secret keys.
Offline there is no secrets provider, so a `secure:` value becomes a placeholder that is still
marked secret: the program sees a secret, never its ciphertext, and no output shows it.
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config.common import SECRET_PLACEHOLDER

EPHEMERAL_STACK = re.compile(r"^pr-\d+$")
EPHEMERAL_TEMPLATE = "pr"
#: What `check` and `cost` run the template as: the stack it becomes (a slice of a shared base
#: takes its address, database and key prefix from its number).
TEMPLATE_INSTANCE = "pr-1"


def program_stack(stack: str) -> str:
    """The stack name the program runs under offline for `stack` (the template: pr-1)."""
    return TEMPLATE_INSTANCE if stack == EPHEMERAL_TEMPLATE else stack


class StackFileError(Exception):
    """A stack file that cannot be read as config: `problems` name each key (None: the file)."""

    def __init__(self, message: str, problems: list[tuple[str | None, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [(None, message)]


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
    if path.is_dir():
        raise StackFileError(f"{path} is a directory, not a stack file")
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
    namespace = project_name(project_dir)
    path = stack_file_path(project_dir, stack)
    config: dict[str, str] = {}
    secret_keys: set[str] = set()

    declared = _stack_config(project_dir / "Pulumi.yaml")
    for key, declaration in declared.items():
        full = key if ":" in key else f"{namespace}:{key}"
        if isinstance(declaration, dict) and "default" in declaration:
            config[full] = _as_config_string(declaration["default"])[0]
        elif not isinstance(declaration, dict):
            config[full] = _as_config_string(declaration)[0]

    for key, value in _stack_config(path).items():
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


def _stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping, every key and value checked for what the CLI would pass."""
    section = _read_yaml(path).get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        found = type(section).__name__
        raise StackFileError(
            f"{path}: `config` must be a mapping of keys to values, found a {found}",
            [("config", f"must be a mapping of keys to values, found a {found}")],
        )
    problems: list[tuple[str | None, str]] = []
    for key, value in section.items():
        if not isinstance(key, str):
            problems.append(
                (str(key), f"config key {key!r} must be a string such as 'agent-deploy:app'")
            )
            continue
        problems += _value_problems(key, value)
    if problems:
        lines = "\n".join(f"  - {key}: {message}" for key, message in problems)
        raise StackFileError(f"{path} has values the Pulumi CLI cannot pass:\n{lines}", problems)
    return section


def _value_problems(key: str, value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, datetime.date):
        return [(key, f'{value.isoformat()} is read as a date: quote it ("{value.isoformat()}")')]
    if isinstance(value, dict):
        problems: list[tuple[str | None, str]] = []
        for name, item in value.items():
            if not isinstance(name, str):
                problems.append((key, f'key {name!r} must be a string: quote it ("{name}")'))
            else:
                problems += _value_problems(f"{key}.{name}", item)
        return problems
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _value_problems(f"{key}[{i}]", item)]
    if value is None or isinstance(value, str | int | float | bool):
        return []
    return [(key, f"a {type(value).__name__} is not a config value: use a string")]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Refuses a key given twice in one mapping, as the Pulumi CLI (Go yaml.v3) does."""


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, node: yaml.MappingNode, key_node: yaml.Node) -> None:
        self.key = key
        line = key_node.start_mark.line + 1
        self.message = f"given twice (again on line {line}): the Pulumi CLI refuses it; keep one"
        super().__init__("while constructing a mapping", node.start_mark, self.message)


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[tuple[str, Any]] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        marker = (type(key).__name__, key)  # 1 and true are different keys
        try:
            duplicate = marker in seen
            seen.add(marker)
        except TypeError:
            continue  # unhashable: construct_mapping reports it
        if duplicate:
            raise _DuplicateKeyError(key, node, key_node)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise StackFileError(f"{path} is a directory, not a stack file") from None
    except OSError as err:
        raise StackFileError(f"{path} cannot be read: {err.strerror}") from None
    # One run reads each stack file several times (claims check the other stacks): parse a
    # given content once, hand every caller its own copy.
    return copy.deepcopy(_parse_yaml(str(path), raw))


@functools.lru_cache(maxsize=64)
def _parse_yaml(path: str, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StackFileError(
            f"{path} is not UTF-8 text (byte {err.start}): save it as UTF-8"
        ) from None
    loader = _UniqueKeyLoader(text)
    loader.name = path  # error marks name the file, not "<unicode string>"
    try:
        data = loader.get_single_data()
    except _DuplicateKeyError as err:
        raise StackFileError(
            f"{path}: key {err.key!r} {err.message}", [(str(err.key), err.message)]
        ) from None
    except yaml.YAMLError as err:
        raise StackFileError(f"{path} is not valid YAML: {err}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{path} must be a YAML mapping")
    return data
