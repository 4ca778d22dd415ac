#!/usr/bin/env bash
# Tear down ephemeral pull-request stacks (used by ephemeral.yml and janitor.yml).
#   pr-stacks.sh destroy <n>   destroy and remove pr-<n>; a stack that was never created (its
#                              first `up` failed early) is not an error
#   pr-stacks.sh sweep         destroy every pr-<n> whose pull request is no longer open: the
#                              `closed` run can be missed (conflicted PR, deleted fork) or fail.
#                              Starts no destroy after SWEEP_BUDGET_SECONDS (default 2100): a
#                              job killed at its timeout mid-destroy would leave the stack locked,
#                              so what is left waits for the next sweep
# Runs from the repository root with `pulumi` logged in to the backend, `jq`, and for `sweep`
# `gh` with GH_TOKEN and REPOSITORY (owner/repo).
set -euo pipefail

stacks() {
  pulumi stack ls --json | jq -r '.[].name | split("/") | last | select(test("^pr-[0-9]+$"))'
}

destroy() {
  local number="$1" stack="pr-$1"
  if [[ ! "$number" =~ ^[0-9]+$ ]]; then
    echo "::error::not a pull request number: $number" >&2
    return 2
  fi
  if ! stacks | grep -qx "$stack"; then
    echo "$stack does not exist: nothing to destroy"
    return 0
  fi
  cp Pulumi.pr.yaml "Pulumi.$stack.yaml"
  pulumi destroy --stack "$stack" --yes --non-interactive --remove
}

sweep() {
  local failed=0 stack number state
  for stack in $(stacks); do
    number="${stack#pr-}"
    if ! state="$(gh pr view "$number" --repo "$REPOSITORY" --json state --jq .state)"; then
      echo "::warning::$stack: could not read pull request #$number; kept"
      continue
    fi
    if [ "$state" = "OPEN" ]; then
      echo "$stack: pull request open; kept"
      continue
    fi
    if [ "$SECONDS" -ge "${SWEEP_BUDGET_SECONDS:-2100}" ]; then
      echo "::warning::$stack: pull request $state, but this sweep's time is spent; left for the next one"
      continue
    fi
    echo "$stack: pull request $state; destroying"
    destroy "$number" || { echo "::error::$stack: destroy failed"; failed=1; }
  done
  return "$failed"
}

case "${1:-}" in
  destroy) destroy "${2:?pull request number}" ;;
  sweep) sweep ;;
  *) echo "usage: $0 destroy <n> | sweep" >&2; exit 2 ;;
esac
