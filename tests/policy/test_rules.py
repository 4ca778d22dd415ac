"""Each rule of the pack against a compliant and a violating resource.

The resources are real provider resources registered under the mocks engine (so the rules see
what the CLI sends them: camelCase wire names, numbers as floats, secrets unwrapped, unknowns
during a preview), and the rules are called through the same runner `agent-deploy check` uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_gcp as gcp
import pulumi_github as github
import pytest

from cli.policy import evaluate, load_policies
from tests.harness import PROJECT_DIR, run_components

POLICIES = {p.name: p for p in load_policies(PROJECT_DIR)}
MANDATORY = {"all": "mandatory"}
ACCOUNT = "123456789012"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
DIGEST = "sha256:" + "a" * 64


def violations(rule: str, register: Callable[[], Any], *, preview: bool = False) -> list[str]:
    run = run_components(register, preview=preview)
    found = evaluate(run, [POLICIES[rule]], MANDATORY)
    assert all(v.level == "mandatory" for v in found)
    return [v.message for v in found]


def _rds(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "engine": "postgres",
        "instance_class": "db.t4g.micro",
        "storage_encrypted": True,
        "publicly_accessible": False,
        "backup_retention_period": 7,
        "deletion_protection": True,
        "multi_az": True,
        "monitoring_interval": 60,
        "monitoring_role_arn": f"arn:aws:iam::{ACCOUNT}:role/monitoring",
        "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"],
        "manage_master_user_password": True,
    }
    return lambda: aws.rds.Instance("db", **(good | overrides))


def _cache(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "description": "cache",
        "at_rest_encryption_enabled": True,
        "transit_encryption_enabled": True,
        "auth_token": pulumi.Output.secret("x" * 32),
        "automatic_failover_enabled": True,
        "multi_az_enabled": True,
        "num_cache_clusters": 2,
        "snapshot_retention_limit": 1,
    }
    return lambda: aws.elasticache.ReplicationGroup("cache", **(good | overrides))


def _alb(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "load_balancer_type": "application",
        "drop_invalid_header_fields": True,
        "enable_deletion_protection": True,
        "desync_mitigation_mode": "defensive",
        "access_logs": {"bucket": "logs", "enabled": True},
    }
    return lambda: aws.lb.LoadBalancer("alb", **(good | overrides))


def _container(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "app",
        "image": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/app@{DIGEST}",
        "privileged": False,
        "environment": [{"name": "LOG_FORMAT", "value": "json"}],
        "secrets": [{"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:x"}],
        "logConfiguration": {"logDriver": "awslogs"},
    } | overrides


def _task(**container: Any) -> Callable[[], Any]:
    return lambda: aws.ecs.TaskDefinition(
        "task", family="task", container_definitions=json.dumps([_container(**container)])
    )


def _ingress(cidr: str, port: int, protocol: str = "tcp") -> Callable[[], Any]:
    return lambda: aws.vpc.SecurityGroupIngressRule(
        "in",
        security_group_id="sg-1",
        cidr_ipv4=cidr,
        from_port=port,
        to_port=port,
        ip_protocol=protocol,
    )


def _trust(condition: dict[str, Any]) -> Callable[[], Any]:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": OIDC},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": condition,
            }
        ],
    }
    return lambda: aws.iam.Role("deploy", assume_role_policy=json.dumps(document))


def _policy(statements: list[dict[str, Any]]) -> Callable[[], Any]:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return lambda: aws.iam.Policy("p", policy=document)


def _environment(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "repository": "repo",
        "environment": "production",
        "reviewers": [{"teams": [42]}],
        "prevent_self_review": True,
        "can_admins_bypass": False,
        "deployment_branch_policy": {"protected_branches": True, "custom_branch_policies": False},
    }
    return lambda: github.RepositoryEnvironment("env", **(good | overrides))


def _power_user(policy_statements: list[dict[str, Any]]) -> Callable[[], Any]:
    def register() -> None:
        role = aws.iam.Role("deploy", assume_role_policy="{}")
        aws.iam.RolePolicyAttachment(
            "deploy-power-user",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/PowerUserAccess",
        )
        aws.iam.RolePolicy(
            "deploy-iam",
            role=role.id,
            policy=json.dumps({"Version": "2012-10-17", "Statement": policy_statements}),
        )

    return register


BOUNDED = [
    {
        "Effect": "Allow",
        "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
        "Resource": "arn:aws:iam::123456789012:role/agent-*",
        "Condition": {"StringEquals": {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/b"}},
    },
    {"Effect": "Deny", "Action": ["iam:DeleteRolePermissionsBoundary"], "Resource": "*"},
]

SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"
PINNED = {"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:o/r:environment:production"}}


def _vpc(flow_log: bool) -> Callable[[], Any]:
    def register() -> None:
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        other = aws.ec2.Vpc("other", cidr_block="10.1.0.0/16")
        aws.ec2.FlowLog("other", vpc_id=other.id, traffic_type="REJECT")
        if flow_log:
            aws.ec2.FlowLog("flow", vpc_id=vpc.id, traffic_type="REJECT")

    return register


def _branch(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "repository_id": "repo",
        "pattern": "main",
        "enforce_admins": True,
        "allows_force_pushes": False,
        "allows_deletions": False,
        "required_pull_request_reviews": [
            {"required_approving_review_count": 1, "dismiss_stale_reviews": True}
        ],
        "required_status_checks": [{"strict": True, "contexts": ["Tests"]}],
    }
    return lambda: github.BranchProtection("main", **(good | overrides))


SA = "serviceAccount:run@p.iam.gserviceaccount.com"
REGION = "europe-west1"
WIF_PINNED = (
    "assertion.repository_owner_id == '1234567' && "
    "assertion.sub == 'repo:o/r:environment:gcp-production'"
)


def _sql(
    ip: dict[str, Any] | None = None, backups: dict[str, Any] | None = None, **top: Any
) -> Callable[[], Any]:
    settings: dict[str, Any] = {
        "tier": "db-custom-1-3840",
        "deletion_protection_enabled": True,
        "ip_configuration": {
            "ipv4_enabled": False,
            "private_network": "projects/p/global/networks/n",
            "ssl_mode": "ENCRYPTED_ONLY",
        }
        | (ip or {}),
        "backup_configuration": {"enabled": True, "point_in_time_recovery_enabled": True}
        | (backups or {}),
    }
    good: dict[str, Any] = {
        "database_version": "POSTGRES_16",
        "region": REGION,
        "deletion_protection": True,
        "settings": settings,
    }
    return lambda: gcp.sql.DatabaseInstance("db", **(good | top))


def _redis(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {
        "memory_size_gb": 1,
        "region": REGION,
        "auth_enabled": True,
        "transit_encryption_mode": "SERVER_AUTHENTICATION",
    }
    return lambda: gcp.redis.Instance("cache", **(good | overrides))


def _run(*envs: dict[str, Any]) -> Callable[[], Any]:
    return lambda: gcp.cloudrunv2.Service(
        "svc",
        location=REGION,
        template={
            "containers": [
                {
                    "name": "app",
                    "image": f"{REGION}-docker.pkg.dev/p/r/app@{DIGEST}",
                    "envs": [{"name": "LOG_FORMAT", "value": "json"}, *envs],
                }
            ]
        },
    )


def _secret_env(version: str) -> dict[str, Any]:
    ref = {"secret": "projects/p/secrets/api-key", "version": version}
    return {"name": "API_KEY", "value_source": {"secret_key_ref": ref}}


def _ssl_policy(**overrides: Any) -> Callable[[], Any]:
    good: dict[str, Any] = {"min_tls_version": "TLS_1_2", "profile": "RESTRICTED"}
    return lambda: gcp.compute.SSLPolicy("tls", **(good | overrides))


def _repository(**docker_config: Any) -> Callable[[], Any]:
    return lambda: gcp.artifactregistry.Repository(
        "repo",
        repository_id="repo",
        location=REGION,
        format="DOCKER",
        docker_config={"immutable_tags": True} | docker_config,
    )


def _repository_member(member: str) -> Callable[[], Any]:
    return lambda: gcp.artifactregistry.RepositoryIamMember(
        "read",
        repository="repo",
        location=REGION,
        role="roles/artifactregistry.reader",
        member=member,
    )


def _wif(condition: str) -> Callable[[], Any]:
    return lambda: gcp.iam.WorkloadIdentityPoolProvider(
        "github",
        workload_identity_pool_id="pool",
        workload_identity_pool_provider_id="github",
        attribute_mapping={"google.subject": "assertion.sub"},
        attribute_condition=condition,
        oidc={"issuer_uri": "https://token.actions.githubusercontent.com"},
    )


def _project_role(role: str) -> Callable[[], Any]:
    return lambda: gcp.projects.IAMMember("grant", project="p", role=role, member=SA)


# rule -> (compliant, violating, the violation's message mentions)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], str]] = {
    "rds-storage-encrypted": (_rds(), _rds(storage_encrypted=False), "storageEncrypted"),
    "rds-not-public": (_rds(), _rds(publicly_accessible=True), "publicly accessible"),
    "rds-backup-retention": (_rds(), _rds(backup_retention_period=1), "at least 7"),
    "rds-deletion-protection": (_rds(), _rds(deletion_protection=False), "deletionProtection"),
    "rds-multi-az": (_rds(), _rds(multi_az=False), "single AZ"),
    "rds-enhanced-monitoring": (_rds(), _rds(monitoring_interval=0), "monitoringInterval"),
    "rds-log-exports": (
        _rds(),
        _rds(enabled_cloudwatch_logs_exports=["upgrade"]),
        "CloudWatch",
    ),
    "rds-password-by-reference": (
        _rds(),
        _rds(manage_master_user_password=False, password=pulumi.Output.secret("hunter2hunter2")),
        "manageMasterUserPassword",
    ),
    "rds-force-ssl": (
        lambda: aws.rds.ParameterGroup(
            "params", family="postgres16", parameters=[{"name": "rds.force_ssl", "value": "1"}]
        ),
        lambda: aws.rds.ParameterGroup("params", family="postgres16", parameters=[]),
        "rds.force_ssl",
    ),
    "elasticache-encrypted": (
        _cache(),
        _cache(transit_encryption_enabled=False),
        "in-transit",
    ),
    "elasticache-auth": (_cache(), _cache(auth_token=None), "AUTH"),
    "elasticache-failover": (_cache(), _cache(multi_az_enabled=False), "failover"),
    "elasticache-backups": (_cache(), _cache(snapshot_retention_limit=0), "backups"),
    "no-world-ingress": (_ingress("0.0.0.0/0", 443), _ingress("0.0.0.0/0", 5432), "5432"),
    "default-security-group-closed": (
        lambda: aws.ec2.DefaultSecurityGroup("default", vpc_id="vpc-1", ingress=[], egress=[]),
        lambda: aws.ec2.DefaultSecurityGroup(
            "default",
            vpc_id="vpc-1",
            ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
        ),
        "default security group",
    ),
    "subnet-no-public-ip": (
        lambda: aws.ec2.Subnet("s", vpc_id="v", cidr_block="10.0.0.0/24"),
        lambda: aws.ec2.Subnet(
            "s", vpc_id="v", cidr_block="10.0.0.0/24", map_public_ip_on_launch=True
        ),
        "public IPs",
    ),
    "alb-drop-invalid-headers": (
        _alb(),
        _alb(drop_invalid_header_fields=False),
        "dropInvalidHeaderFields",
    ),
    "alb-deletion-protection": (
        _alb(),
        _alb(enable_deletion_protection=False),
        "enableDeletionProtection",
    ),
    "alb-desync-mitigation": (_alb(), _alb(desync_mitigation_mode="monitor"), "desync"),
    "alb-access-logs": (_alb(), _alb(access_logs=None), "access logs"),
    "alb-https-only": (
        lambda: aws.lb.Listener(
            "http",
            load_balancer_arn="arn",
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                }
            ],
        ),
        lambda: aws.lb.Listener(
            "http",
            load_balancer_arn="arn",
            port=80,
            protocol="HTTP",
            default_actions=[{"type": "forward", "target_group_arn": "tg"}],
        ),
        "plain-HTTP",
    ),
    "alb-tls-policy": (
        lambda: aws.lb.Listener(
            "https",
            load_balancer_arn="arn",
            port=443,
            protocol="HTTPS",
            ssl_policy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
            default_actions=[{"type": "forward", "target_group_arn": "tg"}],
        ),
        lambda: aws.lb.Listener(
            "https",
            load_balancer_arn="arn",
            port=443,
            protocol="HTTPS",
            ssl_policy="ELBSecurityPolicy-2016-08",
            default_actions=[{"type": "forward", "target_group_arn": "tg"}],
        ),
        "ELBSecurityPolicy-2016-08",
    ),
    "target-group-health-check": (
        lambda: aws.lb.TargetGroup("tg", port=80, protocol="HTTP", health_check={"path": "/r"}),
        lambda: aws.lb.TargetGroup("tg", port=80, protocol="HTTP"),
        "health check",
    ),
    "ecs-not-privileged": (_task(), _task(privileged=True), "privileged"),
    "ecs-container-logging": (_task(), _task(logConfiguration=None), "logConfiguration"),
    "ecs-secrets-by-reference": (
        _task(),
        _task(environment=[{"name": "OPENAI_API_KEY", "value": "sk-abcdefghijklmnopqrstuv"}]),
        "OPENAI_API_KEY",
    ),
    "image-pinned-by-digest": (_task(), _task(image="nginx:latest"), "nginx:latest"),
    "local-image-pinned": (
        lambda: docker.Container("c", image=DIGEST),
        lambda: docker.Container("c", image="postgres:16"),
        "postgres:16",
    ),
    "ecs-no-public-ip": (
        lambda: aws.ecs.Service(
            "svc", network_configuration={"subnets": ["s"], "assign_public_ip": False}
        ),
        lambda: aws.ecs.Service(
            "svc", network_configuration={"subnets": ["s"], "assign_public_ip": True}
        ),
        "public IP",
    ),
    "ecs-latest-platform": (
        lambda: aws.ecs.Service("svc", launch_type="FARGATE", platform_version="1.4.0"),
        lambda: aws.ecs.Service("svc", launch_type="FARGATE", platform_version="1.3.0"),
        "1.3.0",
    ),
    "ecs-container-insights": (
        lambda: aws.ecs.Cluster("c", settings=[{"name": "containerInsights", "value": "enabled"}]),
        lambda: aws.ecs.Cluster("c"),
        "Container Insights",
    ),
    "ecr-immutable-tags": (
        lambda: aws.ecr.Repository("r", image_tag_mutability="IMMUTABLE"),
        lambda: aws.ecr.Repository("r", image_tag_mutability="MUTABLE"),
        "mutable",
    ),
    "ecr-scan-on-push": (
        lambda: aws.ecr.Repository("r", image_scanning_configuration={"scan_on_push": True}),
        lambda: aws.ecr.Repository("r"),
        "scanned",
    ),
    "log-retention": (
        lambda: aws.cloudwatch.LogGroup("l", retention_in_days=365),
        lambda: aws.cloudwatch.LogGroup("l"),
        "forever",
    ),
    "alarm-has-action": (
        lambda: aws.cloudwatch.MetricAlarm(
            "a",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            alarm_actions=["arn:aws:sns:eu-west-1:1:t"],
        ),
        lambda: aws.cloudwatch.MetricAlarm(
            "a", comparison_operator="GreaterThanThreshold", evaluation_periods=1
        ),
        "notifies no one",
    ),
    "sns-topic-cmk": (
        lambda: aws.sns.Topic("t", kms_master_key_id="arn:aws:kms:eu-west-1:1:key/k"),
        lambda: aws.sns.Topic("t", kms_master_key_id="alias/aws/sns"),
        "customer managed key",
    ),
    "kms-key-rotation": (
        lambda: aws.kms.Key("k", enable_key_rotation=True),
        lambda: aws.kms.Key("k"),
        "rotation",
    ),
    "s3-public-access-blocked": (
        lambda: aws.s3.BucketPublicAccessBlock(
            "b",
            bucket="b",
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        ),
        lambda: aws.s3.BucketPublicAccessBlock("b", bucket="b", block_public_acls=True),
        "blockPublicPolicy",
    ),
    "iam-no-wildcard-actions": (
        _policy([{"Effect": "Allow", "Action": ["ecr:BatchGetImage"], "Resource": "arn:x"}]),
        _policy([{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]),
        "every action",
    ),
    "iam-no-admin-policy": (
        lambda: aws.iam.RolePolicyAttachment(
            "a", role="r", policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess"
        ),
        lambda: aws.iam.RolePolicyAttachment(
            "a", role="r", policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"
        ),
        "AdministratorAccess",
    ),
    "github-oidc-trust-pinned": (
        _trust(PINNED),
        _trust({"StringLike": {SUB: "repo:o/r:*"}, "StringEquals": {AUD: "sts.amazonaws.com"}}),
        "pin `sub`",
    ),
    "iam-power-user-bounded": (
        _power_user(BOUNDED),
        _power_user(BOUNDED[:1]),
        "permissions boundary",
    ),
    "vpc-flow-logs": (_vpc(True), _vpc(False), "flow log"),
    "github-branch-protection": (
        _branch(),
        _branch(allows_force_pushes=True),
        "force pushes",
    ),
    "github-production-reviewers": (
        _environment(),
        _environment(reviewers=[], can_admins_bypass=True),
        "no required reviewers",
    ),
    "cloudsql-private-ip-only": (_sql(), _sql(ip={"ipv4_enabled": True}), "public IP"),
    "cloudsql-ssl-enforced": (
        _sql(),
        _sql(ip={"ssl_mode": "ALLOW_UNENCRYPTED_AND_ENCRYPTED"}),
        "without TLS",
    ),
    "cloudsql-backups": (
        _sql(),
        _sql(backups={"point_in_time_recovery_enabled": False}),
        "point-in-time recovery",
    ),
    "cloudsql-deletion-protection": (
        _sql(),
        _sql(deletion_protection=False),
        "deletionProtection",
    ),
    "memorystore-auth-tls": (
        _redis(),
        _redis(transit_encryption_mode="DISABLED"),
        "in-transit encryption",
    ),
    "cloudrun-secrets-pinned": (_run(_secret_env("3")), _run(_secret_env("latest")), "latest"),
    "cloudrun-no-plaintext-credentials": (
        _run({"name": "MODEL", "value": "claude"}),
        _run({"name": "OPENAI_API_KEY", "value": "sk-" + "x" * 40}),
        "OPENAI_API_KEY",
    ),
    "artifact-registry-immutable-tags": (
        _repository(),
        _repository(immutable_tags=False),
        "immutableTags",
    ),
    "artifact-registry-not-public": (
        _repository_member(SA),
        _repository_member("allUsers"),
        "allUsers",
    ),
    "gcp-wif-github-pinned": (
        _wif(WIF_PINNED),
        _wif("assertion.repository == 'o/r'"),
        "repository_owner_id",
    ),
    "gcp-no-basic-or-impersonation-roles": (
        _project_role("roles/run.admin"),
        _project_role("roles/editor"),
        "basic role",
    ),
    "gcp-lb-strong-tls": (_ssl_policy(), _ssl_policy(min_tls_version=None), "TLS_1_0"),
}


def test_every_rule_has_a_case_and_names_its_controls() -> None:
    assert set(CASES) == set(POLICIES)
    assert len(POLICIES) >= 25
    for policy in POLICIES.values():
        assert any(tag in policy.description for tag in ("FSBP", "CIS", "CKV", "OpenSSF")), (
            policy.name
        )


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_passes_the_compliant_resource_and_refuses_the_violating_one(rule: str) -> None:
    compliant, violating, mentions = CASES[rule]
    assert violations(rule, compliant) == []
    found = violations(rule, violating)
    assert found, f"{rule} let the violating resource through"
    assert any(mentions in message for message in found), found


def test_a_value_unknown_during_preview_is_no_violation() -> None:
    """The container definitions depend on a role created in the same run: unknown in a
    preview, where the rule must stay silent, and known (and violating) at `up`."""

    def register() -> None:
        role = aws.iam.Role("task", assume_role_policy="{}")
        aws.ecs.TaskDefinition(
            "task",
            family="task",
            container_definitions=role.arn.apply(
                lambda arn: json.dumps(
                    [_container(environment=[{"name": "DB_PASSWORD", "value": arn}])]
                )
            ),
        )

    assert violations("ecs-secrets-by-reference", register, preview=True) == []
    assert violations("ecs-secrets-by-reference", register) != []


def _job(*envs: dict[str, Any]) -> Callable[[], Any]:
    container = {"image": f"{REGION}-docker.pkg.dev/p/r/app@{DIGEST}", "envs": list(envs)}
    return lambda: gcp.cloudrunv2.Job(
        "migrate", location=REGION, template={"template": {"containers": [container]}}
    )


@pytest.mark.parametrize(
    ("rule", "compliant", "violating"),
    [
        ("cloudrun-secrets-pinned", _secret_env("3"), _secret_env("latest")),
        (
            "cloudrun-no-plaintext-credentials",
            {"name": "MODEL", "value": "claude"},
            {"name": "OPENAI_API_KEY", "value": "sk-" + "x" * 40},
        ),
    ],
)
def test_the_migration_job_gets_the_services_env_rules(
    rule: str, compliant: dict[str, Any], violating: dict[str, Any]
) -> None:
    assert violations(rule, _job(compliant)) == []
    assert violations(rule, _job(violating)) != []


def test_a_secret_is_seen_unwrapped() -> None:
    """A cache AUTH token set from a secret counts as set (the CLI hands rules plain values)."""
    assert violations("elasticache-auth", _cache(auth_token=pulumi.Output.secret("t" * 32))) == []


def test_a_modern_tls12_policy_passes_and_the_compatible_default_is_refused() -> None:
    assert violations("gcp-lb-strong-tls", _ssl_policy(profile="MODERN")) == []
    found = violations("gcp-lb-strong-tls", _ssl_policy(profile=None))
    assert found == ["profile COMPATIBLE admits weak cipher suites: use MODERN or RESTRICTED"]


def test_gcp_project_level_impersonation_is_refused() -> None:
    found = violations(
        "gcp-no-basic-or-impersonation-roles",
        _project_role("roles/iam.serviceAccountTokenCreator"),
    )
    assert found and "every service account" in found[0]


def test_the_wif_condition_must_pin_sub_too() -> None:
    owner_only = _wif("assertion.repository_owner_id == '1234567'")
    assert violations("gcp-wif-github-pinned", owner_only) == [
        "the provider's attributeCondition does not pin assertion.sub: any GitHub repository "
        "could exchange its tokens"
    ]


def test_an_ephemeral_tier_takes_backups_without_point_in_time_recovery() -> None:
    """config/ephemeral.json lowers the PITR requirement; backups themselves stay checked."""
    ephemeral = json.loads((PROJECT_DIR / "policy/config/ephemeral.json").read_text())
    rule = [POLICIES["cloudsql-backups"]]
    no_pitr = run_components(_sql(backups={"point_in_time_recovery_enabled": False}))
    assert evaluate(no_pitr, rule, ephemeral) == []
    no_backups = run_components(_sql(backups={"enabled": False}))
    assert [v.message for v in evaluate(no_backups, rule, ephemeral)] == [
        "automated backups are off (settings.backupConfiguration.enabled)"
    ]
