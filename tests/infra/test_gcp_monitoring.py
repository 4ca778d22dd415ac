"""Cloud Monitoring: email channel, uptime check on the health path, the alert policies."""

from __future__ import annotations

from typing import Any

import pytest

from cli.engine import ProgramRun, _stable_number
from infra.gcp.monitoring import GcpMonitoring, GcpMonitoringArgs
from tests.harness import run_components
from tests.infra.gcp_support import PROJECT, REGION

CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
REDIS_ID = f"projects/{PROJECT}/locations/{REGION}/instances/agent-production-cache"
HOST = "agent-production-123-ew.a.run.app"


def run(**override: Any) -> ProgramRun:
    values: dict[str, Any] = {
        "project": PROJECT,
        "email": "oncall@example.com",
        "service_name": "agent-production",
        "url_host": HOST,
        "health_path": "/ready",
        "database_instance": "agent-production-db-1a2b",
        "redis_instance": REDIS_ID,
        "max_instances": 10,
        **override,
    }
    return run_components(lambda: GcpMonitoring("agent-production", GcpMonitoringArgs(**values)))


def policies(result: ProgramRun) -> dict[str, dict[str, Any]]:
    return {p.name.removeprefix("agent-production-"): p.plain for p in result.of_type(POLICY)}


def condition(policy: dict[str, Any]) -> dict[str, Any]:
    (found,) = policy["conditions"]
    threshold: dict[str, Any] = found["conditionThreshold"]
    return threshold


def test_email_channel_receives_every_policy() -> None:
    result = run()
    channel = result.one(CHANNEL)
    assert channel.plain["type"] == "email"
    assert channel.plain["labels"] == {"email_address": "oncall@example.com"}
    name = f"projects/{PROJECT}/notificationChannels/"
    for policy in policies(result).values():
        (target,) = policy["notificationChannels"]
        assert target.startswith(name)


def test_without_an_email_the_policies_still_open_incidents() -> None:
    result = run(email=None)
    assert result.of_type(CHANNEL) == []
    assert len(policies(result)) == 7
    assert all(p["notificationChannels"] == [] for p in policies(result).values())


def test_uptime_check_on_the_health_path_over_verified_tls() -> None:
    check = run().one(UPTIME).plain
    assert check["httpCheck"]["path"] == "/ready"
    assert check["httpCheck"]["useSsl"] is True
    assert check["httpCheck"]["validateSsl"] is True
    assert check["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"project_id": PROJECT, "host": HOST},
    }
    assert "serviceAgentAuthentication" not in check["httpCheck"]


def test_uptime_check_takes_the_service_url_as_given() -> None:
    check = run(url_host=f"https://{HOST}").one(UPTIME).plain
    assert check["monitoredResource"]["labels"]["host"] == HOST


def test_uptime_check_of_an_iam_protected_service_sends_an_oidc_token() -> None:
    check = run(authenticated=True).one(UPTIME).plain
    assert check["httpCheck"]["serviceAgentAuthentication"] == {"type": "OIDC_TOKEN"}


def test_failing_uptime_check_alerts() -> None:
    # The mock's stand-in for the id the API assigns to the check.
    uptime_id = f"agent-production-uptime-{_stable_number('agent-production-uptime', 6)}"
    found = condition(policies(run())["uptime"])
    assert f'metric.labels.check_id = "{uptime_id}"' in found["filter"]
    assert found["aggregations"][0]["crossSeriesReducer"] == "REDUCE_COUNT_FALSE"


def test_5xx_ratio_of_the_service() -> None:
    found = condition(policies(run())["errors"])
    assert 'resource.labels.service_name = "agent-production"' in found["filter"]
    assert 'metric.labels.response_code_class = "5xx"' in found["filter"]
    assert "response_code_class" not in found["denominatorFilter"]
    assert "run.googleapis.com/request_count" in found["denominatorFilter"]
    assert found["comparison"] == "COMPARISON_GT"
    assert found["thresholdValue"] == 0.05


def test_p99_latency() -> None:
    found = condition(policies(run())["latency"])
    assert "run.googleapis.com/request_latencies" in found["filter"]
    assert found["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_99"
    assert found["thresholdValue"] == 60_000


@pytest.mark.parametrize("maximum", [1, 10])
def test_instances_at_the_maximum(maximum: int) -> None:
    found = condition(policies(run(max_instances=maximum))["instances"])
    assert "run.googleapis.com/container/instance_count" in found["filter"]
    # Only GT/LT exist: above max - 0.5 is "at max" for a whole count.
    assert found["comparison"] == "COMPARISON_GT"
    assert maximum - 1 < found["thresholdValue"] < maximum


def test_cloud_sql_cpu_and_disk() -> None:
    found = policies(run())
    database_id = f'resource.labels.database_id = "{PROJECT}:agent-production-db-1a2b"'
    cpu = condition(found["database-cpu"])
    disk = condition(found["database-disk"])
    assert database_id in cpu["filter"] and database_id in disk["filter"]
    assert "cloudsql.googleapis.com/database/cpu/utilization" in cpu["filter"]
    assert "cloudsql.googleapis.com/database/disk/utilization" in disk["filter"]
    assert (cpu["thresholdValue"], disk["thresholdValue"]) == (0.8, 0.85)


def test_redis_memory() -> None:
    found = condition(policies(run())["redis-memory"])
    assert f'resource.labels.instance_id = "{REDIS_ID}"' in found["filter"]
    assert "redis.googleapis.com/stats/memory/usage_ratio" in found["filter"]
    assert found["thresholdValue"] == 0.8


def test_no_data_store_policies_without_data_stores() -> None:
    found = policies(run(database_instance=None, redis_instance=None))
    assert set(found) == {"uptime", "errors", "latency", "instances"}
