"""An event loop of its own for the runner's timed HTTP exchanges, on a thread that does nothing else.

A phase timing is read when the loop gets round to the request's coroutine. On the loop that also
consumes, decodes, evaluates assertions, publishes and beats the heart, every synchronous chunk of that
work delays the send and the wake-up of a waiting request, and the delay lands in the reported
``ttfb_ms``/``total_ms`` (measured: +54 ms p99 at 200 runs/s). Here the exchange itself (connect, TLS,
send, first byte, body) runs on a loop with no other work, so what the caller's loop does between runs
does not show in the timings; the caller awaits the result without blocking.

Both threads share the GIL: a thread woken by a socket waits until the holder lets go, which CPython
forces only every "switch interval" (5 ms by default). :data:`SWITCH_INTERVAL_S` lowers it for the
process (it never raises it), so a wake-up waits a fraction of a millisecond, not 5. A timed request
takes the GIL back about six times (socket, connect, each readiness wake-up, the body): at 0.2 ms each,
the worst case stays near 1 ms (reasoned from CPython's GIL, not measured: wall-clock figures on a
shared two-core machine were too noisy to rank 0.5, 0.2 and 0.1 ms). Switches that often happen only
while both threads want the GIL.

The loop is asyncio's stock selector loop, not uvloop: the phase timings come from the kernel's
receive stamps, which :class:`services.runner.stamped_socket.StampedSocket` reads in the ``recv`` calls
the selector loop makes on the socket object; uvloop reads in C and would never ask for them. With
those stamps the wait for the loop or the GIL no longer lands in a phase; the stock loop costs more
CPU per run than uvloop did (``bench/runner_timing.py`` prints both threads' CPU per run).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest a thread woken by I/O waits for the GIL (CPython's default is 5 ms).
SWITCH_INTERVAL_S: Final = 0.0002
_STOP_TIMEOUT_S: Final = 10.0


def _new_loop() -> asyncio.AbstractEventLoop:
    """The stock selector loop, whatever policy the process set (uvloop's would bypass the stamps)."""
    return asyncio.SelectorEventLoop()


class HttpLoop:
    """A daemon thread running an event loop; :meth:`call` runs a coroutine there and awaits it from
    the caller's loop. Cancelling the caller cancels the coroutine on this loop."""

    def __init__(self, name: str = "runner-http") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}

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
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("HttpLoop.call() before start() or after stop()")
        caller = asyncio.get_running_loop()
        pending = _Pending(caller.create_future())
        loop.call_soon_threadsafe(self._begin, pending, coro)
        try:
            return cast(T, await pending.future)
        except asyncio.CancelledError:
            if not loop.is_closed():
                loop.call_soon_threadsafe(pending.cancel)
            raise

    def _begin(self, pending: _Pending, coro: Coroutine[Any, Any, Any]) -> None:
        """On this loop: start ``coro`` unless its caller gave up already."""
        if pending.cancelled:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        pending.task = task
        task.add_done_callback(functools.partial(self._finished, pending))

    def _finished(self, pending: _Pending, _: asyncio.Task[Any]) -> None:
        """On this loop: hand the outcome back. The caller's loop is woken once per batch: each
        wake-up is a write that lets go of the GIL, and getting it back can wait for the caller's
        thread while the next timed request waits here."""
        caller = pending.future.get_loop()
        with self._lock:
            batch = self._done.setdefault(caller, [])
            batch.append(pending)
            wake = len(batch) == 1
        if wake and not caller.is_closed():
            caller.call_soon_threadsafe(self._deliver, caller)

    def _deliver(self, caller: asyncio.AbstractEventLoop) -> None:
        """On the caller's loop: settle every finished call's future."""
        with self._lock:
            batch = self._done.pop(caller, [])
        for pending in batch:
            pending.settle()

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


class _Pending:
    """One call: the caller's future, and the task running it on the HTTP loop once it started."""

    __slots__ = ("cancelled", "future", "task")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def cancel(self) -> None:
        """On the HTTP loop: the caller gave up; stop the task (or never start it)."""
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def settle(self) -> None:
        """On the caller's loop: pass the finished task's outcome to the caller's future."""
        task = self.task
        if task is None:
            return
        error = None if task.cancelled() else task.exception()  # read even when nobody waits: logged else
        if self.future.done():
            return
        if task.cancelled():
            self.future.cancel()
        elif error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(task.result())


async def _cancel_others() -> None:
    """Cancel every other task on the running loop and wait for them to finish."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
