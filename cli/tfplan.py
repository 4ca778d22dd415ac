"""What the program registers, as a Terraform plan JSON that Checkov's `terraform_plan`
framework reads (`agent-deploy check --stack S --tfplan FILE`).

Checkov has no Pulumi support, so the resources are rewritten the way the Terraform bridge maps
them: type tokens to Terraform types (`TF_TYPES`, the renames of the providers' bridge metadata
for the tokens we register, else the bridge's own rule `aws:mod/camelName:Name` ->
`aws_mod_snake_name`), camelCase inputs to snake_case, Pulumi's pluralised block lists back to
Terraform's singular block names (`settings` -> `setting`), single objects to one-element
blocks. Inputs that come from another resource become `expressions.<attr>.references`, so
Checkov's graph checks (flow logs attached to the VPC, the bucket's public-access block, ...)
see the connections. Secrets are redacted: checks test presence only.
"""

from __future__ import annotations

import re
from typing import Any

from cli.engine import ProgramRun, Resource, is_secret, is_unknown

REDACTED = "REDACTED"
# Renames of pulumi-aws's bridge metadata (`renames.resources`) where the mechanical rule is
# not Terraform's name.
TF_TYPES = {
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "aws_vpc_security_group_ingress_rule"
    ),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "aws_vpc_security_group_egress_rule"
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:cloudwatch/eventRule:EventRule": "aws_cloudwatch_event_rule",
    "aws:cloudwatch/eventTarget:EventTarget": "aws_cloudwatch_event_target",
    # pulumi-gcp's module names are not the google provider's (`cloudrunv2`, `iAMMember`, ...).
    "gcp:artifactregistry/repository:Repository": "google_artifact_registry_repository",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": (
        "google_artifact_registry_repository_iam_member"
    ),
    "gcp:cloudrunv2/service:Service": "google_cloud_run_v2_service",
    "gcp:cloudrunv2/job:Job": "google_cloud_run_v2_job",
    "gcp:projects/iAMMember:IAMMember": "google_project_iam_member",
    "gcp:projects/iAMBinding:IAMBinding": "google_project_iam_binding",
    "gcp:projects/iAMCustomRole:IAMCustomRole": "google_project_iam_custom_role",
    "gcp:projects/service:Service": "google_project_service",
    "gcp:secretmanager/secret:Secret": "google_secret_manager_secret",
    "gcp:secretmanager/secretIamMember:SecretIamMember": "google_secret_manager_secret_iam_member",
    "gcp:secretmanager/secretVersion:SecretVersion": "google_secret_manager_secret_version",
    "gcp:serviceaccount/account:Account": "google_service_account",
    "gcp:serviceaccount/iAMMember:IAMMember": "google_service_account_iam_member",
    "gcp:servicenetworking/connection:Connection": "google_service_networking_connection",
    "gcp:compute/sSLPolicy:SSLPolicy": "google_compute_ssl_policy",
    "gcp:compute/uRLMap:URLMap": "google_compute_url_map",
}
# Map-typed inputs (every other object is a block).
MAPS = frozenset(
    {"tags", "tagsAll", "dimensions", "labels", "userLabels", "annotations", "attributeMapping"}
)
PROVIDERS = {
    "aws": "registry.terraform.io/hashicorp/aws",
    "gcp": "registry.terraform.io/hashicorp/google",
}
# The Terraform provider's local name, the prefix of its types.
TF_PREFIX = {"aws": "aws", "gcp": "google"}
# pulumi-gcp pluralises only these of our list blocks; the google provider's other list blocks
# are plural in Terraform too (`containers`, `conditions`, `database_flags`), so no general rule.
GCP_SINGULAR = {
    "envs": "env",
    "allows": "allow",
    "denies": "deny",
    "weeklyMaintenanceWindows": "weekly_maintenance_window",
    "rules": "rule",
    "backends": "backend",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def tf_type(token: str) -> str | None:
    """The Terraform type of a Pulumi token, or None for what Checkov has no checks on."""
    provider = token.split(":")[0]
    if provider not in PROVIDERS:
        return None
    if token in TF_TYPES:
        return TF_TYPES[token]
    module, member = token.split(":")[1].split("/")
    return f"{TF_PREFIX[provider]}_{module}_{_snake(member)}"


def _singular(key: str) -> str:
    if key.endswith("ies"):
        return key[:-3] + "y"
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key


def _values(value: Any, gcp: bool) -> Any:
    if is_secret(value):
        return REDACTED
    if is_unknown(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_values(v, gcp) for v in value]
    if isinstance(value, dict):
        return _block(value, gcp=gcp)
    return value


def _block(inputs: dict[str, Any], *, gcp: bool = False) -> dict[str, Any]:
    """Wire inputs to Terraform attributes and blocks (lists of one)."""
    result: dict[str, Any] = {}
    for key, value in inputs.items():
        if key.startswith("__"):
            continue
        name = _snake(key)
        converted = _values(value, gcp)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            name = GCP_SINGULAR.get(key, name) if gcp else _singular(name)
        elif isinstance(value, dict) and not is_secret(value) and key not in MAPS:
            converted = [converted]
        result[name] = converted
    return result


def _address_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def plan(run: ProgramRun) -> dict[str, Any]:
    """The plan document of `run` (use an `up`-mode run: its values are known)."""
    exported: list[tuple[Resource, str, str]] = []
    for resource in run.resources:
        type_ = tf_type(resource.type) if resource.custom else None
        if type_ is not None:
            exported.append((resource, type_, f"{type_}.{_address_name(resource.name)}"))
    addresses = {r.urn: address for r, _, address in exported}
    planned, changes, configuration = [], [], []
    for resource, type_, address in exported:
        prefix = resource.type.split(":")[0]
        provider = PROVIDERS[prefix]
        values = _block(resource.inputs, gcp=prefix == "gcp")
        common = {
            "address": address,
            "mode": "managed",
            "type": type_,
            "name": _address_name(resource.name),
            "provider_name": provider,
        }
        planned.append({**common, "schema_version": 0, "values": values})
        changes.append(
            {
                **common,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": {},
                },
            }
        )
        configuration.append(
            {
                **{k: v for k, v in common.items() if k != "provider_name"},
                "provider_config_key": TF_PREFIX[prefix],
                "expressions": _expressions(resource, addresses),
            }
        )
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.0",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": configuration}},
    }


def _expressions(resource: Resource, addresses: dict[str, str]) -> dict[str, Any]:
    expressions: dict[str, Any] = {}
    for key, urns in resource.property_dependencies.items():
        refs: list[str] = []
        for urn in urns:
            if urn in addresses:
                refs += [f"{addresses[urn]}.id", addresses[urn]]
        if refs:
            expressions[_snake(key)] = {"references": refs}
    return expressions
