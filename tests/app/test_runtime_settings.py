"""Settings the AWS runtime relies on: timeouts derived from the run timeout, the database
password file, and every injected secret known to the log redactor."""

from __future__ import annotations

import io
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest

from src.config.logging import REDACTED, configure_logging, get_logger
from src.config.settings import Settings, SettingsError, load_settings

BASE = {
    "DATABASE_URL": "postgresql://app@db:5432/agent",
    "REDIS_URL": "redis://cache:6379/0",
    "AUTH_TOKENS": "base-token-0000-0000",
}
RDS_BUNDLE = Path(__file__).resolve().parents[2] / "app" / "certs" / "rds-global-bundle.pem"
_ENV = (
    "DATABASE_URL",
    "DATABASE_URI",
    "POSTGRES_URI",
    "REDIS_URL",
    "REDIS_URI",
    "RUN_TIMEOUT_SECONDS",
    "KEEPALIVE_TIMEOUT_SECONDS",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "DATABASE_PASSWORD_FILE",
    "PGPASSWORD",
    "AUTH_TOKENS",
    "DATABASE_APP_PASSWORD",
    "DATABASE_ADMIN_PASSWORD",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)

    def apply(**values: str) -> Settings:
        for name, value in {**BASE, **values}.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return apply


def test_timeouts_default_from_the_run_timeout(env):
    settings = env()
    assert settings.keepalive_timeout_seconds == 75
    assert settings.graceful_shutdown_seconds == settings.run_timeout_seconds + 5
    assert env(RUN_TIMEOUT_SECONDS="100").graceful_shutdown_seconds == 105
    explicit = env(SHUTDOWN_TIMEOUT_SECONDS="30", KEEPALIVE_TIMEOUT_SECONDS="125")
    assert explicit.graceful_shutdown_seconds == 30
    assert explicit.keepalive_timeout_seconds == 125


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"KEEPALIVE_TIMEOUT_SECONDS": "0"}, "KEEPALIVE_TIMEOUT_SECONDS"),
        ({"SHUTDOWN_TIMEOUT_SECONDS": "soon"}, "SHUTDOWN_TIMEOUT_SECONDS"),
        ({"DATABASE_PASSWORD_FILE": "/nonexistent/pw"}, "DATABASE_PASSWORD_FILE"),
    ],
)
def test_bad_runtime_values_name_the_variable(env, values, named):
    with pytest.raises(SettingsError, match=named):
        env(**values)


def test_empty_password_file_is_refused(env, tmp_path: Path):
    empty = tmp_path / "pw"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=r"DATABASE_PASSWORD_FILE: .* is empty"):
        env(DATABASE_PASSWORD_FILE=str(empty))


def test_every_injected_secret_is_redacted_from_logs(env, tmp_path: Path):
    password_file = tmp_path / "pw"
    password_file.write_text("file-Pw-5512\n")
    settings = env(
        REDIS_URL="rediss://:redis%2Btoken-8841@cache:6379/0",
        PGPASSWORD="pg-Pw-3391",
        AUTH_TOKENS="tok-alpha-1111-aaaa,tok-beta-2222-bbbb",
        DATABASE_APP_PASSWORD="app-Pw-4471",
        DATABASE_ADMIN_PASSWORD="admin-Pw-9902",
        DATABASE_PASSWORD_FILE=str(password_file),
    )
    secrets = [
        "redis+token-8841",
        "redis%2Btoken-8841",
        "pg-Pw-3391",
        "tok-alpha-1111-aaaa",
        "tok-beta-2222-bbbb",
        "app-Pw-4471",
        "admin-Pw-9902",
        "file-Pw-5512",
    ]
    stream = io.StringIO()
    configure_logging("json", "INFO", settings.secret_values(), stream=stream)
    get_logger("t").info("leak " + " ".join(secrets), detail={"values": secrets})
    output = stream.getvalue()
    for secret in secrets:
        assert secret not in output
    assert output.count(REDACTED) >= 2 * len(secrets)


def test_rds_ca_bundle_parses_and_is_current():
    """The bundle the image ships for `sslmode=verify-full&sslrootcert=...` (see app/certs)."""
    context = ssl.create_default_context(cafile=str(RDS_BUNDLE))
    certificates = context.get_ca_certs()
    assert len(certificates) >= 80
    now = datetime.now(UTC)
    for cert in certificates:
        subject = dict(item[0] for item in cert["subject"])
        assert subject["organizationalUnitName"] == "Amazon RDS"
        not_after = datetime.strptime(str(cert["notAfter"]), "%b %d %H:%M:%S %Y %Z")
        assert not_after.replace(tzinfo=UTC) > now, subject
    names = {dict(item[0] for item in c["subject"])["commonName"] for c in certificates}
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names
    assert "Amazon RDS eu-west-1 Root CA ECC384 G1" in names


def test_a_missing_sslrootcert_stops_start_up_and_the_shipped_bundle_is_accepted(env):
    with pytest.raises(SettingsError, match=r"DATABASE_URL .*sslrootcert='/nope.pem': no such"):
        env(DATABASE_URL="postgresql://app@db/agent?sslmode=verify-full&sslrootcert=/nope.pem")
    url = f"postgresql://app@db/agent?sslmode=verify-full&sslrootcert={RDS_BUNDLE}"
    assert "sslmode=verify-full" in env(DATABASE_URL=url).database_url.get_secret_value()
