"""HTTPS on the team's own hostname (issue 10): the certificate ACM issues for app.domain, its
DNS validation, the listeners, the alias records; production refuses plain HTTP."""

from __future__ import annotations

from functools import cache
from typing import Any

import pulumi
import pytest

from cli.engine import MOCK_ALB_ZONE, ProgramRun, Resource
from infra.aws.domain import Domain, DomainArgs
from infra.aws.service import TLS_POLICY
from stacks import StackConfigError
from tests.harness import SELF_CONTAINED, run_components, run_stack
from tests.infra.test_config_refusals import about, load, problems

CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
LISTENER = "aws:lb/listener:Listener"
GET_ZONE = "aws:route53/getZone:getZone"
ELSEWHERE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-123456789abc"


@cache
def domain_run(stack: str, **aws: Any) -> ProgramRun:
    override: dict[str, Any] = {"app": {"domain": "agent.example.com"}}
    return run_stack(stack, override | ({"aws": aws} if aws else {}))


def listeners(run: ProgramRun) -> dict[int, Resource]:
    return {int(r.plain["port"]): r for r in run.of_type(LISTENER)}


def zone_lookups(run: ProgramRun) -> list[dict[str, Any]]:
    return [args for token, args in run.invokes if token == GET_ZONE]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_a_certificate_for_the_domain_validated_by_a_record_the_stack_creates(stack: str) -> None:
    run = domain_run(stack)
    certificate = run.one(CERTIFICATE).plain
    assert certificate["domainName"] == "agent.example.com"
    assert certificate["validationMethod"] == "DNS"
    # The zone named like the domain's parent, public only.
    assert zone_lookups(run) == [{"name": "example.com", "privateZone": False}]
    record = run.one(RECORD, f"agent-{stack}-domain-validation").plain
    assert record["type"] == "CNAME"
    assert record["name"].endswith(".agent.example.com.")
    assert record["records"][0].endswith(".acm-validations.aws.")
    assert record["zoneId"].startswith("Z")
    validation = run.one(VALIDATION).plain
    assert validation["certificateArn"].startswith("arn:aws:acm:eu-west-1:")
    assert validation["validationRecordFqdns"] == [record["name"].rstrip(".")]


def test_the_https_listener_waits_for_the_validated_certificate() -> None:
    run = domain_run("production")
    https = listeners(run)[443]
    assert https.plain["protocol"] == "HTTPS"
    assert https.plain["certificateArn"] == run.one(VALIDATION).plain["certificateArn"]
    # Created only once ACM has issued it: the validation is a dependency.
    assert run.one(VALIDATION).urn in https.depends_on


def test_the_listener_policy_is_tls13_with_restricted_tls12() -> None:
    policy = listeners(domain_run("production"))[443].plain["sslPolicy"]
    assert policy == TLS_POLICY
    assert policy.startswith("ELBSecurityPolicy-TLS13-1-2-Res-")  # ELB.17


def test_http_answers_only_with_a_permanent_redirect_to_https() -> None:
    http = listeners(domain_run("production"))[80].plain
    assert http["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
        }
    ]


def test_an_alias_a_record_points_the_hostname_at_the_load_balancer() -> None:
    run = domain_run("production")
    alb = run.one("aws:lb/loadBalancer:LoadBalancer").plain
    # The VPC has no IPv6, so neither has the load balancer, and no AAAA record answers.
    assert alb["ipAddressType"] == "ipv4"
    aliases = [r.plain for r in run.of_type(RECORD) if r.plain.get("aliases")]
    assert [a["type"] for a in aliases] == ["A"]
    (alias,) = aliases
    assert alias["name"] == "agent.example.com"
    assert alias["zoneId"] == run.one(RECORD, "agent-production-domain-validation").plain["zoneId"]
    target = alias["aliases"][0]
    assert target["name"].endswith(".elb.amazonaws.com") and target["zoneId"] == MOCK_ALB_ZONE
    assert target["evaluateTargetHealth"] is True


