"""`agent-deploy check --stack <name> [--json]`: what a stack would manage, without the cloud.

Loads `Pulumi.<name>.yaml`, validates it, runs the real program under Pulumi's mocks in preview
mode and prints the resources grouped by component with their key settings, and the stack
outputs. Values only a deployment can know (ids, ARNs, digests, secrets) are shown as such.
Then runs the policy pack (`policy/`) on what the program registers, as `pulumi up` would
see it, at the levels of `policy/config/<tier>.json`, and lists the violations.
Exit codes: 0 valid, 1 configuration problems or a mandatory policy violation, 2 usage or
unreadable stack file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from cli.engine import PhysicalNameError, ProgramRun, Resource, redact, run_program
from cli.policy import (
    PolicyConfigError,
    Violation,
    config_path,
    evaluate,
    load_config,
    load_policies,
)
from cli.stackfile import StackFileError, load_stack_file, program_stack
from cli.tfplan import plan
from infra.aws.summaries import AWS_SUMMARIES
from infra.config import ConfigProblem
from infra.gcp.summaries import GCP_SUMMARIES


def find_project_dir(start: Path) -> Path:
    """The nearest directory holding Pulumi.yaml, as the Pulumi CLI resolves it."""
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    return Path(__file__).resolve().parent.parent


_MAX_SETTINGS = 8
_MAX_VALUE = 70
# Wire names too noisy to be "key settings" in the human listing (all are in --json).
_NOISY = {
    "name",
    "tagsAll",
    "policy",
    "containerDefinitions",
    "assumeRolePolicy",
    "__defaults",
    "opts",
    # A Lambda function's code archive (an asset object, not data).
    "code",
}


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _container_summary(inputs: dict[str, Any]) -> list[str]:
    ports = [
        f"{p.get('ip', 'all interfaces')}:{_format_value(p.get('external'))}->"
        f"{_format_value(p.get('internal'))}"
        for p in inputs.get("ports") or []
    ]
    tests = (inputs.get("healthcheck") or {}).get("tests")
    summary = [f"ports={','.join(ports)}"] if ports else []
    if isinstance(tests, list):
        summary.append(f"healthcheck={_format_value(' '.join(map(str, tests)))}")
    return summary


# Nested settings worth a line of their own, by resource type. Targets add theirs.
SUMMARIES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "docker:index/container:Container": _container_summary,
    **AWS_SUMMARIES,
    **GCP_SUMMARIES,
}


def _key_settings(resource: Resource) -> str:
    summary = SUMMARIES.get(resource.type)
    shown = summary(redact(resource.inputs)) if summary else []
    for key, value in sorted(redact(resource.inputs).items()):
        if key in _NOISY or value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            continue
        if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            continue
        shown.append(f"{key}={_format_value(value)}")
        if len(shown) == _MAX_SETTINGS:
            break
    flags = [
        flag
        for flag, on in (
            ("protected", resource.protect),
            ("retained on delete", resource.retain_on_delete),
        )
        if on
    ]
    if resource.ignore_changes:
        flags.append(f"ignores changes to {', '.join(resource.ignore_changes)}")
    suffix = f"  [{'; '.join(flags)}]" if flags else ""
    return "  ".join(shown) + suffix


def _print_tree(run: ProgramRun, parent: Resource | None, depth: int, out: TextIO) -> None:
    for resource in run.children(parent):
        indent = "  " * depth
        if resource.custom:
            out.write(f"{indent}- {resource.type}  {resource.name}\n")
            settings = _key_settings(resource)
            if settings:
                out.write(f"{indent}    {settings}\n")
        else:
            out.write(f"{indent}{resource.type}  {resource.name}\n")
        _print_tree(run, resource, depth + 1, out)


def _label(stack: str, run: ProgramRun) -> str:
    """The stack asked for, and the stack it ran as when that differs (the template)."""
    return stack if run.stack == stack else f"{stack} (run as {run.stack})"


def print_human(run: ProgramRun, source: Path, out: TextIO, stack: str | None = None) -> None:
    custom = [r for r in run.resources if r.custom]
    out.write(
        f"stack {_label(stack or run.stack, run)} ({source.name}): {len(custom)} resources in "
        f"{len(run.resources) - len(custom)} components\n\n"
    )
    _print_tree(run, None, 0, out)
    out.write("\noutputs:\n")
    for name, value in sorted(redact(run.outputs).items()):
        shown = "[secret]" if name in run.secret_outputs else _format_value(value)
        out.write(f"  {name}: {shown}\n")
    out.write(
        "\nOffline check: no cloud was called. Ids, ARNs, image digests and secret values "
        "are known only after deployment.\n"
    )


def as_json(run: ProgramRun, source: Path, stack: str | None = None) -> dict[str, Any]:
    return {
        "stack": stack or run.stack,
        "runAs": run.stack,
        "stackFile": source.name,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "parent": r.parent,
                "custom": r.custom,
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "ignoreChanges": r.ignore_changes,
                "inputs": redact(r.inputs),
            }
            for r in run.resources
        ],
        "outputs": {
            k: "[secret]" if k in run.secret_outputs else v for k, v in redact(run.outputs).items()
        },
    }


def _problems_json(stack: str, problems: Sequence[ConfigProblem]) -> dict[str, Any]:
    return {
        "stack": stack,
        "errors": [{"key": p.key, "value": p.value, "message": p.message} for p in problems],
    }


def _errors_json(stack: str | None, errors: Sequence[tuple[str | None, str]]) -> dict[str, Any]:
    return {
        "stack": stack,
        "errors": [{"key": key, "value": None, "message": message} for key, message in errors],
    }


def print_violations(violations: Sequence[Violation], source: Path | None, out: TextIO) -> None:
    where = f" ({source.name})" if source else ""
    mandatory = sum(v.level == "mandatory" for v in violations)
    out.write(
        f"\npolicy{where}: {len(violations)} violations, {mandatory} mandatory\n"
        if violations
        else f"\npolicy{where}: no violations\n"
    )
    for v in violations:
        out.write(f"  [{v.level}] {v.policy}: {v.resource} ({v.type}): {v.message}\n")


def run_policies(
    stack: str,
    config: dict[str, str],
    secret_keys: set[str],
    project_dir: Path,
    policy_config: Path | None,
) -> tuple[list[Violation], Path | None, ProgramRun]:
    """The pack on the inputs `pulumi up` would send it (all known: containers, policies)."""
    source = policy_config or config_path(project_dir, config)
    run = run_program(
        program_stack(stack), config, secret_keys, project_dir=project_dir, preview=False
    )
    return evaluate(run, load_policies(project_dir), load_config(source)), source, run


def check(
    stack: str,
    *,
    as_json_output: bool,
    project_dir: Path,
    out: TextIO,
    err: TextIO,
    policy_config: Path | None = None,
    tfplan: Path | None = None,
) -> int:
    """Exit 0 valid, 1 configuration problems or a mandatory violation, 2 unreadable stack file;
    JSON on each with --json."""
    from stacks import StackConfigError

    def fail(code: int, message: str, document: dict[str, Any]) -> int:
        if as_json_output:
            out.write(json.dumps(document, indent=2) + "\n")
        err.write(f"{message}\n")
        return code

    try:
        stack_file = load_stack_file(project_dir, stack)
    except StackFileError as error:
        return fail(2, f"agent-deploy check: {error}", _errors_json(stack, error.problems))
    try:
        run = run_program(
            program_stack(stack),
            stack_file.config,
            stack_file.secret_keys,
            project_dir=project_dir,
            preview=True,
        )
    except StackConfigError as error:
        _warn(getattr(error, "warnings", []), err)
        return fail(1, str(error), _problems_json(stack, error.problems))
    except PhysicalNameError as error:
        message = f"a name the cloud would refuse: {error}"
        return fail(1, f"agent-deploy check: {message}", _errors_json(stack, [(None, message)]))
    _warn(run.warnings, err)
    try:
        violations, source, up_run = run_policies(
            stack, stack_file.config, stack_file.secret_keys, project_dir, policy_config
        )
    except PolicyConfigError as error:
        message = f"policy pack config: {error}"
        return fail(2, f"agent-deploy check: {message}", _errors_json(stack, [(None, message)]))
    mandatory = [v for v in violations if v.level == "mandatory"]
    if tfplan is not None:
        tfplan.write_text(json.dumps(plan(up_run), indent=1, default=str) + "\n", encoding="utf-8")
    if as_json_output:
        document = as_json(run, stack_file.path, stack)
        document["policy"] = {"violations": [v.as_json() for v in violations]}
        out.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        print_human(run, stack_file.path, out, stack)
        print_violations(violations, source, out)
    if mandatory:
        err.write(
            f"agent-deploy check: {len(mandatory)} mandatory policy violations: "
            f"{', '.join(sorted({v.policy for v in mandatory}))}\n"
        )
        return 1
    return 0


def _warn(warnings: Sequence[str], err: TextIO) -> None:
    for warning in warnings:
        err.write(f"warning: {warning}\n")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 2 as argparse does, and in JSON too when --json was asked for."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        if self.wants_json:
            sys.stdout.write(json.dumps(_errors_json(None, [(None, message)]), indent=2) + "\n")
        super().error(message)


def main(argv: Sequence[str] | None = None) -> int:
    _Parser.wants_json = "--json" in (sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="agent-deploy", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_cost_command(commands)
    check_cmd = commands.add_parser("check", help="validate a stack and list what it manages")
    check_cmd.add_argument("--stack", required=True, help="stack name: Pulumi.<stack>.yaml")
    check_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    check_cmd.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory of Pulumi.yaml (default: nearest from here)",
    )
    check_cmd.add_argument(
        "--policy-config",
        type=Path,
        default=None,
        help="policy pack config (default: policy/config/<tier>.json)",
    )
    check_cmd.add_argument(
        "--tfplan",
        type=Path,
        default=None,
        help="also write the resources as Terraform plan JSON (for Checkov) to this file",
    )
    args = parser.parse_args(argv)
    project_dir = args.project_dir or find_project_dir(Path.cwd())
    try:
        if args.command == "cost":
            return _run_cost(args, project_dir.resolve())
        code = check(
            args.stack,
            as_json_output=args.json,
            project_dir=project_dir.resolve(),
            out=sys.stdout,
            err=sys.stderr,
            policy_config=args.policy_config,
            tfplan=args.tfplan,
        )
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) left: not an error of ours. Python would still try to flush
        # stdout at exit and print a traceback; point it at /dev/null instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def _add_cost_command(commands: Any) -> None:
    cost_cmd = commands.add_parser("cost", help="what a stack costs a month, offline")
    which = cost_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: Pulumi.<stack>.yaml")
    which.add_argument(
        "--all", action="store_true", help="a markdown table of every Pulumi.*.yaml stack"
    )
    output = cost_cmd.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument("--markdown", action="store_true", help="a pull-request comment")
    cost_cmd.add_argument("--base", help="git ref to compare with (prices the stack there too)")
    cost_cmd.add_argument("--usage", type=Path, help="usage file (default: usage/<stack>.yaml)")
    cost_cmd.add_argument(
        "--write-readme", type=Path, help="with --all: rewrite the table in this README"
    )
    cost_cmd.add_argument("--project-dir", type=Path, default=None, help="directory of Pulumi.yaml")


def _run_cost(args: argparse.Namespace, project_dir: Path) -> int:
    from cli.cost import cost

    code = cost(
        args.stack,
        as_json_output=args.json,
        markdown=args.markdown,
        base=args.base,
        usage_path=args.usage,
        every_stack=args.all,
        readme=args.write_readme,
        project_dir=project_dir,
        out=sys.stdout,
        err=sys.stderr,
    )
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
