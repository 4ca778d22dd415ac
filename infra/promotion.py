"""PromotedImage: copy a digest-pinned image into this stack's own registry, byte for byte.

Why a copy: production runs the digest staging tested, but pulling it from staging's registry
would make production depend on a registry whose lifecycle rules expire old builds and which
every pull-request role may write to: a scale-out or a replaced task could then find its image
gone. The copy keeps the digest (`skopeo copy --all --preserve-digests`: the index and every
platform's manifest unchanged), so what runs is still what was tested, and nothing is rebuilt.

The copy runs where `pulumi up` runs (skopeo is on GitHub's Ubuntu runners; `.ci/app.sh` installs
it here), with a login per registry host written to a temporary auth file: never on a command
line, never in the output. A second run finds the tag there and only re-checks its digest.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from infra.image import RegistryLogin

#: The tag a promoted image gets in the destination (lifecycle rules keep the newest of them).
PROMOTED_TAG_PREFIX = "promoted-"
DIGEST_REF = re.compile(r"^(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")

COPY_SCRIPT = r"""set -eu
auth="$(mktemp)"
trap 'rm -f "$auth"' EXIT
printf '%s' "$REGISTRY_AUTH" > "$auth"
digest_of() {
  echo "sha256:$(skopeo inspect --raw --authfile "$auth" "docker://$1" | sha256sum | cut -d' ' -f1)"
}
if skopeo inspect --raw --authfile "$auth" "docker://$DESTINATION" > /dev/null 2>&1; then
  echo "already promoted: $DESTINATION"
else
  skopeo copy --all --preserve-digests --retry-times 3 --authfile "$auth" \
    "docker://$SOURCE" "docker://$DESTINATION"
fi
copied="$(digest_of "$DESTINATION")"
if [ "$copied" != "$DIGEST" ]; then
  echo "$DESTINATION is $copied, not the promoted $DIGEST" >&2
  exit 1
fi
echo "promoted $SOURCE to $DESTINATION"
"""


def promoted_tag(digest: str) -> str:
    """`promoted-<first 16 hex of the digest>`: one tag per promoted image, never reused."""
    return PROMOTED_TAG_PREFIX + digest.removeprefix("sha256:")[:16]


def auth_file(logins: Sequence[tuple[str, str, str]]) -> str:
    """The containers-auth.json skopeo reads: one entry per registry host."""
    auths = {
        address: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for address, user, password in logins
    }
    return json.dumps({"auths": auths}, sort_keys=True)


@dataclass(frozen=True)
class PromotedImageArgs:
    # `<repository>@sha256:<digest>`: what staging ran (or an earlier digest, for a rollback).
    source: str
    # This stack's own repository (`<host>/<path>`, no tag).
    repository: pulumi.Input[str]
    # Logins for the source's and the destination's registry hosts.
    logins: Sequence[RegistryLogin]


class PromotedImage(pulumi.ComponentResource):
    """`ref` is `<repository>@<digest>`, known once the copy is there and verified."""

    ref: pulumi.Output[str]
    digest: str

    def __init__(
        self, name: str, args: PromotedImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:index:PromotedImage", name, None, opts)
        found = DIGEST_REF.match(args.source)
        if found is None:
            raise ValueError(
                f"promoted image {args.source!r} is not pinned: use <repository>@sha256:<digest>"
            )
        self.digest = found["digest"]
        destination = pulumi.Output.concat(args.repository, ":", promoted_tag(self.digest))
        logins: pulumi.Output[str] = pulumi.Output.all(
            *[pulumi.Output.all(x.address, x.username, x.password) for x in args.logins]
        ).apply(lambda values: auth_file([(str(a), str(u), str(p)) for a, u, p in values]))
        auth: pulumi.Output[str] = pulumi.Output.secret(logins)
        environment: dict[str, pulumi.Input[str]] = {
            "SOURCE": args.source,
            "DESTINATION": destination,
            "DIGEST": self.digest,
            "REGISTRY_AUTH": auth,
        }
        copy = command.local.Command(
            f"{name}-copy",
            create=COPY_SCRIPT,
            interpreter=["/bin/sh", "-c"],
            environment=environment,
            # A new source or destination is a new copy. The registry token changes on every
            # run, so every `up` also runs the script again: it finds the tag and re-checks
            # its digest (seconds), which proves the running image is still there.
            triggers=[args.source, destination],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = pulumi.Output.all(args.repository, copy.id).apply(
            lambda values: f"{values[0]}@{self.digest}"
        )
        self.register_outputs({"ref": self.ref})