def test_a_dualstack_load_balancer_gets_aaaa_as_well() -> None:
    def program() -> None:
        domain = Domain(
            "web",
            DomainArgs(hostname="agent.example.com", zone_name="example.com"),
            pulumi.ResourceOptions(),
        )
        domain.alias_to("lb.example.elb.amazonaws.com", MOCK_ALB_ZONE, dualstack=True)

    run = run_components(program)
    kinds = sorted(r.plain["type"] for r in run.of_type(RECORD) if r.plain.get("aliases"))
    assert kinds == ["A", "AAAA"]
    component = run.one("agent-deploy:aws:Domain")
    assert {r.urn for r in run.children(component)} == {
        r.urn for r in run.resources if r.type != "agent-deploy:aws:Domain"
    }


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_outputs_and_the_workflows_url_are_https_on_the_domain(stack: str) -> None:
    run = domain_run(stack)
    assert run.outputs["serviceUrl"] == "https://agent.example.com"
    assert run.outputs["healthUrl"] == "https://agent.example.com/health"
    assert run.outputs["tls"] == "enabled"
    assert run.outputs["domain"] == "agent.example.com"
    variables = {
        r.plain["variableName"]: r.plain["value"]
        for r in run.of_type("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    assert variables["SERVICE_URL"] == "https://agent.example.com"


def test_a_pr_stack_serves_pr_n_under_the_template_domain() -> None:
    run = run_stack("pr-42", {"app": {"domain": "preview.example.com"}, **SELF_CONTAINED})
    assert run.one(CERTIFICATE).plain["domainName"] == "pr-42.preview.example.com"
    (alias,) = [r.plain for r in run.of_type(RECORD) if r.plain.get("aliases")]
    assert alias["name"] == "pr-42.preview.example.com"
    assert zone_lookups(run) == [{"name": "example.com", "privateZone": False}]
    assert run.outputs["serviceUrl"] == "https://pr-42.preview.example.com"


def test_a_zone_given_by_id_or_name_is_the_one_looked_up() -> None:
    by_id = domain_run("staging", hostedZoneId="Z0123456789ABCDEFGHIJ")
    assert zone_lookups(by_id) == [{"zoneId": "Z0123456789ABCDEFGHIJ"}]
    assert {r.plain["zoneId"] for r in by_id.of_type(RECORD)} == {"Z0123456789ABCDEFGHIJ"}
    by_name = domain_run("staging", hostedZone="agent.example.com")
    assert zone_lookups(by_name) == [{"name": "agent.example.com", "privateZone": False}]


def test_a_certificate_managed_elsewhere_is_used_as_given_with_the_records() -> None:
    run = domain_run("production", certificateArn=ELSEWHERE)
    assert not run.of_type(CERTIFICATE) and not run.of_type(VALIDATION)
    assert listeners(run)[443].plain["certificateArn"] == ELSEWHERE
    assert [r.plain["type"] for r in run.of_type(RECORD)] == ["A"]
    assert run.outputs["serviceUrl"] == "https://agent.example.com"


def test_production_without_a_domain_or_certificate_is_refused_before_any_resource() -> None:
    with pytest.raises(StackConfigError) as error:
        run_stack("production", {"app": {"domain": None}})
    message = str(error.value)
    assert "agent-deploy:app.domain" in message and "HTTPS" in message
    assert error.value.registered == []  # type: ignore[attr-defined]


def test_production_with_only_a_certificate_managed_elsewhere_deploys() -> None:
    run = run_stack("production", {"app": {"domain": None}, "aws": {"certificateArn": ELSEWHERE}})
    assert listeners(run)[443].plain["certificateArn"] == ELSEWHERE
    assert not run.of_type(RECORD)
    assert run.outputs["tls"] == "enabled"


@pytest.mark.parametrize("stack", ["staging", "pr-42"])
def test_other_tiers_without_a_domain_run_plain_http_and_say_so(stack: str) -> None:
    run = run_stack(stack, SELF_CONTAINED)
    assert not run.of_type(CERTIFICATE) and not run.of_type(RECORD)
    assert [int(r.plain["port"]) for r in run.of_type(LISTENER)] == [80]
    assert run.outputs["serviceUrl"].startswith("http://")
    assert run.outputs["tls"].startswith("disabled: plain HTTP; set app.domain")
    assert "domain" not in run.outputs


# ------------------------------------------------------------------------------------------
# Bad input: every problem named by its key, before any resource.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("*.example.com", "wildcard"),
        ("https://agent.example.com", "hostname only"),
        ("agent.example.com.", "without the trailing dot"),
        ("Agent.Example.com", "lowercase: 'agent.example.com'"),
        ("localhost", "at least two"),
        ("agent_1.example.com", "a-z, 0-9 and '-'"),
        ("-agent.example.com", "no '-' first or last"),
        ("agënt.example.com", "punycode"),
        (f"{'a' * 64}.example.com", "1-63 characters"),
        ("203.0.113.10", "IP address"),
    ],
)
def test_a_domain_that_is_not_a_hostname_is_refused(domain: str, words: str) -> None:
    (problem,) = about(problems("staging", {"app": {"domain": domain}}), "app.domain")
    assert words in problem


