"""Alarms reach someone, see a service with no healthy task, and follow storage autoscaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.engine import ProgramRun, _stable_number
from infra.aws.alarms import RDS_STORAGE_EVENTS
from stacks import StackConfigError
from tests.harness import run_stack
from tests.infra.test_aws_fixtures import TIERS, policy, tier_run

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _alarm(run: ProgramRun, metric: str) -> dict[str, Any]:
    (alarm,) = [a.plain for a in run.of_type(ALARM) if a.plain["metricName"] == metric]
    assert isinstance(alarm, dict)
    return alarm


def test_production_without_a_recipient_is_refused() -> None:
    with pytest.raises(StackConfigError) as error:
        run_stack("production", {"aws": {"alarmEmail": None}})
    assert "agent-deploy:aws.alarmEmail" in str(error.value)
    assert "recipient" in str(error.value)


@pytest.mark.parametrize("tier", ["ephemeral", "staging"])
def test_other_tiers_say_their_alarms_reach_nobody(tier: str) -> None:
    run = tier_run(tier)
    assert run.outputs["alarms"] == "NO RECIPIENT: alarms reach nobody; set aws.alarmEmail"
    assert run.of_type("aws:sns/topicSubscription:TopicSubscription") == []


def test_with_a_recipient_the_output_names_it() -> None:
    run = tier_run("production")
    assert run.outputs["alarms"] == "email to oncall@example.com"
    (subscription,) = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.plain["endpoint"] == "oncall@example.com"


@pytest.mark.parametrize("tier", TIERS)
def test_no_healthy_target_at_all_alarms(tier: str) -> None:
    run = tier_run(tier)
    alarm = _alarm(run, "HealthyHostCount")
    unhealthy = _alarm(run, "UnHealthyHostCount")
    assert alarm["namespace"] == "AWS/ApplicationELB"
    assert alarm["dimensions"] == unhealthy["dimensions"]  # the service's target group
    assert alarm["comparisonOperator"] == "LessThanThreshold" and alarm["threshold"] == 1
    assert alarm["statistic"] == "Minimum"
    # An empty target group publishes nothing: missing data is the outage itself.
    assert alarm["treatMissingData"] == "breaching"
    assert alarm["alarmActions"] == unhealthy["alarmActions"]


@pytest.mark.parametrize(("tier", "initial_gb"), [("ephemeral", 20), ("staging", 20)])
def test_free_storage_alarm_sits_below_what_autoscaling_allows(tier: str, initial_gb: int) -> None:
    alarm = _alarm(tier_run(tier), "FreeStorageSpace")
    # RDS grows the volume at 10% free of the *current* allocation, never below the initial
    # one: below 10% of the initial allocation, autoscaling failed or is out of room.
    assert alarm["threshold"] == initial_gb * 0.1 * 1024**3
    assert alarm["comparisonOperator"] == "LessThanThreshold"


@pytest.mark.parametrize("tier", TIERS)
def test_rds_storage_events_against_the_maximum_reach_the_topic(tier: str) -> None:
    run = tier_run(tier)
    rule = run.one("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.plain["eventPattern"])
    db = run.one("aws:rds/instance:Instance")
    assert pattern["source"] == ["aws.rds"]
    assert pattern["detail"]["EventID"] == list(RDS_STORAGE_EVENTS)
    assert pattern["resources"] == [f"arn:aws:rds:us-east-1:123456789012:{db.name}"]
    topic = run.one("aws:sns/topic:Topic")
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic.name}"
    target = run.one("aws:cloudwatch/eventTarget:EventTarget")
    assert target.plain["arn"] == topic_arn
    assert target.plain["rule"] == f"{rule.name}-{_stable_number(rule.name, 7):07d}"
    statements = policy(run.one("aws:sns/topicPolicy:TopicPolicy"))["Statement"]
    events = [s for s in statements if s["Principal"] == {"Service": "events.amazonaws.com"}]
    # Only this rule may publish through EventBridge; the account keeps SNS's default access.
    rule_arn = f"arn:aws:cloudwatch:us-east-1:123456789012:{rule.name}"  # the mock's form
    assert events[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    (owner,) = [s for s in statements if s["Sid"] == "SameAccount"]
    assert owner["Condition"] == {"StringEquals": {"AWS:SourceOwner": "123456789012"}}
    assert all(s["Resource"] == topic_arn for s in statements)
