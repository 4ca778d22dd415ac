#!/usr/bin/env bash
# Smoke test after `pulumi up`: GET the service's readiness path, with the stack's API token as
# a bearer token, until it answers 2xx or SMOKE_DEADLINE_SECONDS pass; then prove the token is
# accepted: AUTH_CHECK_PATH (default /threads/smoke-check/state, a read of a thread that does not
# exist: 404 with a good token, 401 without) must not answer 401 or 403. An app with other
# routes sets AUTH_CHECK_PATH to one of its authenticated GETs, or to "none" to skip it.
#
# Reads SERVICE_URL, REQUIRE_HTTPS (true: refuse a plain http:// URL), READY_PATH (default
# /ready), AUTH_CHECK_PATH, STACK, SMOKE_DEADLINE_SECONDS and SMOKE_INTERVAL_SECONDS; the token
# comes from the stack output `apiToken` (`pulumi` on PATH, logged in). Writes `url=` to
# $GITHUB_OUTPUT.
set -euo pipefail

if [ -z "${SERVICE_URL:-}" ]; then
  echo "::error::stack ${STACK:-?} exported no serviceUrl (and the variable SERVICE_URL is unset)"
  exit 1
fi
# Production serves HTTPS only (app.domain); a plain URL means the wrong stack or output.
if [ "${REQUIRE_HTTPS:-false}" = "true" ] && [ "${SERVICE_URL#https://}" = "$SERVICE_URL" ]; then
  echo "::error::stack ${STACK:-?} serves $SERVICE_URL, not https://: production needs app.domain"
  exit 1
fi
if ! token="$(pulumi stack output apiToken --show-secrets --stack "$STACK")" || [ -z "$token" ]; then
  echo "::error::stack $STACK has no apiToken output to authenticate the smoke test"
  exit 1
fi
echo "::add-mask::$token"
path="${READY_PATH:-/ready}"
url="${SERVICE_URL%/}/${path#/}"
echo "url=$url" >> "$GITHUB_OUTPUT"
# The token goes to curl in a file, never on its command line (visible in the process list).
header="$(mktemp)"
trap 'rm -f "$header"' EXIT
printf 'Authorization: Bearer %s\n' "$token" > "$header"
deadline=$(( SECONDS + SMOKE_DEADLINE_SECONDS ))
attempt=0
until curl --fail --silent --show-error --location --max-time 10 --output /dev/null \
  --header @"$header" "$url"; do
  attempt=$(( attempt + 1 ))
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "::error::$url not ready after ${SMOKE_DEADLINE_SECONDS}s ($attempt attempts)"
    exit 1
  fi
  sleep "$SMOKE_INTERVAL_SECONDS"
done
echo "$url is ready"

check="${AUTH_CHECK_PATH:-/threads/smoke-check/state}"
if [ "$check" != "none" ]; then
  auth_url="${SERVICE_URL%/}/${check#/}"
  status="$(curl --silent --show-error --location --max-time 10 --output /dev/null \
    --write-out '%{http_code}' --header @"$header" "$auth_url")"
  if [ "$status" = "401" ] || [ "$status" = "403" ]; then
    echo "::error::$auth_url refused the stack's apiToken ($status): the service's AUTH_TOKENS and the output differ"
    exit 1
  fi
  echo "$auth_url accepts the stack's token ($status)"
fi