def test_acm_names_longer_than_64_characters_are_refused_pr_prefix_included() -> None:
    domain = f"{'a' * 44}.example.com"  # 56 characters; pr-42. makes 62
    assert load("pr-42", {"app": {"domain": domain}}).app.domain == domain
    (problem,) = about(problems("pr-42", {"app": {"domain": "x" * 6 + domain}}), "app.domain")
    assert "pr-42.xxxxxx" in problem and "at most 64" in problem


def test_a_domain_outside_the_zone_given_is_refused() -> None:
    found = problems(
        "staging", {"app": {"domain": "agent.example.org"}, "aws": {"hostedZone": "example.com"}}
    )
    (problem,) = about(found, "app.domain")
    assert "not in aws.hostedZone 'example.com'" in problem


def test_a_zone_without_a_domain_is_refused() -> None:
    found = problems("staging", {"aws": {"hostedZone": "example.com", "hostedZoneId": "Z1"}})
    assert len(about(found, "aws.hostedZone")) == 1
    assert len(about(found, "aws.hostedZoneId")) == 1


@pytest.mark.parametrize(
    ("arn", "words"),
    [
        ("arn:aws:iam::123456789012:server-certificate/agent", "ACM certificate ARN"),
        ("arn:aws:acm:us-east-1:123456789012:certificate/0b7e-4a", "is in us-east-1"),
    ],
)
def test_a_certificate_not_acm_or_from_another_region_is_refused(arn: str, words: str) -> None:
    (problem,) = about(problems("staging", {"aws": {"certificateArn": arn}}), "aws.certificateArn")
    assert words in problem


def test_every_domain_problem_is_reported_at_once() -> None:
    found = problems(
        "production",
        {
            "app": {"domain": "*.example.com"},
            "aws": {
                "hostedZoneId": "/hostedzone/Z1",
                "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0b7e-4a",
            },
        },
    )
    assert about(found, "app.domain") and about(found, "aws.hostedZoneId")
    assert about(found, "aws.certificateArn")
    # The wildcard is the one app.domain problem: no "set app.domain" on top.
    assert len(about(found, "app.domain")) == 1


def test_a_bad_zone_name_is_named_and_production_still_asks_for_a_domain() -> None:
    found = problems("production", {"app": {"domain": None}, "aws": {"hostedZone": "Example.com"}})
    assert "lowercase" in about(found, "aws.hostedZone")[0]
    assert "production serves HTTPS only" in about(found, "app.domain")[0]


def test_a_local_stack_refuses_a_domain_it_would_ignore() -> None:
    (problem,) = about(problems("local", {"app": {"domain": "agent.example.com"}}), "app.domain")
    assert "cloud targets" in problem
