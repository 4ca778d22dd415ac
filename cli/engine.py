"""Run the real program under Pulumi's mocks and record everything it would manage.

This is the engine behind `agent-deploy check` and the test harness: no Pulumi CLI, no cloud
credentials. It executes `__main__.py` exactly as `pulumi up` would, with a recording monitor
that keeps each registration's type, name, parent, inputs (wire names, secrets still wrapped)
and resource options such as `protect`, which plain mocks do not see.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.config import PROJECT
from infra.naming import NAME_RULES, autoname, physical_name, physical_name_problems

SECRET_SIG_KEY = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig
UNKNOWN = rpc.UNKNOWN
MOCK_ACCOUNT = "123456789012"
MOCK_REGION = "eu-west-1"
# Route 53's zone for Application Load Balancers' alias targets in eu-west-1.
MOCK_ALB_ZONE = "Z32O12XQLNTSW2"
MOCK_GCP_PROJECT_NUMBER = "123456789012"
#: What `pulumi.get_organization()` returns on a self-managed (DIY) backend.
MOCK_ORGANIZATION = "organization"
#: The base VPC's range a pr slice looks up (staging's, Pulumi.staging.yaml).
MOCK_VPC_CIDR = "10.20.0.0/16"

ResourceMock = Callable[[pulumi_mocks.MockResourceArgs], dict[str, Any]]
CallMock = Callable[[dict[str, Any]], dict[str, Any]]
#: A stack reference's name (full, or the bare stack) -> that stack's outputs in this run.
StackOutputs = Mapping[str, Mapping[str, Any]]


def _stable_number(text: str, digits: int = 8) -> int:
    modulus: int = 10**digits
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % modulus


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _autoname(args: pulumi_mocks.MockResourceArgs) -> str:
    name = args.inputs.get("name")
    return name if isinstance(name, str) else autoname(args.name)


def _gcp_project(args: pulumi_mocks.MockResourceArgs) -> str:
    project = args.inputs.get("project")
    return project if isinstance(project, str) else "mock-project"


def _gcp_compute(kind: str, scope: str = "global") -> ResourceMock:
    """Compute resources: the name (auto-named when unset) and the self link others cite."""

    def mock(a: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
        name = _autoname(a)
        where = "global" if scope == "global" else f"regions/{a.inputs.get('region', 'mock')}"
        path = f"projects/{_gcp_project(a)}/{where}/{kind}/{name}"
        return {"name": name, "selfLink": f"https://www.googleapis.com/compute/v1/{path}"}

    return mock


def _gcp_account(a: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
    email = f"{a.inputs['accountId']}@{_gcp_project(a)}.iam.gserviceaccount.com"
    return {
        "email": email,
        "member": f"serviceAccount:{email}",
        "name": f"projects/{_gcp_project(a)}/serviceAccounts/{email}",
        "uniqueId": str(_stable_number(email, 21)),
    }


def _arn(args: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
    service = args.typ.split(":")[1].split("/")[0]
    region = "us-east-1"
    return {"arn": f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}:{args.name}"}


def _pem(name: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\nMOCK{_digest(name)}\n-----END CERTIFICATE-----\n"


# Outputs a provider computes on create, keyed by type token. Values are placeholders,
# deterministic so that assertions on derived values are stable; `check` never shows them as
# real (it runs in preview mode, where they stay unknown).
#: What a stack's own earlier outputs hold in an offline run: nothing, as on its first deploy.
PREVIOUS_OUTPUTS: dict[str, Any] = {}

RESOURCE_MOCKS: dict[str, ResourceMock] = {
    "pulumi:pulumi:StackReference": lambda a: {
        "outputs": dict(PREVIOUS_OUTPUTS),
        "secretOutputNames": [],
    },
    "random:index/randomPassword:RandomPassword": lambda a: {
        "result": "mockpw" + hashlib.sha256(a.name.encode()).hexdigest()[:26]
    },
    "random:index/randomId:RandomId": lambda a: {
        "hex": hashlib.sha256(a.name.encode()).hexdigest()[: 2 * int(a.inputs["byteLength"])]
    },
    "docker-build:index:Image": lambda a: {
        "digest": _digest(a.name),
        "ref": f"{(a.inputs.get('tags') or [a.name])[0]}",
    },
    "docker:index/remoteImage:RemoteImage": lambda a: {
        "imageId": _digest(a.inputs.get("name", a.name)),
        "repoDigest": f"{a.inputs.get('name', a.name)}@{_digest(a.name)}",
    },
    # AWS: what the provider computes on create (endpoints, URLs, ARN suffixes).
    "aws:ecr/repository:Repository": lambda a: {
        **_arn(a),
        "registryId": MOCK_ACCOUNT,
        "repositoryUrl": f"{MOCK_ACCOUNT}.dkr.ecr.{MOCK_REGION}.amazonaws.com/{a.name}",
    },
    "aws:rds/instance:Instance": lambda a: {
        **_arn(a),
        "address": f"{a.name}.mock.{MOCK_REGION}.rds.amazonaws.com",
        "endpoint": f"{a.name}.mock.{MOCK_REGION}.rds.amazonaws.com:5432",
        "identifier": a.inputs.get("identifier", a.name),
        "resourceId": f"db-{_stable_number(a.name, 26)}",
        "masterUserSecrets": [
            {
                "secretArn": f"arn:aws:secretsmanager:{MOCK_REGION}:{MOCK_ACCOUNT}:secret:"
                f"rds!db-{_stable_number(a.name)}-AbCdEf",
                "secretStatus": "active",
                "kmsKeyId": "",
            }
        ],
    },
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda a: {
        **_arn(a),
        "primaryEndpointAddress": f"master.{a.name}.mock.euw1.cache.amazonaws.com",
    },
    "aws:lb/loadBalancer:LoadBalancer": lambda a: {
        **_arn(a),
        "dnsName": f"{a.name}-{_stable_number(a.name)}.{MOCK_REGION}.elb.amazonaws.com",
        "zoneId": MOCK_ALB_ZONE,
        "arnSuffix": f"app/{a.name}/{_stable_number(a.name, 16)}",
    },
    "aws:lb/targetGroup:TargetGroup": lambda a: {
        **_arn(a),
        "arnSuffix": f"targetgroup/{a.name}/{_stable_number(a.name, 16)}",
    },
    "aws:secretsmanager/secret:Secret": lambda a: {
        "arn": f"arn:aws:secretsmanager:{MOCK_REGION}:{MOCK_ACCOUNT}:secret:{a.name}-AbCdEf"
    },
    "aws:iam/role:Role": lambda a: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:role/{a.name}",
        "name": a.name,
    },
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda a: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    },
    "aws:cloudwatch/logGroup:LogGroup": lambda a: {
        "arn": f"arn:aws:logs:{MOCK_REGION}:{MOCK_ACCOUNT}:log-group:{a.inputs.get('name', a.name)}"
    },
    "aws:lambda/function:Function": lambda a: {
        "arn": f"arn:aws:lambda:{MOCK_REGION}:{MOCK_ACCOUNT}:function:"
        f"{a.inputs.get('name', a.name)}",
        "name": a.inputs.get("name", a.name),
    },
    "aws:ecs/cluster:Cluster": lambda a: {**_arn(a), "name": a.inputs.get("name", a.name)},
    # Auto-named resources whose name others reference: Pulumi appends a random suffix.
    "aws:rds/subnetGroup:SubnetGroup": lambda a: {**_arn(a), "name": _autoname(a)},
    "aws:rds/parameterGroup:ParameterGroup": lambda a: {**_arn(a), "name": _autoname(a)},
    "aws:elasticache/subnetGroup:SubnetGroup": lambda a: {**_arn(a), "name": _autoname(a)},
    "aws:cloudwatch/eventRule:EventRule": lambda a: {**_arn(a), "name": _autoname(a)},
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": lambda a: {"registryId": MOCK_ACCOUNT},
    "aws:ecs/service:Service": lambda a: {**_arn(a), "name": a.inputs.get("name", a.name)},
    "aws:s3/bucket:Bucket": lambda a: {
        "arn": f"arn:aws:s3:::{_autoname(a)}",
        "bucket": _autoname(a),
    },
    "aws:kms/key:Key": lambda a: {
        "arn": f"arn:aws:kms:{MOCK_REGION}:{MOCK_ACCOUNT}:key/{_stable_number(a.name)}"
    },
    "aws:acm/certificate:Certificate": lambda a: {
        "arn": f"arn:aws:acm:{MOCK_REGION}:{MOCK_ACCOUNT}:certificate/{_stable_number(a.name)}",
        "domainValidationOptions": [
            {
                "domainName": a.inputs["domainName"],
                "resourceRecordName": f"_{_stable_number(a.name)}.{a.inputs['domainName']}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{_stable_number(a.name, 12)}.mock.acm-validations.aws.",
            }
        ],
    },
    "aws:route53/record:Record": lambda a: {"fqdn": str(a.inputs.get("name", "")).rstrip(".")},
    # GCP (gcp-infra-b): what Cloud SQL, Memorystore, Cloud Run, IAM and Monitoring compute.
    "gcp:sql/databaseInstance:DatabaseInstance": lambda a: {
        "privateIpAddress": f"10.20.0.{_stable_number(a.name, 2) + 2}",
        "connectionName": f"{_gcp_project(a)}:{a.inputs.get('region')}:{a.inputs.get('name')}",
        "serverCaCerts": [{"cert": _pem(a.name), "commonName": "C=US,O=Google\\, Inc"}],
    },
    "gcp:redis/instance:Instance": lambda a: {
        "host": f"10.30.0.{_stable_number(a.name, 2) + 4}",
        # Memorystore serves TLS on 6378 only.
        "port": 6378 if a.inputs.get("transitEncryptionMode") == "SERVER_AUTHENTICATION" else 6379,
        "authString": "mockauth-" + hashlib.sha256(a.name.encode()).hexdigest()[:27],
        # Two CAs, as during a rotation.
        "serverCaCerts": [{"cert": _pem(a.name)}, {"cert": _pem(a.name + "-next")}],
    },
    "gcp:cloudrunv2/service:Service": lambda a: {
        "uri": f"https://{a.inputs.get('name', a.name)}-{_stable_number(a.name, 10)}-ew.a.run.app",
    },
    "gcp:monitoring/notificationChannel:NotificationChannel": lambda a: {
        "name": f"projects/{_gcp_project(a)}/notificationChannels/{_stable_number(a.name, 12)}",
    },
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": lambda a: {
        "uptimeCheckId": f"{a.name}-{_stable_number(a.name, 6)}",
    },
    "gcp:monitoring/alertPolicy:AlertPolicy": lambda a: {
        "name": f"projects/{_gcp_project(a)}/alertPolicies/{_stable_number(a.name, 12)}",
    },
    # GCP: names, links and numbers the API assigns.
    "gcp:compute/network:Network": _gcp_compute("networks"),
    "gcp:compute/subnetwork:Subnetwork": _gcp_compute("subnetworks", scope="region"),
    "gcp:compute/globalAddress:GlobalAddress": lambda a: {
        **_gcp_compute("addresses")(a),
        **(
            {"address": f"34.117.{_stable_number(a.name, 2)}.{_stable_number(a.name, 2) + 1}"}
            if a.inputs.get("addressType") == "EXTERNAL"
            else {}
        ),
    },
    # The load balancer in front of Cloud Run (infra/gcp/load_balancer.py).
    "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup": _gcp_compute(
        "networkEndpointGroups", scope="region"
    ),
    "gcp:compute/backendService:BackendService": _gcp_compute("backendServices"),
    "gcp:compute/uRLMap:URLMap": _gcp_compute("urlMaps"),
    "gcp:compute/managedSslCertificate:ManagedSslCertificate": _gcp_compute("sslCertificates"),
    "gcp:compute/sSLPolicy:SSLPolicy": _gcp_compute("sslPolicies"),
    "gcp:compute/targetHttpsProxy:TargetHttpsProxy": _gcp_compute("targetHttpsProxies"),
    "gcp:compute/targetHttpProxy:TargetHttpProxy": _gcp_compute("targetHttpProxies"),
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": _gcp_compute("forwardingRules"),
    "gcp:compute/securityPolicy:SecurityPolicy": _gcp_compute("securityPolicies"),
    "gcp:compute/firewall:Firewall": _gcp_compute("firewalls"),
    "gcp:serviceaccount/account:Account": _gcp_account,
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": lambda a: {
        "name": f"projects/{MOCK_GCP_PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
        f"{a.inputs['workloadIdentityPoolId']}",
        "state": "ACTIVE",
    },
    "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider": lambda a: {
        "name": f"projects/{MOCK_GCP_PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
        f"{a.inputs['workloadIdentityPoolId']}/providers/{a.inputs['workloadIdentityPoolProviderId']}",
        "state": "ACTIVE",
    },
    "gcp:projects/iAMCustomRole:IAMCustomRole": lambda a: {
        "name": f"projects/{_gcp_project(a)}/roles/{a.inputs['roleId']}"
    },
    "gcp:artifactregistry/repository:Repository": lambda a: {
        "name": a.inputs["repositoryId"],
        "registryUri": f"{a.inputs['location']}-docker.pkg.dev/{_gcp_project(a)}/"
        f"{a.inputs['repositoryId']}",
    },
    "gcp:secretmanager/secret:Secret": lambda a: {
        "name": f"projects/{MOCK_GCP_PROJECT_NUMBER}/secrets/{a.inputs['secretId']}"
    },
    "gcp:secretmanager/secretVersion:SecretVersion": lambda a: {
        "version": "1",
        "name": f"{a.inputs['secret']}/versions/1",
    },
}

CALL_MOCKS: dict[str, CallMock] = {
    # The zone looked up (by name or id) exists; its id is derived from what was asked.
    "aws:route53/getZone:getZone": lambda a: {
        "zoneId": a.get("zoneId") or f"Z{_stable_number(str(a.get('name')), 12)}MOCK",
        "id": a.get("zoneId") or f"Z{_stable_number(str(a.get('name')), 12)}MOCK",
        "name": a.get("name") or "example.com",
        "privateZone": False,
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda a: {
        "names": [f"{MOCK_REGION}{z}" for z in "abc"],
        "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)],
        "id": MOCK_REGION,
    },
    "aws:ec2/getVpc:getVpc": lambda a: {
        "id": a.get("id") or "vpc-mock",
        "cidrBlock": MOCK_VPC_CIDR,
        "arn": f"arn:aws:ec2:{MOCK_REGION}:{MOCK_ACCOUNT}:vpc/{a.get('id')}",
    },
    "aws:index/getRegion:getRegion": lambda a: {
        "name": MOCK_REGION,
        "region": MOCK_REGION,
        "id": MOCK_REGION,
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
        "accountId": MOCK_ACCOUNT,
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/mock",
        "userId": "AIDAMOCK",
        "id": MOCK_ACCOUNT,
    },
    "aws:index/getPartition:getPartition": lambda a: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "id": "aws",
    },
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda a: {
        "userName": "AWS",
        "password": "mock-ecr-token",
        "proxyEndpoint": f"https://{MOCK_ACCOUNT}.dkr.ecr.{MOCK_REGION}.amazonaws.com",
        "authorizationToken": "QVdTOm1vY2stZWNyLXRva2Vu",
        "id": MOCK_ACCOUNT,
    },
    "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": lambda a: {
        "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
        "url": "token.actions.githubusercontent.com",
        "clientIdLists": ["sts.amazonaws.com"],
    },
    "aws:elb/getServiceAccount:getServiceAccount": lambda a: {
        "arn": "arn:aws:iam::156460612806:root",
        "id": "156460612806",
    },
    "gcp:redis/getInstance:getInstance": lambda a: {
        "name": a.get("name"),
        "host": f"10.30.0.{_stable_number(str(a.get('name')), 2) + 4}",
        "port": 6378,
        "authString": "mockauth-" + hashlib.sha256(str(a.get("name")).encode()).hexdigest()[:27],
    },
    "gcp:organizations/getClientConfig:getClientConfig": lambda a: {
        "accessToken": "mock-gcp-access-token",
        "project": "mock-project",
        "region": "europe-west1",
        "zone": "europe-west1-b",
        "id": "mock-project",
    },
    "github:index/getUser:getUser": lambda a: {
        "id": str(_stable_number(a["username"])),
        "login": a["username"],
    },
    "github:index/getTeam:getTeam": lambda a: {
        "id": str(_stable_number(a["slug"])),
        "nodeId": f"T_{a['slug']}",
        "slug": a["slug"],
    },
}


def register_resource_mock(token: str) -> Callable[[ResourceMock], ResourceMock]:
    """Let a target's tests or components declare what its provider computes."""

    def decorate(mock: ResourceMock) -> ResourceMock:
        RESOURCE_MOCKS[token] = mock
        return mock

    return decorate


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    depends_on: list[str] = field(default_factory=list)
    provider: str = ""
    # Which resources each input came from (the policy pack's graph rules read them).
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def plain(self) -> dict[str, Any]:
        """Inputs with secret wrappers removed, for assertions on values."""
        result = unwrap(self.inputs)
        assert isinstance(result, dict)
        return result

    def is_secret(self, key: str) -> bool:
        return is_secret(self.inputs.get(key))


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def unwrap(value: Any) -> Any:
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """Secrets become `[secret]`, unknowns `<unknown until deployment>`: safe to print."""
    if is_secret(value):
        return "[secret]"
    if is_unknown(value):
        return "<unknown until deployment>"
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@dataclass
class ProgramRun:
    stack: str
    preview: bool
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    invokes: list[tuple[str, dict[str, Any]]]
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise AssertionError(f"expected one {type_} named {name!r}, found {names}")
        return found[0]

    def children(self, parent: Resource | None) -> list[Resource]:
        urn = parent.urn if parent is not None else None
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, parent: Resource) -> Iterator[Resource]:
        for child in self.children(parent):
            yield child
            yield from self.descendants(child)


