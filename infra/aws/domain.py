"""HTTPS on the team's own hostname: an ACM certificate validated through Route 53, and the
alias records that send the hostname to the load balancer.

Two steps, because each side needs the other: the HTTPS listener needs the (validated)
certificate, and the alias records need the load balancer that listener belongs to. The
constructor finds the zone and issues the certificate; `alias_to` adds the records once the
load balancer exists. A certificate managed elsewhere (`aws.certificateArn`) is used as given.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# DNS validation takes minutes once the zone answers for the domain; a zone that does not
# (not delegated, a CAA record refusing Amazon) would otherwise hold the deploy job for the
# provider's 75 minutes, longer than the job's session.
VALIDATION_TIMEOUT = "30m"


@dataclass(frozen=True)
class DomainArgs:
    hostname: str
    # The public hosted zone: by id, else by name.
    zone_id: str | None = None
    zone_name: str | None = None
    # A certificate managed elsewhere; None: this component issues one.
    certificate_arn: str | None = None
    # The issued certificate also covers `*.<hostname>` (the pr-<n> slices a host serves).
    wildcard: bool = False


class Domain(pulumi.ComponentResource):
    hostname: str
    url: str
    zone_id: pulumi.Output[str]
    # Known only once ACM has issued the certificate: a listener using it waits for that.
    certificate_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DomainArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-deploy:aws:Domain", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self.hostname = args.hostname
        self.url = f"https://{args.hostname}"
        invoke = pulumi.InvokeOutputOptions(parent=self)
        if args.zone_id is not None:
            zone = aws.route53.get_zone_output(zone_id=args.zone_id, opts=invoke)
        else:
            zone = aws.route53.get_zone_output(name=args.zone_name, private_zone=False, opts=invoke)
        self.zone_id = zone.zone_id

        if args.certificate_arn is not None:
            self.certificate_arn = pulumi.Output.from_input(args.certificate_arn)
        else:
            certificate = aws.acm.Certificate(
                f"{name}-certificate",
                domain_name=args.hostname,
                subject_alternative_names=[f"*.{args.hostname}"] if args.wildcard else None,
                validation_method="DNS",
                opts=self._child,
            )
            # One validation record: ACM derives it from the account and the name alone, and a
            # wildcard shares its base name's. A replacement certificate reuses it, hence
            # `allow_overwrite`.
            option = certificate.domain_validation_options[0]
            record = aws.route53.Record(
                f"{name}-validation",
                zone_id=self.zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=300,
                allow_overwrite=True,
                opts=self._child,
            )
            validation = aws.acm.CertificateValidation(
                f"{name}-validation",
                certificate_arn=certificate.arn,
                validation_record_fqdns=[record.fqdn],
                opts=pulumi.ResourceOptions(
                    parent=self, custom_timeouts=pulumi.CustomTimeouts(create=VALIDATION_TIMEOUT)
                ),
            )
            self.certificate_arn = validation.certificate_arn
        self.register_outputs(
            {"hostname": self.hostname, "url": self.url, "certificateArn": self.certificate_arn}
        )

    def alias_to(
        self,
        dns_name: pulumi.Input[str],
        zone_id: pulumi.Input[str],
        *,
        dualstack: bool,
    ) -> list[aws.route53.Record]:
        """Alias records from the hostname to a load balancer: A, and AAAA when it answers
        on IPv6 (a dualstack load balancer); an AAAA alias to an IPv4-only one answers nothing."""
        return [
            aws.route53.Record(
                f"{self._name}-{kind.lower()}",
                zone_id=self.zone_id,
                name=self.hostname,
                type=kind,
                aliases=[{"name": dns_name, "zone_id": zone_id, "evaluate_target_health": True}],
                opts=self._child,
            )
            for kind in (("A", "AAAA") if dualstack else ("A",))
        ]
