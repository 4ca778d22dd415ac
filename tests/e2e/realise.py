"""Turn what the program registered for a local stack into Docker Engine API requests.

The input is the mocks engine's record (`cli/engine.py`), the same resources `agent-deploy check
--stack local` lists. Every recorded input of a Docker resource is either translated into the
request the Docker provider would make or refused (`Unsupported`): a setting added in
`infra/local/` can never be silently left out of the end-to-end run.

Planning is pure (no engine), so the translation and the wiring check are unit-tested with
mutated records; `DockerApi` and `realise` do the engine side.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cli.engine import ProgramRun, Resource, unwrap

LABEL = "agent-deploy.e2e"

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILD = "docker-build:index:Image"
CONTAINER = "docker:index/container:Container"
PASSWORD = "random:index/randomPassword:RandomPassword"

# The inputs each type may carry and this realiser honours. Anything else is refused.
KNOWN = {
    NETWORK: {"name", "driver", "internal", "options", "labels"},
    VOLUME: {"name", "driver", "driverOpts", "labels"},
    REMOTE_IMAGE: {"name", "keepLocally"},
    BUILD: {
        "tags",
        "context",
        "dockerfile",
        "platforms",
        "buildArgs",
        "target",
        "labels",
        "push",
        "load",
        "network",
        "buildOnPreview",
    },
    CONTAINER: {
        "name",
        "image",
        "envs",
        "command",
        "entrypoints",
        "ports",
        "volumes",
        "networksAdvanced",
        "healthcheck",
        "restart",
        "wait",
        "waitTimeout",
        "mustRun",
        "attach",
        "logs",
        "stopTimeout",
        "stopSignal",
        "readOnly",
        "tmpfs",
        "capabilities",
        "securityOpts",
        "user",
        "workingDir",
        "labels",
    },
    PASSWORD: {"length", "special", "upper", "lower", "numeric", "overrideSpecial"},
}


class Unsupported(Exception):
    """A recorded resource or input the realiser cannot honour: the run stops before starting."""


class CheckFailed(Exception):
    """A check on a realised container failed; the message names the container and the check."""

    def __init__(self, container: str, check: str, detail: str) -> None:
        super().__init__(f"container {container}: check '{check}' failed: {detail}")
        self.container = container
        self.check = check


@dataclass
class Build:
    tags: list[str]
    context: str
    dockerfile: str
    platforms: list[str]
    build_args: dict[str, str]
    target: str | None
    labels: dict[str, str]
    network: str


@dataclass
class Container:
    name: str
    body: dict[str, Any]
    networks: list[tuple[str, list[str]]]
    wait: bool
    wait_timeout: float
    health_test: list[str]
    urn: str = ""
    # A one-shot (`attach`): started, waited for until it exits, expected to exit 0; never
    # healthy or running afterwards. `logs` only asks the provider to keep its output.
    attach: bool = False
    depends_on: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.body.get("Env") or [])

    @property
    def published(self) -> list[tuple[str, str]]:
        bindings = self.body["HostConfig"].get("PortBindings") or {}
        return [(b["HostIp"], b["HostPort"]) for bs in bindings.values() for b in bs]


@dataclass
class Plan:
    networks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    volumes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)


def duration_ns(text: str) -> int:
    """Go durations as the provider takes them ("5s", "1m30s", "500ms")."""
    units = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Unsupported(f"duration {text!r} is not a Go duration")
    return int(sum(float(n) * units[u] for n, u in parts))


def _check_inputs(resource: Resource) -> dict[str, Any]:
    known = KNOWN.get(resource.type)
    if known is None:
        raise Unsupported(f"{resource.type} {resource.name}: not a resource a local stack realises")
    inputs = unwrap(resource.inputs)
    unknown = sorted(k for k, v in inputs.items() if v not in (None, [], {}) and k not in known)
    if unknown:
        raise Unsupported(
            f"{resource.type} {resource.name}: inputs {', '.join(unknown)} are not realised by "
            "tests/e2e/realise.py; teach it (KNOWN and the translation) before relying on them"
        )
    assert isinstance(inputs, dict)
    return inputs


def _labels(inputs: Mapping[str, Any], run_id: str) -> dict[str, str]:
    labels = inputs.get("labels") or {}
    if isinstance(labels, list):  # the docker provider's [{label, value}] form
        labels = {item["label"]: item["value"] for item in labels}
    return {**labels, LABEL: run_id}


def _known(
    resource: Resource, setting: str, items: list[dict[str, Any]], allowed: set[str]
) -> None:
    unknown = sorted({k for item in items for k, v in item.items() if v is not None} - allowed)
    if unknown:
        raise Unsupported(
            f"container {resource.name}: {setting} settings {unknown} are not realised"
        )


def _container(resource: Resource, inputs: dict[str, Any], run_id: str) -> Container:
    health = inputs.get("healthcheck") or {}
    _known(
        resource,
        "healthcheck",
        [health],
        {"tests", "interval", "timeout", "retries", "startPeriod"},
    )
    _known(resource, "ports", inputs.get("ports") or [], {"internal", "external", "ip", "protocol"})
    _known(
        resource,
        "volumes",
        inputs.get("volumes") or [],
        {"volumeName", "containerPath", "readOnly"},
    )
    _known(resource, "networksAdvanced", inputs.get("networksAdvanced") or [], {"name", "aliases"})
    healthcheck = None
    if health:
        healthcheck = {
            "Test": list(health["tests"]),
            "Interval": duration_ns(health.get("interval", "0s")),
            "Timeout": duration_ns(health.get("timeout", "0s")),
            "Retries": int(health.get("retries", 0)),
            "StartPeriod": duration_ns(health.get("startPeriod", "0s")),
        }
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in inputs.get("ports") or []:
        key = f"{int(port['internal'])}/{port.get('protocol', 'tcp')}"
        exposed[key] = {}
        # The provider's defaults: all interfaces, and an engine-chosen port without `external`.
        external = port.get("external")
        bindings.setdefault(key, []).append(
            {
                "HostIp": port.get("ip", "0.0.0.0"),
                "HostPort": "" if external is None else str(int(external)),
            }
        )
    mounts = []
    for volume in inputs.get("volumes") or []:
        mounts.append(
            {
                "Type": "volume",
                "Source": volume["volumeName"],
                "Target": volume["containerPath"],
                "ReadOnly": bool(volume.get("readOnly", False)),
            }
        )
    networks = [
        (net["name"], list(net.get("aliases") or []))
        for net in inputs.get("networksAdvanced") or []
    ]
    host_config: dict[str, Any] = {
        "PortBindings": bindings,
        "Mounts": mounts,
        "RestartPolicy": {"Name": inputs.get("restart", "no")},
        "ReadonlyRootfs": bool(inputs.get("readOnly", False)),
    }
    capabilities = inputs.get("capabilities") or {}
    if set(capabilities) - {"adds", "drops"}:
        raise Unsupported(f"container {resource.name}: capabilities {sorted(capabilities)}")
    hardening = {
        "Tmpfs": inputs.get("tmpfs"),
        "CapAdd": capabilities.get("adds"),
        "CapDrop": capabilities.get("drops"),
        "SecurityOpt": inputs.get("securityOpts"),
    }
    host_config |= {k: v for k, v in hardening.items() if v}
    body: dict[str, Any] = {
        "Image": inputs["image"],
        "Env": list(inputs.get("envs") or []),
        "Labels": _labels(inputs, run_id),
        "ExposedPorts": exposed,
        "HostConfig": host_config,
    }
    optional = {
        "Cmd": inputs.get("command"),
        "Entrypoint": inputs.get("entrypoints"),
        "Healthcheck": healthcheck,
        "StopTimeout": int(inputs["stopTimeout"]) if "stopTimeout" in inputs else None,
        "StopSignal": inputs.get("stopSignal"),
        "User": inputs.get("user"),
        "WorkingDir": inputs.get("workingDir"),
    }
    body |= {k: v for k, v in optional.items() if v is not None}
    if networks:
        first, aliases = networks[0]
        host_config["NetworkMode"] = first
        body["NetworkingConfig"] = {"EndpointsConfig": {first: {"Aliases": aliases}}}
    return Container(
        name=inputs["name"],
        body=body,
        networks=networks,
        wait=bool(inputs.get("wait", False)),
        wait_timeout=float(inputs.get("waitTimeout", 60)),
        health_test=list(health.get("tests") or []),
        urn=resource.urn,
        attach=bool(inputs.get("attach", False)),
        depends_on=list(resource.depends_on),
    )


def _started_in_order(containers: list[Container]) -> list[Container]:
    """A container starts after the containers it depends on (as the engine orders creates)."""
    ordered: list[Container] = []
    pending = list(containers)
    while pending:
        done = {c.urn for c in ordered}
        ready = [c for c in pending if not ({o.urn for o in pending} - done) & set(c.depends_on)]
        if not ready:
            raise Unsupported(f"containers depend on each other: {[c.name for c in pending]}")
        ordered += ready
        pending = [c for c in pending if c not in ready]
    return ordered


def plan(run: ProgramRun, run_id: str) -> Plan:
    """The requests for every resource `run` recorded, in registration order."""
    result = Plan()
    for resource in run.resources:
        if not resource.custom:
            continue
        inputs = _check_inputs(resource)
        if resource.type == NETWORK:
            body = {
                "Name": inputs["name"],
                "Driver": inputs.get("driver", "bridge"),
                "Internal": bool(inputs.get("internal", False)),
                "Options": inputs.get("options") or {},
                "Labels": _labels(inputs, run_id),
                "CheckDuplicate": True,
            }
            result.networks.append((inputs["name"], body))
        elif resource.type == VOLUME:
            body = {
                "Name": inputs["name"],
                "Driver": inputs.get("driver", "local"),
                "DriverOpts": inputs.get("driverOpts") or {},
                "Labels": _labels(inputs, run_id),
            }
            result.volumes.append((inputs["name"], body))
        elif resource.type == REMOTE_IMAGE:
            result.images.append(inputs["name"])
        elif resource.type == BUILD:
            if inputs.get("push"):
                raise Unsupported(f"{resource.name}: a pushed image is not a local stack's")
            result.builds.append(
                Build(
                    tags=list(inputs["tags"]),
                    context=inputs["context"]["location"],
                    dockerfile=(inputs.get("dockerfile") or {}).get("location", "Dockerfile"),
                    platforms=list(inputs.get("platforms") or []),
                    build_args=dict(inputs.get("buildArgs") or {}),
                    target=inputs.get("target"),
                    labels=dict(inputs.get("labels") or {}),
                    network=inputs.get("network", "default"),
                )
            )
        elif resource.type == CONTAINER:
            result.containers.append(_container(resource, inputs, run_id))
    result.containers = _started_in_order(result.containers)
    return result


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def wiring_problems(plan_: Plan) -> list[str]:
    """Every `scheme://…host…` in a container's environment must name a container that shares a
    network with it (its name or an alias there), and no port is published beyond loopback.
    Messages name the container and variable, never the value (it holds passwords)."""
    problems = []
    for container in plan_.containers:
        exposed = sorted({ip for ip, _ in container.published} - {"127.0.0.1"})
        if exposed:
            problems.append(
                f"container {container.name}: check 'only 127.0.0.1 ports published' failed: "
                f"published on {exposed}"
            )
        names_on: dict[str, set[str]] = {}
        for other in plan_.containers:
            if other is container:
                continue
            for network, aliases in other.networks:
                names_on.setdefault(network, set()).update({other.name, *aliases})
        reachable = set().union(*(names_on.get(n, set()) for n, _ in container.networks))
        for key, value in sorted(container.env.items()):
            if "://" not in value:
                continue
            host = urllib.parse.urlsplit(value).hostname or ""
            if host and not _is_address(host) and host not in reachable:
                problems.append(
                    f"container {container.name}: check 'env {key} names a container on its "
                    f"networks' failed: host {host!r} is none of {sorted(reachable)}"
                )
    return problems


def settings_problems(container: Container, inspected: Mapping[str, Any]) -> list[str]:
    """What the engine holds for a started container that differs from the recorded settings
    (an engine or network driver that quietly drops one would otherwise go unnoticed)."""
    config, host = inspected["Config"], inspected["HostConfig"]
    networks = inspected["NetworkSettings"]["Networks"] or {}
    body = container.body
    held = {
        "image": (inspected["Image"] == body["Image"] or config["Image"] == body["Image"]),
        "command": "Cmd" not in body or config["Cmd"] == body["Cmd"],
        "environment": set(body["Env"]) <= set(config["Env"] or []),
        # Without a recorded one the image's own HEALTHCHECK applies, as with the provider.
        "health check": "Healthcheck" not in body
        or (config.get("Healthcheck") or {}).get("Test") == body["Healthcheck"]["Test"],
        "restart policy": host["RestartPolicy"]["Name"]
        == body["HostConfig"]["RestartPolicy"]["Name"],
        "ports": (host["PortBindings"] or {}) == body["HostConfig"]["PortBindings"],
        "hardening (read-only root, tmpfs, capabilities, security options)": all(
            (host.get(k) or None) == (body["HostConfig"].get(k) or None)
            for k in ("ReadonlyRootfs", "Tmpfs", "CapAdd", "CapDrop", "SecurityOpt")
        ),
        "volumes": {(m["Source"], m["Target"]) for m in body["HostConfig"]["Mounts"]}
        <= {(m["Name"], m["Destination"]) for m in inspected["Mounts"] if m["Type"] == "volume"},
        "networks and aliases": all(
            n in networks and set(aliases) <= set(networks[n].get("Aliases") or [])
            for n, aliases in container.networks
        ),
    }
    return [
        f"container {container.name}: check 'the engine holds the recorded {what}' failed"
        for what, ok in held.items()
        if not ok
    ]


class DockerApi:
    """The Docker Engine API over its unix socket: what the Docker provider itself talks to.

    Secrets travel in request bodies on the socket, never on a command line."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        ok: Iterable[int] = (200, 201, 204, 304),
        timeout: float = 120,
    ) -> Any:
        connection = http.client.HTTPConnection("docker", timeout=timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.socket_path)
        connection.sock = sock
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        try:
            connection.request(method, url, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status not in set(ok):
            message = data.decode(errors="replace").strip()
            with contextlib.suppress(ValueError):
                message = json.loads(message).get("message", message)
            raise DockerError(response.status, f"{method} {path}: {message}")
        if response.getheader("Content-Type", "").startswith("application/json") and data:
            return json.loads(data)
        return data

    def exists(self, kind: str, name: str) -> bool:
        try:
            self.request(
                "GET",
                f"/{kind}/{urllib.parse.quote(name, safe='')}"
                + ("/json" if kind in ("containers", "images") else ""),
            )
        except DockerError as error:
            if error.status == 404:
                return False
            raise
        return True

    def image_id(self, name: str) -> str | None:
        try:
            info = self.request("GET", f"/images/{urllib.parse.quote(name, safe='')}/json")
        except DockerError as error:
            if error.status == 404:
                return None
            raise
        return str(info["Id"])

    def inspect(self, container: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/containers/{container}/json")
        return result

    def logs(self, container: str, tail: int = 30) -> str:
        raw = self.request(
            "GET",
            f"/containers/{container}/logs",
            query={"stdout": 1, "stderr": 1, "tail": tail},
        )
        out, i = bytearray(), 0
        while i + 8 <= len(raw):  # the multiplexed stream: 8-byte frame headers
            size = int.from_bytes(raw[i + 4 : i + 8], "big")
            out += raw[i + 8 : i + 8 + size]
            i += 8 + size
        return out.decode(errors="replace")

    def listed(self, kind: str, run_id: str) -> list[str]:
        filters = json.dumps({"label": [f"{LABEL}={run_id}"]})
        path = "/containers/json" if kind == "containers" else f"/{kind}"
        found = self.request("GET", path, query={"filters": filters, "all": 1})
        if kind == "volumes":
            found = found.get("Volumes") or []
        return [str(item.get("Name") or item.get("Names", ["?"])[0]) for item in found]


class DockerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def wait_healthy(
    api: DockerApi,
    container: Container,
    redact: Callable[[str], str],
    timeout: float | None = None,
) -> float:
    """Seconds until the container's own health check passed; a CheckFailed naming it if not."""
    started = time.monotonic()
    limit = container.wait_timeout if timeout is None else timeout
    check = f"health check {' '.join(container.health_test)!r} healthy within {limit:.0f} s"
    state: dict[str, Any] = {}
    while time.monotonic() - started < limit:
        state = api.inspect(container.name)["State"]
        status = (state.get("Health") or {}).get("Status")
        if status == "healthy" or (status is None and state.get("Running")):
            return time.monotonic() - started
        if not state.get("Running") and not state.get("Restarting"):
            break
        if status == "unhealthy":
            break
        time.sleep(0.5)
    last = ((state.get("Health") or {}).get("Log") or [{}])[-1]
    detail = (
        f"status {(state.get('Health') or {}).get('Status') or state.get('Status')}, "
        f"exit code {state.get('ExitCode')}; last probe output: "
        f"{str(last.get('Output', '')).strip()[-400:]!r}; logs:\n"
        f"{api.logs(container.name)[-2000:]}"
    )
    raise CheckFailed(container.name, check, redact(detail))


def wait_exited(
    api: DockerApi,
    container: Container,
    redact: Callable[[str], str],
    timeout: float | None = None,
) -> float:
    """Seconds until a one-shot (`attach`) container exited 0, as the provider waits for it;
    a CheckFailed naming it, with the tail of its logs, on another exit code or no exit."""
    started = time.monotonic()
    limit = container.wait_timeout if timeout is None else timeout
    check = f"runs to completion with exit code 0 within {limit:.0f} s"
    try:
        result = api.request("POST", f"/containers/{container.name}/wait", timeout=limit, ok=(200,))
        code = int(result["StatusCode"])
    except (TimeoutError, OSError):
        code = None
    if code == 0:
        return time.monotonic() - started
    state = "still running" if code is None else f"exit code {code}"
    detail = f"{state}; logs:\n{api.logs(container.name)[-2000:]}"
    raise CheckFailed(container.name, check, redact(detail))