class PhysicalNameError(Exception):
    """A name the engine or the cloud would refuse (infra/naming.py), raised at registration."""


class _Mocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        preview: bool,
        resource_mocks: Mapping[str, ResourceMock],
        stack_references: StackOutputs | None = None,
    ) -> None:
        self.preview = preview
        self.resource_mocks = {**RESOURCE_MOCKS, **resource_mocks}
        self.stack_references = stack_references or {}
        self.invokes: list[tuple[str, dict[str, Any]]] = []

    def _referenced(self, args: pulumi_mocks.MockResourceArgs) -> dict[str, Any] | None:
        """Another stack's outputs, read in preview too (a real engine reads them then)."""
        if args.typ != "pulumi:pulumi:StackReference":
            return None
        name = str(args.inputs.get("name", args.name))
        outputs = self.stack_references.get(name, self.stack_references.get(name.split("/")[-1]))
        return None if outputs is None else {"outputs": dict(outputs), "secretOutputNames": []}

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        problems = physical_name_problems(args.typ, args.name, args.inputs)
        if problems:
            raise PhysicalNameError("; ".join(problems))
        state = dict(args.inputs)
        rule = NAME_RULES.get(args.typ)
        if rule is not None and physical_name(args.typ, args.name, state) is not None:
            # As the engine does, in preview too: the name is an input after Check.
            state.setdefault(rule.property, physical_name(args.typ, args.name, state))
        referenced = self._referenced(args)
        if referenced is not None:
            state |= referenced
        elif not self.preview:
            mock = self.resource_mocks.get(args.typ)
            if mock is not None:
                state |= mock(args)
            elif args.typ.startswith("aws:"):
                state |= _arn(args)
        # In preview an id is not known yet, exactly as with a real engine.
        return (None if self.preview else f"{args.name}-id"), state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        self.invokes.append((args.token, dict(args.args)))
        mock = CALL_MOCKS.get(args.token)
        # No check failures: MockMonitor iterates the second item, so it must be a list.
        return (mock(dict(args.args)) if mock else {}), []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the resource options that `Mocks.new_resource` never sees."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    # Top-level resources hang off the root stack; record them as parentless.
                    parent=None if "::pulumi:pulumi:Stack::" in request.parent else request.parent,
                    custom=bool(request.custom),
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    depends_on=list(request.dependencies),
                    provider=request.provider,
                    property_dependencies={
                        key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                    },
                )
            )
        return response


