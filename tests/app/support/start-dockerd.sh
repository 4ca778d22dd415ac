#!/usr/bin/env bash
# Start a Docker engine for the container tests if none answers, and wait until it does.
# Why these flags: this machine has no bridge/iptables privileges, so containers and builds use the
# host network (`--network host`). Idempotent: returns at once when an engine already answers.
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
LOG=${DOCKERD_LOG:-/tmp/agent-app-dockerd.log}

if "$DOCKER" info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: dockerd not installed (apt-get install -y docker.io)" >&2
  exit 1
fi
echo "start-dockerd: starting dockerd (log: $LOG)" >&2
nohup dockerd --bridge=none --iptables=false >"$LOG" 2>&1 &
for _ in $(seq 1 60); do
  if "$DOCKER" info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "start-dockerd: engine did not answer within 60 s; last log lines:" >&2
tail -n 20 "$LOG" >&2
exit 1
