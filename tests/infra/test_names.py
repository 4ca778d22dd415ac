"""Physical names: the mocks refuse what the engine or the cloud would, and every stack fits.

Pulumi auto-names `<logical>-<7 random hex>` and fails when that exceeds the provider's maximum;
AWS refuses identifiers with `--`, `_` or upper case. infra/naming.py holds the rules, the mocks
engine enforces them on every registration, and config loading refuses stack and app names
whose derived names cannot fit.
"""

from __future__ import annotations

import json

import pulumi_aws as aws
import pulumi_github as github
import pytest

from cli.engine import PhysicalNameError, ProgramRun, run_program
from infra.naming import IAM_PREFIX_MAX, NAME_RULES, physical_name
from stacks import StackConfigError
from tests.harness import PROJECT_DIR, SELF_CONTAINED, run_components, run_stack, stack_inputs

APP_NAME_MAX = 32  # infra.config's app.name rule
LB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
ROLE = "aws:iam/role:Role"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS = "aws:rds/instance:Instance"


def _longest_app(stack: str) -> str:
    length = min(APP_NAME_MAX, IAM_PREFIX_MAX - 2 - len(stack))
    return ("a" + "b" * 40)[: length - 1] + "z"


def _physical(run: ProgramRun, type_: str) -> list[str]:
    return [str(physical_name(type_, r.name, r.plain)) for r in run.of_type(type_)]


def test_the_mocks_refuse_an_auto_name_longer_than_the_provider_allows() -> None:
    def program() -> None:
        aws.lb.TargetGroup("customer-support-bot-production-tg", port=80, protocol="HTTP")

    with pytest.raises(PhysicalNameError, match=r"plus 7 random chars .* maximum length 32"):
        run_components(program)


@pytest.mark.parametrize(
    ("register", "fragment"),
    [
        (
            lambda: aws.rds.Instance(
                "db", identifier="agent-qa--x-db", instance_class="db.t4g.micro"
            ),
            "no '--'",
        ),
        (
            lambda: aws.rds.Instance(
                "db", identifier="agent-qa_Test-db", instance_class="db.t4g.micro"
            ),
            "lowercase letters",
        ),
        (lambda: aws.ecr.Repository("repo", name="Agent-Repo"), "lowercase letters and digits"),
        (lambda: aws.iam.Role("r", name_prefix="x" * 39, assume_role_policy="{}"), "at most 38"),
        (lambda: aws.lb.TargetGroup("t", name_prefix="agent-t"), "at most 6"),
        (
            lambda: aws.elasticache.ReplicationGroup(
                "c", replication_group_id="a" * 41, description="c"
            ),
            "more than the 40 allowed",
        ),
        (
            lambda: github.ActionsEnvironmentVariable(
                "v", repository="r", environment="e", variable_name="GITHUB_SHA", value="x"
            ),
            "not starting with a digit or GITHUB_",
        ),
    ],
    ids=[
        "rds-double-hyphen",
        "rds-underscore",
        "ecr-upper-case",
        "iam-prefix",
        "tg-prefix",
        "cache",
        "github-variable",
    ],
)
def test_the_mocks_refuse_names_the_cloud_refuses(register: object, fragment: str) -> None:
    assert callable(register)
    with pytest.raises(PhysicalNameError, match=fragment):
        run_components(register)


@pytest.mark.parametrize(
    ("file_stack", "stack"),
    [
        ("local", "local"),
        ("staging", "staging"),
        ("production", "production"),
        ("pr", "pr-" + "9" * (IAM_PREFIX_MAX - 2 - APP_NAME_MAX - 3)),
    ],
)
def test_the_longest_allowed_names_fit_every_stack_file(file_stack: str, stack: str) -> None:
    app = _longest_app(stack)
    config, secret_keys = stack_inputs(
        file_stack if file_stack != "pr" else "pr-1",
        {"app": {"name": app}, **(SELF_CONTAINED if file_stack == "pr" else {})},
    )
    # The engine would refuse any name that does not fit: the run itself is the assertion,
    # plus the tight ones stay unique to this stack and end in a letter or digit.
    run = run_program(stack, config, secret_keys, project_dir=PROJECT_DIR)
    assert run.resources
    if file_stack != "local":
        for type_ in (LB, TG, ROLE, CACHE, RDS):
            for name in _physical(run, type_):
                assert len(name) <= NAME_RULES[type_].max_length
                assert not name.endswith("-") and "--" not in name
        # The deploy role may manage only roles under `<app>-<stack>-`: every role is there.
        assert all(n.startswith(f"{app}-{stack}-") for n in _physical(run, ROLE))


