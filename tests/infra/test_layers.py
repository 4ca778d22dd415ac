"""The architecture's layers, as imports: `infra/` is the library and knows neither the CLI nor
the stacks that compose it, and never reads `pulumi.Config` (only `__main__.py`/`stacks/` do)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def test_the_library_imports_neither_the_cli_nor_the_stacks_nor_reads_config() -> None:
    found = []
    for path in sorted(INFRA.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path}: imports {n}" for n in names if n.split(".")[0] in ("cli", "stacks")]
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "Config"
                and isinstance(node.value, ast.Name)
                and node.value.id == "pulumi"
            ):
                found.append(f"{path}:{node.lineno}: reads pulumi.Config")
    assert found == []


def test_an_aws_stack_imports_neither_pulumi_gcp_nor_the_command_provider() -> None:
    """Each costs a few hundred ms of every run (`agent-deploy cost --all` has 5 s): an aws
    stack needs no gcp provider, and only a promoting stack needs pulumi-command."""
    code = (
        "import sys, json\n"
        "from tests.harness import run_stack\n"
        "run = run_stack('staging')\n"
        "print(json.dumps([len(run.resources), [m for m in ('pulumi_gcp', 'pulumi_command')"
        " if m in sys.modules]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    resources, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert resources > 50
    assert imported == []
