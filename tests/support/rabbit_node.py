"""An extra RabbitMQ node on this machine (a region's, or a home of a test's own): own node name, ports,
data dir and cookie. Used by the federation tests and the fault suite.

The machine's own broker (``rabbit@localhost`` on 5672) is shared by every test and is never stopped;
this node is started and stopped by the tests that need it. Its environment is built from scratch
(``RABBITMQ_CONF_ENV_FILE`` points at our own file) so ``/etc/rabbitmq/rabbitmq-env.conf`` cannot
make ``rabbitmqctl`` talk to the shared node by mistake, and the other way round.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
PLUGINS = (
    "rabbitmq_management",
    "rabbitmq_federation",
    "rabbitmq_federation_management",
    "rabbitmq_shovel",
    "rabbitmq_shovel_management",
)
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RabbitNode:
    """One extra RabbitMQ node, with AMQP and management listening on 127.0.0.1 only."""

    base: Path
    name: str = field(default_factory=lambda: f"region-{uuid.uuid4().hex[:6]}")
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    #: ``(certfile, keyfile)``: also listen for AMQPS on :attr:`amqps_port` presenting that certificate.
    tls: tuple[Path, Path] | None = None
    amqps_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def nodename(self) -> str:
        return f"{self.name}@localhost"

    def amqp_url(self, vhost: str = "/") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{urllib.parse.quote(vhost, safe='')}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        """This node's environment, and nothing of the shared node's."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base / "home"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "node.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _write_files(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text(
            "\n".join(
                (
                    f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}",
                    f"management.tcp.port = {self.http_port}",
                    "management.tcp.ip = 127.0.0.1",
                    "log.console = false",
                    "log.file.level = warning",
                    *self._tls_config(),
                    "",
                )
            )
        )
        (self.base / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        cookie = self.base / "home" / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)

    def _tls_config(self) -> tuple[str, ...]:
        if self.tls is None:
            return ()
        cert, key = self.tls
        return (
            f"listeners.ssl.default = 127.0.0.1:{self.amqps_port}",
            f"ssl_options.certfile = {cert}",
            f"ssl_options.keyfile = {key}",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
        )

    def ctl(self, *args: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl`` against this node only."""
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def start(self) -> None:
        """Start the node and wait (bounded) until it accepts connections and serves its HTTP API."""
        self._write_files()
        with (self.base / "log" / "stdout.log").open("ab") as log:  # the node keeps its own descriptor
            self.process = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"region node exited early: {self.tail_log()}")
            if _listening(self.amqp_port) and _listening(self.http_port):
                done = self.ctl("await_startup", "--timeout", "10", check=False, timeout=20)
                if done.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"region node did not start in {START_TIMEOUT}s: {self.tail_log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the node (``rabbitmqctl stop``), then make sure by pid; remove its files."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            self.ctl("stop", check=False, timeout=30)
            process.wait(timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            shutil.rmtree(self.base, ignore_errors=True)

    def tail_log(self, lines: int = 30) -> str:
        text = []
        for path in sorted((self.base / "log").glob("*.log")):
            with contextlib.suppress(OSError):
                text.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(text[-lines:])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` logging in as ``username``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = urllib.parse.quote(username, safe="")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{urllib.parse.quote(password)}@{host}"))
