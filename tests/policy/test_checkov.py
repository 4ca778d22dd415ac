"""The Terraform-plan export Checkov reads, and the waiver gate CI applies to its results."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest

from cli.checkov_gate import Failure, WaiverFileError, gate, load_waivers, main
from cli.main import check
from tests.harness import PROJECT_DIR

WAIVERS = PROJECT_DIR / "policy" / "checkov-waivers.yaml"


def _plan(stack: str, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{stack}.tfplan.json"
    out, err = io.StringIO(), io.StringIO()
    assert (
        check(stack, as_json_output=False, project_dir=PROJECT_DIR, out=out, err=err, tfplan=path)
        == 0
    )
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _plan("production", tmp_path_factory.mktemp("plan"))


def _resource(plan: dict[str, Any], address: str) -> dict[str, Any]:
    (found,) = [
        r for r in plan["planned_values"]["root_module"]["resources"] if r["address"] == address
    ]
    return found


def test_types_blocks_and_values_are_terraforms(production: dict[str, Any]) -> None:
    db = _resource(production, "aws_db_instance.agent_production_db")["values"]
    assert db["storage_encrypted"] is True and db["publicly_accessible"] is False
    assert db["backup_retention_period"] == 14  # an int, not 14.0
    cluster = _resource(production, "aws_ecs_cluster.agent_production_cluster")["values"]
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]
    listener = _resource(production, "aws_lb_listener.agent_production_http")["values"]
    # Production serves HTTPS on its domain: port 80 only redirects (a block, not a list of lists).
    assert listener["default_action"][0]["type"] == "redirect"
    assert listener["default_action"][0]["redirect"][0]["protocol"] == "HTTPS"
    alb = _resource(production, "aws_lb.agent_production_alb")["values"]
    assert alb["access_logs"] == [{"bucket": alb["access_logs"][0]["bucket"], "enabled": True}]


def test_secrets_are_redacted(production: dict[str, Any]) -> None:
    text = json.dumps(production)
    cache_values = _resource(production, "aws_elasticache_replication_group.agent_production_cache")
    assert cache_values["values"]["auth_token"] == "REDACTED"
    assert "mockpw" not in text  # the mocks' generated passwords


def test_references_connect_resources_for_graph_checks(production: dict[str, Any]) -> None:
    (flow_log,) = [
        r
        for r in production["configuration"]["root_module"]["resources"]
        if r["type"] == "aws_flow_log"
    ]
    assert "aws_vpc.agent_production_vpc" in flow_log["expressions"]["vpc_id"]["references"]


@pytest.fixture(scope="module")
def gcp_production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _plan("gcp-production", tmp_path_factory.mktemp("gcp-plan"))


def test_gcp_resources_carry_the_google_providers_types(gcp_production: dict[str, Any]) -> None:
    """Without these names Checkov runs no GCP check at all (it did not, before the mapping)."""
    resources = gcp_production["planned_values"]["root_module"]["resources"]
    types = {r["type"] for r in resources}
    assert {
        "google_sql_database_instance",
        "google_cloud_run_v2_service",
        "google_redis_instance",
        "google_compute_subnetwork",
        "google_project_iam_member",
        "google_service_account_iam_member",
        "google_iam_workload_identity_pool_provider",
        "google_artifact_registry_repository",
        "google_secret_manager_secret",
    } <= types
    assert not any(t.startswith("gcp_") for t in types)
    assert {r["provider_name"] for r in resources} == {"registry.terraform.io/hashicorp/google"}


def test_gcp_blocks_are_the_google_providers(gcp_production: dict[str, Any]) -> None:
    db = _resource(gcp_production, "google_sql_database_instance.agent_gcp_production_db")
    ip = db["values"]["settings"][0]["ip_configuration"][0]
    assert ip["ipv4_enabled"] is False and ip["ssl_mode"] == "ENCRYPTED_ONLY"
    assert db["values"]["settings"][0]["database_flags"]  # plural in Terraform too
    cache = _resource(gcp_production, "google_redis_instance.agent_gcp_production_redis")["values"]
    assert cache["auth_enabled"] is True
    assert cache["maintenance_policy"][0]["weekly_maintenance_window"]  # pulumi's "...Windows"
    (service,) = [
        r
        for r in gcp_production["planned_values"]["root_module"]["resources"]
        if r["type"] == "google_cloud_run_v2_service"
    ]
    (container,) = service["values"]["template"][0]["containers"]
    assert container["env"] and "envs" not in container


def test_the_load_balancer_carries_the_names_checkov_checks(
    gcp_production: dict[str, Any],
) -> None:
    """CKV_GCP_4 reads google_compute_ssl_policy, CKV_GCP_73 the security policy's `rule`
    blocks, CKV2_GCP_38 the forwarding rules' scheme: pulumi's `sSLPolicy`, `uRLMap` and
    `rules` would hide them from Checkov."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in gcp_production["planned_values"]["root_module"]["resources"]:
        by_type.setdefault(r["type"], []).append(r["values"])
    (policy,) = by_type["google_compute_ssl_policy"]
    assert policy["profile"] == "RESTRICTED" and policy["min_tls_version"] == "TLS_1_2"
    assert len(by_type["google_compute_url_map"]) == 2
    (armor,) = by_type["google_compute_security_policy"]
    expressions = [r["match"][0].get("expr", [{}])[0].get("expression") for r in armor["rule"]]
    assert "evaluatePreconfiguredWaf('cve-canary')" in expressions
    assert {
        r["load_balancing_scheme"] for r in by_type["google_compute_global_forwarding_rule"]
    } == {"EXTERNAL_MANAGED"}
    (backend,) = by_type["google_compute_backend_service"]
    assert backend["backend"] and "backends" not in backend


