"""The app against a TLS-only Redis (AUTH on, a certificate shaped like Memorystore's) and a
PostgreSQL that accepts SSL connections only (like Cloud SQL's ENCRYPTED_ONLY).

Certificates are made here with `openssl`: a CA, and server certificates that name the server
by IP address in the common name only, with no subjectAltName, as Memorystore's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
from redis.asyncio import Redis

from harness import (
    API_TOKEN,
    PG_PASSWORD,
    REDIS_PASSWORD,
    PostgresServer,
    ServiceProcess,
    _postgres_user,
    free_port,
    need_binary,
    run_migrate,
    service_env,
)
from src.config.settings import Settings, SettingsError, load_settings
from src.services.postgres_tls import verified_conninfo
from src.services.redis_tls import names_host, redis_client

pytestmark = pytest.mark.integration


def _openssl(*args: str) -> None:
    subprocess.run([need_binary("openssl"), *args], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Authority:
    """A CA that can sign server certificates."""

    directory: Path
    name: str

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}.pem"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.name}.key"

    @property
    def pem(self) -> str:
        return self.cert.read_text()

    @classmethod
    def create(cls, directory: Path, name: str) -> Authority:
        authority = cls(directory, name)
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(authority.key), "-out", str(authority.cert),
            "-days", "2", "-subj", f"/O=Test/CN={name}",
        )  # fmt: skip
        return authority

    def issue(self, common_name: str, name: str) -> tuple[Path, Path]:
        """A server certificate naming `common_name` in its subject only (no SAN)."""
        key, request, cert = (self.directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(request), "-subj", f"/CN={common_name}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-days", "2", "-out", str(cert),
        )  # fmt: skip
        key.chmod(0o600)
        return cert, key


@pytest.fixture(scope="module")
def pki() -> Iterator[dict[str, Authority]]:
    directory = Path(tempfile.mkdtemp(prefix="agent-tls-"))
    yield {
        "server": Authority.create(directory, "memorystore-ca"),
        "other": Authority.create(directory, "someone-else-ca"),
    }
    shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- Redis over TLS


@dataclass
class TlsRedis:
    cert: Path
    key: Path
    ca: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                need_binary("redis-server"),
                "--port", "0",
                "--tls-port", str(self.port),
                "--bind", "127.0.0.1",
                "--tls-cert-file", str(self.cert),
                "--tls-key-file", str(self.key),
                "--tls-ca-cert-file", str(self.ca),
                "--tls-auth-clients", "no",
                "--requirepass", REDIS_PASSWORD,
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis.from_url(
                    self.url(), ssl_ca_certs=str(self.ca), ssl_check_hostname=False
                )
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"TLS redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def _tls_redis(authority: Authority, common_name: str, name: str) -> Iterator[TlsRedis]:
    cert, key = authority.issue(common_name, name)
    server = TlsRedis(cert, key, authority.cert)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_redis(pki: dict[str, Authority]) -> Iterator[TlsRedis]:
    """Memorystore-shaped: CN = the address clients connect to, no subjectAltName."""
    yield from _tls_redis(pki["server"], "127.0.0.1", "redis-good")


@pytest.fixture(scope="module")
def tls_redis_other_name(pki: dict[str, Authority]) -> Iterator[TlsRedis]:
    """The right CA, but a certificate for another instance's address."""
    yield from _tls_redis(pki["server"], "10.1.2.3", "redis-other")


def _ping(url: str, ca_pem: str | None) -> bool:
    async def ping() -> bool:
        client: Redis = redis_client(url, ca_pem, socket_connect_timeout=5)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    return asyncio.run(ping())


def test_memorystore_style_certificate_is_verified_against_the_given_ca(
    tls_redis: TlsRedis, pki: dict[str, Authority]
) -> None:
    assert _ping(tls_redis.url(), pki["server"].pem) is True


