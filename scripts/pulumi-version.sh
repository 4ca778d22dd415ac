#!/bin/sh
# The Pulumi CLI release to run: the `pulumi` SDK's version in uv.lock. The Makefile and every
# workflow read it here, so a Dependabot bump of the lock moves the CLI with it.
set -eu
lock="${1:-$(dirname "$0")/../uv.lock}"
version="$(awk '
  /^\[\[package\]\]/ { in_pulumi = 0 }
  /^name = "pulumi"$/ { in_pulumi = 1 }
  in_pulumi && /^version = "/ { gsub(/"/, "", $3); print $3; exit }
' "$lock")"
if [ -z "$version" ]; then
  echo "no pulumi package in $lock" >&2
  exit 1
fi
echo "$version"
