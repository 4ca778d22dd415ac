"""Settings: accepted environment names, URL normalisation, errors that name the variable."""

from __future__ import annotations

import pytest

from src.config.settings import Settings, SettingsError, load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Set only the given variables (the outer environment must not leak in)."""
    for name in [
        "DATABASE_URL",
        "DATABASE_URI",
        "POSTGRES_URI",
        "REDIS_URL",
        "REDIS_URI",
        "PORT",
        "LOG_FORMAT",
        "CHAT_MODEL",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "LANGSMITH_TRACING",
        "LANGSMITH_API_KEY",
        "LANGSMITH_PROJECT",
        "LANGCHAIN_TRACING_V2",
        "LANGCHAIN_TRACING",
        "LANGCHAIN_API_KEY",
        "LANGCHAIN_PROJECT",
        "LOG_LEVEL",
        "AUTH_DISABLED",
        "DOCS_ENABLED",
        "METRICS_PORT",
        "MAX_BODY_BYTES",
        "FORWARDED_ALLOW_IPS",
    ]:
        monkeypatch.delenv(name, raising=False)
    # Bearer auth is on by default; tests about other variables run with a valid token.
    monkeypatch.setenv("AUTH_TOKENS", "settings-test-token-0001")

    def apply(**values: str) -> Settings:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return apply


BASE = {"DATABASE_URL": "postgresql://u:p@db:5432/app", "REDIS_URL": "redis://cache:6379/0"}


def test_langgraph_server_names_are_accepted(env):
    settings = env(DATABASE_URI="postgresql://u:p@db/app", REDIS_URI="rediss://:tok@cache:6379/0")
    assert settings.database_url.get_secret_value() == "postgresql://u:p@db/app"
    assert settings.redis_url.get_secret_value() == "rediss://:tok@cache:6379/0"
    assert settings.port == 8000
    assert settings.log_format == "json"


def test_url_name_wins_over_uri_name(env):
    settings = env(
        DATABASE_URL="postgresql://u:p@primary/app",
        DATABASE_URI="postgresql://u:p@other/app",
        REDIS_URL="redis://cache/0",
    )
    assert "primary" in settings.database_url.get_secret_value()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://u:p@db:5432/app?sslmode=require",
            "postgresql://u:p@db:5432/app?sslmode=require",
        ),
        ("postgres://u:p@db/app", "postgresql://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app", "postgresql://u:p@db/app"),
        ("postgresql+asyncpg://u:p@db/app?ssl=require", "postgresql://u:p@db/app?sslmode=require"),
        ("postgresql+psycopg://u:p@db/app?ssl=true", "postgresql://u:p@db/app?sslmode=require"),
        (
            "postgresql://u:p@db/app?sslmode=verify-full&ssl=disable",
            "postgresql://u:p@db/app?sslmode=verify-full",
        ),
    ],
)
def test_database_url_forms_are_normalised_for_libpq(env, given, expected):
    settings = env(DATABASE_URL=given, REDIS_URL="redis://cache/0")
    assert settings.database_url.get_secret_value() == expected


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DATABASE_URL", "mysql://u:topsecret@db/app", "is not PostgreSQL"),
        ("DATABASE_URL", "postgresql+aiopg://u:topsecret@db/app", "unknown driver suffix"),
        ("DATABASE_URL", "postgresql://u:topsecret@db/app?sslmode=maybe", "sslmode='maybe'"),
        ("DATABASE_URL", "postgresql://u:topsecret@db/app?nosuchparam=1", "not a valid PostgreSQL"),
        ("REDIS_URL", "memcached://:topsecret@cache:11211", "is not Redis"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("PORT", "70000", "PORT"),
        ("REDIS_KEY_PREFIX", "pr-42:*", "is not a key prefix"),
        ("REDIS_KEY_PREFIX", "pr 42:", "is not a key prefix"),
    ],
)
def test_malformed_values_name_the_variable_and_hide_the_value(env, variable, value, fragment):
    with pytest.raises(SettingsError) as caught:
        env(**{**BASE, variable: value})
    message = str(caught.value)
    assert variable in message
    assert fragment in message
    assert "topsecret" not in message


def test_missing_urls_are_both_reported(env):
    with pytest.raises(SettingsError) as caught:
        env()
    message = str(caught.value)
    assert "DATABASE_URL (or DATABASE_URI, POSTGRES_URI): Field required" in message
    assert "REDIS_URL (or REDIS_URI): Field required" in message


def test_secrets_do_not_appear_in_repr(env):
    settings = env(**BASE, OPENAI_API_KEY="sk-test-visible-nowhere")
    assert "sk-test-visible-nowhere" not in repr(settings)
    assert "u:p@" not in repr(settings)


def test_legacy_langchain_tracing_names_are_read(env):
    settings = env(
        **BASE, LANGCHAIN_TRACING_V2="true", LANGCHAIN_API_KEY="lsv2-key", LANGCHAIN_PROJECT="demo"
    )
    assert settings.langsmith_tracing is True
    assert settings.langsmith_project == "demo"
    assert settings.langsmith_api_key is not None


def test_model_resolution(env):
    assert env(**BASE).resolved_chat_model() == "offline"
    assert env(**BASE, OPENAI_API_KEY="").resolved_chat_model() == "offline"
    assert env(**BASE, ANTHROPIC_API_KEY="sk-ant").resolved_chat_model().startswith("anthropic:")
    assert env(**BASE, OPENAI_API_KEY="sk-oai").resolved_chat_model().startswith("openai:")


def test_chat_model_needs_its_provider_key(env):
    with pytest.raises(SettingsError, match="CHAT_MODEL uses anthropic but ANTHROPIC_API_KEY"):
        env(**BASE, OPENAI_API_KEY="sk-oai", CHAT_MODEL="anthropic:claude-x")
    with pytest.raises(SettingsError, match="must be 'offline' or '<provider>:<model>'"):
        env(**BASE, CHAT_MODEL="gpt-4o")


def test_secret_values_cover_url_passwords_and_keys(env):
    settings = env(
        DATABASE_URL="postgresql://u:db-pass@db/app",
        REDIS_URL="rediss://:redis-token@cache:6379/0",
        ANTHROPIC_API_KEY="sk-ant-key",
        AUTH_TOKENS="bearer-token-one-0001, bearer-token-two-0002",
    )
    assert set(settings.secret_values()) == {
        "db-pass",
        "redis-token",
        "sk-ant-key",
        "bearer-token-one-0001",
        "bearer-token-two-0002",
    }


def test_auth_tokens_are_required_unless_auth_is_disabled(env, monkeypatch):
    monkeypatch.delenv("AUTH_TOKENS")
    with pytest.raises(SettingsError) as caught:
        env(**BASE)
    assert "AUTH_TOKENS: not set" in str(caught.value)
    assert "AUTH_DISABLED=true" in str(caught.value)
    assert env(**BASE, AUTH_DISABLED="true").tokens() == []


def test_several_tokens_allow_rotation_and_weak_ones_are_refused_unquoted(env):
    settings = env(**BASE, AUTH_TOKENS=" old-token-0123456789 , new-token-0123456789 ,")
    assert settings.tokens() == ["old-token-0123456789", "new-token-0123456789"]
    with pytest.raises(SettingsError) as caught:
        env(**BASE, AUTH_TOKENS="good-token-0123456789,short1")
    assert "AUTH_TOKENS: token 2 must be at least 16" in str(caught.value)
    assert "short1" not in str(caught.value)


def test_problems_of_several_variables_are_reported_together(env, monkeypatch):
    monkeypatch.delenv("AUTH_TOKENS")
    with pytest.raises(SettingsError) as caught:
        env(REDIS_URL="redis://cache/0", PORT="9464", FORWARDED_ALLOW_IPS="10.0.0.0/33")
    message = str(caught.value)
    for variable in ("DATABASE_URL", "AUTH_TOKENS", "METRICS_PORT", "FORWARDED_ALLOW_IPS"):
        assert f"  {variable}" in message, message


@pytest.mark.parametrize(
    ("variable", "given", "field", "expected"),
    [
        ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("LOG_LEVEL", "Warn", "log_level", "WARNING"),
        ("LOG_FORMAT", "JSON", "log_format", "json"),
        (
            "FORWARDED_ALLOW_IPS",
            "10.0.0.0/16, 127.0.0.1",
            "forwarded_allow_ips",
            "10.0.0.0/16,127.0.0.1",
        ),
        ("MAX_BODY_BYTES", "1048576", "max_body_bytes", 1048576),
    ],
)
def test_values_are_accepted_in_any_case_and_normalised(env, variable, given, field, expected):
    assert getattr(env(**BASE, **{variable: given}), field) == expected


def test_defaults_of_the_public_surface(env):
    settings = env(**BASE)
    assert settings.max_body_bytes == 65536
    assert settings.metrics_port == 9464
    assert settings.docs_enabled is False
    assert settings.auth_disabled is False
    assert settings.forwarded_allow_ips == "127.0.0.1"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "load-balancer", "10.0.0.1,*"])
def test_forwarded_allow_ips_entries_must_be_addresses(env, value):
    with pytest.raises(
        SettingsError, match=r"FORWARDED_ALLOW_IPS: .* is not an IP address or CIDR"
    ):
        env(**BASE, FORWARDED_ALLOW_IPS=value)


def test_a_cidr_with_host_bits_gets_the_network_suggested(env):
    # uvicorn would read 10.0.7.9/16 as a name that never matches, trusting no proxy at all.
    with pytest.raises(SettingsError, match=r"did you mean 10\.0\.0\.0/16\?"):
        env(**BASE, FORWARDED_ALLOW_IPS="127.0.0.1,10.0.7.9/16")
