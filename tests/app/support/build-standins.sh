#!/usr/bin/env bash
# Build local stand-ins for the two images app/Dockerfile names, because no registry that serves
# them (Docker Hub, ghcr.io) is reachable here. The Dockerfile itself stays the production one:
#   * the Python base: a Debian bookworm rootfs with python3.11 (mmdebstrap | docker import),
#     carrying the host CA bundle so HTTPS through this network's proxy verifies (SSL_CERT_FILE);
#   * the uv image: the uv/uvx binaries from the PyPI `uv` wheel at the pinned version, at / as in
#     the real image.
# Idempotent: an image already present under the tag is kept (FORCE=1 rebuilds).
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
APP_DIR=${APP_DIR:-"$(cd "$(dirname "$0")/../../../app" && pwd)"}
FORCE=${FORCE:-0}

# Read the tags from the Dockerfile so the stand-ins can never drift from what it names.
base_tag=$(awk 'toupper($1)=="FROM" && $2 ~ /^python:/ {print $2; exit}' "$APP_DIR/Dockerfile")
uv_tag=$(awk 'toupper($1)=="FROM" && $2 ~ /^ghcr.io\/astral-sh\/uv:/ {print $2; exit}' "$APP_DIR/Dockerfile")
uv_version=${uv_tag##*:}
[ -n "$base_tag" ] && [ -n "$uv_tag" ] || { echo "build-standins: tags not found in Dockerfile" >&2; exit 1; }

have() { [ "$FORCE" != 1 ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if have "$base_tag"; then
  echo "build-standins: $base_tag present" >&2
else
  echo "build-standins: building $base_tag with mmdebstrap" >&2
  ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
  mmdebstrap --quiet --variant=minbase --include=python3.11 \
    --customize-hook='mkdir -p "$1/etc/ssl/certs"' \
    --customize-hook="cp $ca_bundle \"\$1/etc/ssl/certs/ca-certificates.crt\"" \
    --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*' \
    bookworm - \
    | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        - "$base_tag" >/dev/null
fi

if have "$uv_tag"; then
  echo "build-standins: $uv_tag present" >&2
else
  echo "build-standins: building $uv_tag from the PyPI uv==$uv_version wheel" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_17_x86_64 --dest "$work/whl" "uv==$uv_version"
  mkdir -p "$work/root"
  python3 - "$work" <<'PY'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
wheel = next((work / "whl").glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        base = name.rsplit("/", 1)[-1]
        if ".data/scripts/" in name and base in {"uv", "uvx"}:
            target = work / "root" / base
            target.write_bytes(zf.read(name))
            target.chmod(0o755)
PY
  [ -x "$work/root/uv" ] || { echo "build-standins: uv binary not found in wheel" >&2; exit 1; }
  tar -C "$work/root" -c uv uvx | "$DOCKER" import --change 'ENTRYPOINT ["/uv"]' - "$uv_tag" >/dev/null
fi
