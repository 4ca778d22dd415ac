"""Run the real program for a real stack file under Pulumi's mocks.

`run_stack("local")` loads Pulumi.local.yaml exactly as `agent-deploy check` does, applies
optional overrides (deep-merged into the structured keys, as a user would edit the file) and
secrets (set as Pulumi secrets), and returns everything the program registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cli.engine import ProgramRun, ResourceMock, StackOutputs, run_function, run_program
from cli.stackfile import load_stack_file
from infra.config import PROJECT

PROJECT_DIR = Path(__file__).resolve().parents[1]
#: The override that makes a pr stack self-contained again (Pulumi.pr.yaml's one switch:
#: without `pullRequests` it builds its own network, load balancer, database and cache).
SELF_CONTAINED: dict[str, Any] = {"pullRequests": None}


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if value is not None else None
        return {k: v for k, v in merged.items() if v is not None}
    return override


def stack_inputs(
    stack: str,
    override: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    plain: dict[str, str] | None = None,
) -> tuple[dict[str, str], set[str]]:
    """The config strings and secret keys the engine would pass for `stack` plus overrides.

    A `None` value in `override` deletes that key, like removing a line from the file.
    """
    stack_file = load_stack_file(PROJECT_DIR, stack)
    config = dict(stack_file.config)
    secret_keys = set(stack_file.secret_keys)
    for section, value in (override or {}).items():
        key = f"{PROJECT}:{section}"
        if value is None:
            config.pop(key, None)
        elif isinstance(value, dict):
            current = json.loads(config[key]) if key in config else {}
            config[key] = json.dumps(_merge(current, value))
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value)
    for name, value in (secrets or {}).items():
        config[f"{PROJECT}:{name}"] = value
        secret_keys.add(f"{PROJECT}:{name}")
    for name, value in (plain or {}).items():
        config[f"{PROJECT}:{name}"] = value
    return config, secret_keys


def run_stack(
    stack: str,
    override: dict[str, Any] | None = None,
    *,
    secrets: dict[str, str] | None = None,
    plain: dict[str, str] | None = None,
    preview: bool = False,
    stack_references: StackOutputs | None = None,
    resource_mocks: Mapping[str, ResourceMock] | None = None,
) -> ProgramRun:
    """`stack_references`: what StackReferences read, by stack name (None: the engine runs the
    base this stack is built on, `pullRequests.base`); `resource_mocks`: outputs some types
    get in this run instead of the engine's."""
    config, secret_keys = stack_inputs(stack, override, secrets, plain)
    return run_program(
        stack,
        config,
        secret_keys,
        project_dir=PROJECT_DIR,
        preview=preview,
        resource_mocks=resource_mocks,
        stack_references=stack_references,
    )


def run_components(
    function: Callable[[], Any],
    *,
    stack: str = "test",
    config: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    preview: bool = False,
) -> ProgramRun:
    """Run `function` (registering components) under the same mocks engine as `run_stack`.

    `config` holds plain keys and `secrets` secret keys, both by bare name
    (`{"app": "{...}"}` becomes `agent-deploy:app`).
    """
    raw = {f"{PROJECT}:{k}": v for k, v in (config or {}).items()}
    raw |= {f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()}
    secret_keys = {f"{PROJECT}:{k}" for k in secrets or {}}
    return run_function(stack, function, raw, secret_keys, preview=preview)


def imported_by_a_run(stack: str, modules: tuple[str, ...]) -> tuple[int, list[str]]:
    """(resources registered, which of `modules` got imported) for `stack` run alone in a fresh
    interpreter: what a provider import costs every run (`agent-deploy cost` has 5 s)."""
    code = (
        "import sys, json\n"
        "from tests.harness import run_stack\n"
        f"run = run_stack({stack!r})\n"
        f"print(json.dumps([len(run.resources), [m for m in {modules!r} if m in sys.modules]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    resources, imported = json.loads(result.stdout.strip().splitlines()[-1])
    return int(resources), list(imported)