def test_gcp_references_connect_the_subnet_to_its_network(gcp_production: dict[str, Any]) -> None:
    (subnet,) = [
        r
        for r in gcp_production["configuration"]["root_module"]["resources"]
        if r["type"] == "google_compute_subnetwork"
    ]
    (network,) = [
        r["address"]
        for r in gcp_production["planned_values"]["root_module"]["resources"]
        if r["type"] == "google_compute_network"
    ]
    assert network in subnet["expressions"]["network"]["references"]
    assert subnet["provider_config_key"] == "google"


def _waivers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return path


GOOD = """waivers:
  - check: CKV_AWS_2
    resource: "aws_lb_listener.*"
    reason: no certificate yet, HTTPS comes with the domain
    reviewBy: 2030-01-01
"""


def test_the_shipped_waivers_are_well_formed_and_current() -> None:
    waivers = load_waivers(WAIVERS)
    assert waivers
    assert not [w for w in waivers if w.review_by < datetime.date.today()]


def test_a_waiver_covers_its_check_on_matching_resources_only(tmp_path: Path) -> None:
    (waiver,) = load_waivers(_waivers(tmp_path, GOOD))
    failures = [
        Failure("CKV_AWS_2", "aws_lb_listener.agent_production_http", "", "r"),
        Failure("CKV_AWS_2", "aws_lb.agent_production_alb", "", "r"),
        Failure("CKV_AWS_103", "aws_lb_listener.agent_production_http", "", "r"),
    ]
    unwaived, expired = gate([waiver], failures, datetime.date(2026, 1, 1))
    assert [f.resource for f in unwaived] == ["aws_lb.agent_production_alb", failures[2].resource]
    assert expired == []


def test_an_expired_waiver_fails_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _waivers(tmp_path, GOOD.replace("2030-01-01", "2020-01-01"))
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": {"failed_checks": []}}))
    assert main(["--waivers", str(path), str(report)]) == 1
    assert f"{path}:2: waiver of CKV_AWS_2" in capsys.readouterr().err


def test_an_unwaived_failure_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    failed = {"check_id": "CKV_AWS_16", "resource": "aws_db_instance.db", "check_name": "enc"}
    report.write_text(json.dumps([{"results": {"failed_checks": [failed]}}]))
    assert main(["--waivers", str(_waivers(tmp_path, GOOD)), str(report)]) == 1
    assert "CKV_AWS_16 aws_db_instance.db: enc (not waived)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("reviewBy: 2030-01-01", "reviewBy: soon"), 5, "not a date"),
        (GOOD.replace("CKV_AWS_2", "AWS-2"), 2, "not a Checkov id"),
        (
            GOOD.replace("    reason: no certificate yet, HTTPS comes with the domain\n", ""),
            2,
            "missing 'reason'",
        ),
        (GOOD.replace("resource:", "resources:"), 2, "unknown key 'resources'"),
        (GOOD + "  - just a string\n", 6, "a waiver is a mapping"),
        ("waivers:\n  - check: [unclosed\n", 3, "not valid YAML"),
    ],
)
def test_a_malformed_waiver_file_names_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _waivers(tmp_path, text)
    with pytest.raises(WaiverFileError) as error:
        load_waivers(path)
    assert f"{path}:{line}:" in str(error.value)
    assert message in str(error.value)
