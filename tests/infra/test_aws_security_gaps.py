"""Issue 9's gaps, closed on the real stacks: the alarm topic's customer key, RDS enhanced
monitoring under the deploy boundary, ALB access logs to a private bucket."""

from __future__ import annotations

import json

import pytest

from tests.harness import SELF_CONTAINED, run_stack
from tests.infra.iam_policy import decide
from tests.infra.test_aws_fixtures import tier_run

AWS_TIERS = ["staging", "production"]


def _doc(value: str) -> dict:
    return json.loads(value)


@pytest.mark.parametrize("tier", AWS_TIERS)
def test_the_alarm_topic_is_encrypted_with_a_rotating_key_cloudwatch_and_eventbridge_use(
    tier: str,
) -> None:
    run = tier_run(tier)
    key = run.one("aws:kms/key:Key", f"agent-{tier}-alarms-key")
    topic = run.one("aws:sns/topic:Topic", f"agent-{tier}-alarms-topic")
    assert key.plain["enableKeyRotation"] is True
    assert topic.plain["kmsMasterKeyId"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    policy = _doc(key.plain["policy"])
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        publishing = [
            s
            for s in policy["Statement"]
            if service in json.dumps(s.get("Principal", {})) and s["Effect"] == "Allow"
        ]
        assert publishing, service
        actions = set(publishing[0]["Action"])
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions
        assert publishing[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


@pytest.mark.parametrize("tier", AWS_TIERS)
def test_rds_enhanced_monitoring_role_is_bounded_and_the_deploy_role_may_make_it(
    tier: str,
) -> None:
    run = tier_run(tier)
    db = run.one("aws:rds/instance:Instance", f"agent-{tier}-db")
    assert db.plain["monitoringInterval"] == 60
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("db-monitoring")]
    assert db.plain["monitoringRoleArn"].endswith(role.name)
    trust = _doc(role.plain["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert role.plain["permissionsBoundary"].endswith(f"agent-{tier}-boundary")
    deploy = _doc(
        run.one("aws:iam/rolePolicy:RolePolicy", f"agent-{tier}-identity-deploy-iam").plain[
            "policy"
        ]
    )
    arn = f"arn:aws:iam::123456789012:role/{role.name}"
    policy = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    context = {
        "iam:PermissionsBoundary": role.plain["permissionsBoundary"],
        "iam:PolicyARN": policy,
        "iam:PassedToService": "monitoring.rds.amazonaws.com",
    }
    for action in ("iam:CreateRole", "iam:AttachRolePolicy", "iam:PassRole"):
        assert decide([deploy], action, arn, context) == "Allow", action


@pytest.mark.parametrize("tier", AWS_TIERS)
def test_alb_access_logs_go_to_a_private_encrypted_bucket_that_forgets_them(tier: str) -> None:
    run = tier_run(tier)
    alb = run.one("aws:lb/loadBalancer:LoadBalancer", f"agent-{tier}-alb")
    bucket = run.one("aws:s3/bucket:Bucket", f"agent-{tier}-alb-logs")
    assert alb.plain["accessLogs"]["enabled"] is True
    assert alb.plain["accessLogs"]["bucket"].startswith(bucket.name)  # its physical name
    name = f"agent-{tier}-alb-logs"
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name).plain
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        name,
    ).plain
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    lifecycle = run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", name
    ).plain["rules"][0]
    retention = run.one("aws:cloudwatch/logGroup:LogGroup", f"agent-{tier}-logs").plain
    assert lifecycle["expiration"]["days"] == retention["retentionInDays"]
    policy = _doc(run.one("aws:s3/bucketPolicy:BucketPolicy", name).plain["policy"])
    delivery, tls = policy["Statement"]
    assert delivery["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}  # eu-west-1's ELB
    assert delivery["Resource"].endswith("/AWSLogs/123456789012/*")
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    bucket_policy = run.one("aws:s3/bucketPolicy:BucketPolicy", name)
    assert bucket_policy.urn in alb.depends_on  # AWS tests the policy when logs are turned on


def test_pull_request_log_buckets_empty_themselves_on_destroy() -> None:
    run = run_stack("pr", SELF_CONTAINED)
    assert run.one("aws:s3/bucket:Bucket", "agent-pr-alb-logs").plain["forceDestroy"] is True
    assert (
        tier_run("production")
        .one("aws:s3/bucket:Bucket", "agent-production-alb-logs")
        .plain["forceDestroy"]
        is False
    )