def _main_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = _ensure_event_loop()  # type: ignore[no-untyped-call]
    return loop


class _ClosingPolicy(asyncio.DefaultEventLoopPolicy):
    """Remembers every event loop the runtime creates, so each run can close them.

    Pulumi's `_sync_await` gives each executor thread the mocks run in its own loop and
    never closes it (nor the main one). Left to the interpreter's exit, such a loop is
    collected after its self-pipe socket, and `BaseEventLoop.__del__` prints "Exception
    ignored ... ValueError: Invalid file descriptor: -1" (about one run in forty).
    """

    def __init__(self) -> None:
        super().__init__()
        self.created: list[asyncio.AbstractEventLoop] = []

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.created.append(loop)
        return loop

    def begin(self) -> ThreadPoolExecutor:
        """A fresh executor for this run's RPC threads on the main loop (kept between runs:
        Outputs made outside a run live on it)."""
        executor = ThreadPoolExecutor(thread_name_prefix="agent-deploy-mocks")
        _main_loop().set_default_executor(executor)
        return executor

    def end(self, executor: ThreadPoolExecutor) -> None:
        """Joins the run's threads and closes the loops they made."""
        executor.shutdown(wait=True)
        main = _main_loop()
        for loop in self.created:
            if loop is not main and not loop.is_running() and not loop.is_closed():
                loop.close()
        self.created = [main]

    def close_all(self) -> None:
        for loop in self.created:
            if not loop.is_running() and not loop.is_closed():
                loop.close()


