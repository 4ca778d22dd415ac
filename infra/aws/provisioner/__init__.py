"""The provisioner Lambda's code as a Pulumi archive (the handler itself: `handler.py`).

The archive is self-contained: the handler, pg8000 and the distributions it requires (taken
from this environment, so uv.lock pins what is deployed) and the RDS CA bundle. The Lambda
runtime (RUNTIME) differs from the Python running the program, so only pure-Python wheels are
accepted: a compiled dependency fails here, at preview, not at the first invocation.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pulumi

HANDLER = "handler.handler"
RUNTIME = "python3.12"
#: The database role the function connects as (created by the host's db-init).
PROVISIONER_USER = "agent_provisioner"

_HERE = Path(__file__).resolve().parent
CA_BUNDLE = _HERE.parents[2] / "app" / "certs" / "rds-global-bundle.pem"
#: What the handler imports besides the stdlib; their requirements follow from metadata.
ROOT_DISTRIBUTIONS = ("pg8000",)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names a distribution needs unconditionally (extras are never installed for it)."""
    names = []
    for requirement in dist.requires or []:
        marker = requirement.partition(";")[2]
        found = _REQUIREMENT_NAME.match(requirement)
        if found and "extra" not in marker:
            names.append(found.group(1))
    return names


def _pure_python(dist: metadata.Distribution) -> None:
    tags = [
        line.partition(":")[2].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    compiled = [str(f) for f in dist.files or [] if f.suffix in {".so", ".pyd", ".dylib"}]
    if not tags or compiled or not all(tag.endswith("-none-any") for tag in tags):
        raise RuntimeError(
            f"{dist.metadata['Name']} is not a pure-Python wheel (tags {tags}, compiled "
            f"{compiled[:3]}): the provisioner archive runs on {RUNTIME}, not on this Python"
        )


def bundled_files() -> dict[str, Path]:
    """Archive path -> source file: the handler, its dependencies' files, the CA bundle."""
    files = {"handler.py": _HERE / "handler.py", CA_BUNDLE.name: CA_BUNDLE}
    pending, seen = list(ROOT_DISTRIBUTIONS), set()
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        _pure_python(dist)
        for file in dist.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue  # scripts installed outside site-packages, and bytecode of this Python
            files[file.as_posix()] = Path(str(dist.locate_file(file)))
        pending += _requirements(dist)
    return files


def provisioner_archive() -> pulumi.AssetArchive:
    """The Lambda's code (`handler.handler` at the archive's root)."""
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(path)) for name, path in sorted(bundled_files().items())}
    )
