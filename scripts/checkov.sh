#!/usr/bin/env bash
# Checkov (terraform_plan) on the Terraform-plan export of every stack file, then the waiver
# gate (policy/checkov-waivers.yaml): fails on an unwaived failure or an expired waiver.
# Usage: scripts/checkov.sh [OUT_DIR]   (Checkov lives in its own locked env: policy/checkov)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
uv sync --frozen --quiet --project policy/checkov
reports=()
for file in Pulumi.*.yaml; do
	stack="${file#Pulumi.}"
	stack="${stack%.yaml}"
	uv run --frozen agent-deploy check --stack "$stack" --tfplan "$out/$stack.tfplan.json" >/dev/null
	# Exit 1 means failed checks: the gate decides which of them count.
	uv run --frozen --project policy/checkov checkov --quiet --skip-download \
		--framework terraform_plan -o json -f "$out/$stack.tfplan.json" \
		>"$out/$stack.checkov.json" || [ $? -eq 1 ]
	reports+=("$out/$stack.checkov.json")
done
uv run --frozen python -m cli.checkov_gate --waivers policy/checkov-waivers.yaml "${reports[@]}"
