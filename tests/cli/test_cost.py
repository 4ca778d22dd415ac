"""`agent-deploy cost`: every shipped stack priced from the dated price table, by hand too.

The expected totals below are worked out from the rows of prices/aws.csv (eu-west-1) and
prices/gcp.csv (europe-west1), where the shipped stacks run, and usage/defaults.yaml, written
out term by term: a change to a preset, a rule or a price row shows up here as a number that
no longer adds up.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli.cost import (
    README_BEGIN,
    CostError,
    Estimate,
    estimate,
    load_prices,
    load_usage,
    price_stack,
    readme_block,
    registered,
    summary_table,
)
from cli.main import main
from cli.pricing import RULES
from cli.stackfile import program_stack, stack_names
from tests.harness import PROJECT_DIR, SELF_CONTAINED, run_stack, stack_inputs

H = 730  # hours in a priced month


def cost(*args: str, project_dir: Path = PROJECT_DIR) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["cost", *args, "--project-dir", str(project_dir)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def shipped() -> dict[str, Estimate]:
    return {stack: price_stack(PROJECT_DIR, stack)[0] for stack in stack_names(PROJECT_DIR)}


def priced(stack: str, override: dict[str, Any] | None = None) -> Estimate:
    """The stack as a user would edit its file, priced as `cost` prices it."""
    config, secret_keys = stack_inputs(stack, override)
    run = run_stack(stack, override, preview=True)
    resources = registered(run)
    plain = {k: v for k, v in config.items() if k not in secret_keys}
    tier = plain.get("agent-deploy:tier", "ephemeral")
    usage = load_usage(PROJECT_DIR, stack, tier, [r.name for r in resources], None)
    return estimate(stack, resources, plain, load_prices(PROJECT_DIR), usage)


def lines(result: Estimate, item: str) -> list[float]:
    return [line.monthly for line in result.lines if line.item == item]


# --- every type priced or free -------------------------------------------------------------


def test_every_type_a_shipped_stack_registers_is_priced_or_declared_free(shipped):
    prices = load_prices(PROJECT_DIR)
    assert set(shipped) >= {"local", "pr", "staging", "production"}
    for stack, result in shipped.items():
        assert result.unpriced == [], f"{stack}: {result.unpriced}"
        run = run_stack(program_stack(stack), preview=True)
        for resource in (r for r in run.resources if r.custom):
            assert resource.type in RULES or prices.free_reason(resource.type), (
                f"{stack}: {resource.type} is neither priced (cli/pricing.py RULES) "
                "nor declared free (prices/free.csv)"
            )


DIGEST = f"sha256:{'a' * 64}"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("stack", "override"),
    [
        # What production registers once the workflow pins staging's digest: the copy.
        ("production", {"app": {"image": f"{ECR}/agent-staging@{DIGEST}"}}),
        ("gcp-production", {"app": {"image": f"europe-west1-docker.pkg.dev/p/r/a@{DIGEST}"}}),
        ("staging", {"aws": {"imageReaders": ["210987654321"]}}),
    ],
)  # fmt: skip
def test_promotion_types_are_priced_or_declared_free(stack: str, override: dict[str, Any]) -> None:
    prices = load_prices(PROJECT_DIR)
    run = run_stack(stack, override, preview=True)
    added = {r.type for r in run.resources if r.custom} - {
        r.type for r in run_stack(stack, preview=True).resources if r.custom
    }
    assert added, "the override registers something new"
    for type_ in added:
        assert type_ in RULES or prices.free_reason(type_), type_


@pytest.mark.parametrize(
    "type_",
    [
        "gcp:cloudrunv2/service:Service",
        "gcp:sql/databaseInstance:DatabaseInstance",
        "gcp:redis/instance:Instance",
        "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretVersion:SecretVersion",
        "gcp:secretmanager/regionalSecret:RegionalSecret",
        "gcp:secretmanager/regionalSecretVersion:RegionalSecretVersion",
        "gcp:artifactregistry/repository:Repository",
        "gcp:monitoring/alertPolicy:AlertPolicy",
        "gcp:monitoring/notificationChannel:NotificationChannel",
        "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig",
        "gcp:compute/network:Network",
        "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/globalAddress:GlobalAddress",
        "gcp:compute/firewall:Firewall",
        "gcp:compute/router:Router",
        "gcp:compute/routerNat:RouterNat",
        "gcp:servicenetworking/connection:Connection",
        "gcp:projects/service:Service",
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
        "gcp:serviceaccount/account:Account",
        "gcp:serviceaccount/iAMMember:IAMMember",
        "gcp:projects/iAMMember:IAMMember",
        "gcp:projects/iAMBinding:IAMBinding",
        "gcp:projects/iAMCustomRole:IAMCustomRole",
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "gcp:secretmanager/secretIamMember:SecretIamMember",
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "gcp:sql/database:Database",
        "gcp:sql/user:User",
    ],
)
def test_the_gcp_target_types_are_priced_or_declared_free(type_):
    """The GCP target lands later; its types are covered before it does."""
    assert type_ in RULES or load_prices(PROJECT_DIR).free_reason(type_)


def test_a_type_neither_priced_nor_free_is_listed_unpriced_and_left_out_of_the_total():
    prices = load_prices(PROJECT_DIR)
    prices.free = [(p, r) for p, r in prices.free if p != "aws:iam/*"]
    run = run_stack("staging", preview=True)
    config, _ = stack_inputs("staging")
    usage = load_usage(PROJECT_DIR, "staging", "staging", None, None)
    with_iam_unlisted = estimate("staging", registered(run), config, prices, usage)
    assert {u["type"] for u in with_iam_unlisted.unpriced} == {
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    }
    assert "not declared free in prices/free.csv" in with_iam_unlisted.unpriced[0]["reason"]
    assert with_iam_unlisted.monthly == pytest.approx(priced("staging").monthly)


def test_a_size_without_a_price_row_is_unpriced_never_guessed():
    result = priced("staging", {"database": {"instanceClass": "db.m7g.large"}})
    assert result.unpriced == [
        {
            "resource": "agent-staging-db",
            "type": "aws:rds/instance:Instance",
            "reason": "no price row 'rds-postgres-db.m7g.large-hour' for aws eu-west-1 "
            "in prices/aws.csv",
        }
    ]


# --- hand-worked totals --------------------------------------------------------------------

# eu-west-1 rows (prices/aws.csv)
ALB, LCU, IPV4, NAT, NAT_GB = 0.0252, 0.008, 0.005, 0.048, 0.048
ARM_VCPU, ARM_GB, SPOT_ARM_VCPU, SPOT_ARM_GB = 0.03238, 0.00356, 0.0103616, 0.0011392
RDS_MICRO, RDS_SMALL, RDS_MEDIUM, GP3 = 0.017, 0.035, 0.069, 0.127
VALKEY_MICRO, VALKEY_SMALL = 0.0144, 0.0288
SECRET, CALLS_10K, ECR, INGEST, VENDED, STORED, ALARM = 0.40, 0.05, 0.10, 0.57, 0.57, 0.03, 0.10
KMS, KMS_10K, S3 = 1.00, 0.03, 0.023


def test_pr_slice_total_is_the_hand_worked_sum_and_under_a_cent_an_hour(shipped):
    # The shipped template: a slice of staging. 1 Spot ARM task of 0.25 vCPU / 0.5 GB with a
    # public IP (staging's task subnets are public), 1 secret holding its 4 values, 1 log
    # group, its ECR repository. The host rule or listener, target group, cache user and the
    # provisioner's invocations cost nothing of their own (prices/free.csv).
    fixed = (
        0.25 * H * SPOT_ARM_VCPU + 0.5 * H * SPOT_ARM_GB  # the task, on Spot
        + H * IPV4  # its public IPv4
        + 1 * SECRET
    )  # fmt: skip
    usage = (
        (0.1 * INGEST + 0.1 * STORED)  # 1 log group, 0.1 GB
        + 1 * (1000 / 10_000) * CALLS_10K
        + 1 * ECR
    )  # fmt: skip
    result = shipped["pr"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)
    assert (fixed + usage) / H <= 0.01  # issue 12: at most a cent an hour
    assert not result.unpriced
    code, out, _ = cost("--stack", "pr")
    assert code == 0 and f"(${(fixed + usage) / H:.4f}/hour" in out


def test_self_contained_pr_stack_total_is_the_hand_worked_sum():
    # pullRequests removed: 1 Spot ARM task of 0.25 vCPU / 0.5 GB with a public IP,
    # db.t4g.micro 20 GB, Valkey micro x1, ALB over 2 public subnets, 4 secrets, 9 alarms,
    # 3 log groups, ECR, the alarm topic's KMS key, the access-log bucket, enhanced
    # monitoring every 60 s.
    fixed = (
        0.25 * H * SPOT_ARM_VCPU + 0.5 * H * SPOT_ARM_GB  # the task, on Spot
        + H * IPV4  # its public IPv4
        + H * ALB + 2 * H * IPV4  # the load balancer and its 2 addresses
        + H * RDS_MICRO + 20 * GP3
        + H * VALKEY_MICRO
        + 4 * SECRET
        + 9 * ALARM
        + 1 * KMS  # one key-month
    )  # fmt: skip
    usage = (
        0.1 * H * LCU  # lbCapacityUnits 0.1
        + 3 * (0.1 * INGEST + 0.1 * STORED)  # 3 log groups, 0.1 GB each
        + 4 * (1000 / 10_000) * CALLS_10K
        + 1 * ECR
        + 0.1 * S3  # bucketGb 0.1
        + (100 / 10_000) * KMS_10K  # kmsRequests 100
        + 0.2 * INGEST + 0.2 * STORED  # monitoringGb 0.2 into RDSOSMetrics, kept 30 days
    )  # fmt: skip
    result = priced("pr", SELF_CONTAINED)
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)


def test_staging_total_is_the_hand_worked_sum(shipped):
    # staging: 1 on-demand ARM task of 0.5 vCPU / 1 GB with a public IP, db.t4g.small, Valkey
    # small x1, no NAT, the KMS key, the access-log bucket, enhanced monitoring.
    fixed = (
        0.5 * H * ARM_VCPU + 1 * H * ARM_GB + H * IPV4
        + H * ALB + 2 * H * IPV4
        + H * RDS_SMALL + 20 * GP3
        + H * VALKEY_SMALL
        + 4 * SECRET
        + 9 * ALARM
        + 1 * KMS
    )  # fmt: skip
    usage = (
        0.5 * H * LCU + 3 * (0.5 * INGEST + 1 * STORED) + 4 * 0.5 * CALLS_10K + 5 * ECR
        + 0.5 * S3  # bucketGb 0.5
        + (500 / 10_000) * KMS_10K  # kmsRequests 500
        + 0.2 * INGEST + 0.2 * STORED  # monitoringGb 0.2
        # It hosts pr-<n> slices: their provisioner's log group (usage/staging.yaml); the
        # Lambda itself, its RBAC users and group are free (prices/free.csv).
        + 0.001 * INGEST + 0.001 * STORED
    )  # fmt: skip
    result = shipped["staging"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)


def test_production_total_is_the_hand_worked_sum(shipped):
    # production: 2 private ARM tasks of 1 vCPU / 2 GB (no public IP), NAT per AZ (2, each
    # with an Elastic IP), db.t4g.medium Multi-AZ (instance and storage twice), Valkey small
    # x2, flow logs (vended), 10 alarms, 4 log groups.
    fixed = (
        2 * (1 * H * ARM_VCPU + 2 * H * ARM_GB)
        + 2 * (H * NAT + H * IPV4)
        + H * ALB + 2 * H * IPV4
        + 2 * H * RDS_MEDIUM + 2 * 20 * GP3
        + 2 * H * VALKEY_SMALL
        + 4 * SECRET
        + 10 * ALARM
        + 1 * KMS
    )  # fmt: skip
    usage = (
        1 * H * LCU
        + 2 * 10 * NAT_GB
        + 3 * (1 * INGEST + 5 * STORED)  # the app's and the database's 2 log groups
        + 5 * STORED + 1 * VENDED  # the flow-log group: flow logs are vended, priced once
        + 4 * 2 * CALLS_10K
        + 10 * ECR
        + 2 * S3  # bucketGb 2
        + (1000 / 10_000) * KMS_10K  # kmsRequests 1000
        + 0.2 * INGEST + 0.2 * STORED  # enhanced monitoring: the primary only, not twice
    )  # fmt: skip
    result = shipped["production"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)
    assert result.as_json()["hourly"] == round((fixed + usage) / H, 4)


# europe-west1 rows (prices/gcp.csv), where the shipped GCP stacks run
SECONDS = H * 3600
RUN_REQ_VCPU, RUN_REQ_GIB, RUN_MILLION = 0.000024, 0.0000025, 0.40
RUN_INST_VCPU, RUN_INST_GIB = 0.000018, 0.000002
SQL_VCPU, SQL_GB, SQL_F1_MICRO, SQL_SSD = 0.0413, 0.007, 0.0105, 0.17
REDIS_BASIC, REDIS_HA = 0.049, 0.064
SM_VERSION, SM_10K, AR_GB, LOG_GIB, CONDITION = 0.06, 0.03, 0.10, 0.50, 0.10
LB_FIRST5_RULES, LB_GIB = 0.025, 0.008
ARMOR_POLICY, ARMOR_RULE, ARMOR_MILLION = 5.00, 1.00, 0.75
# 4 secrets (database-url, redis-url, database-ca-cert, redis-ca-cert) and 1 generated
# (auth-tokens), one version each; 7 alert policies of 1 condition each (uptime, errors,
# latency, instances, database cpu, database disk, redis memory). No Cloud NAT, no static
# address: Cloud Run egresses through the subnet (Direct VPC egress). Cloud SQL disk: the
# program sets none, so the provider's 10 GB (autoresize up to the tier's limit).


def test_gcp_pr_slice_total_is_the_hand_worked_sum_and_at_most_a_cent_an_hour(shipped):
    # A slice of gcp-staging: only Cloud Run (1 vCPU / 512 MiB, scaled to zero, billed per
    # request), its 3 secrets and its registry; database, user, IAM bindings cost nothing, and
    # staging's Cloud SQL and Memorystore are not re-created.
    fixed = 3 * SM_VERSION
    busy = 10_000 * 5 / 10
    usage = (
        busy * 1 * RUN_REQ_VCPU + busy * 0.5 * RUN_REQ_GIB + (10_000 / 1e6) * RUN_MILLION
        + 0.1 * LOG_GIB
        + 3 * (1000 / 10_000) * SM_10K
        + 1 * AR_GB
    )  # fmt: skip
    result = shipped["gcp-pr"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["hourly"] <= 0.01
    assert not [line for line in result.lines if line.type.startswith(("gcp:sql/d", "gcp:redis"))]


def test_gcp_pr_self_contained_total_is_the_hand_worked_sum():
    # Without pullRequests.base, ephemeral on GCP: Cloud Run 1 vCPU / 512 MiB scaled to zero
    # (request-based billing), Cloud SQL db-f1-micro zonal, Redis BASIC 1 GB.
    fixed = (
        H * SQL_F1_MICRO + 10 * SQL_SSD
        + 1 * H * REDIS_BASIC
        + 5 * SM_VERSION
        + 7 * CONDITION
    )  # fmt: skip
    busy = 10_000 * 5 / 10  # requests x requestSeconds / concurrency = 5,000 instance-seconds
    usage = (
        busy * 1 * RUN_REQ_VCPU + busy * 0.5 * RUN_REQ_GIB + (10_000 / 1e6) * RUN_MILLION
        + 0.1 * LOG_GIB  # logIngestGb 0.1
        + 5 * (1000 / 10_000) * SM_10K  # secretApiCalls 1000 per secret
        + 1 * AR_GB  # registryGb 1
    )  # fmt: skip
    result = priced("gcp-pr", {"pullRequests": None})
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)


def test_gcp_staging_total_is_the_hand_worked_sum(shipped):
    # staging on GCP: Cloud Run 1 vCPU / 1 GiB, 0-3 instances billed per request, Cloud SQL
    # db-custom-1-3840 (1 vCPU, 3840 MB = 3.75 GB) zonal, Redis BASIC 1 GB.
    fixed = (
        1 * H * SQL_VCPU + 3.75 * H * SQL_GB + 10 * SQL_SSD
        + 1 * H * REDIS_BASIC
        + 5 * SM_VERSION
        + 7 * CONDITION
    )  # fmt: skip
    busy = 100_000 * 5 / 10  # 50,000 instance-seconds
    usage = (
        busy * 1 * RUN_REQ_VCPU + busy * 1 * RUN_REQ_GIB + (100_000 / 1e6) * RUN_MILLION
        + 0.5 * LOG_GIB
        + 5 * (5000 / 10_000) * SM_10K
        + 5 * AR_GB
    )  # fmt: skip
    result = shipped["gcp-staging"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)


def test_gcp_production_total_is_the_hand_worked_sum(shipped):
    # production on GCP: Cloud Run 1 vCPU / 2 GiB with 1 warm instance, CPU always allocated
    # (instance-based billing all month); Cloud SQL db-custom-2-7680 (2 vCPU, 7.5 GB) REGIONAL,
    # so the standby doubles instance and disk; Redis STANDARD_HA 1 GB.
    fixed = (
        1 * 1 * SECONDS * RUN_INST_VCPU + 1 * 2 * SECONDS * RUN_INST_GIB
        + 2 * (2 * H * SQL_VCPU + 7.5 * H * SQL_GB + 10 * SQL_SSD)
        + 1 * H * REDIS_HA
        + 5 * SM_VERSION
        + 7 * CONDITION
        # app.domain: the load balancer's 2 forwarding rules (443, 80) are within the first
        # five's one charge; Cloud Armor's policy with 3 rules (Log4Shell, throttle, default).
        + H * LB_FIRST5_RULES
        + ARMOR_POLICY + 3 * ARMOR_RULE
    )  # fmt: skip
    # 1,000,000 requests x 5 s / 20 = 250,000 busy seconds, within the warm instance's
    # 2,628,000: nothing beyond it, and no per-request fee under instance-based billing.
    usage = (
        max(0, 250_000 - 1 * SECONDS) * (1 * RUN_INST_VCPU + 2 * RUN_INST_GIB)
        + 1 * LOG_GIB
        + 5 * (20_000 / 10_000) * SM_10K
        + 10 * AR_GB
        + 10 * LB_GIB  # lbDataGb 10
        + (1_000_000 / 1e6) * ARMOR_MILLION  # Cloud Armor evaluates every request
    )  # fmt: skip
    result = shipped["gcp-production"]
    assert result.total("fixed") == pytest.approx(fixed)
    assert result.total("usage") == pytest.approx(usage)
    assert result.as_json()["monthly"] == round(fixed + usage, 2)
    assert result.as_json()["hourly"] == round((fixed + usage) / H, 4)


def test_local_stack_costs_nothing_and_says_so():
    code, out, _ = cost("--stack", "local", "--json")
    document = json.loads(out)
    assert code == 0
    assert document["monthly"] == document["hourly"] == 0
    assert document["lines"] == document["unpriced"] == []
    assert "no cloud charges" in document["note"]
    code, out, _ = cost("--stack", "local")
    assert "no cloud charges" in out


def test_json_has_the_documented_shape():
    code, out, _ = cost("--stack", "staging", "--json")
    document = json.loads(out)
    assert code == 0
    assert {"stack", "currency", "monthly", "hourly", "lines", "unpriced"} <= set(document)
    assert document["currency"] == "USD"
    assert {"resource", "quantity", "unitPrice", "monthly", "kind"} <= set(document["lines"][0])
    assert sum(line["monthly"] for line in document["lines"]) == pytest.approx(
        document["monthly"], abs=0.01
    )


# --- hidden costs --------------------------------------------------------------------------


def test_multi_az_doubles_instance_and_storage():
    single = priced("staging", {"database": {"storageGb": 50, "maxStorageGb": 100}})
    multi = priced("staging", {"database": {"multiAz": True, "storageGb": 50, "maxStorageGb": 100}})
    assert lines(single, "rds-postgres-db.t4g.small-hour") == [pytest.approx(H * RDS_SMALL)]
    assert lines(multi, "rds-postgres-db.t4g.small-hour") == [pytest.approx(2 * H * RDS_SMALL)]
    assert lines(multi, "rds-gp3-gb-month") == [pytest.approx(2 * 50 * GP3)]


def test_nat_is_priced_per_gateway_with_its_elastic_ip():
    single = priced("production", {"aws": {"natGateways": "single"}})
    assert lines(single, "nat-hour") == [pytest.approx(H * NAT)]
    # One EIP for the NAT, two addresses for the load balancer; tasks stay private.
    assert sum(lines(single, "public-ipv4-hour")) == pytest.approx(3 * H * IPV4)


def test_policy_controls_are_priced_on_their_own_resources():
    result = priced("staging")
    by_item = {(line.resource, line.item): line.monthly for line in result.lines}
    assert by_item[("agent-staging-alarms-key", "kms-key-month")] == pytest.approx(KMS)
    assert by_item[("agent-staging-alb-logs", "s3-standard-gb-month")] == pytest.approx(0.5 * S3)
    assert by_item[("agent-staging-db", "logs-ingest-gb")] == pytest.approx(0.2 * INGEST)


def test_tasks_with_a_public_ip_pay_for_one_each():
    result = priced("staging", {"app": {"minInstances": 3}})
    task_ips = [
        line for line in result.lines
        if line.item == "public-ipv4-hour" and line.resource == "agent-staging-service"
    ]  # fmt: skip
    assert [line.monthly for line in task_ips] == [pytest.approx(3 * H * IPV4)]


def test_fargate_spot_and_architecture_pick_their_rows():
    on_demand = priced("pr-1", {"aws": {"fargateSpot": False}})
    assert lines(on_demand, "fargate-arm-vcpu-hour") == [pytest.approx(0.25 * H * ARM_VCPU)]
    assert lines(on_demand, "fargate-spot-arm-vcpu-hour") == []
    x86 = priced(
        "pr-1", {"aws": {"fargateSpot": False}, "app": {"build": {"platforms": ["linux/amd64"]}}}
    )
    assert lines(x86, "fargate-x86-vcpu-hour") == [pytest.approx(0.25 * H * 0.04048)]


def test_valkey_and_redis_engines_have_their_own_prices():
    redis = priced("staging", {"cache": {"engine": "redis", "engineVersion": "7.1"}})
    assert lines(redis, "elasticache-redis-cache.t4g.small-hour") == [pytest.approx(H * 0.036)]
    assert lines(priced("staging"), "elasticache-valkey-cache.t4g.small-hour") == [
        pytest.approx(H * VALKEY_SMALL)
    ]


# --- bad input -----------------------------------------------------------------------------


def test_a_region_without_price_rows_is_an_error_naming_it():
    with pytest.raises(CostError) as error:
        priced("staging", {"aws": {"region": "ap-south-1"}})
    assert error.value.problems == [
        "region 'ap-south-1' has no aws prices in prices/aws.csv (priced regions: eu-west-1, "
        "us-east-1); add its rows, never a multiplier"
    ]


def test_usage_file_problems_are_all_named(tmp_path):
    usage = tmp_path / "usage.yaml"
    usage.write_text(
        "defaults:\n  natGB: 3\n  logIngestGb: -1\n  registryGb: lots\n"
        "resources:\n  agent-staging-nope: {natGb: 1}\nextra: 1\n"
    )
    code, out, err = cost("--stack", "staging", "--usage", str(usage), "--json")
    assert code == 1
    assert json.loads(out)["errors"] == [
        "usage.yaml: unknown key 'extra'; allowed: defaults, resources",
        "defaults.natGB: unknown usage key; allowed: lbCapacityUnits, natGb, logIngestGb, "
        "logStoredGb, flowLogGb, secretApiCalls, registryGb, bucketGb, kmsRequests, "
        "monitoringGb, requests, requestSeconds, concurrency, lbDataGb",
        "defaults.logIngestGb = -1: must not be negative",
        "defaults.registryGb = 'lots': must be a number",
        "resources.agent-staging-nope: no resource of stack 'staging' has that name",
    ]
    assert "defaults.logIngestGb = -1: must not be negative" in err


def test_a_usage_override_changes_its_line(tmp_path):
    usage = tmp_path / "usage.yaml"
    usage.write_text("resources:\n  agent-production-nat-1: {natGb: 100}\n")
    code, out, _ = cost("--stack", "production", "--usage", str(usage), "--json")
    nat_gb = {
        line["resource"]: line["monthly"]
        for line in json.loads(out)["lines"]
        if line["item"] == "nat-gb"
    }
    assert code == 0
    assert nat_gb == {
        "agent-production-nat-1": pytest.approx(100 * NAT_GB),
        "agent-production-nat-2": pytest.approx(10 * NAT_GB),
    }


def test_a_base_ref_that_does_not_exist_is_named():
    code, out, err = cost("--stack", "staging", "--base", "no-such-ref-42", "--json")
    assert code == 1
    assert json.loads(out)["errors"] == [
        f"--base 'no-such-ref-42': no such commit, branch or tag in {PROJECT_DIR}"
    ]
    assert "no-such-ref-42" in err


# --- diff against a git ref ----------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of this project (as committed plus working changes)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path / "project"
    for name in filter(None, listed.split("\0")):
        source = PROJECT_DIR / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    _git(copy, "init", "-q", "-b", "main")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-qm", "base")
    return copy


def test_a_size_change_in_a_stack_file_shows_its_delta(repo):
    stack_file = repo / "Pulumi.staging.yaml"
    stack_file.write_text(
        stack_file.read_text() + "  agent-deploy:database:\n    instanceClass: db.t4g.medium\n"
    )
    code, out, err = cost("--stack", "staging", "--base", "main", "--json", project_dir=repo)
    assert code == 0, err
    base = json.loads(out)["base"]
    assert (
        base["delta"]
        == base["infrastructureDelta"]
        == pytest.approx(round(H * (RDS_MEDIUM - RDS_SMALL), 2))
    )
    assert base["priceDelta"] == 0
    assert base["priceChanges"] == []
    assert [(c["change"], c["item"], c["delta"]) for c in base["changes"]] == [
        ("added", "rds-postgres-db.t4g.medium-hour", pytest.approx(round(H * RDS_MEDIUM, 2))),
        ("removed", "rds-postgres-db.t4g.small-hour", pytest.approx(-round(H * RDS_SMALL, 2))),
    ]
    code, out, _ = cost("--stack", "staging", "--base", "main", "--markdown", project_dir=repo)
    assert "+$24.82 vs `main`" in out
    assert "| added | `agent-staging-db` | rds-postgres-db.t4g.medium-hour |" in out


def test_a_price_row_change_is_shown_apart_from_infrastructure(repo):
    prices = repo / "prices" / "aws.csv"
    prices.write_text(
        prices.read_text().replace(
            "aws,eu-west-1,alb-hour,hour,0.0252,", "aws,eu-west-1,alb-hour,hour,0.0300,"
        )
    )
    code, out, err = cost("--stack", "staging", "--base", "main", "--json", project_dir=repo)
    assert code == 0, err
    base = json.loads(out)["base"]
    assert base["infrastructureDelta"] == 0
    assert base["priceDelta"] == pytest.approx(round(H * (0.03 - ALB), 2))
    assert base["changes"] == []
    assert [(p["item"], p["baseUsd"], p["usd"]) for p in base["priceChanges"]] == [
        ("alb-hour", ALB, 0.03)
    ]


# --- README --------------------------------------------------------------------------------


def test_readme_shows_every_shipped_stacks_current_estimate():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in readme, "README.md lost its cost table markers"
    assert readme_block(readme) == summary_table(PROJECT_DIR), (
        "README's cost table is stale: run `make cost-readme`"
    )


def test_a_missing_stack_file_exits_2_with_json():
    code, out, _ = cost("--stack", "nope", "--json")
    assert code == 2
    assert json.loads(out)["errors"][0].startswith("no stack file for 'nope'")


def test_price_rows_without_a_valid_price_date_or_source_are_all_named(tmp_path):
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "aws.csv").write_text(
        "cloud,region,item,unit,usd,checked,source\n"
        "aws,eu-west-1,alb-hour,hour,-1,2026-10-01,AWS\n"
        "aws,eu-west-1,nat-hour,hour,0.048,last week,AWS\n"
        "aws,eu-west-1,nat-hour,hour,0.048,2026-10-01,\n"
    )
    with pytest.raises(CostError) as error:
        load_prices(tmp_path)
    assert error.value.problems == [
        "aws.csv:2: usd '-1' is not a price >= 0",
        "aws.csv:3: checked 'last week' is not a YYYY-MM-DD",
        "aws.csv:4: a price without a source",
        "aws.csv:4: aws/eu-west-1/nat-hour is priced twice",
    ]


def test_a_base_from_before_the_price_table_is_priced_with_todays_and_says_so(repo):
    _git(repo, "rm", "-rq", "prices")
    _git(repo, "commit", "-qm", "before the price table")
    _git(repo, "checkout", "HEAD~1", "--", "prices")
    code, out, err = cost("--stack", "staging", "--base", "HEAD", "--markdown", project_dir=repo)
    assert code == 0, err
    assert "+$0.00 vs `HEAD`" in out
    assert "The base has no price table: both sides are priced with this one." in out


@pytest.mark.parametrize(
    "args",
    [
        ("--all", "--json"),
        ("--all", "--base", "main"),
        ("--stack", "staging", "--write-readme", "README.md"),
    ],
)
def test_options_that_do_not_go_together_are_refused(args):
    code, _, err = cost(*args)
    assert code == 2
    assert "--all" in err
