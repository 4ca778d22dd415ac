#!/usr/bin/env bash
# Build offline stand-ins for the Postgres and Redis images the local stack names, because no
# registry that serves them (Docker Hub) is reachable here. Usage: build-backing-standins.sh
# IMAGE... (the names come from the program: `python -m tests.e2e.local images`).
#
# Each is a Debian bookworm rootfs (mmdebstrap, Debian packages only) with an entrypoint that
# honours the part of the official image's contract the stack relies on:
#   postgres:*  POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB / PGDATA (default
#               /var/lib/postgresql/data), first-start initdb with scram-sha-256 for TCP clients,
#               the server as user postgres listening on all addresses, `pg_isready` on PATH.
#               Debian bookworm ships PostgreSQL 15: the server version is 15 whatever the tag.
#               `docker import` cannot set STOPSIGNAL: `docker stop` sends SIGTERM (a smart
#               shutdown) where the official image sends SIGINT.
#   redis:*     `redis-server`, `redis-cli` (REDISCLI_AUTH), working directory /data.
# Idempotent: an image already present under the tag is kept (FORCE=1 rebuilds).
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
FORCE=${FORCE:-0}
here=$(cd "$(dirname "$0")" && pwd)
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

build() {  # tag, packages, entrypoint file, then mmdebstrap hooks, `--`, docker import changes
  local tag=$1 packages=$2 entrypoint=$3 hooks=()
  shift 3
  while [ "$1" != -- ]; do hooks+=("$1"); shift; done
  shift
  echo "build-backing-standins: building $tag with mmdebstrap ($packages)" >&2
  mmdebstrap --quiet --variant=minbase --include="$packages" "${hooks[@]}" \
    --customize-hook="cp $entrypoint \"\$1/usr/local/bin/docker-entrypoint.sh\"" \
    --customize-hook='chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"' \
    --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*' \
    bookworm - \
    | "$DOCKER" import \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        --change 'ENV LANG=C.UTF-8' \
        "$@" - "$tag" >/dev/null
}

for tag in "$@"; do
  if [ "$FORCE" != 1 ] && "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    echo "build-backing-standins: $tag present" >&2
    continue
  fi
  case "$tag" in
    postgres:*)
      # No cluster from the package's postinst: the entrypoint creates one in PGDATA.
      build "$tag" postgresql-15 "$here/standins/postgres-entrypoint.sh" \
        --setup-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d"' \
        --setup-hook='echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/e2e.conf"' \
        -- \
        --change "ENV PATH=/usr/lib/postgresql/15/bin:$path" \
        --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'VOLUME /var/lib/postgresql/data' \
        --change 'EXPOSE 5432' \
        --change 'CMD ["postgres"]' ;;
    redis:*)
      build "$tag" redis-server "$here/standins/redis-entrypoint.sh" -- \
        --change "ENV PATH=$path" \
        --change 'VOLUME /data' \
        --change 'WORKDIR /data' \
        --change 'EXPOSE 6379' \
        --change 'CMD ["redis-server"]' ;;
    *)
      echo "build-backing-standins: no stand-in recipe for $tag (only postgres:* and redis:*)" >&2
      exit 1 ;;
  esac
done
