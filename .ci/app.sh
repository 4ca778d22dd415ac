#!/usr/bin/env bash
# Lint, type-check, hadolint and test the reference service in app/ (issue 3).
# Installs what it needs (as root: redis-server, docker.io, mmdebstrap, PostgreSQL if missing;
# uv if missing), starts a Docker engine, builds the base-image stand-ins, then runs the checks.
# Idempotent, and usable by developers: steps already satisfied are skipped.
# In CI (CI=true) a missing Docker engine fails the container test instead of skipping it.
set -euo pipefail

cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
export DOCKER_BUILDKIT=1
export DOCKER=${DOCKER:-/usr/bin/docker}  # Debian's client: the one with the builtin BuildKit

step() { printf '\n==> %s\n' "$*" >&2; }

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v dockerd >/dev/null && [ -x "$DOCKER" ] || need_apt+=(docker.io)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
# The promotion copy (infra/promotion.py) and the registries its test copies between.
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "app.sh: missing ${need_apt[*]}; run as root or install them" >&2
    exit 1
  fi
  step "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start their own redis service; the tests start their own servers.
fi

if ! command -v uv >/dev/null; then
  step "pip install uv"
  python3 -m pip install --quiet uv
fi

step "Docker engine and base-image stand-ins"
bash tests/app/support/start-dockerd.sh
bash tests/app/support/build-standins.sh

step "uv sync (app env)"
uv sync --project app --locked --quiet

run() { uv run --project app --frozen --quiet "$@"; }

step "ruff"
run ruff check --config app/pyproject.toml app tests/app
run ruff format --config app/pyproject.toml --check app tests/app

step "mypy --strict (app/src)"
(cd app && uv run --frozen --quiet mypy src)

step "hadolint app/Dockerfile"
run hadolint app/Dockerfile

# APP_TESTS=0: set up and lint only; .ci/run then runs these tests through `make test`.
if [ "${APP_TESTS:-1}" != 0 ]; then
  step "app tests"
  run pytest -c app/pyproject.toml tests/app
fi
