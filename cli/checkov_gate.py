"""Fail CI on Checkov failures nobody waived, and on waivers past their review date.

`python -m cli.checkov_gate --waivers policy/checkov-waivers.yaml RESULT.json...` reads
Checkov's JSON reports (`-o json`) and the waiver file:

    waivers:
      - check: CKV_AWS_158          # a Checkov id
        resource: "*"               # a Terraform address, or a glob (`aws_s3_bucket.*`)
        reason: why this is acceptable, in a sentence
        reviewBy: 2027-05-31        # after this date the waiver fails CI until renewed

Exit 0: every failure waived and no waiver expired; 1: unwaived failures or expired waivers;
2: a malformed waiver file (the message names the line) or an unreadable report.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
KEYS = ("check", "resource", "reason", "reviewBy")


class WaiverFileError(Exception):
    pass


@dataclass(frozen=True)
class Waiver:
    check: str
    resource: str
    reason: str
    review_by: datetime.date
    line: int

    def covers(self, check: str, resource: str) -> bool:
        return check == self.check and fnmatch.fnmatchcase(resource, self.resource)


@dataclass(frozen=True)
class Failure:
    check: str
    resource: str
    name: str
    report: str


def _scalar(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None


def load_waivers(path: Path) -> list[Waiver]:
    """The waivers of `path`; any problem names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except OSError as error:
        raise WaiverFileError(f"{path}: {error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise WaiverFileError(f"{path}{line}: not valid YAML ({error})") from error

    def fail(node: yaml.Node, message: str) -> WaiverFileError:
        return WaiverFileError(f"{path}:{node.start_mark.line + 1}: {message}")

    if root is None:
        return []
    top = dict((k.value, v) for k, v in root.value) if isinstance(root, yaml.MappingNode) else {}
    entries = top.get("waivers")
    if not isinstance(root, yaml.MappingNode) or set(top) != {"waivers"}:
        raise fail(root, "the file holds one key, `waivers`, a list of waivers")
    if not isinstance(entries, yaml.SequenceNode):
        raise fail(entries or root, "`waivers` must be a list")
    waivers = []
    for entry in entries.value:
        if not isinstance(entry, yaml.MappingNode):
            raise fail(entry, f"a waiver is a mapping with {', '.join(KEYS)}")
        fields = {k.value: v for k, v in entry.value}
        unknown = sorted(set(fields) - set(KEYS))
        missing = [k for k in KEYS if k not in fields]
        if unknown or missing:
            detail = "; ".join(
                [f"unknown key {k!r}" for k in unknown] + [f"missing {k!r}" for k in missing]
            )
            raise fail(entry, f"{detail} (a waiver has {', '.join(KEYS)})")
        check, resource = _scalar(fields["check"]), _scalar(fields["resource"])
        reason, review_by = _scalar(fields["reason"]), _scalar(fields["reviewBy"])
        if not isinstance(check, str) or not CHECK_ID.match(check):
            raise fail(fields["check"], f"check {check!r} is not a Checkov id (CKV_AWS_123)")
        if not isinstance(resource, str) or not resource:
            raise fail(fields["resource"], "resource is a Terraform address, a glob or '*'")
        if not isinstance(reason, str) or len(reason.split()) < 3:
            raise fail(fields["reason"], "reason must say why, in a few words at least")
        if not isinstance(review_by, datetime.date):
            raise fail(fields["reviewBy"], f"reviewBy {review_by!r} is not a date (YYYY-MM-DD)")
        waivers.append(
            Waiver(check, resource, reason, review_by, fields["check"].start_mark.line + 1)
        )
    return waivers


def load_failures(report: Path) -> list[Failure]:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise WaiverFileError(f"{report}: not a Checkov JSON report ({error})") from error
    # One framework: an object; several: a list; nothing to scan: a bare summary.
    documents = data if isinstance(data, list) else [data]
    return [
        Failure(f["check_id"], f["resource"], f.get("check_name", ""), report.name)
        for document in documents
        for f in (document.get("results") or {}).get("failed_checks", [])
    ]


def gate(
    waivers: Sequence[Waiver], failures: Sequence[Failure], today: datetime.date
) -> tuple[list[Failure], list[Waiver]]:
    """Failures no waiver covers, and waivers past their review date."""
    unwaived = [f for f in failures if not any(w.covers(f.check, f.resource) for w in waivers)]
    expired = [w for w in waivers if w.review_by < today]
    return unwaived, expired


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="checkov-gate", description=__doc__.split("\n")[0])
    parser.add_argument("--waivers", type=Path, required=True)
    parser.add_argument("reports", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        waivers = load_waivers(args.waivers)
        failures = [f for report in args.reports for f in load_failures(report)]
    except WaiverFileError as error:
        print(f"checkov-gate: {error}", file=sys.stderr)
        return 2
    unwaived, expired = gate(waivers, failures, datetime.datetime.now(datetime.UTC).date())
    for f in unwaived:
        print(f"{f.report}: {f.check} {f.resource}: {f.name} (not waived)", file=sys.stderr)
    for w in expired:
        print(
            f"{args.waivers}:{w.line}: waiver of {w.check} on {w.resource} expired "
            f"{w.review_by.isoformat()}: review it and renew or fix",
            file=sys.stderr,
        )
    print(
        f"checkov-gate: {len(failures)} failed checks, {len(failures) - len(unwaived)} waived, "
        f"{len(unwaived)} not waived; {len(expired)} expired waivers"
    )
    return 1 if unwaived or expired else 0


if __name__ == "__main__":
    raise SystemExit(main())
