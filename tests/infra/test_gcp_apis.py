"""GcpApis: every API the gcp stacks call is enabled, and stays enabled when a stack goes
(magic-modules#14790: disabling would break the project's other stacks)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pytest

from infra.gcp.apis import REQUIRED_SERVICES, GcpApis, GcpApisArgs
from tests.harness import run_components

SERVICE = "gcp:projects/service:Service"


def test_each_api_is_enabled_and_never_disabled_on_destroy() -> None:
    run = run_components(lambda: GcpApis("agent-apis", GcpApisArgs(project="proj-1")) and None)
    services = run.of_type(SERVICE)
    assert sorted(s.plain["service"] for s in services) == sorted(REQUIRED_SERVICES)
    for service in services:
        assert service.plain["project"] == "proj-1"
        assert service.plain["disableOnDestroy"] is False
        assert service.plain["disableDependentServices"] is False
    # What the components call: Run, SQL, Redis, PSA, scanning, WIF token exchange, and
    # the project IAM bindings of GcpDeployIdentity.
    for needed in (
        "run",
        "sqladmin",
        "redis",
        "servicenetworking",
        "containerscanning",
        "sts",
        "cloudresourcemanager",
    ):
        assert f"{needed}.googleapis.com" in REQUIRED_SERVICES


def test_a_resource_that_depends_on_ready_waits_for_every_api() -> None:
    def program() -> None:
        apis = GcpApis(
            "agent-apis",
            GcpApisArgs(project="proj-1", services=["run.googleapis.com", "iam.googleapis.com"]),
        )
        gcp.serviceaccount.Account(
            "later",
            account_id="later-account",
            opts=pulumi.ResourceOptions(depends_on=apis.ready),
        )

    run = run_components(program)
    later = run.one("gcp:serviceaccount/account:Account")
    assert sorted(later.depends_on) == sorted(s.urn for s in run.of_type(SERVICE))
    assert len(later.depends_on) == 2


def test_bad_api_names_are_all_refused_before_anything_is_registered() -> None:
    with pytest.raises(ValueError, match="is not an API name") as error:
        run_components(
            lambda: (
                GcpApis(
                    "agent-apis",
                    GcpApisArgs(
                        project="p",
                        services=[
                            "run",
                            "run.googleapis.com",
                            "run.googleapis.com",
                            "Compute.googleapis.com",
                        ],
                    ),
                )
                and None
            )
        )
    message = str(error.value)
    assert "'run' is not an API name" in message
    assert "'Compute.googleapis.com' is not an API name" in message
    assert "more than once: run.googleapis.com" in message
    assert error.value.registered == []  # type: ignore[attr-defined]
