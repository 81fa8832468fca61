"""Seymour services as separate OS processes (``python -m services.cli serve <name>``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    """Started service processes, by label, with their log files."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: The module run as ``python -m <module> serve ...`` (a test may wrap the ``seymour`` command).
    module: str = "services.cli"

    def start(self, label: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``seymour serve <args>`` as ``label``."""
        # The child writes through its own copy of the descriptor, so ours is closed at once (kept open,
        # it was reported unclosed when the garbage collector found it in a later test).
        with open(self.logs / f"{label}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve", *args],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[label] = proc
        return proc

    def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a service and reap it."""
        proc = self.procs.pop(label)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM everything, then SIGKILL what lingers; returns each process's exit code."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for label, proc in self.procs.items():
            try:
                codes[label] = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[label] = proc.wait(timeout=5)
        self.procs.clear()
        return codes

    def log_tail(self, label: str, lines: int = 40) -> str:
        """The end of a service's log (for assertion messages)."""
        path = self.logs / f"{label}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def alive(self) -> dict[str, bool]:
        """Which processes still run."""
        return {label: proc.poll() is None for label, proc in self.procs.items()}


@contextmanager
def fleet(tmp_path: Path, *, module: str = "services.cli", **env: str) -> Iterator[Fleet]:
    """A :class:`Fleet` (running ``python -m <module> serve``) whose processes are all stopped on exit."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("SEYMOUR_")}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    running = Fleet(base, logs, module=module)
    try:
        yield running
    finally:
        running.stop_all()
