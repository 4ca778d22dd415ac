"""`agent-deploy check` lists the AWS stacks' resources, offline."""

from __future__ import annotations

import io

import pytest

from cli.main import check
from tests.harness import PROJECT_DIR


def _check(stack: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert check(stack, as_json_output=False, project_dir=PROJECT_DIR, out=out, err=err) == 0, (
        err.getvalue()
    )
    return out.getvalue()


# pr-<n> stacks are slices of staging as shipped: test_pr_slice.py checks what they list.
@pytest.mark.parametrize("stack", ["staging", "production"])
def test_check_lists_the_aws_runtime(stack: str) -> None:
    text = _check(stack)
    for component in (
        "agent-deploy:aws:Network",
        "agent-deploy:aws:Registry",
        "agent-deploy:aws:Database",
        "agent-deploy:aws:Cache",
        "agent-deploy:aws:AppSecrets",
        "agent-deploy:aws:Service",
        "agent-deploy:aws:Alarms",
    ):
        assert f"{component}  agent-{stack}" in text
    assert f"aws:rds/instance:Instance  agent-{stack}-db" in text
    assert "network=private" in text and "PUBLIC" not in text
    assert "circuitBreaker=rollback" in text
    tls = "enabled" if stack == "production" else "disabled: plain HTTP; set app.domain"
    assert f"tls: {tls}" in text
    recipient = "email to oncall@example.com" if stack == "production" else "NO RECIPIENT"
    assert f"alarms: {recipient}" in text


def test_check_shows_production_protection() -> None:
    text = _check("production")
    assert "posture=encrypted,multi-az,deletion-protected" in text
    assert "posture=tls,encrypted,failover" in text
    assert "[protected]" in text
    assert "assignPublicIp=false" in text
    assert "natGateways: 2" in text


def test_check_lists_production_certificate_and_dns_records() -> None:
    text = _check("production")
    assert "agent-deploy:aws:Domain  agent-production-domain" in text
    assert "aws:acm/certificate:Certificate  agent-production-domain-certificate" in text
    assert "domainName=agent.example.com" in text and "validationMethod=DNS" in text
    assert "aws:route53/record:Record  agent-production-domain-validation" in text
    assert "aws:acm/certificateValidation:CertificateValidation" in text
    assert "aws:route53/record:Record  agent-production-domain-a" in text
    assert "type=A" in text and "name=agent.example.com" in text
    assert "alias=<unknown until deployment>" in text
    assert "sslPolicy=ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09" in text
    assert "action=redirect" in text
    assert "serviceUrl: https://agent.example.com" in text
