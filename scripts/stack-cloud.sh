#!/usr/bin/env bash
# Print `cloud=<target>` (aws, gcp or local) for the stack named in $1, read from its stack
# file (a pr-<n> stack from the Pulumi.pr.yaml template), for $GITHUB_OUTPUT: the workflows
# pick the cloud credentials step from it, so a team moves a stack to GCP by editing its
# stack file, never a workflow. Needs the project's dependencies (uv sync) installed.
set -euo pipefail
stack="${1:?usage: scripts/stack-cloud.sh <stack>}"
uv run --frozen --no-sync python - "$stack" <<'PY'
import sys
from pathlib import Path

from cli.stackfile import load_stack_file

stack_file = load_stack_file(Path.cwd(), sys.argv[1])
print(f"cloud={stack_file.config.get('agent-deploy:target', 'local')}")
PY
