"""The architecture's layers, as imports: `infra/` is the library and knows neither the CLI nor
the stacks that compose it, and never reads `pulumi.Config` (only `__main__.py`/`stacks/` do)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.harness import imported_by_a_run

INFRA = Path(__file__).resolve().parents[2] / "infra"


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
    resources, imported = imported_by_a_run("staging", ("pulumi_gcp", "pulumi_command"))
    assert resources > 50
    assert imported == []
