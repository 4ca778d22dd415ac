"""HTTPS on the team's own hostname on GCP (issue 10): a global external Application Load
Balancer with a serverless NEG in front of Cloud Run, a Google-managed certificate, HTTP answered
only with a redirect, the Cloud DNS record, Cloud Armor in production; production refuses
plain HTTP."""

from __future__ import annotations

import io
import ipaddress
from functools import cache
from typing import Any

import pytest

from cli.engine import ProgramRun, Resource, run_program
from cli.main import check
from infra.config import load_stack_config
from infra.gcp.load_balancer import LOG4SHELL_EXPRESSION
from stacks import PROJECT_ROOT, StackConfigError
from tests.harness import PROJECT_DIR, run_stack, stack_inputs
from tests.infra.test_config_refusals import about, load, problems

ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
NEG = "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup"
BACKEND = "gcp:compute/backendService:BackendService"
URL_MAP = "gcp:compute/uRLMap:URLMap"
CERTIFICATE = "gcp:compute/managedSslCertificate:ManagedSslCertificate"
SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
HTTPS_PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
HTTP_PROXY = "gcp:compute/targetHttpProxy:TargetHttpProxy"
RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"
RECORD = "gcp:dns/recordSet:RecordSet"
RUN = "gcp:cloudrunv2/service:Service"
API = "gcp:projects/service:Service"
LOAD_BALANCER_TYPES = (ADDRESS, NEG, BACKEND, URL_MAP, CERTIFICATE, SSL_POLICY, RULE, ARMOR)
STACKS = {"staging": "gcp-staging", "production": "gcp-production"}


@cache
def domain_run(stack: str, **gcp: Any) -> ProgramRun:
    override: dict[str, Any] = {"app": {"domain": "agent.example.com"}}
    return run_stack(stack, override | ({"gcp": gcp} if gcp else {}))


def ref(resource: Resource) -> str:
    """What another resource receives as this one's `id` under the mocks."""
    return f"{resource.name}-id"


def rules(run: ProgramRun) -> dict[int, Resource]:
    return {int(r.plain["portRange"]): r for r in run.of_type(RULE)}


def external_address(run: ProgramRun) -> Resource:
    (address,) = [a for a in run.of_type(ADDRESS) if a.plain.get("addressType") == "EXTERNAL"]
    return address


def url_maps(run: ProgramRun) -> dict[str, Resource]:
    return {r.name.rsplit("-", 1)[1]: r for r in run.of_type(URL_MAP)}


@pytest.mark.parametrize("stack", ["gcp-staging", "gcp-production"])
def test_a_google_managed_certificate_for_the_domain(stack: str) -> None:
    certificate = domain_run(stack).one(CERTIFICATE).plain
    assert certificate["type"] == "MANAGED"
    assert certificate["managed"] == {"domains": ["agent.example.com"]}
    # Auto-named, so a new hostname's certificate is created before the old one goes.
    assert "name" not in certificate