def test_a_bundle_of_two_cas_as_during_a_rotation_is_accepted(
    tls_redis: TlsRedis, pki: dict[str, Authority]
) -> None:
    assert _ping(tls_redis.url(), pki["other"].pem + pki["server"].pem) is True


def test_stock_hostname_check_refuses_an_ip_named_only_in_the_common_name(
    tls_redis: TlsRedis, pki: dict[str, Authority]
) -> None:
    # Why the app checks the name itself: OpenSSL never matches an IP against the CN.
    client = redis.Redis.from_url(tls_redis.url(), ssl_ca_data=pki["server"].pem)
    with pytest.raises(redis.ConnectionError, match="IP address mismatch"):
        client.ping()


def test_a_server_certificate_from_another_ca_is_refused(
    tls_redis: TlsRedis, pki: dict[str, Authority]
) -> None:
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        _ping(tls_redis.url(), pki["other"].pem)


def test_a_certificate_for_another_address_is_refused(
    tls_redis_other_name: TlsRedis, pki: dict[str, Authority]
) -> None:
    with pytest.raises(redis.ConnectionError, match=re.escape("does not name '127.0.0.1'")):
        _ping(tls_redis_other_name.url(), pki["server"].pem)


def test_system_store_is_not_trusted_when_a_ca_is_given(pki: dict[str, Authority]) -> None:
    # A bundle pins trust: the context holds exactly the given CA, nothing from the OS store.
    from src.services.redis_tls import pinned_context

    assert len(pinned_context(pki["server"].pem).get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("certificate", "host", "named"),
    [
        ({"subject": ((("commonName", "10.0.0.3"),),)}, "10.0.0.3", True),
        ({"subject": ((("commonName", "10.0.0.3"),),)}, "10.0.0.4", False),
        # With a subjectAltName the CN is ignored (RFC 6125).
        (
            {
                "subject": ((("commonName", "10.0.0.3"),),),
                "subjectAltName": (("DNS", "redis.internal"),),
            },
            "10.0.0.3",
            False,
        ),
        ({"subjectAltName": (("IP Address", "10.0.0.3"),)}, "10.0.0.3", True),
        ({"subjectAltName": (("DNS", "*.redis.internal"),)}, "a.redis.internal", True),
        ({"subjectAltName": (("DNS", "*.redis.internal"),)}, "a.b.redis.internal", False),
        ({}, "10.0.0.3", False),
    ],
)
def test_name_check(certificate: dict[str, object], host: str, named: bool) -> None:
    assert names_host(certificate, host) is named


# --------------------------------------------------------------------------- Postgres with SSL


@dataclass
class SslPostgres(PostgresServer):
    """SSL on, and pg_hba accepts TCP only over SSL (Cloud SQL's ENCRYPTED_ONLY)."""

    def start(self) -> None:
        data = self.root / "data"
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c ssl=on -c ssl_cert_file={data / 'server.crt'} "
            f"-c ssl_key_file={data / 'server.key'}"
        )
        self.ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def url(self, query: str = "sslmode=require") -> str:  # type: ignore[override]
        return f"postgresql://agent:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres?{query}"


@pytest.fixture(scope="module")
def ssl_postgres(pki: dict[str, Authority]) -> Iterator[SslPostgres]:
    root = Path(tempfile.mkdtemp(prefix="agent-app-pgssl-"))
    run_as = _postgres_user()
    pwfile = root / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if run_as:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *run_as, need_binary("initdb"), "-D", str(root / "data"), "-U", "agent",
            "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "--locale=C",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    data = root / "data"
    cert, key = pki["server"].issue("127.0.0.1", "postgres-server")
    shutil.copy(cert, data / "server.crt")
    shutil.copy(key, data / "server.key")
    (data / "pg_hba.conf").write_text(
        "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    if run_as:
        for path in (data / "server.crt", data / "server.key", data / "pg_hba.conf"):
            shutil.chown(path, "postgres")
    (data / "server.key").chmod(0o600)
    server = SslPostgres(root=root, port=free_port(), run_as=run_as, pg_ctl=need_binary("pg_ctl"))
    server.start()
    # The schema comes from the deploy's migrate step, as for every service (src.migrate).
    migrated = run_migrate(server.url())
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    yield server
    with contextlib.suppress(subprocess.SubprocessError):
        server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_refuses_plaintext_and_accepts_sslmode_require(ssl_postgres: SslPostgres) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(ssl_postgres.url("sslmode=disable"), connect_timeout=5).close()
    url = Settings(
        DATABASE_URL=ssl_postgres.url(), REDIS_URL="redis://r/0", AUTH_TOKENS=API_TOKEN
    ).database_url
    with psycopg.connect(url.get_secret_value(), connect_timeout=5) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)


