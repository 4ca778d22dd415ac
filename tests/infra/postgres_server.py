"""A throwaway PostgreSQL cluster on a loopback port for the program-side tests.

The app suite has its own (tests/app/harness.py) in the app's environment; this one needs only
the stdlib and pg8000, which the root environment has. SCRAM password authentication, a
superuser `admin` that plays the RDS master, and the provisioner role created as the host's
db-init creates it (CREATEDB CREATEROLE, no superuser) plus a password to log in locally.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
import pytest

from tests.infra.support import free_port, missing

ADMIN_PASSWORD = "admin-Secr3t-61fd"
PROVISIONER_PASSWORD = "prov-Secr3t-0a7e"


def _pgserver_bin() -> Path:
    """PostgreSQL 16 from the `pgserver` wheel (a dev dependency on linux x86_64)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pgserver is not installed here (dev dependency on linux x86_64 only)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _binary(name: str, bindir: Path | None = None) -> str:
    if bindir is not None:
        return str(bindir / name)
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found:
        return found
    missing(f"{name} not found on PATH (install postgresql: .ci/app.sh does)")


def _run_as() -> list[str]:
    """initdb refuses root: run the server as `postgres` (created if missing) when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Postgres:
    port: int
    version: int
    log: Path

    def connect(self, user: str, password: str, database: str) -> pg8000.native.Connection:
        return pg8000.native.Connection(
            user=user, password=password, host="127.0.0.1", port=self.port, database=database
        )

    def admin(self, database: str = "base") -> pg8000.native.Connection:
        return self.connect("admin", ADMIN_PASSWORD, database)


@pytest.fixture(scope="module", params=["on-path", "pgserver-16"])
def postgres(request: pytest.FixtureRequest) -> Iterator[Postgres]:
    """A cluster with a base database `base` (PUBLIC CONNECT revoked) and the provisioner role.

    Twice: the PostgreSQL on PATH (Debian 12's 15 here and in CI), and 16 from the `pgserver`
    wheel, whose CREATEROLE rules are the ones RDS (16, 17) applies.
    """
    bindir = _pgserver_bin() if request.param == "pgserver-16" else None
    root = Path(tempfile.mkdtemp(prefix="agent-provisioner-pg-"))
    run_as, pg_ctl = _run_as(), _binary("pg_ctl", bindir)
    (root / "pwfile").write_text(ADMIN_PASSWORD + "\n")
    if run_as:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    subprocess.run(
        [*run_as, _binary("initdb", bindir), "-D", str(root / "data"), "-U", "admin",
         "--auth=scram-sha-256", f"--pwfile={root / 'pwfile'}", "--no-sync", "--locale=C",
         "--encoding=UTF8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    data = str(root / "data")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    # Every statement in the server log: the tests read it for the slice passwords.
    options += " -c log_statement=all"
    log = str(root / "server.log")
    subprocess.run(
        [*run_as, pg_ctl, "-D", data, "-o", options, "-l", log, "-w", "start"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        admin = pg8000.native.Connection(
            user="admin", password=ADMIN_PASSWORD, host="127.0.0.1", port=port, database="postgres"
        )
        version = int(admin.run("SHOW server_version_num")[0][0])
        admin.run("CREATE DATABASE base")
        admin.run("REVOKE CONNECT, TEMPORARY ON DATABASE base FROM PUBLIC")
        admin.run(
            "CREATE ROLE agent_provisioner WITH LOGIN CREATEDB CREATEROLE NOSUPERUSER "
            f"PASSWORD '{PROVISIONER_PASSWORD}'"
        )
        admin.run("GRANT CONNECT ON DATABASE base TO agent_provisioner")
        admin.close()
        yield Postgres(port=port, version=version, log=Path(log))
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(
                [*run_as, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
                check=False, capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
