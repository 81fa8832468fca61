"""A socket that knows when its bytes really moved: the kernel's receive time of each read, and the
time of each send taken next to the system call.

A phase read on an event loop ends when the loop gets round to it. Whatever else the process does
meanwhile (other runs, the caller's thread holding the GIL, the OS giving the core to another process)
lands in the phase. The kernel stamps every received segment as it reaches the host
(``SO_TIMESTAMPNS``) and hands the stamp over with the data (``recvmsg`` ancillary data), so a read that
happens late still tells when its bytes arrived. TCP gives the stamp of the newest segment the read
consumed: a read that comes late and takes several segments at once reports the last one's arrival,
never later than the read itself.

The handshake's round-trip time comes from the kernel too (``TCP_INFO``'s first RTT sample, in µs,
taken from the SYN and its SYN-ACK), so the connect phase does not include the wait for the loop to
notice the connection either. When a SYN was retransmitted that sample is not the connect time, and
the caller falls back to its own clock.

The request's first send asks the kernel for its transmit stamp (``SO_TIMESTAMPING``, software, per
call through ``sendmsg`` ancillary data, timestamp only): the stamp comes back on the socket's error
queue, read at once after the send (on loopback and an idle qdisc it is already there) or on the next
read (a pending error-queue message wakes the loop's read callback, which drains it). A stamp taken in
Python next to the call would not do: between the stamp and the call, CPython may hand the GIL to the
caller's thread, and decoding one large message there holds it for a millisecond or more. Without a
transmit stamp (not Linux, or the kernel refuses) the send is stamped in Python right before the call.

asyncio's selector loop reads and writes through the socket object's methods (``recv``,
``recv_into``, ``send``), which this class overrides; uvloop reads in C and would bypass them, so the
HTTP loop runs the stock loop. All stamps are ``CLOCK_REALTIME`` nanoseconds, the kernel's clock for
``SO_TIMESTAMPNS``; phases are differences of stamps taken within one run.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from time import time_ns
from typing import Any, Final

#: ``SO_TIMESTAMPNS`` / ``SCM_TIMESTAMPNS`` on Linux (the ``socket`` module does not name them).
SO_TIMESTAMPNS: Final = 35
#: ``SO_TIMESTAMPING``: report software stamps, stamps only (no packet copy); per send: when the
#: packet left for the device.
SO_TIMESTAMPING: Final = 37
_REPORT_FLAGS: Final = (1 << 4) | (1 << 11)
_TX_SOFTWARE: Final = struct.pack("@I", 1 << 1)
_TX_ANCILLARY: Final = 512
_TIMESPEC: Final = struct.Struct("@qq")
_ANCILLARY: Final = 128
#: ``struct tcp_info``: ``tcpi_rtt`` (µs) and ``tcpi_total_retrans`` offsets, and the bytes to ask for.
_TCP_INFO_RTT: Final = 68
_TCP_INFO_RETRANS: Final = 100
_TCP_INFO_SIZE: Final = 104
KERNEL_STAMPS: Final = sys.platform == "linux"


class StampedSocket(socket.socket):
    """A TCP socket recording the kernel arrival time of what it reads and the time of what it sends.

    ``ready()`` marks the moment the connection is established (after TLS on https): the first
    application bytes after it are the response's. ``request_next()`` marks that the next send
    carries the request (on https the client's last handshake flight can still follow ``ready()``)."""

    def __init__(self, family: int = -1, kind: int = -1, proto: int = -1) -> None:
        super().__init__(family, kind, proto)
        self.kernel = self.tx_stamps = False
        if KERNEL_STAMPS:
            with contextlib.suppress(OSError):
                self.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.kernel = True
            with contextlib.suppress(OSError):
                self.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, _REPORT_FLAGS)
                self.tx_stamps = True
        #: When ``connect`` was called.
        self.connect_ns: int | None = None
        #: The first send on the socket (a ClientHello on https, the request on http).
        self.first_tx_ns: int | None = None
        #: The arrival of the newest bytes read (handshake records included).
        self.rx_ns: int | None = None
        #: At ``ready()``: the arrival of the bytes that completed the handshake.
        self.ready_rx_ns: int | None = None
        #: The first send after ``request_next()``: the request.
        self.request_tx_ns: int | None = None
        #: The arrival of the first and of the newest response bytes handed to the protocol.
        self.first_app_rx_ns: int | None = None
        self.last_app_rx_ns: int | None = None
        self._ready = False
        self._armed = False
        #: Which stamps the kernel still owes, oldest first: "first" (first_tx_ns), "request".
        self._tx_pending: list[str] = []

    # -- what asyncio's selector loop calls --------------------------------------------------------

    def connect(self, address: Any) -> None:
        self.connect_ns = time_ns()
        super().connect(address)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self._tx_pending:
            self.settle()
        if not self.kernel:
            data = super().recv(bufsize, flags)
            if data:
                self.rx_ns = time_ns()
            return data
        data, ancillary, _, _ = self.recvmsg(bufsize, _ANCILLARY, flags)
        if data:
            self.rx_ns = _stamp(ancillary)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self._tx_pending:
            self.settle()
        if not self.kernel:
            count = super().recv_into(buffer, nbytes, flags)
            if count:
                self.rx_ns = time_ns()
            return count
        view = memoryview(buffer)
        if nbytes:
            view = view[:nbytes]
        count, ancillary, _, _ = self.recvmsg_into([view], _ANCILLARY, flags)
        if count:
            self.rx_ns = _stamp(ancillary)
        return count

    def send(self, data: Any, flags: int = 0) -> int:
        now = time_ns()
        if self.tx_stamps and (self._armed or self.first_tx_ns is None):
            # the first send (a ClientHello on https) and the request's: ask the kernel for their stamps
            owed = ["first"] if self.first_tx_ns is None else []
            owed += ["request"] if self._armed else []
            sent = super().sendmsg([data], [(socket.SOL_SOCKET, SO_TIMESTAMPING, _TX_SOFTWARE)], flags)
            if sent:
                self._sent(now)
                self._tx_pending.append("+".join(owed))
                self.settle()
            return sent
        sent = super().send(data, flags)
        if sent:
            self._sent(now)
        return sent

    def sendall(self, data: Any, flags: int = 0) -> None:
        now = time_ns()
        super().sendall(data, flags)
        self._sent(now)

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        now = time_ns()
        sent = super().sendmsg(buffers, *args)
        if sent:
            self._sent(now)
        return sent

    # -- what the run's timer calls ----------------------------------------------------------------

    def settle(self) -> None:
        """Read the transmit stamps the kernel owes from the error queue, those that are there yet
        (each replaces the Python stamp taken before its send)."""
        while self._tx_pending:
            try:
                _, ancillary, _, _ = self.recvmsg(0, _TX_ANCILLARY, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._tx_pending.clear()
                return
            stamp = None
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(data) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                    if seconds or nanoseconds:
                        stamp = int(seconds) * 1_000_000_000 + int(nanoseconds)
            owed = self._tx_pending.pop(0)
            if stamp is not None:
                if "first" in owed:
                    self.first_tx_ns = stamp
                if "request" in owed:
                    self.request_tx_ns = stamp

    def ready(self) -> None:
        """The connection is established (TLS done on https): what is sent next is the request."""
        self.ready_rx_ns = self.rx_ns
        self._ready = True

    def request_next(self) -> None:
        """The request is about to be written: stamp the next send as its start."""
        self.request_tx_ns = None
        self._armed = True

    def app_data(self) -> None:
        """The protocol was handed response bytes: they arrived with the newest read."""
        if not self._ready or self.rx_ns is None:
            return
        if self.first_app_rx_ns is None:
            self.first_app_rx_ns = self.rx_ns
        self.last_app_rx_ns = self.rx_ns

    def handshake_rtt_s(self) -> float | None:
        """The kernel's round-trip time of the SYN and its SYN-ACK, or None when the kernel cannot
        say (no ``TCP_INFO``, or a retransmitted SYN: then the RTT is not the connect time)."""
        if not KERNEL_STAMPS:
            return None
        try:
            info = self.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        except (OSError, AttributeError):
            return None
        if len(info) < _TCP_INFO_SIZE:
            return None
        (rtt_us,) = struct.unpack_from("@I", info, _TCP_INFO_RTT)
        (retransmitted,) = struct.unpack_from("@I", info, _TCP_INFO_RETRANS)
        if retransmitted or not rtt_us:
            return None
        return float(rtt_us) / 1e6

    def _sent(self, now: int) -> None:
        if self.first_tx_ns is None:
            self.first_tx_ns = now
        if self._armed:
            self.request_tx_ns = now
            self._armed = False


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The kernel's stamp from ``recvmsg``'s ancillary data (now, should it be missing)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return time_ns()


def seconds_between(start: int | None, end: int | None) -> float | None:
    """``end − start`` in seconds when both exist and are in order (a clock step makes it None)."""
    if start is None or end is None or end < start:
        return None
    return (end - start) / 1e9