class _Warnings(logging.Handler):
    """What the program logs at warning level or above (`pulumi.log.warn`), kept per run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_LOOPS = _ClosingPolicy()
asyncio.set_event_loop_policy(_LOOPS)
atexit.register(_LOOPS.close_all)


def _resolve(value: Any) -> tuple[Any, bool]:
    output = pulumi.Output.from_input(value)
    known = _sync_await(output.is_known())
    secret = _sync_await(output.is_secret())
    resolved = _sync_await(output.future(with_unknowns=True)) if known else UNKNOWN
    return (UNKNOWN if not known else resolved), secret


def _run(
    stack: str,
    program: Callable[[], None],
    config: dict[str, str],
    secret_keys: set[str],
    preview: bool,
    resource_mocks: Mapping[str, ResourceMock] | None = None,
    stack_references: StackOutputs | None = None,
) -> ProgramRun:
    mocks = _Mocks(preview, resource_mocks or {}, stack_references)
    monitor = _RecordingMonitor(mocks)
    warnings = _Warnings()
    logger = logging.getLogger(f"{__name__}.program")
    logger.handlers[:] = [warnings]
    logger.propagate = False
    settings.ROOT.set(None)  # a fresh root stack per run: runs never see each other
    executor = _LOOPS.begin()
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack=stack,
        preview=preview,
        logger=logger,
        monitor=monitor,
        organization=MOCK_ORGANIZATION,
    )
    pulumi.runtime.set_all_config(dict(config), sorted(secret_keys))
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    try:
        _sync_await(run_pulumi_func(program))
        root = settings.get_root_resource()
        exported: dict[str, Any] = getattr(root, "outputs", {}) or {}
        outputs: dict[str, Any] = {}
        secret_outputs: set[str] = set()
        for name, value in exported.items():
            outputs[name], secret = _resolve(value)
            if secret:
                secret_outputs.add(name)
    except Exception as error:
        # What got registered before the failure: a config error must leave this empty.
        error.registered = list(monitor.registrations)  # type: ignore[attr-defined]
        error.warnings = warnings.messages  # type: ignore[attr-defined]
        raise
    finally:
        _LOOPS.end(executor)
    return ProgramRun(
        stack,
        preview,
        monitor.registrations,
        outputs,
        secret_outputs,
        mocks.invokes,
        warnings.messages,
    )


def run_program(
    stack: str,
    config: dict[str, str],
    secret_keys: set[str],
    *,
    project_dir: Path,
    preview: bool = False,
    resource_mocks: Mapping[str, ResourceMock] | None = None,
    stack_references: StackOutputs | None = None,
) -> ProgramRun:
    """Execute `project_dir/__main__.py` for `stack` under mocks and return what it registered.

    `resource_mocks` replaces what a provider computes for some types in this run only (the
    local end-to-end run makes generated passwords real random values this way).
    `stack_references` gives StackReferences their stack's outputs; None runs the base named
    by `pullRequests.base` (its own stack file, not in preview) and uses its outputs.
    Exceptions from the program (a StackConfigError, say) propagate unchanged, after the
    runtime has drained, so nothing is left running for the next run.
    """
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    if stack_references is None:
        stack_references = _base_outputs(config, project_dir)
    run = _run(stack, program, config, secret_keys, preview, resource_mocks, stack_references)
    if not preview and resource_mocks is None:
        _RUN_OUTPUTS[_run_key(project_dir, stack, config)] = dict(run.outputs)
    return run


#: Outputs of the non-preview runs of this process, by (project, stack, config): a slice's base
#: that already ran (`cost --all` prices staging before pr) is not run a second time.
_RUN_OUTPUTS: dict[tuple[str, str, str], dict[str, Any]] = {}


def _run_key(project_dir: Path, stack: str, config: Mapping[str, str]) -> tuple[str, str, str]:
    return (str(project_dir.resolve()), stack, json.dumps(sorted(config.items())))


def _base_outputs(config: Mapping[str, str], project_dir: Path) -> dict[str, dict[str, Any]]:
    """The outputs of the stack `pullRequests.base` names, from running its own stack file
    (none when there is no such file: the slice then reports its base as missing)."""
    from cli.stackfile import StackFileError, load_stack_file

    try:
        section = json.loads(config.get(f"{PROJECT}:pullRequests", "{}"))
    except json.JSONDecodeError:
        return {}
    base = section.get("base") if isinstance(section, dict) else None
    if not isinstance(base, str):
        return {}
    name = base.split("/")[-1]
    try:
        stack_file = load_stack_file(project_dir, name)
    except StackFileError:
        return {}
    known = _RUN_OUTPUTS.get(_run_key(project_dir, name, stack_file.config))
    if known is None:
        run = run_program(
            name,
            stack_file.config,
            stack_file.secret_keys,
            project_dir=project_dir,
            stack_references={},
        )
        known = dict(run.outputs)
    return {name: known}


def run_function(
    stack: str,
    function: Callable[[], Any],
    config: dict[str, str] | None = None,
    secret_keys: set[str] | None = None,
    *,
    preview: bool = False,
) -> ProgramRun:
    """Run `function` (which registers resources) as a whole program under the same mocks.

    For testing components on their own: the same recording monitor, call mocks and config
    handling as `run_program`, without `__main__.py`. What `function` returns is exported as
    the stack output `result` when it is not None.
    """

    def program() -> None:
        result = function()
        if result is not None:
            pulumi.export("result", result)

    return _run(stack, program, config or {}, secret_keys or set(), preview)
