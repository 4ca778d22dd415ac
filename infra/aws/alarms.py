"""CloudWatch alarms on the load balancer, the service, the database and the cache, sent to
an SNS topic (with an optional email subscription).

Database storage autoscales, and CloudWatch has no metric for the current allocation, so a
fixed free-space threshold cannot be a percentage of it. Two signals instead: the metric alarm
fires below 10% of the *initial* allocation, which autoscaling (it grows the volume at 10% free
of the current one) never lets happen unless it fails or is out of room; and RDS's own storage
events, which measure against the autoscaling maximum (80% of it reached, a step would reach
it, it cannot scale, storage exhausted), reach the same topic through EventBridge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# RDS events that mean storage really is running out, not every autoscaling step:
# 0225 allocation at 80% of the maximum, 0224 a pending step would reach the maximum,
# 0223 autoscaling cannot scale, 0007 storage exhausted.
RDS_STORAGE_EVENTS = ("RDS-EVENT-0225", "RDS-EVENT-0224", "RDS-EVENT-0223", "RDS-EVENT-0007")


@dataclass(frozen=True)
class AlarmsArgs:
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    database_identifier: pulumi.Input[str]
    database_arn: pulumi.Input[str]
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
    missing_data: str = "notBreaching"


class Alarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # FSBP SNS.1 / CKV_AWS_26 with a key of our own: CloudWatch cannot publish to a topic
        # under the AWS-managed aws/sns key.
        key = self._topic_key(name)
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.arn, opts=child)
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
            # UnHealthyHostCount stays 0 when there are no targets at all; no data means no
            # healthy target too (the load balancer publishes nothing for an empty group).
            _Alarm(
                "no-healthy-hosts",
                "AWS/ApplicationELB",
                "HealthyHostCount",
                {**alb, "TargetGroup": args.target_group_arn_suffix},
                "Minimum",
                "LessThanThreshold",
                1,
                "no task passes its readiness check: the service is down",
                periods=2,
                missing_data="breaching",
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
                f"database free storage below {args.database_storage_gb * 0.1:g} GiB (10% of the "
                "initial allocation): storage autoscaling is failing or at its maximum",
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
                treat_missing_data=alarm.missing_data,
                alarm_description=alarm.description,
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=child,
            )
        self._storage_events(name, topic, args.database_arn)
        self.topic_arn = topic.arn
        self.register_outputs({"topicArn": self.topic_arn})

    def _topic_key(self, name: str) -> aws.kms.Key:
        """A rotating key only this account administers; CloudWatch alarms and EventBridge
        (the RDS storage events) may use it to publish, from this account only."""
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self))
        publishers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
        return aws.kms.Key(
            f"{name}-key",
            description=f"{name}: encrypts the alarm topic",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministers",
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": pulumi.Output.concat(
                                    "arn:",
                                    partition.partition,
                                    ":iam::",
                                    account.account_id,
                                    ":root",
                                )
                            },
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "AlarmsAndEventsPublish",
                            "Effect": "Allow",
                            "Principal": {"Service": publishers},
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": account.account_id}
                            },
                        },
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _storage_events(
        self, name: str, topic: aws.sns.Topic, database_arn: pulumi.Input[str]
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-db-storage",
            description="RDS storage near or at the autoscaling maximum, or exhausted",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.rds"],
                    "detail-type": ["RDS DB Instance Event"],
                    "resources": [database_arn],
                    "detail": {"EventID": list(RDS_STORAGE_EVENTS)},
                }
            ),
            opts=child,
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self))
        # A topic policy replaces SNS's default one: keep its same-account statement (which is
        # how CloudWatch alarms publish) and let only this rule publish through EventBridge.
        aws.sns.TopicPolicy(
            f"{name}-topic",
            arn=topic.arn,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "SameAccount",
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
                            "Resource": topic.arn,
                            "Condition": {"StringEquals": {"AWS:SourceOwner": account.account_id}},
                        },
                        {
                            "Sid": "RdsStorageEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": topic.arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                        },
                    ],
                }
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-db-storage", rule=rule.name, arn=topic.arn, opts=child)
