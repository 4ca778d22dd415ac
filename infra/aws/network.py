"""The VPC: public and private subnets per AZ, NAT by tier, a silent default security group,
flow logs where the tier asks for them, and the load balancer's and tasks' security groups."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.naming import fit

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class AwsNetworkArgs:
    cidr: str
    availability_zones: int
    nat_gateways: Literal["none", "single", "perAz"]
    app_port: int
    flow_logs: bool
    log_retention_days: int
    # Names the S3 gateway endpoint's service (`com.amazonaws.<region>.s3`).
    region: str
    # Listener ports open to the internet on the load balancer.
    public_ports: tuple[int, ...] = (80, 443)
    # A port range open like port 80 (pull-request slices' listeners on a host without domain).
    slice_ports: tuple[int, int] | None = None
    # The permissions boundary the flow-logs role carries (the deploy role's, see identity.py).
    permissions_boundary: pulumi.Input[str] | None = None


def subnet_cidrs(cidr: str, count: int) -> tuple[list[str], list[str]]:
    """Public subnets take the first sixteenths of the VPC, private ones the second half."""
    vpc = ipaddress.IPv4Network(cidr)
    blocks = list(vpc.subnets(prefixlen_diff=4))
    return [str(b) for b in blocks[:count]], [str(b) for b in blocks[8 : 8 + count]]


class AwsNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    alb_security_group_id: pulumi.Output[str]
    task_security_group_id: pulumi.Output[str]
    nat_gateway_count: int

    def __init__(
        self, name: str, args: AwsNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        )
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # EC2.2: the default security group allows nothing in or out.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)

        public_cidrs, private_cidrs = subnet_cidrs(args.cidr, args.availability_zones)
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=igw.id,
            opts=child,
        )
        public: list[aws.ec2.Subnet] = []
        private: list[aws.ec2.Subnet] = []
        for index in range(args.availability_zones):
            zone = zones.names[index]
            subnet = aws.ec2.Subnet(
                f"{name}-public-{index + 1}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                # EC2.15: no automatic public IPs; a task asks for one explicitly when needed.
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{index + 1}", "tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index + 1}",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            public.append(subnet)
            private.append(
                aws.ec2.Subnet(
                    f"{name}-private-{index + 1}",
                    vpc_id=vpc.id,
                    cidr_block=private_cidrs[index],
                    availability_zone=zone,
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-private-{index + 1}", "tier": "private"},
                    opts=child,
                )
            )

        nat_count = {"none": 0, "single": 1, "perAz": args.availability_zones}[args.nat_gateways]
        nats: list[aws.ec2.NatGateway] = []
        for index in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-{index + 1}", domain="vpc", opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index + 1}",
                    allocation_id=eip.id,
                    subnet_id=public[index].id,
                    tags={"Name": f"{name}-nat-{index + 1}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        private_tables: list[aws.ec2.RouteTable] = []
        for index, subnet in enumerate(private):
            table = aws.ec2.RouteTable(f"{name}-private-{index + 1}", vpc_id=vpc.id, opts=child)
            private_tables.append(table)
            if nats:
                aws.ec2.Route(
                    f"{name}-private-{index + 1}-default",
                    route_table_id=table.id,
                    destination_cidr_block=ANYWHERE,
                    nat_gateway_id=nats[index % len(nats)].id,
                    opts=child,
                )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index + 1}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=child,
            )

        if nats:
            # Free, and ECR image layers (stored in S3) then bypass NAT's per-GB charge.
            aws.ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[t.id for t in private_tables],
                tags={"Name": f"{name}-s3"},
                opts=child,
            )

        if args.flow_logs:
            self._flow_logs(name, vpc, args.log_retention_days, args.permissions_boundary)

        # EC2.18/19: only the load balancer is open to the internet, and only on its listeners.
        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb", vpc_id=vpc.id, description=f"{name} load balancer", opts=child
        )
        task_sg = aws.ec2.SecurityGroup(
            f"{name}-tasks", vpc_id=vpc.id, description=f"{name} service tasks", opts=child
        )
        for port in args.public_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-in-{port}",
                security_group_id=alb_sg.id,
                cidr_ipv4=ANYWHERE,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"HTTP{'S' if port == 443 else ''} from the internet",
                opts=child,
            )
        if args.slice_ports is not None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-in-slices",
                security_group_id=alb_sg.id,
                cidr_ipv4=ANYWHERE,
                ip_protocol="tcp",
                from_port=args.slice_ports[0],
                to_port=args.slice_ports[1],
                description="HTTP to pull-request slices from the internet",
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-tasks",
            security_group_id=alb_sg.id,
            referenced_security_group_id=task_sg.id,
            ip_protocol="tcp",
            from_port=args.app_port,
            to_port=args.app_port,
            description="to the service tasks",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-tasks-from-alb",
            security_group_id=task_sg.id,
            referenced_security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=args.app_port,
            to_port=args.app_port,
            description="from the load balancer only",
            opts=child,
        )
        # Tasks call ECR, Secrets Manager, CloudWatch and LLM APIs over HTTPS.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-https-out",
            security_group_id=task_sg.id,
            cidr_ipv4=ANYWHERE,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to AWS APIs and model providers",
            opts=child,
        )

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.alb_security_group_id = alb_sg.id
        self.task_security_group_id = task_sg.id
        self.nat_gateway_count = nat_count
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def _flow_logs(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        retention_days: int,
        permissions_boundary: pulumi.Input[str] | None,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=retention_days, opts=child
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        role = aws.iam.Role(
            fit("aws:iam/role:Role", f"{name}-flow-logs"),
            # Only flow logs of this account may assume it (no confused deputy).
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": account.account_id},
                                "ArnLike": {
                                    "aws:SourceArn": pulumi.Output.concat(
                                        "arn:aws:ec2:*:", account.account_id, ":vpc-flow-log/*"
                                    )
                                },
                            },
                        }
                    ],
                }
            ),
            permissions_boundary=permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                        }
                    ],
                }
            ),
            opts=child,
        )
        # EC2.6 (whose default parameter is REJECT): refused traffic only. All traffic to
        # CloudWatch is ingested per GB and can cost more than the service it watches.
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="REJECT",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            opts=child,
        )
