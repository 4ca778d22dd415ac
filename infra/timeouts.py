"""Every timeout on a request's path, derived from the one run timeout (`app.runTimeoutSeconds`).

A run answers nothing until it ends, so each layer in front of or around it must outlast it,
each by a margin: the app gives up first (its own 504), then the load balancer's idle timer;
the app's keep-alive outlasts the load balancer's so the balancer never reuses a connection the
app is closing (502); a stopping task drains and shuts down gracefully for longer than a run.
"""

from __future__ import annotations

from dataclasses import dataclass

# Fargate refuses a container `stopTimeout` above 120 s.
FARGATE_MAX_STOP_SECONDS = 120
# The largest run timeout whose shutdown still fits in Fargate's stop timeout (T + 10 <= 120).
AWS_MAX_RUN_TIMEOUT_SECONDS = FARGATE_MAX_STOP_SECONDS - 10


@dataclass(frozen=True)
class Timeouts:
    run: int

    @property
    def shutdown(self) -> int:
        """The app's graceful shutdown: a run started just before SIGTERM still finishes."""
        return self.run + 5

    @property
    def stop(self) -> int:
        """How long a stopping container gets before SIGKILL: after the graceful shutdown."""
        return self.run + 10

    @property
    def fargate_stop(self) -> int:
        """The ECS `stopTimeout`, within Fargate's maximum (validation keeps `stop` below it)."""
        return min(FARGATE_MAX_STOP_SECONDS, self.stop)

    @property
    def deregistration_delay(self) -> int:
        """The target group drains in-flight runs before ECS stops the task."""
        return self.run + 10

    @property
    def idle(self) -> int:
        """The load balancer's idle timeout: above the run timeout, so the app's 504 arrives."""
        return self.run + 15

    @property
    def keepalive(self) -> int:
        """The app's keep-alive: above the load balancer's idle timeout (else sporadic 502s)."""
        return self.idle + 5

    def app_env(self, load_balanced: bool) -> dict[str, str]:
        """What the stack tells the app; keep-alive only matters behind a load balancer."""
        env = {
            "RUN_TIMEOUT_SECONDS": str(self.run),
            "SHUTDOWN_TIMEOUT_SECONDS": str(self.shutdown),
        }
        if load_balanced:
            env["KEEPALIVE_TIMEOUT_SECONDS"] = str(self.keepalive)
        return env
