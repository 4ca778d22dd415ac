"""A data store's security group: one TCP port, open only to the service's tasks."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def service_only_security_group(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    client_security_group_id: pulumi.Input[str],
    port: int,
    label: str,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """EC2.18/19: the group admits `port` from the client group only, never a CIDR, and the
    client group gets the matching egress (its own egress is otherwise HTTPS only)."""
    security_group = aws.ec2.SecurityGroup(
        f"{name}-sg", vpc_id=vpc_id, description=f"{name} {label}", opts=opts
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-service",
        security_group_id=security_group.id,
        referenced_security_group_id=client_security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=f"{label} from the service",
        opts=opts,
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-service-out",
        security_group_id=client_security_group_id,
        referenced_security_group_id=security_group.id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=f"service to {label}",
        opts=opts,
    )
    return security_group
