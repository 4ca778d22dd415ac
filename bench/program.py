"""Program evaluation time per stack under mocks, beside an eager import-everything baseline.

Each measurement runs in a fresh interpreter (cold imports, as `pulumi up` starts one), and
prints one table. The baseline imports every provider SDK the project depends on before
running the same program (every subpackage, as `import pulumi_aws.ecs` etc. for all services
would): the cost that importing only the chosen target's SDK modules avoids.

    uv run python bench/program.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
EAGER = [
    "pulumi_aws",
    "pulumi_gcp",
    "pulumi_github",
    "pulumi_docker",
    "pulumi_docker_build",
    "pulumi_random",
]

CHILD = """
import importlib, json, pkgutil, sys, time
start = time.perf_counter()
for name in {eager!r}:
    package = importlib.import_module(name)
    for sub in pkgutil.iter_modules(package.__path__):
        if sub.ispkg and sub.name != "config":
            # The SDKs load modules lazily: touching an attribute runs the module for real.
            module = importlib.import_module(f"{{name}}.{{sub.name}}")
            getattr(module, "_utilities", None)
imported = time.perf_counter()
from cli.engine import run_program
from cli.stackfile import load_stack_file
from pathlib import Path
project = Path({project!r})
stack_file = load_stack_file(project, {stack!r})
run = run_program({stack!r}, stack_file.config, stack_file.secret_keys, project_dir=project,
                  preview=True)
done = time.perf_counter()
print(json.dumps({{"total": done - start, "imports": imported - start,
                   "resources": len(run.resources)}}))
"""


def measure(stack: str, eager: list[str]) -> dict[str, float]:
    code = CHILD.format(eager=eager, project=str(PROJECT_DIR), stack=stack)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    stacks = sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in PROJECT_DIR.glob("Pulumi.*.yaml")
    )
    print(
        f"{'stack':<15} {'resources':>9} {'lazy (s)':>9} {'eager (s)':>10} "
        f"{'eager imports (s)':>18}"
    )
    for stack in stacks:
        lazy = [measure(stack, []) for _ in range(args.repeat)]
        eager = [measure(stack, EAGER) for _ in range(args.repeat)]
        print(
            f"{stack:<15} {int(lazy[0]['resources']):>9} "
            f"{statistics.median(r['total'] for r in lazy):>9.2f} "
            f"{statistics.median(r['total'] for r in eager):>10.2f} "
            f"{statistics.median(r['imports'] for r in eager):>18.2f}"
        )
    print(f"\nmedian of {args.repeat} cold runs each; preview mode, as `agent-deploy check`.")


if __name__ == "__main__":
    main()
