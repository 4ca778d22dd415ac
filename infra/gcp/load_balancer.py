"""HTTPS on the team's own hostname in front of Cloud Run: a global external Application Load
Balancer (EXTERNAL_MANAGED) with a serverless NEG, a Google-managed certificate, HTTP answered
only with a redirect, an A record in Cloud DNS, and optionally Cloud Armor.

Why a load balancer and not a Cloud Run domain mapping: domain mappings are Preview, offered in
a subset of regions only, and take no Cloud Armor, TLS policy or static address. Why
`compute.ManagedSslCertificate` and not Certificate Manager: it is free, needs no DNS
authorization records (Google validates it through the load balancer the A record points to)
and attaches to the proxy directly; Certificate Manager's advantages (wildcards, issuance
before the name points at the load balancer, certificate maps for many names) serve no single
service hostname. The cost: Google provisions the certificate only once the name resolves to
the load balancer's address, minutes to about an hour after the first deploy, during which
HTTPS answers with a handshake error.

Cloud Run stays reachable only through the load balancer when the service's ingress is
INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER (the caller sets it: infra/gcp/service.py). The
backend service sets no timeout: a serverless NEG takes the Cloud Run service's own.

Outputs: `url` (https://hostname), `ip_address`, `certificate_name`, `security_policy` (None
without Cloud Armor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

# TLS 1.2 at least, and of TLS 1.2 only the forward-secret AEAD suites (no CBC, no RSA key
# exchange): CKV_GCP_4; every client of the last decade speaks them.
TLS_MIN_VERSION = "TLS_1_2"
TLS_PROFILE = "RESTRICTED"
RECORD_TTL = 300
# Cloud Armor rules: lower numbers are evaluated first; the default rule is fixed at the end.
LOG4SHELL_PRIORITY = 900
THROTTLE_PRIORITY = 1000
DEFAULT_RULE_PRIORITY = 2147483647
# Cloud Armor's preconfigured rule for CVE-2021-44228 (Log4Shell), CKV_GCP_73.
LOG4SHELL_EXPRESSION = "evaluatePreconfiguredWaf('cve-canary')"
RATE_LIMIT_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class CloudArmorArgs:
    # Requests one client IP may send per minute; the rest are answered 429.
    requests_per_minute: int


@dataclass(frozen=True)
class GcpLoadBalancerArgs:
    project: pulumi.Input[str]
    region: str
    service_name: pulumi.Input[str]  # the Cloud Run service, in `region`
    hostname: str
    # The public Cloud DNS managed zone (its resource name) the A record goes in.
    dns_zone_name: str
    cloud_armor: CloudArmorArgs | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _problems(name: str, args: GcpLoadBalancerArgs) -> list[str]:
    found = []
    if args.hostname.startswith("*") or "." not in args.hostname:
        found.append(f"hostname {args.hostname!r}: one service hostname, no wildcard")
    if args.cloud_armor is not None and args.cloud_armor.requests_per_minute < 1:
        found.append("cloud_armor.requests_per_minute: at least 1")
    return [f"GcpLoadBalancer {name!r}: {p}" for p in found]


class GcpLoadBalancer(pulumi.ComponentResource):
    url: str
    ip_address: pulumi.Output[str]
    certificate_name: pulumi.Output[str]
    security_policy: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: GcpLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        problems = _problems(name, args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("agent-deploy:gcp:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = args.project
        self.url = f"https://{args.hostname}"

        address = gcp.compute.GlobalAddress(
            f"{name}-ip",
            project=project,
            address_type="EXTERNAL",
            ip_version="IPV4",
            labels=dict(args.labels),
            opts=child,
        )
        neg = gcp.compute.RegionNetworkEndpointGroup(
            f"{name}-neg",
            project=project,
            region=args.region,
            network_endpoint_type="SERVERLESS",
            cloud_run={"service": args.service_name},
            opts=child,
        )
        self.security_policy = None
        policy = None
        if args.cloud_armor is not None:
            policy = self._cloud_armor(name, project, args.cloud_armor)
            self.security_policy = policy.self_link
        backend = gcp.compute.BackendService(
            f"{name}-backend",
            project=project,
            load_balancing_scheme="EXTERNAL_MANAGED",
            protocol="HTTPS",
            backends=[{"group": neg.id}],
            security_policy=policy.self_link if policy is not None else None,
            log_config={"enable": True, "sample_rate": 1.0},
            opts=child,
        )
        url_map = gcp.compute.URLMap(
            f"{name}-https",
            project=project,
            description=f"{args.hostname} to the Cloud Run service",
            default_service=backend.id,
            opts=child,
        )
        # Auto-named: a new hostname replaces it before the old one goes (create, then swap
        # the proxy over, then delete).
        certificate = gcp.compute.ManagedSslCertificate(
            f"{name}-cert",
            project=project,
            type="MANAGED",
            managed={"domains": [args.hostname]},
            opts=child,
        )
        tls = gcp.compute.SSLPolicy(
            f"{name}-tls",
            project=project,
            min_tls_version=TLS_MIN_VERSION,
            profile=TLS_PROFILE,
            opts=child,
        )
        https_proxy = gcp.compute.TargetHttpsProxy(
            f"{name}-https",
            project=project,
            url_map=url_map.id,
            ssl_certificates=[certificate.id],
            ssl_policy=tls.id,
            opts=child,
        )
        self._forwarding_rule(f"{name}-https", project, address, https_proxy.id, 443)

        # HTTP only ever answers with a permanent redirect to the same URL over HTTPS.
        redirect = gcp.compute.URLMap(
            f"{name}-redirect",
            project=project,
            description=f"http://{args.hostname} to https://",
            default_url_redirect={
                "https_redirect": True,
                "redirect_response_code": "MOVED_PERMANENTLY_DEFAULT",
                "strip_query": False,
            },
            opts=child,
        )
        http_proxy = gcp.compute.TargetHttpProxy(
            f"{name}-http", project=project, url_map=redirect.id, opts=child
        )
        self._forwarding_rule(f"{name}-http", project, address, http_proxy.id, 80)

        gcp.dns.RecordSet(
            f"{name}-a",
            project=project,
            managed_zone=args.dns_zone_name,
            name=f"{args.hostname}.",
            type="A",
            ttl=RECORD_TTL,
            rrdatas=[address.address],
            opts=child,
        )
        self.ip_address = address.address
        self.certificate_name = certificate.name
        self.register_outputs(
            {
                "url": self.url,
                "ipAddress": self.ip_address,
                "certificateName": self.certificate_name,
            }
        )

    def _forwarding_rule(
        self,
        name: str,
        project: pulumi.Input[str],
        address: gcp.compute.GlobalAddress,
        target: pulumi.Input[str],
        port: int,
    ) -> gcp.compute.GlobalForwardingRule:
        return gcp.compute.GlobalForwardingRule(
            name,
            project=project,
            load_balancing_scheme="EXTERNAL_MANAGED",
            ip_protocol="TCP",
            ip_address=address.id,
            port_range=str(port),
            target=target,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cloud_armor(
        self, name: str, project: pulumi.Input[str], args: CloudArmorArgs
    ) -> gcp.compute.SecurityPolicy:
        """Throttle each client IP (the address that connected to Google's edge); deny
        Log4Shell probes; allow the rest."""
        everyone: Any = {"versioned_expr": "SRC_IPS_V1", "config": {"src_ip_ranges": ["*"]}}
        return gcp.compute.SecurityPolicy(
            f"{name}-armor",
            project=project,
            type="CLOUD_ARMOR",
            description="Rate limit per client IP, Log4Shell rule",
            rules=[
                {
                    "priority": LOG4SHELL_PRIORITY,
                    "action": "deny(403)",
                    "description": "CVE-2021-44228 (Log4Shell) probes",
                    "match": {"expr": {"expression": LOG4SHELL_EXPRESSION}},
                },
                {
                    "priority": THROTTLE_PRIORITY,
                    "action": "throttle",
                    "description": f"{args.requests_per_minute} requests a minute per client IP",
                    "match": everyone,
                    "rate_limit_options": {
                        "enforce_on_key": "IP",
                        "conform_action": "allow",
                        "exceed_action": "deny(429)",
                        "rate_limit_threshold": {
                            "count": args.requests_per_minute,
                            "interval_sec": RATE_LIMIT_INTERVAL_SECONDS,
                        },
                    },
                },
                {
                    "priority": DEFAULT_RULE_PRIORITY,
                    "action": "allow",
                    "description": "default rule",
                    "match": everyone,
                },
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
