"""libpq verification of the database server against a CA given as PEM text.

Why its own module: the service's pool and the `migrate` step must verify the same way, and
`DATABASE_CA_CERT` arrives as text (a Secret Manager value) while libpq reads only a file.
"""

from __future__ import annotations

import os
import tempfile

import psycopg


def verified_conninfo(conninfo: str, ca_pem: str | None) -> str:
    """`conninfo` verifying the server against `ca_pem`, which libpq reads only from a file."""
    if ca_pem is None:
        return conninfo
    descriptor, path = tempfile.mkstemp(prefix="database-ca-", suffix=".pem")  # mode 0600
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(ca_pem)
    mode = psycopg.conninfo.conninfo_to_dict(conninfo).get("sslmode")
    return psycopg.conninfo.make_conninfo(
        conninfo,
        sslrootcert=path,
        sslmode="verify-full" if mode == "verify-full" else "verify-ca",
    )