def test_postgres_verify_ca_refuses_another_ca(
    ssl_postgres: SslPostgres, pki: dict[str, Authority]
) -> None:
    wrong = f"sslmode=verify-ca&sslrootcert={pki['other'].cert}"
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(ssl_postgres.url(wrong), connect_timeout=5).close()
    right = f"sslmode=verify-ca&sslrootcert={pki['server'].cert}"
    psycopg.connect(ssl_postgres.url(right), connect_timeout=5).close()


# --------------------------------------------------------------------------- the service


@pytest.fixture
def tls_service(tmp_path: Path) -> Iterator[object]:
    """Like harness.start_service, without the shared plain servers (nor their databases)."""
    started: list[ServiceProcess] = []

    def start(wait_ready: bool = True, **env: str) -> ServiceProcess:
        service = ServiceProcess(
            env=service_env(LOG_FORMAT="json", AUTH_TOKENS=API_TOKEN, **env),
            log_path=tmp_path / f"service-{len(started)}.log",
        )
        started.append(service)
        service.start(wait_ready=wait_ready)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.mark.parametrize("database_ca", [None, "server"], ids=["require", "verify-ca"])
def test_runs_succeed_over_tls_redis_and_ssl_postgres(
    tls_service,
    tls_redis: TlsRedis,
    ssl_postgres: SslPostgres,
    pki: dict[str, Authority],
    database_ca: str | None,
) -> None:
    extra = {"DATABASE_CA_CERT": pki[database_ca].pem} if database_ca else {}
    service = tls_service(
        DATABASE_URL=ssl_postgres.url(),
        REDIS_URL=tls_redis.url(3),
        REDIS_CA_CERT=pki["server"].pem,
        **extra,
    )
    with service.client() as client:
        health = client.get("/health").json()
        assert health["checks"]["redis"]["status"] == "up"
        assert health["checks"]["postgres"]["status"] == "up"
        thread_id = client.post("/threads").json()["thread_id"]
        reply = client.post(f"/threads/{thread_id}/runs", json={"message": "over TLS"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["message_count"] == 2

    # The run's lock and rate-limit counter went through the TLS server.
    async def keys() -> list[bytes]:
        client = redis_client(tls_redis.url(3), pki["server"].pem)
        try:
            return list(await client.keys("*"))
        finally:
            await client.aclose()

    assert asyncio.run(keys())


def test_service_with_the_wrong_ca_never_trusts_redis(
    tls_service, tls_redis: TlsRedis, ssl_postgres: SslPostgres, pki: dict[str, Authority]
) -> None:
    service = tls_service(
        wait_ready=False,
        DATABASE_URL=ssl_postgres.url(),
        REDIS_URL=tls_redis.url(4),
        REDIS_CA_CERT=pki["other"].pem,
    )
    with service.client() as client:
        service.wait_for("/live", 200, timeout=30)
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["status"] == "down"
        assert client.post("/threads/wrong-ca/runs", json={"message": "hi"}).status_code == 503


# --------------------------------------------------------------------------- settings


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_URI", "REDIS_CA_CERT", "DATABASE_CA_CERT"):
        monkeypatch.delenv(name, raising=False)

    def apply(**values: str) -> Settings:
        for name, value in {"AUTH_TOKENS": API_TOKEN, **values}.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return apply


def test_redis_ca_cert_is_read_as_pem_text(redis_env, pki: dict[str, Authority]) -> None:
    settings = redis_env(
        DATABASE_URL="postgresql://a@h/d",
        REDIS_URL="rediss://r:6378/0",
        REDIS_CA_CERT=pki["server"].pem,
    )
    assert settings.redis_ca_cert == pki["server"].pem
    assert redis_env(REDIS_CA_CERT="").redis_ca_cert is None  # blank means unset


@pytest.mark.parametrize(
    ("redis_url", "ca", "message"),
    [
        ("rediss://r:6378/0", "not a certificate", "REDIS_CA_CERT: not a PEM certificate bundle"),
        (
            "rediss://r:6378/0",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "REDIS_CA_CERT: not a valid PEM certificate bundle",
        ),
        ("redis://r:6379/0", None, "REDIS_CA_CERT is set but REDIS_URL is not rediss://"),
    ],
    ids=["not-pem", "broken-pem", "plain-redis"],
)
def test_bad_redis_ca_cert_is_refused_naming_the_variable(
    redis_env, pki: dict[str, Authority], redis_url: str, ca: str | None, message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        redis_env(
            DATABASE_URL="postgresql://a@h/d",
            REDIS_URL=redis_url,
            REDIS_CA_CERT=ca or pki["server"].pem,
        )


def test_service_with_the_wrong_database_ca_never_trusts_postgres(
    tls_service, tls_redis: TlsRedis, ssl_postgres: SslPostgres, pki: dict[str, Authority]
) -> None:
    service = tls_service(
        wait_ready=False,
        DATABASE_URL=ssl_postgres.url(),
        DATABASE_CA_CERT=pki["other"].pem,
        REDIS_URL=tls_redis.url(5),
        REDIS_CA_CERT=pki["server"].pem,
    )
    with service.client() as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"]["status"] == "down"
        assert ready.json()["checks"]["redis"]["status"] == "up"
    assert "certificate verify failed" in service.logs()


def test_database_ca_cert_makes_libpq_verify_the_server(pki: dict[str, Authority]) -> None:
    url = "postgresql://agent@10.0.0.5:5432/agent?sslmode=require"
    verified = psycopg.conninfo.conninfo_to_dict(verified_conninfo(url, pki["server"].pem))
    assert verified["sslmode"] == "verify-ca"
    assert Path(str(verified["sslrootcert"])).read_text() == pki["server"].pem
    assert Path(str(verified["sslrootcert"])).stat().st_mode & 0o077 == 0
    full = verified_conninfo(url.replace("require", "verify-full"), pki["server"].pem)
    assert psycopg.conninfo.conninfo_to_dict(full)["sslmode"] == "verify-full"
    assert verified_conninfo(url, None) == url


def test_database_ca_cert_with_sslmode_disable_is_refused(
    redis_env, pki: dict[str, Authority]
) -> None:
    with pytest.raises(SettingsError, match="DATABASE_CA_CERT is set but DATABASE_URL has"):
        redis_env(
            DATABASE_URL="postgresql://a@h/d?sslmode=disable",
            REDIS_URL="redis://r/0",
            DATABASE_CA_CERT=pki["server"].pem,
        )


def test_migrate_verifies_the_database_against_database_ca_cert(
    ssl_postgres: SslPostgres, pki: dict[str, Authority]
) -> None:
    """The migration job (a Cloud Run job on gcp) trusts the server only as the service does."""
    wrong = run_migrate(ssl_postgres.url(), DATABASE_CA_CERT=pki["other"].pem)
    assert wrong.returncode != 0
    assert "certificate verify failed" in wrong.stderr + wrong.stdout
    right = run_migrate(ssl_postgres.url(), DATABASE_CA_CERT=pki["server"].pem)
    assert right.returncode == 0, right.stderr + right.stdout
