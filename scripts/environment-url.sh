#!/usr/bin/env bash
# Print `url=<serviceUrl of the stack>` for $GITHUB_OUTPUT (preview.yml's `environment` job):
# empty while the stack does not exist (its first `pulumi up` has not finished) or when the
# output is not a plain http(s) URL. Never fails: the URL is for the reader of a comment.
#   environment-url.sh <stack>     `pulumi` on PATH; BACKEND_URL optional (default backend)
set -uo pipefail
stack="${1:?stack name}"
url=""
if ! pulumi login ${BACKEND_URL:+"$BACKEND_URL"} >/dev/null 2>&1; then
  echo "::warning::could not log in to the Pulumi backend: no environment URL" >&2
elif ! url="$(pulumi stack output serviceUrl --stack "$stack" 2>/dev/null)"; then
  echo "$stack: no such stack (yet), or no serviceUrl output" >&2
  url=""
fi
if [[ ! "$url" =~ ^https?://[A-Za-z0-9.:/_-]+$ ]]; then
  url=""
fi
echo "url=$url"
