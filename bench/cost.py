"""Wall time of `agent-deploy cost` for every shipped stack, as a user or CI runs it.

One fresh interpreter prices every `Pulumi.*.yaml` stack (`agent-deploy cost --all`: cold
imports, each stack's program under the mocks, pricing); then each stack alone, in its own
fresh interpreter. The issue's budget is 5 s for all shipped stacks together.

    uv run python bench/cost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 5.0


def timed(*args: str) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the child (the figure a loaded machine leaves alone)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli.main", "cost", *args, "--project-dir", str(PROJECT_DIR)],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stacks = sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in PROJECT_DIR.glob("Pulumi.*.yaml")
    )
    wall, cpu = median([timed("--all") for _ in range(args.repeat)])
    print(f"{'stacks':<24} {'wall (s)':>9} {'cpu (s)':>8}")
    print(f"{'all ' + str(len(stacks)) + ', one process':<24} {wall:>9.2f} {cpu:>8.2f}")
    for stack in stacks:
        alone = median([timed("--stack", stack, "--json") for _ in range(args.repeat)])
        print(f"{stack:<24} {alone[0]:>9.2f} {alone[1]:>8.2f}")
    verdict = "within" if wall < BUDGET_SECONDS else "OVER"
    print(
        f"\nmedian of {args.repeat} cold runs (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs); all stacks {verdict} the {BUDGET_SECONDS:g} s budget (wall)"
    )


if __name__ == "__main__":
    main()