def test_https_goes_neg_backend_url_map_proxy_forwarding_rule_443() -> None:
    run = domain_run("gcp-production")
    service = run.one(RUN).plain
    neg = run.one(NEG)
    assert neg.plain["networkEndpointType"] == "SERVERLESS"
    assert neg.plain["cloudRun"] == {"service": service["name"]}
    assert neg.plain["region"] == service["location"] == "europe-west1"
    backend = run.one(BACKEND)
    assert backend.plain["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert backend.plain["backends"] == [{"group": ref(neg)}]
    # A serverless NEG takes Cloud Run's request timeout; the API refuses one here.
    assert "timeoutSec" not in backend.plain and "healthChecks" not in backend.plain
    https_map = url_maps(run)["https"]
    assert https_map.plain["defaultService"] == ref(backend)
    proxy = run.one(HTTPS_PROXY).plain
    assert proxy["urlMap"] == ref(https_map)
    assert proxy["sslCertificates"] == [ref(run.one(CERTIFICATE))]
    assert proxy["sslPolicy"] == ref(run.one(SSL_POLICY))
    https = rules(run)[443].plain
    assert https["target"] == ref(run.one(HTTPS_PROXY))
    assert https["loadBalancingScheme"] == "EXTERNAL_MANAGED"  # CKV2_GCP_38: not classic
    assert https["ipAddress"] == ref(external_address(run))


def test_the_ssl_policy_is_tls12_minimum_restricted_ckv_gcp_4() -> None:
    policy = domain_run("gcp-production").one(SSL_POLICY).plain
    assert policy["minTlsVersion"] == "TLS_1_2"
    assert policy["profile"] == "RESTRICTED"


def test_http_on_80_answers_only_with_a_permanent_redirect_to_https() -> None:
    run = domain_run("gcp-production")
    redirect = url_maps(run)["redirect"].plain
    assert redirect["defaultUrlRedirect"] == {
        "httpsRedirect": True,
        "redirectResponseCode": "MOVED_PERMANENTLY_DEFAULT",
        "stripQuery": False,
    }
    assert "defaultService" not in redirect  # never reaches Cloud Run
    http_proxy = run.one(HTTP_PROXY).plain
    assert http_proxy["urlMap"] == ref(url_maps(run)["redirect"])
    http = rules(run)[80].plain
    assert http["target"] == ref(run.one(HTTP_PROXY))
    # The same static address answers both ports: the one the A record names.
    assert http["ipAddress"] == rules(run)[443].plain["ipAddress"]
    assert sorted(rules(run)) == [80, 443]


def test_an_a_record_in_the_cloud_dns_zone_points_the_name_at_the_static_ip() -> None:
    run = domain_run("gcp-production")
    address = external_address(run)
    assert address.plain["ipVersion"] == "IPV4"
    record = run.one(RECORD)
    assert record.plain["managedZone"] == "example-com"  # the parent zone, by its default name
    assert record.plain["name"] == "agent.example.com."
    assert record.plain["type"] == "A"
    (ip,) = record.plain["rrdatas"]
    assert ipaddress.ip_address(ip).version == 4
    assert record.property_dependencies["rrdatas"] == [address.urn]
    # Cloud DNS is enabled before the record is written; stacks without a domain skip it.
    apis = {a.plain["service"] for a in run.of_type(API)}
    assert "dns.googleapis.com" in apis
    assert "dns.googleapis.com" not in {
        a.plain["service"] for a in run_stack("gcp-staging").of_type(API)
    }


def test_a_zone_named_in_config_is_the_one_written_to() -> None:
    run = domain_run("gcp-staging", dnsZone="agent.example.com", dnsZoneName="agent-zone")
    assert run.one(RECORD).plain["managedZone"] == "agent-zone"


@pytest.mark.parametrize("stack", ["gcp-staging", "gcp-production"])
def test_cloud_run_takes_traffic_from_the_load_balancer_only(stack: str) -> None:
    service = domain_run(stack).one(RUN).plain
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    # Callers reach it through the load balancer unauthenticated: invoker IAM stays off
    # (the app's bearer tokens guard it), as without a load balancer.
    assert service["invokerIamDisabled"] is True


def test_an_id_token_for_the_domain_is_accepted_when_invoker_iam_is_on() -> None:
    run = domain_run("gcp-staging", invoker="private")
    service = run.one(RUN).plain
    assert "invokerIamDisabled" not in service or service["invokerIamDisabled"] is False
    assert service["customAudiences"] == ["https://agent.example.com"]
    assert not run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")


def test_without_a_load_balancer_cloud_run_takes_traffic_from_the_internet() -> None:
    assert run_stack("gcp-staging").one(RUN).plain["ingress"] == "INGRESS_TRAFFIC_ALL"


def test_cloud_armor_rate_limits_per_client_ip_in_production() -> None:
    run = domain_run("gcp-production")
    policy = run.one(ARMOR)
    assert policy.plain["type"] == "CLOUD_ARMOR"
    by_priority = {int(r["priority"]): r for r in policy.plain["rules"]}
    throttle = by_priority[1000]
    assert throttle["action"] == "throttle"
    assert throttle["match"] == {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}
    assert throttle["rateLimitOptions"] == {
        "enforceOnKey": "IP",
        "conformAction": "allow",
        "exceedAction": "deny(429)",
        "rateLimitThreshold": {"count": 600, "intervalSec": 60},
    }
    # CKV_GCP_73: Log4Shell probes denied, not previewed.
    log4shell = by_priority[900]
    assert log4shell["match"] == {"expr": {"expression": LOG4SHELL_EXPRESSION}}
    assert log4shell["action"] == "deny(403)" and not log4shell.get("preview")
    assert by_priority[2147483647]["action"] == "allow"
    backend = run.one(BACKEND)
    assert backend.property_dependencies["securityPolicy"] == [policy.urn]


def test_cloud_armor_is_off_by_default_below_production_and_can_be_turned_on() -> None:
    staging = domain_run("gcp-staging")
    assert not staging.of_type(ARMOR)
    assert "securityPolicy" not in staging.one(BACKEND).plain
    tuned = domain_run("gcp-staging", cloudArmor=True, rateLimitPerMinute=120)
    (throttle,) = [r for r in tuned.one(ARMOR).plain["rules"] if r["action"] == "throttle"]
    assert throttle["rateLimitOptions"]["rateLimitThreshold"]["count"] == 120


@pytest.mark.parametrize("stack", ["gcp-staging", "gcp-production"])
def test_outputs_the_uptime_check_and_the_workflows_url_are_https_on_the_domain(
    stack: str,
) -> None:
    run = domain_run(stack)
    assert run.outputs["serviceUrl"] == "https://agent.example.com"
    assert run.outputs["healthUrl"] == "https://agent.example.com/health"
    assert run.outputs["tls"] == "enabled"
    assert run.outputs["domain"] == "agent.example.com"
    variables = {
        r.plain["variableName"]: r.plain["value"]
        for r in run.of_type("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    # Only production's file has a github section, which writes the workflows' variables.
    assert variables.get("SERVICE_URL", "https://agent.example.com") == "https://agent.example.com"
    assert stack == "gcp-staging" or "SERVICE_URL" in variables
    # run.app refuses the internet now: the uptime check goes the users' way.
    uptime = run.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig").plain
    assert uptime["monitoredResource"]["labels"]["host"] == "agent.example.com"


def test_the_shipped_production_stack_serves_its_example_domain() -> None:
    run = run_stack("gcp-production")
    assert run.outputs["serviceUrl"] == "https://agent.example.com"
    assert run.one(CERTIFICATE).plain["managed"]["domains"] == ["agent.example.com"]
    assert run.one(ARMOR)
    text = " ".join((PROJECT_DIR / "Pulumi.gcp-production.yaml").read_text().lower().split())
    assert (
        "before the first `pulumi up` the team must own a public # cloud dns managed zone" in text
    )


def test_a_pr_stack_serves_pr_n_under_the_template_domain() -> None:
    # A self-contained pr stack: a slice of gcp-staging has no load balancer of its own.
    config, secret_keys = stack_inputs(
        "gcp-pr", {"app": {"domain": "preview.example.com"}, "pullRequests": None}
    )
    run = run_program("pr-42", config, secret_keys, project_dir=PROJECT_DIR)
    assert run.one(CERTIFICATE).plain["managed"]["domains"] == ["pr-42.preview.example.com"]
    record = run.one(RECORD).plain
    assert record["name"] == "pr-42.preview.example.com."
    assert record["managedZone"] == "example-com"
    assert run.outputs["serviceUrl"] == "https://pr-42.preview.example.com"
    assert not run.of_type(ARMOR)


def test_production_without_a_domain_is_refused_before_any_resource() -> None:
    with pytest.raises(StackConfigError) as error:
        run_stack("gcp-production", {"app": {"domain": None}})
    message = str(error.value)
    assert "agent-deploy:app.domain" in message and "HTTPS" in message
    # The preset's Cloud Armor follows from the missing domain: not a second complaint.
    assert "gcp.cloudArmor" not in message
    assert error.value.registered == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("stack", ["gcp-staging", "gcp-pr"])
def test_other_tiers_without_a_domain_run_on_run_app_and_say_so(stack: str) -> None:
    run = run_stack(stack)
    for kind in (*LOAD_BALANCER_TYPES, RECORD):
        assert not [r for r in run.of_type(kind) if r.plain.get("addressType") != "INTERNAL"]
    # Cloud Run's own URL is HTTPS, on Google's name: the output says it is not the team's.
    assert run.outputs["serviceUrl"].startswith("https://")
    assert run.outputs["serviceUrl"].endswith(".run.app")
    assert run.outputs["tls"].startswith("run.app only: not on your own name")
    assert "set app.domain" in run.outputs["tls"]
    assert "customAudiences" not in run.one(RUN).plain
    assert "domain" not in run.outputs


# ------------------------------------------------------------------------------------------
# Bad input: every problem named by its key, before any resource.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("*.example.com", "wildcard"),
        ("https://agent.example.com", "hostname only"),
        ("localhost", "at least two"),
        ("203.0.113.10", "IP address"),
    ],
)
def test_a_domain_that_is_not_a_hostname_is_refused(domain: str, words: str) -> None:
    (problem,) = about(problems("gcp-staging", {"app": {"domain": domain}}), "app.domain")
    assert words in problem


def test_a_domain_outside_the_zone_given_is_refused() -> None:
    found = problems(
        "gcp-staging", {"app": {"domain": "agent.example.org"}, "gcp": {"dnsZone": "example.com"}}
    )
    (problem,) = about(found, "app.domain")
    assert "not in gcp.dnsZone 'example.com'" in problem


def test_zone_keys_and_cloud_armor_without_a_domain_are_refused() -> None:
    found = problems(
        "gcp-staging", {"gcp": {"dnsZone": "example.com", "dnsZoneName": "z", "cloudArmor": True}}
    )
    assert "app.domain, which is not set" in about(found, "gcp.dnsZone")[0]
    assert len(about(found, "gcp.dnsZoneName")) == 1
    assert "set app.domain, or cloudArmor: false" in about(found, "gcp.cloudArmor")[0]


def test_a_bad_zone_name_is_named() -> None:
    found = problems(
        "gcp-staging", {"app": {"domain": "agent.example.com"}, "gcp": {"dnsZoneName": "Zone_1"}}
    )
    assert about(found, "gcp.dnsZoneName")


def test_a_zone_name_that_cannot_be_derived_must_be_given() -> None:
    found = problems("gcp-staging", {"app": {"domain": "agent.1example.com"}})
    (problem,) = about(found, "gcp.dnsZoneName")
    assert "'1example-com'" in problem
    given = {"app": {"domain": "agent.1example.com"}, "gcp": {"dnsZoneName": "example-zone"}}
    assert load("gcp-staging", given).gcp.dns_zone_name == "example-zone"  # type: ignore[union-attr]


def test_certificate_names_longer_than_64_characters_are_refused_pr_prefix_included() -> None:
    domain = f"{'a' * 44}.example.com"  # 56 characters; pr-42. makes 62
    config, secret_keys = stack_inputs("gcp-pr", {"app": {"domain": domain}, "pullRequests": None})
    assert load_stack_config("pr-42", config, secret_keys, root=PROJECT_ROOT).app.domain == domain
    found = problems("gcp-staging", {"app": {"domain": "x" * 10 + domain}})
    (problem,) = about(found, "app.domain")
    assert "at most 64" in problem


def test_every_domain_problem_is_reported_at_once() -> None:
    found = problems(
        "gcp-production",
        {
            "app": {"domain": "*.example.com"},
            "gcp": {"dnsZoneName": "-bad", "rateLimitPerMinute": 0},
        },
    )
    assert len(about(found, "app.domain")) == 1  # the wildcard; no "set app.domain" on top
    assert about(found, "gcp.dnsZoneName") and about(found, "gcp.rateLimitPerMinute")


def test_the_production_stack_file_loads_with_its_domain_and_armor() -> None:
    config = load("gcp-production")
    assert config.app.domain == "agent.example.com"
    assert config.gcp is not None and config.gcp.cloud_armor is True


# ------------------------------------------------------------------------------------------
# The GitHub deploy account can create them; the preview account can read them.
# ------------------------------------------------------------------------------------------
COLLECTIONS = {
    ADDRESS: "compute.globalAddresses",
    NEG: "compute.regionNetworkEndpointGroups",
    BACKEND: "compute.backendServices",
    URL_MAP: "compute.urlMaps",
    CERTIFICATE: "compute.sslCertificates",
    SSL_POLICY: "compute.sslPolicies",
    HTTPS_PROXY: "compute.targetHttpsProxies",
    HTTP_PROXY: "compute.targetHttpProxies",
    RULE: "compute.globalForwardingRules",
    ARMOR: "compute.securityPolicies",
    RECORD: "dns.resourceRecordSets",
}


def test_the_deploy_role_manages_each_load_balancer_type_and_the_preview_role_reads_it() -> None:
    run = domain_run("gcp-production")
    roles = {
        r.plain["roleId"].rsplit("_", 1)[1]: set(r.plain["permissions"])
        for r in run.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    }
    deploy, preview = roles["deploy"], roles["preview"]
    for kind, collection in COLLECTIONS.items():
        assert run.of_type(kind), kind
        assert {f"{collection}.{verb}" for verb in ("create", "delete", "get", "list")} <= deploy
        assert {f"{collection}.{verb}" for verb in ("get", "list")} <= preview
        assert not [p for p in preview if p.startswith(f"{collection}.create")]
    # Attaching the Cloud Armor policy, the labels the provider sets, the record's change.
    assert {
        "compute.backendServices.setSecurityPolicy",
        "compute.globalForwardingRules.setLabels",
        "compute.globalAddresses.setLabels",
        "dns.changes.create",
    } <= deploy
    # The team's zone is read, never changed or deleted.
    assert {p for p in deploy if p.startswith("dns.managedZones.")} == {
        "dns.managedZones.get",
        "dns.managedZones.list",
    }


# ------------------------------------------------------------------------------------------
# `agent-deploy check` shows what a first deploy creates.
# ------------------------------------------------------------------------------------------
def test_check_lists_the_certificate_load_balancer_and_dns_record() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = check("gcp-production", as_json_output=False, project_dir=PROJECT_DIR, out=out, err=err)
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "agent-deploy:gcp:LoadBalancer  agent-gcp-production-lb" in text
    assert f"{CERTIFICATE}  agent-gcp-production-lb-cert\n      domains=agent.example.com" in text
    assert f"{RECORD}  agent-gcp-production-lb-a" in text
    assert "name=agent.example.com." in text and "managedZone=example-com" in text
    assert f"{RULE}  agent-gcp-production-lb-https" in text and "portRange=443" in text
    assert f"{RULE}  agent-gcp-production-lb-http" in text and "portRange=80" in text
    assert "minTlsVersion=TLS_1_2  profile=RESTRICTED" in text
    assert "action=redirect-to-https (MOVED_PERMANENTLY_DEFAULT)" in text
    assert f"{ARMOR}  agent-gcp-production-lb-armor\n      rateLimit=600/60s per IP" in text
    assert "cloudArmor=on" in text
    assert "serviceUrl: https://agent.example.com" in text
    assert "tls: enabled" in text