def test_shipped_stacks_keep_their_names() -> None:
    """Short names are not rewritten: no replacement of what already runs."""
    run = run_stack("production", preview=True)
    assert [r.name for r in run.of_type(LB)] == ["agent-production-alb"]
    assert _physical(run, CACHE) == ["agent-production-cache"]
    assert _physical(run, RDS) == ["agent-production-db"]


def test_shortened_names_never_collide_between_stacks() -> None:
    app = _longest_app("pr-10000000001")
    names = []
    for stack in ("pr-10000000001", "pr-10000000002"):
        config, secret_keys = stack_inputs("pr-1", {"app": {"name": app}, **SELF_CONTAINED})
        run = run_program(stack, config, secret_keys, project_dir=PROJECT_DIR, preview=True)
        names.append({t: _physical(run, t) + [r.name for r in run.of_type(t)] for t in (LB, CACHE)})
    for type_ in (LB, CACHE):
        assert not set(names[0][type_]) & set(names[1][type_])


def _config_problems(stack: str, override: dict[str, object]) -> tuple[list[str], int]:
    config, secret_keys = stack_inputs("pr-1", override)
    with pytest.raises(StackConfigError) as caught:
        run_program(stack, config, secret_keys, project_dir=PROJECT_DIR, preview=True)
    registered = getattr(caught.value, "registered", [])
    return [str(p) for p in caught.value.problems], len(registered)


@pytest.mark.parametrize("stack", ["qa_Test", "QA", "qa.test", "qa--test", "qa-", "9lives"])
def test_stack_names_aws_cannot_use_are_refused_before_any_resource(stack: str) -> None:
    problems, registered = _config_problems(stack, {})
    assert registered == 0
    assert any(
        p.startswith(f'stack name = "{stack}": not allowed') and "lowercase letters" in p
        for p in problems
    ), problems


def test_app_name_with_double_hyphen_is_refused() -> None:
    problems, _ = _config_problems("pr-7", {"app": {"name": "my--agent"}})
    assert any(
        p.startswith('agent-deploy:app.name = "my--agent"') and "'--'" in p for p in problems
    )


def test_app_name_and_stack_name_too_long_together_name_the_limit() -> None:
    app = "a" * APP_NAME_MAX
    stack = "pr-" + "1" * (IAM_PREFIX_MAX - 2 - APP_NAME_MAX - 2)  # one character too many
    problems, registered = _config_problems(stack, {"app": {"name": app}})
    assert registered == 0
    assert any(
        p.startswith(f"agent-deploy:app.name = {json.dumps(app)}")
        and f"may have {IAM_PREFIX_MAX - 2} characters together" in p
        and "shorten one by 1" in p
        for p in problems
    ), problems


def test_pr_stack_names_stay_valid() -> None:
    run = run_stack("pr-42", SELF_CONTAINED, preview=True)
    assert run.of_type(RDS)[0].plain["identifier"] == "agent-pr-42-db"


def test_the_iam_budget_binds_aws_stacks_only() -> None:
    app, stack = "a" * APP_NAME_MAX, "laptop-of-someone-with-a-long-name"
    config, secret_keys = stack_inputs("local", {"app": {"name": app}})
    run = run_program(stack, config, secret_keys, project_dir=PROJECT_DIR, preview=True)
    assert run.one("docker:index/network:Network").plain["name"] == f"{app}-{stack}-net"
