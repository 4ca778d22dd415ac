#!/usr/bin/env bash
# Which image a rollback of STACK redeploys: TO when given (a digest `sha256:<hex>`, taken from
# the stack's repository, or a full `<repository>@sha256:<hex>`), else the entry after the
# current one in the stack's `imageHistory` output (newest first). Prints the digest-pinned
# reference; builds and changes nothing. Used by `make rollback` and rollback.yml.
#
# Usage: scripts/rollback-image.sh <stack> [<to>]   (PULUMI: the CLI, default `pulumi`)
set -euo pipefail
stack="${1:?usage: rollback-image.sh <stack> [<to>]}"
to="${2:-}"
pulumi="${PULUMI:-pulumi}"

if ! history="$("$pulumi" stack output imageHistory --stack "$stack" --json)"; then
  echo "rollback: cannot read the imageHistory output of stack $stack (see above)" >&2
  exit 1
fi
mapfile -t images < <(python3 -c 'import json, sys
for ref in json.load(sys.stdin) or []:
    print(ref)' <<<"${history:-null}")

digest_re='^sha256:[0-9a-f]{64}$'
if [ -n "$to" ]; then
  if [[ "$to" =~ $digest_re ]]; then
    if [ "${#images[@]}" -eq 0 ]; then
      echo "rollback: stack $stack has no imageHistory to take the repository from; pass TO=<repository>@$to" >&2
      exit 1
    fi
    echo "${images[0]%@*}@$to"
  elif [[ "$to" =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]]; then
    echo "$to"
  else
    echo "rollback: TO=$to is neither sha256:<64 hex> nor <repository>@sha256:<64 hex>" >&2
    exit 1
  fi
  exit 0
fi
if [ "${#images[@]}" -lt 2 ]; then
  echo "rollback: stack $stack's imageHistory has no previous image (${#images[@]} entries); pass TO=<digest>" >&2
  exit 1
fi
echo "${images[1]}"
