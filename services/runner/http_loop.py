"""An event loop of its own for the runner's timed HTTP exchanges, on a thread that does nothing else.

A phase timing is read when the loop gets round to the request's coroutine. On the loop that also
consumes, decodes, evaluates assertions, publishes and beats the heart, every synchronous chunk of that
work delays the send and the wake-up of a waiting request, and the delay lands in the reported
``ttfb_ms``/``total_ms`` (measured: +54 ms p99 at 200 runs/s). Here the exchange itself (connect, TLS,
send, first byte, body) runs on a loop with no other work, so what the caller's loop does between runs
does not show in the timings; the caller awaits the result without blocking.

Both threads share the GIL: a thread woken by a socket waits until the holder lets go, which CPython
forces only every "switch interval" (5 ms by default). :data:`SWITCH_INTERVAL_S` lowers it for the
process (it never raises it), so a wake-up waits a fraction of a millisecond, not 5.

uvloop, where installed (it is a dependency on Linux and macOS), runs this loop: it spends less CPU per
connection than the stock loop, and the loop's own overhead is part of what a wake-up waits for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest a thread woken by I/O waits for the GIL (CPython's default is 5 ms).
SWITCH_INTERVAL_S: Final = 0.0005
_STOP_TIMEOUT_S: Final = 10.0


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed, else the stock one."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class HttpLoop:
    """A daemon thread running an event loop; :meth:`call` runs a coroutine there and awaits it from
    the caller's loop. Cancelling the caller cancels the coroutine on this loop."""

    def __init__(self, name: str = "runner-http") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread and its loop are up."""
        return self._loop is not None

    def start(self) -> None:
        """Start the thread and its loop (idempotent); returns once the loop runs."""
        if self._loop is not None:
            return
        loop = _new_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=serve, name=self.name, daemon=True)
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop and return (or raise) what it does."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("HttpLoop.call() before start() or after stop()")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    async def stop(self) -> None:
        """Stop the loop once what runs on it was cancelled, and wait for the thread to end."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_cancel_others(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, _STOP_TIMEOUT_S)
        if thread.is_alive():  # pragma: no cover - a stuck callback on the HTTP loop
            log.warning("http loop thread did not stop within %.0f s", _STOP_TIMEOUT_S)


async def _cancel_others() -> None:
    """Cancel every other task on the running loop and wait for them to finish."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
