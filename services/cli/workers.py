"""``seymour serve api --workers N``: N api processes sharing one port, so the api can use every core.

Each worker is an ordinary ``seymour serve api`` process (its own event loop, database pool and bus
connection) bound with ``SO_REUSEPORT``; the kernel spreads new connections over them. Nothing a
request relies on lives in one process: browser sessions and their CSRF tokens are rows in the
database, and changes go out on the shared broker. ``seymour up`` keeps its single process, since its
in-process bus cannot be shared.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from types import FrameType

log = logging.getLogger(__name__)


def worker_command(host: str, port: int) -> list[str]:
    """The command line of one worker."""
    return [
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "api",
        "--no-migrate",
        "--host",
        host,
        "--port",
        str(port),
    ]


def worker_env(env: dict[str, str], index: int) -> dict[str, str]:
    """Worker ``index``'s environment: its own operations port (``SEYMOUR_METRICS_PORT`` + index), since each
    worker counts only what it served and a shared port would show a random worker's figures."""
    base = env.get("SEYMOUR_METRICS_PORT")
    if not base or int(base) == 0:
        return env
    return {**env, "SEYMOUR_METRICS_PORT": str(int(base) + index)}


def supervise(host: str, port: int, count: int) -> int:
    """Start ``count`` workers on ``host:port`` and wait. SIGTERM/SIGINT stop them all (exit 0); a worker
    that dies on its own stops the rest (exit 1), so the process manager restarts one whole api."""
    env = {**os.environ, "SEYMOUR_API_REUSE_PORT": "true"}
    workers = [
        subprocess.Popen(worker_command(host, port), env=worker_env(env, index)) for index in range(count)
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("api workers started count=%d host=%s port=%d", count, host, port)
    code = 0
    try:
        while any(worker.poll() is None for worker in workers):
            try:
                pid, _status = os.wait()
            except ChildProcessError:
                break
            if not stopping:
                log.error("api worker exited; stopping the others pid=%d", pid)
                code = 1
                stop(signal.SIGTERM, None)
        for worker in workers:
            worker.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
