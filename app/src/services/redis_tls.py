"""Redis over TLS verified against a CA bundle given as PEM text (`REDIS_CA_CERT`).

Memorystore for Redis signs its server certificate with a CA of its own, one per instance, and
the certificate names the instance by its IP address in the subject's common name. Two things
follow. The bundle is the only trust anchor (the system store is not loaded: a certificate any
public CA issued must not pass). And Python's hostname check cannot be used as is: OpenSSL
matches an IP address only against subjectAltName entries, never the common name, so it would
refuse Memorystore. The identity is checked here instead, after the handshake: the certificate
must name the host the URL connects to, in its subjectAltName (DNS or IP) or, when it has none,
in its common name (RFC 6125's fallback, extended to IP addresses as Memorystore needs).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, parse_url

PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def pinned_context(ca_pem: str) -> ssl.SSLContext:
    """Chain verification against `ca_pem` only; the name is checked by `names_host`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Memorystore accepts 1.2 and later
    context.check_hostname = False  # see the module docstring: `names_host` does it
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem)
    return context


def check_ca_bundle(ca_pem: str) -> str:
    """The bundle, or ValueError saying why it cannot be one (never quoting it)."""
    if PEM_CERTIFICATE not in ca_pem:
        raise ValueError("not a PEM certificate bundle (no '-----BEGIN CERTIFICATE-----')")
    try:
        pinned_context(ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"not a valid PEM certificate bundle ({type(exc).__name__})") from None
    return ca_pem


def _same_host(pattern: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(pattern) == ipaddress.ip_address(host)
    except ValueError:
        pass
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == host


def names_host(certificate: Mapping[str, Any], host: str) -> bool:
    """Whether a verified peer certificate (`getpeercert()`) names `host`."""
    alt_names = [
        value
        for kind, value in certificate.get("subjectAltName", ())
        if kind in ("DNS", "IP Address")
    ]
    if alt_names:
        return any(_same_host(name, host) for name in alt_names)
    common_names = [
        value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"
    ]
    return any(_same_host(name, host) for name in common_names)


class PinnedCAConnection(SSLConnection):
    """A TLS connection trusting only the given CA and checking the name as described above."""

    def __init__(self, *, ca_pem: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pinned_context = pinned_context(ca_pem)

    def _connection_arguments(self) -> Mapping[str, Any]:
        return {**Connection._connection_arguments(self), "ssl": self._pinned_context}

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        writer = self._writer
        certificate = writer.get_extra_info("peercert") if writer is not None else None
        if not certificate or not names_host(certificate, self.host):
            if writer is not None:
                writer.close()
            self._reader = self._writer = None
            raise ssl.SSLCertVerificationError(
                f"the Redis server's certificate does not name {self.host!r}"
            )


def redis_client(url: str, ca_pem: str | None, **options: Any) -> Redis:
    """A client for `url`; with `ca_pem`, TLS is verified against that bundle only."""
    if ca_pem is None:
        return Redis.from_url(url, **options)
    kwargs = {**options, **parse_url(url)}
    if kwargs.get("connection_class") is not SSLConnection:
        raise ValueError("REDIS_CA_CERT needs a rediss:// (TLS) REDIS_URL")
    kwargs["connection_class"] = PinnedCAConnection
    kwargs["ca_pem"] = ca_pem
    return Redis.from_pool(ConnectionPool(**kwargs))
