"""CloudWatch alarms on the load balancer, the service, the database and the cache, sent to
an SNS topic (with an optional email subscription)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AlarmsArgs:
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    database_identifier: pulumi.Input[str]
    database_storage_gb: int
    cache_member_ids: Sequence[str]
    email: str | None = None


@dataclass(frozen=True)
class _Alarm:
    suffix: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    comparison: str
    threshold: float
    description: str
    periods: int = 3


class Alarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Not encrypted with aws/sns: CloudWatch cannot publish to a topic under that key.
        topic = aws.sns.Topic(f"{name}-topic", opts=child)
        if args.email is not None:
            aws.sns.TopicSubscription(
                f"{name}-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.email,
                opts=child,
            )
        alb = {"LoadBalancer": args.load_balancer_arn_suffix}
        service = {"ClusterName": args.cluster_name, "ServiceName": args.service_name}
        database = {"DBInstanceIdentifier": args.database_identifier}
        greater = "GreaterThanThreshold"
        alarms = [
            _Alarm(
                "alb-5xx",
                "AWS/ApplicationELB",
                "HTTPCode_ELB_5XX_Count",
                alb,
                "Sum",
                greater,
                10,
                "load balancer returned 5xx",
            ),
            _Alarm(
                "target-5xx",
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                alb,
                "Sum",
                greater,
                10,
                "the service returned 5xx",
            ),
            _Alarm(
                "unhealthy-hosts",
                "AWS/ApplicationELB",
                "UnHealthyHostCount",
                {**alb, "TargetGroup": args.target_group_arn_suffix},
                "Maximum",
                greater,
                0,
                "a task fails its readiness check",
            ),
            _Alarm(
                "service-cpu",
                "AWS/ECS",
                "CPUUtilization",
                service,
                "Average",
                greater,
                85,
                "service CPU above 85%",
            ),
            _Alarm(
                "service-memory",
                "AWS/ECS",
                "MemoryUtilization",
                service,
                "Average",
                greater,
                85,
                "service memory above 85%",
            ),
            _Alarm(
                "db-cpu",
                "AWS/RDS",
                "CPUUtilization",
                database,
                "Average",
                greater,
                80,
                "database CPU above 80%",
            ),
            _Alarm(
                "db-free-storage",
                "AWS/RDS",
                "FreeStorageSpace",
                database,
                "Minimum",
                "LessThanThreshold",
                args.database_storage_gb * 0.1 * 1024**3,
                "database free storage below 10% of allocated",
                periods=1,
            ),
        ]
        for member in args.cache_member_ids:
            alarms.append(
                _Alarm(
                    f"cache-memory-{member.rsplit('-', 1)[-1]}",
                    "AWS/ElastiCache",
                    "DatabaseMemoryUsagePercentage",
                    {"CacheClusterId": member},
                    "Average",
                    greater,
                    80,
                    f"cache node {member} memory above 80%",
                )
            )
        for alarm in alarms:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.suffix}",
                namespace=alarm.namespace,
                metric_name=alarm.metric,
                dimensions=dict(alarm.dimensions),
                statistic=alarm.statistic,
                comparison_operator=alarm.comparison,
                threshold=alarm.threshold,
                period=60,
                evaluation_periods=alarm.periods,
                treat_missing_data="notBreaching",
                alarm_description=alarm.description,
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=child,
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topicArn": self.topic_arn})
