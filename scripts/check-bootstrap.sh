#!/usr/bin/env bash
# Fail a Pulumi job early, naming what its GitHub environment lacks, and hand the job the
# Pulumi credentials that exist (environment secrets) without ever exporting an empty one: an
# empty PULUMI_CONFIG_PASSPHRASE is a valid passphrase to Pulumi, not an absent one.
#
# Reads ENVIRONMENT, CLOUD (aws or gcp: ROLE_ARN and REGION, or GCP_PROVIDER and GCP_ACCOUNT),
# BACKEND_URL, ACCESS_TOKEN, PASSPHRASE and, when
# NEEDS_GITHUB_TOKEN=true, GITHUB_PROVIDER_TOKEN. Appends to $GITHUB_ENV.
set -euo pipefail

problems=()
if [ "${CLOUD:-aws}" = "gcp" ]; then
  [ -n "${GCP_PROVIDER:-}" ] || problems+=("variable GCP_WORKLOAD_IDENTITY_PROVIDER is unset")
  [ -n "${GCP_ACCOUNT:-}" ] || problems+=("variable GCP_DEPLOY_SERVICE_ACCOUNT/GCP_PREVIEW_SERVICE_ACCOUNT is unset")
else
  [ -n "${ROLE_ARN:-}" ] || problems+=("variable AWS_DEPLOY_ROLE_ARN/AWS_PREVIEW_ROLE_ARN is unset")
  [ -n "${REGION:-}" ] || problems+=("variable AWS_REGION is unset")
fi
if [ -z "${BACKEND_URL:-}" ] && [ -z "${ACCESS_TOKEN:-}" ]; then
  problems+=("no state backend: set the variable PULUMI_BACKEND_URL (s3://...) or the environment secret PULUMI_ACCESS_TOKEN (Pulumi Cloud)")
fi
if [ "${NEEDS_GITHUB_TOKEN:-false}" = "true" ] && [ -z "${GITHUB_PROVIDER_TOKEN:-}" ]; then
  problems+=("secret PULUMI_GITHUB_TOKEN is unset: the GitHub provider would run anonymously")
fi
for value in "${ACCESS_TOKEN:-}" "${PASSPHRASE:-}"; do
  if [[ "$value" == *$'\n'* ]]; then
    problems+=("a Pulumi secret (PULUMI_ACCESS_TOKEN or PULUMI_CONFIG_PASSPHRASE) spans several lines")
  fi
done
if [ "${#problems[@]}" -gt 0 ]; then
  for problem in "${problems[@]}"; do
    echo "::error::environment '${ENVIRONMENT:-?}': $problem (docs/bootstrapping.md)"
  done
  exit 1
fi
if [ -n "${ACCESS_TOKEN:-}" ]; then
  echo "PULUMI_ACCESS_TOKEN=$ACCESS_TOKEN" >> "$GITHUB_ENV"
fi
if [ -n "${PASSPHRASE:-}" ]; then
  echo "PULUMI_CONFIG_PASSPHRASE=$PASSPHRASE" >> "$GITHUB_ENV"
fi
