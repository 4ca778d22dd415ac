"""PromotedImage: copy a digest-pinned image into this stack's own registry, byte for byte.

Why a copy: production runs the digest staging tested, but pulling it from staging's registry
would make production depend on a registry whose lifecycle rules expire old builds and which
every pull-request role may write to: a scale-out or a replaced task could then find its image
gone. The copy keeps the digest (`skopeo copy --all --preserve-digests`: the index and every
platform's manifest unchanged), so what runs is still what was tested, and nothing is rebuilt.

The copy runs where `pulumi up` runs (skopeo, the AWS CLI and gcloud are on GitHub's Ubuntu
runners; `.ci/app.sh` installs skopeo here). It fetches a login for each ECR or Artifact
Registry host involved at that moment, with the deploying identity, into a temporary auth file:
never an input of the resource, never on a command line, never in the output, and never sent to
any other host. A second run finds the tag there and only re-checks its digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

#: The tag a promoted image gets in the destination (lifecycle rules keep the newest of them).
PROMOTED_TAG_PREFIX = "promoted-"
DIGEST_REF = re.compile(r"^(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")

COPY_SCRIPT = r"""set -eu
auth="$(mktemp)"
raw="$(mktemp)"
trap 'rm -f "$auth" "$raw"' EXIT
# A login for each registry host involved, fetched now with the deploying identity (nothing
# stored in the stack): ECR and Artifact Registry hosts only; any other host gets none.
entries=""
seen=" "
for host in "${SOURCE%%/*}" "${DESTINATION%%/*}"; do
  case "$seen" in *" $host "*) continue ;; esac
  seen="$seen$host "
  case "$host" in
    *.dkr.ecr.*.amazonaws.com|*.dkr.ecr.*.amazonaws.com.cn)
      region="${host#*.dkr.ecr.}"
      region="${region%%.*}"
      secret="AWS:$(aws ecr get-login-password --region "$region")" ;;
    *-docker.pkg.dev)
      secret="oauth2accesstoken:$(gcloud auth print-access-token)" ;;
    *)
      continue ;;
  esac
  encoded="$(printf '%s' "$secret" | base64 | tr -d '\n')"
  entries="$entries${entries:+,}\"$host\":{\"auth\":\"$encoded\"}"
done
printf '{"auths":{%s}}' "$entries" > "$auth"
digest_of() {
  skopeo inspect --raw --authfile "$auth" "docker://$1" > "$raw" || return 1
  echo "sha256:$(sha256sum < "$raw" | cut -d' ' -f1)"
}
if skopeo inspect --raw --authfile "$auth" "docker://$DESTINATION" > /dev/null 2>&1; then
  echo "already promoted: $DESTINATION"
else
  skopeo copy --all --preserve-digests --retry-times 3 --authfile "$auth" \
    "docker://$SOURCE" "docker://$DESTINATION"
fi
if ! copied="$(digest_of "$DESTINATION")"; then
  echo "cannot read $DESTINATION back to check its digest" >&2
  exit 1
fi
if [ "$copied" != "$DIGEST" ]; then
  echo "$DESTINATION is $copied, not the promoted $DIGEST" >&2
  exit 1
fi
echo "promoted $SOURCE to $DESTINATION"
"""


def promoted_tag(digest: str) -> str:
    """`promoted-<first 16 hex of the digest>`: one tag per promoted image, never reused."""
    return PROMOTED_TAG_PREFIX + digest.removeprefix("sha256:")[:16]


@dataclass(frozen=True)
class PromotedImageArgs:
    # `<repository>@sha256:<digest>`: what staging ran (or an earlier digest, for a rollback).
    source: str
    # This stack's own repository (`<host>/<path>`, no tag).
    repository: pulumi.Input[str]


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
        environment: dict[str, pulumi.Input[str]] = {
            "SOURCE": args.source,
            "DESTINATION": destination,
            "DIGEST": self.digest,
        }
        # Imported here: only a promoting stack needs the provider (its import costs 0.2 s of
        # every run, `agent-deploy cost` included).
        from pulumi_command import local

        copy = local.Command(
            f"{name}-copy",
            create=COPY_SCRIPT,
            interpreter=["/bin/sh", "-c"],
            environment=environment,
            # A new source or destination is a new copy; otherwise nothing runs again (no
            # credential is an input: the script fetches them), so previews stay quiet.
            triggers=[args.source, destination],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = pulumi.Output.all(args.repository, copy.id).apply(
            lambda values: f"{values[0]}@{self.digest}"
        )
        self.register_outputs({"ref": self.ref})
