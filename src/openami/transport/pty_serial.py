"""A pseudo-terminal standing in for a USB serial port (Linux).

HEMS software opens a serial device and speaks SKSTACK-IP to a Wi-SUN dongle; here the device
is the slave side of a pty (``/dev/pts/N``, or a stable symlink to it) and the emulated dongle
holds the master. The slave is put in raw mode at creation (no echo, no line editing, no CR/LF
translation); Linux keeps those settings for later opens, and HEMS software sets raw mode
itself anyway.

Reopen-safety. When the last process holding the slave closes it, reads on the master fail
with EIO and poll reports POLLHUP (level-triggered: a loop still watching the master would
spin), yet the slave can be opened again as long as the master stays open, and data written
to the master meanwhile waits there for the next opener. So this class never closes the
master while running: a read that meets EIO marks the port ``connected = False`` and throws
away queued output (a real dongle's output to a closed port is lost too); the owner then stops
watching the descriptor and calls ``read`` on a timer instead; the first read that meets EAGAIN
or data marks it connected again (the stale output is flushed once more, in case it raced).
Before any HEMS opens the port, it counts as not connected.

Writes never block: what the pty does not take at once waits in a bounded queue for
``flush`` (the owner calls it when the descriptor is writable); past ``max_pending`` octets the
newest output is dropped, as a UART without flow control would lose it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import termios
import tty
from pathlib import Path

from openami.errors import TransportError

__all__ = ["PtySerial"]

_GONE = frozenset({errno.EIO, errno.EBADF, errno.ENXIO})


class PtySerial:
    def __init__(self, link: str | os.PathLike[str] | None = None, max_pending: int = 65536):
        try:
            self._master, slave = os.openpty()
        except OSError as exc:
            raise TransportError(f"cannot open a pseudo-terminal: {exc.strerror}") from None
        try:
            self.device = os.ttyname(slave)
            tty.setraw(slave, termios.TCSANOW)
        finally:
            os.close(slave)
        os.set_blocking(self._master, False)
        self._link = Path(link) if link is not None else None
        if self._link is not None:
            try:
                if self._link.is_symlink():
                    self._link.unlink()  # left by an earlier run
                self._link.symlink_to(self.device)
            except OSError as exc:
                os.close(self._master)
                raise TransportError(f"cannot link {self._link} to {self.device}: {exc}") from None
        self._pending = bytearray()
        self._max_pending = max_pending
        self.connected = False
        self.closed = False

    @property
    def slave_path(self) -> str:
        """What the HEMS opens: the symlink when one was asked for, else ``/dev/pts/N``."""
        return str(self._link) if self._link is not None else self.device

    def fileno(self) -> int:
        return self._master

    @property
    def pending(self) -> int:
        """Octets waiting for ``flush``."""
        return len(self._pending)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._pending.clear()
            with contextlib.suppress(OSError):
                termios.tcflush(self._master, termios.TCOFLUSH)

    def read(self, size: int = 4096) -> bytes:
        """What the HEMS wrote, or ``b""``; never blocks. Updates ``connected``."""
        if self.closed:
            return b""
        try:
            data = os.read(self._master, size)
        except BlockingIOError:
            self._set_connected(True)
            return b""
        except OSError as exc:
            if exc.errno not in _GONE:
                raise TransportError(f"read from {self.device} failed: {exc.strerror}") from None
            self._set_connected(False)
            return b""
        self._set_connected(True)
        return data

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the HEMS and write what fits now; dropped while not connected."""
        if not self.connected or self.closed or not data:
            return
        room = self._max_pending - len(self._pending)
        self._pending += data[: max(room, 0)]
        self.flush()

    def flush(self) -> None:
        while self._pending and self.connected and not self.closed:
            try:
                written = os.write(self._master, self._pending)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno not in _GONE:
                    raise TransportError(f"write to {self.device} failed: {exc.strerror}") from None
                self._set_connected(False)
                return
            del self._pending[:written]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        os.close(self._master)
        if self._link is not None:
            with contextlib.suppress(OSError):
                if self._link.is_symlink() and os.readlink(self._link) == self.device:
                    self._link.unlink()
