"""GCP price rules over real pulumi-gcp registrations under the mocks engine.

The GCP target lands later; these register the resource types it will use, with the input
names pulumi-gcp really sends, and check each rule against a hand-worked sum of the rows in
prices/gcp.csv (europe-west1).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pytest

from cli.cost import CostError, estimate, load_prices, load_usage, registered
from tests.harness import PROJECT_DIR, run_components

SECONDS = 730 * 3600
H = 730


def register(region: str = "europe-west1") -> None:
    provider = gcp.Provider("gcp", project="demo", region=region)
    opts = pulumi.ResourceOptions(provider=provider)
    gcp.cloudrunv2.Service(
        "svc",
        location=region,
        template={
            "containers": [
                {"image": "img", "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}
            ],
            "scaling": {"min_instance_count": 1, "max_instance_count": 4},
        },
        opts=opts,
    )
    gcp.sql.DatabaseInstance(
        "db",
        region=region,
        database_version="POSTGRES_16",
        settings={"tier": "db-custom-1-3840", "availability_type": "REGIONAL", "disk_size": 20},
        opts=opts,
    )
    gcp.redis.Instance("cache", region=region, tier="STANDARD_HA", memory_size_gb=1, opts=opts)
    secret = gcp.secretmanager.Secret("secret", secret_id="s", replication={"auto": {}}, opts=opts)
    gcp.secretmanager.SecretVersion("secret-v1", secret=secret.id, secret_data="x", opts=opts)
    gcp.artifactregistry.Repository(
        "repo", location=region, repository_id="r", format="DOCKER", opts=opts
    )
    condition = {"display_name": "c", "condition_absent": {"filter": "f", "duration": "60s"}}
    gcp.monitoring.AlertPolicy(
        "alert", display_name="a", combiner="OR", conditions=[condition, condition], opts=opts
    )
    gcp.compute.Network("net", auto_create_subnetworks=False, opts=opts)


def priced(region: str = "europe-west1"):
    run = run_components(lambda: register(region), stack="gcp-test", preview=True)
    usage = load_usage(PROJECT_DIR, "gcp-test", "production", None, None)
    return estimate("gcp-test", registered(run), {}, load_prices(PROJECT_DIR), usage)


def test_gcp_resources_are_priced_from_their_real_inputs():
    result = priced()
    assert result.unpriced == []
    by_item = {}
    for line in result.lines:
        by_item[line.item] = by_item.get(line.item, 0.0) + line.monthly
    # Cloud Run: 1 idle minimum instance of 1 vCPU / 0.5 GiB, and 1M requests x 5 s / 20
    # concurrent = 250,000 busy instance-seconds at the request-based rate; 1 GiB of logs.
    busy = 1_000_000 * 5 / 20
    assert by_item["run-idle-vcpu-second"] == pytest.approx(SECONDS * 0.0000025)
    assert by_item["run-idle-gib-second"] == pytest.approx(0.5 * SECONDS * 0.0000025)
    assert by_item["run-request-vcpu-second"] == pytest.approx(busy * 0.000024)
    assert by_item["run-request-gib-second"] == pytest.approx(busy * 0.5 * 0.0000025)
    assert by_item["run-requests-million"] == pytest.approx(1 * 0.40)
    assert by_item["logging-ingest-gib"] == pytest.approx(1 * 0.50)
    # Cloud SQL db-custom-1-3840 with HA: 1 vCPU and 3.75 GB twice, 20 GB SSD twice.
    assert by_item["sql-enterprise-vcpu-hour"] == pytest.approx(2 * H * 0.0413)
    assert by_item["sql-enterprise-gb-hour"] == pytest.approx(2 * 3.75 * H * 0.007)
    assert by_item["sql-ssd-gb-month"] == pytest.approx(2 * 20 * 0.17)
    assert by_item["redis-standard_ha-gb-hour"] == pytest.approx(1 * H * 0.064)
    assert by_item["secretmanager-version-month"] == pytest.approx(0.06)
    assert by_item["artifactregistry-gb-month"] == pytest.approx(10 * 0.10)
    assert by_item["alert-condition-month"] == pytest.approx(2 * 0.10)
    assert result.regions == ["gcp europe-west1"]


def test_a_gcp_region_without_rows_is_an_error():
    with pytest.raises(CostError) as error:
        priced("asia-south1")
    assert "region 'asia-south1' has no gcp prices" in error.value.problems[0]


def test_cloud_run_with_cpu_always_allocated_bills_instance_time():
    def service() -> None:
        gcp.cloudrunv2.Service(
            "always-on",
            location="us-central1",
            template={
                "containers": [
                    {
                        "image": "img",
                        "resources": {
                            "limits": {"cpu": "2000m", "memory": "1Gi"},
                            "cpu_idle": False,
                        },
                    }
                ],
                "scaling": {"min_instance_count": 2},
            },
        )

    run = run_components(service, stack="gcp-test", preview=True)
    usage = load_usage(PROJECT_DIR, "gcp-test", "staging", None, None)
    result = estimate("gcp-test", registered(run), {}, load_prices(PROJECT_DIR), usage)
    fixed = {line.item: line.monthly for line in result.lines if line.kind == "fixed"}
    assert fixed == {
        "run-instance-vcpu-second": pytest.approx(2 * 2 * SECONDS * 0.000018),
        "run-instance-gib-second": pytest.approx(2 * 1 * SECONDS * 0.000002),
    }
    assert not [line for line in result.lines if line.item == "run-requests-million"]
    # 100,000 requests x 5 s / 10 = 50,000 busy seconds: within the 2 minimum instances.
    usage = {line.item: line.monthly for line in result.lines if line.kind == "usage"}
    assert usage["run-instance-vcpu-second"] == 0


def test_global_forwarding_rules_bill_the_first_five_together_then_each():
    def rules() -> None:
        opts = pulumi.ResourceOptions(
            provider=gcp.Provider("gcp", project="demo", region="europe-west1")
        )
        for n in range(6):
            gcp.compute.GlobalForwardingRule(
                f"rule-{n}",
                target="proxy",
                port_range="443",
                load_balancing_scheme="EXTERNAL_MANAGED",
                opts=opts,
            )
        gcp.compute.SecurityPolicy(
            "armor",
            rules=[
                {
                    "action": "allow",
                    "priority": 2147483647,
                    "match": {"expr": {"expression": "true"}},
                }
            ],
            opts=opts,
        )
        gcp.compute.BackendService("backend", load_balancing_scheme="EXTERNAL_MANAGED", opts=opts)

    run = run_components(rules, stack="gcp-test", preview=True)
    usage = load_usage(PROJECT_DIR, "gcp-test", "production", None, None)
    result = estimate("gcp-test", registered(run), {}, load_prices(PROJECT_DIR), usage)
    fixed = sorted((line.item, line.monthly) for line in result.lines if line.kind == "fixed")
    assert fixed == [
        ("armor-policy-month", pytest.approx(5.00)),
        ("armor-rule-month", pytest.approx(1.00)),
        ("lb-forwarding-rule-extra-hour", pytest.approx(H * 0.01)),
        ("lb-forwarding-rules-first5-hour", pytest.approx(H * 0.025)),
    ]
    by_item = {line.item: line.monthly for line in result.lines if line.kind == "usage"}
    assert by_item["lb-data-gib"] == pytest.approx(10 * 0.008)  # production's lbDataGb
    assert by_item["armor-requests-million"] == pytest.approx(1 * 0.75)  # 1M requests
