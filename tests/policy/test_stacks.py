"""The pack on the shipped stacks, through `agent-deploy check`.

Every stack file passes with no mandatory violation. A production stack whose program is
mutated after validation (what a careless edit of a component would do; the config refuses
these switches, so the program is changed instead) is refused by `check`, naming the rule.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import check
from cli.policy import evaluate, load_policies
from tests.harness import PROJECT_DIR, run_stack

STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def _check(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = check(stack, as_json_output=True, project_dir=project_dir, out=out, err=err)
    return code, json.loads(out.getvalue()), err.getvalue()


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_the_pack(stack: str) -> None:
    code, document, err = _check(stack)
    assert code == 0, err
    violations = document["policy"]["violations"]
    assert not [v for v in violations if v["level"] == "mandatory"]
    for v in violations:
        assert set(v) == {"policy", "resource", "type", "level", "message"}


def test_production_runs_every_rule_at_mandatory_but_https_until_a_certificate() -> None:
    config = json.loads((PROJECT_DIR / "policy/config/production.json").read_text())
    assert config["all"] == "mandatory"
    assert set(config) == {"all", "alb-https-only"}


def test_with_a_certificate_production_passes_even_https_at_mandatory() -> None:
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-1234"
    run = run_stack("production", {"aws": {"certificateArn": certificate}})
    assert evaluate(run, load_policies(PROJECT_DIR), {"all": "mandatory"}) == []


MUTATIONS = {
    "rds-not-public": """
def mutate(args):
    if args.type_ == "aws:rds/instance:Instance":
        props = {**args.props, "publicly_accessible": True}
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
    "rds-storage-encrypted": """
def mutate(args):
    if args.type_ == "aws:rds/instance:Instance":
        props = {**args.props, "storage_encrypted": False}
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
    "ecs-secrets-by-reference": """
import json

def _leak(definitions):
    containers = json.loads(definitions)
    leaked = {"name": "OPENAI_API_KEY", "value": "sk-live-0123456789abcdefXYZ"}
    containers[-1]["environment"].append(leaked)
    return json.dumps(containers)

def mutate(args):
    if args.type_ == "aws:ecs/taskDefinition:TaskDefinition":
        props = {**args.props}
        definitions = pulumi.Output.from_input(props["container_definitions"])
        props["container_definitions"] = definitions.apply(_leak)
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
}


def _mutated_project(tmp_path: Path, mutation: str) -> Path:
    for entry in PROJECT_DIR.iterdir():
        if entry.name not in ("__main__.py", ".git", ".venv"):
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "__main__.py").write_text(
        "import runpy\nimport pulumi\n"
        + mutation
        + "\npulumi.runtime.register_stack_transformation(mutate)\n"
        + f"runpy.run_path({str(PROJECT_DIR / '__main__.py')!r}, run_name='__main__')\n"
    )
    return tmp_path


@pytest.mark.parametrize("rule", sorted(MUTATIONS))
def test_a_mutated_production_stack_is_refused_naming_the_rule(rule: str, tmp_path: Path) -> None:
    code, document, err = _check("production", _mutated_project(tmp_path, MUTATIONS[rule]))
    assert code == 1
    assert rule in err
    refused = [v for v in document["policy"]["violations"] if v["level"] == "mandatory"]
    assert [v["policy"] for v in refused] == [rule]


GCP_MUTATIONS = {
    "gcp-lb-strong-tls": """
def mutate(args):
    if args.type_ == "gcp:compute/sSLPolicy:SSLPolicy":
        props = {**args.props, "profile": "COMPATIBLE"}
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
    "gcp-wif-github-pinned": """
def mutate(args):
    if args.type_ == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
        props = {**args.props, "attribute_condition": "assertion.repository_owner_id == '1'"}
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
    "gcp-no-basic-or-impersonation-roles": """
def mutate(args):
    if args.type_ == "gcp:projects/iAMMember:IAMMember":
        props = {**args.props, "role": "roles/editor"}
        return pulumi.ResourceTransformationResult(props, args.opts)
""",
}


@pytest.mark.parametrize("rule", sorted(GCP_MUTATIONS))
def test_a_mutated_gcp_production_stack_is_refused_naming_the_rule(
    rule: str, tmp_path: Path
) -> None:
    project = _mutated_project(tmp_path, GCP_MUTATIONS[rule])
    code, document, err = _check("gcp-production", project)
    assert code == 1
    assert rule in err
    refused = {v["policy"] for v in document["policy"]["violations"] if v["level"] == "mandatory"}
    assert refused == {rule}


def test_human_output_lists_rule_resource_level_and_message(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    project = _mutated_project(tmp_path, MUTATIONS["rds-not-public"])
    assert check("production", as_json_output=False, project_dir=project, out=out, err=err) == 1
    assert (
        "[mandatory] rds-not-public: agent-production-db (aws:rds/instance:Instance): "
        "the database is publicly accessible" in out.getvalue()
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '{"all": "mandatory", "rds-public": "advisory"}',
            "'rds-public' is not a rule of the pack",
        ),
        (
            '{"log-retention": {"minDays": "a year"}}',
            "log-retention: minDays 'a year' is not an integer >= 1",
        ),
        ('{"no-world-ingress": {"allowedPorts": [443, "80"]}}', "is not an array of integers"),
        ('{"rds-multi-az": "strict"}', "level 'strict' is not one of"),
        ('{"rds-multi-az": {"maxDays": 3}}', "rds-multi-az: no setting maxDays"),
    ],
)
def test_a_bad_pack_config_is_an_error_naming_the_rule(
    tmp_path: Path, config: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(config)
    out, err = io.StringIO(), io.StringIO()
    code = check(
        "staging",
        as_json_output=False,
        project_dir=PROJECT_DIR,
        out=out,
        err=err,
        policy_config=bad,
    )
    assert code == 2
    assert message in err.getvalue()


ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("stack", "image"),
    [
        ("production", f"{ECR}/agent-staging@sha256:{'c' * 64}"),
        ("gcp-production", "europe-west1-docker.pkg.dev/acme-staging/r/agent@sha256:" + "c" * 64),
    ],
)  # fmt: skip
def test_a_promoted_production_passes_the_pack(stack: str, image: str, tmp_path: Path) -> None:
    """What the workflow deploys: `app.image` pinned to staging's digest, copied by the stack."""
    for entry in PROJECT_DIR.iterdir():
        if entry.name not in (f"Pulumi.{stack}.yaml", ".git", ".venv"):
            (tmp_path / entry.name).symlink_to(entry)
    text = (PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(
        text.replace("  agent-deploy:app:\n", f"  agent-deploy:app:\n    image: {image}\n", 1)
    )
    assert f"image: {image}" in (tmp_path / f"Pulumi.{stack}.yaml").read_text()
    code, document, err = _check(stack, tmp_path)
    assert code == 0, err
    assert not [v for v in document["policy"]["violations"] if v["level"] == "mandatory"]
