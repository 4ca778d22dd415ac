"""Cloud Monitoring for the service and its data stores: an uptime check and alert policies.

Outputs: `channel_ids` (the email channel, when an address is given), `uptime_check_id`,
`policy_names` (alert policy resource names by purpose).

Policies are created even without an email address: an open incident still shows in the
console. Threshold conditions compare only with COMPARISON_GT or COMPARISON_LT, so "at the
maximum" is "above max - 0.5".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_gcp as gcp


@dataclass(frozen=True)
class GcpMonitoringArgs:
    project: pulumi.Input[str]
    email: str | None
    service_name: pulumi.Input[str]  # the Cloud Run service's name
    url_host: pulumi.Input[str]  # its host name, or its URL (CloudRunService.url)
    health_path: str
    # The Cloud SQL instance's name (CloudSql.instance_name); None: no database policies.
    database_instance: pulumi.Input[str] | None
    # The Redis instance's id, projects/P/locations/R/instances/N (Memorystore.instance_id).
    redis_instance: pulumi.Input[str] | None
    max_instances: int
    # The service is IAM-protected: the check authenticates with an OIDC token.
    authenticated: bool = False
    error_ratio: float = 0.05
    latency_p99_ms: float = 60_000.0  # agent runs are long; this catches hangs, not slowness
    database_cpu: float = 0.8
    database_disk: float = 0.85
    redis_memory: float = 0.8


def _threshold(
    name: str,
    filter_: pulumi.Input[str],
    threshold: float,
    aligner: str,
    reducer: str = "REDUCE_MAX",
    duration: str = "300s",
) -> Any:
    return {
        "display_name": name,
        "condition_threshold": {
            "filter": filter_,
            "comparison": "COMPARISON_GT",
            "threshold_value": threshold,
            "duration": duration,
            "aggregations": [
                {
                    "alignment_period": "60s",
                    "per_series_aligner": aligner,
                    "cross_series_reducer": reducer,
                }
            ],
            "trigger": {"count": 1},
        },
    }


def _host(url_or_host: str) -> str:
    return (urlsplit(url_or_host).hostname or url_or_host) if "://" in url_or_host else url_or_host


class GcpMonitoring(pulumi.ComponentResource):
    channel_ids: list[pulumi.Output[str]]
    uptime_check_id: pulumi.Output[str]
    policy_names: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: GcpMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:gcp:GcpMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        channels = (
            [
                gcp.monitoring.NotificationChannel(
                    f"{name}-email",
                    project=args.project,
                    type="email",
                    display_name=f"{name} alerts",
                    labels={"email_address": args.email},
                    opts=child,
                )
            ]
            if args.email
            else []
        )
        self.channel_ids = [c.name for c in channels]
        uptime = gcp.monitoring.UptimeCheckConfig(
            f"{name}-uptime",
            project=args.project,
            display_name=f"{name} health",
            period="60s",
            timeout="10s",
            http_check={
                "path": args.health_path,
                "port": 443,
                "use_ssl": True,
                "validate_ssl": True,
                "accepted_response_status_codes": [{"status_class": "STATUS_CLASS_2XX"}],
                "service_agent_authentication": {"type": "OIDC_TOKEN"}
                if args.authenticated
                else None,
            },
            monitored_resource={
                "type": "uptime_url",
                "labels": {
                    "project_id": args.project,
                    "host": pulumi.Output.from_input(args.url_host).apply(_host),
                },
            },
            opts=child,
        )
        self.uptime_check_id = uptime.uptime_check_id
        run = pulumi.Output.format(
            'resource.type = "cloud_run_revision" AND resource.labels.service_name = "{0}"',
            args.service_name,
        )
        requests = pulumi.Output.format(
            '{0} AND metric.type = "run.googleapis.com/request_count"', run
        )
        conditions: dict[str, tuple[str, Any]] = {
            "uptime": (
                "Health check failing",
                _threshold(
                    "uptime check failed",
                    pulumi.Output.format(
                        'resource.type = "uptime_url" AND metric.type = '
                        '"monitoring.googleapis.com/uptime_check/check_passed" AND '
                        'metric.labels.check_id = "{0}"',
                        uptime.uptime_check_id,
                    ),
                    1,
                    "ALIGN_NEXT_OLDER",
                    "REDUCE_COUNT_FALSE",
                    "120s",
                ),
            ),
            "errors": (
                "5xx ratio above threshold",
                {
                    "display_name": f"5xx ratio > {args.error_ratio:.0%}",
                    "condition_threshold": {
                        "filter": pulumi.Output.format(
                            '{0} AND metric.labels.response_code_class = "5xx"', requests
                        ),
                        "denominator_filter": requests,
                        "comparison": "COMPARISON_GT",
                        "threshold_value": args.error_ratio,
                        "duration": "300s",
                        "aggregations": [
                            {
                                "alignment_period": "60s",
                                "per_series_aligner": "ALIGN_RATE",
                                "cross_series_reducer": "REDUCE_SUM",
                            }
                        ],
                        "denominator_aggregations": [
                            {
                                "alignment_period": "60s",
                                "per_series_aligner": "ALIGN_RATE",
                                "cross_series_reducer": "REDUCE_SUM",
                            }
                        ],
                    },
                },
            ),
            "latency": (
                "p99 latency above threshold",
                _threshold(
                    f"p99 latency > {args.latency_p99_ms:.0f} ms",
                    pulumi.Output.format(
                        '{0} AND metric.type = "run.googleapis.com/request_latencies"', run
                    ),
                    args.latency_p99_ms,
                    "ALIGN_PERCENTILE_99",
                ),
            ),
            "instances": (
                "Instances at the maximum",
                _threshold(
                    f"instances at max ({args.max_instances})",
                    pulumi.Output.format(
                        '{0} AND metric.type = "run.googleapis.com/container/instance_count"', run
                    ),
                    args.max_instances - 0.5,
                    "ALIGN_MAX",
                    "REDUCE_SUM",
                    "600s",
                ),
            ),
        }
        if args.database_instance is not None:
            database = pulumi.Output.format(
                'resource.type = "cloudsql_database" AND resource.labels.database_id = "{0}:{1}"',
                args.project,
                args.database_instance,
            )
            for key, metric, limit, title in (
                ("database_cpu", "cpu/utilization", args.database_cpu, "Cloud SQL CPU"),
                ("database_disk", "disk/utilization", args.database_disk, "Cloud SQL disk"),
            ):
                conditions[key] = (
                    f"{title} above {limit:.0%}",
                    _threshold(
                        f"{title} > {limit:.0%}",
                        pulumi.Output.format(
                            '{0} AND metric.type = "cloudsql.googleapis.com/database/{1}"',
                            database,
                            metric,
                        ),
                        limit,
                        "ALIGN_MEAN",
                        duration="600s",
                    ),
                )
        if args.redis_instance is not None:
            conditions["redis_memory"] = (
                f"Redis memory above {args.redis_memory:.0%}",
                _threshold(
                    f"Redis memory > {args.redis_memory:.0%}",
                    pulumi.Output.format(
                        'resource.type = "redis_instance" AND resource.labels.instance_id = '
                        '"{0}" AND metric.type = "redis.googleapis.com/stats/memory/usage_ratio"',
                        args.redis_instance,
                    ),
                    args.redis_memory,
                    "ALIGN_MEAN",
                ),
            )
        policies = {
            key: gcp.monitoring.AlertPolicy(
                f"{name}-{key.replace('_', '-')}",
                project=args.project,
                display_name=f"{name}: {title}",
                combiner="OR",
                conditions=[condition],
                notification_channels=self.channel_ids,
                severity="ERROR" if key in ("uptime", "errors") else "WARNING",
                alert_strategy={"auto_close": "1800s"},
                opts=child,
            )
            for key, (title, condition) in conditions.items()
        }
        self.policy_names = {key: p.name for key, p in policies.items()}
        self.register_outputs({"uptimeCheckId": self.uptime_check_id})
