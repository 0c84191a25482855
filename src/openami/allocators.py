"""Memory allocator settings for batch work: keep freed memory for the next chunk.

VEE, determinants and compaction allocate and free arrays of hundreds of megabytes, chunk
after chunk. By default each of the three allocators in the process hands freed memory
back to the operating system soon after: glibc's (NumPy's arrays) maps every block over
32 MB on its own and unmaps it on free; jemalloc (inside Polars) and mimalloc (inside
PyArrow) purge freed pages after half a second. The next chunk then faults every page in
again, and a page fault is expensive on a virtual machine: on the 2-core machine openami
is measured on, one VEE chunk of 100,000 meters spent 2.3 to 3.8 s of its 5.3 to 7.0 s in
the kernel (``docs/mdm.md``). With the settings below the process keeps what it freed and
reuses it: after the first chunk the kernel time falls to under 0.1 s a chunk.

The price is memory: a process stays at its peak (about 3 GB for a 100,000-meter chunk)
instead of shrinking between chunks. The peak itself does not grow, so memory is still
bounded by the chunk size.

What each setting does (environment variables, read when each allocator starts):

- ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` (glibc):
  large blocks come from the heap, and the heap is not trimmed;
- ``MIMALLOC_PURGE_DELAY=-1``, ``MIMALLOC_ALLOW_LARGE_OS_PAGES=1`` (PyArrow): never purge,
  and use 2 MB pages where the kernel allows;
- ``_RJEM_MALLOC_CONF`` (Polars): the same for jemalloc.

``batch_env()`` gives them (a variable already set in the environment wins, so an operator
can change any of them); ``mdm.parallel`` starts its Dask worker processes with them, and
the ``openami`` command sets them for itself with ``keep_freed_memory()`` before Polars or
PyArrow is loaded. glibc's part is also applied at run time (``mallopt``), so it holds in a
process that loaded the libraries first. A Dask cluster started elsewhere should start its
workers with ``batch_env()``'s variables (``docs/mdm.md``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["batch_env", "keep_freed_memory"]

_GLIBC = {
    # mallopt parameter numbers, from glibc's malloc.h
    "MALLOC_TRIM_THRESHOLD_": (-1, 1 << 36),
    "MALLOC_TOP_PAD_": (-2, 1 << 28),
    "MALLOC_MMAP_THRESHOLD_": (-3, 1 << 35),
}
_OTHERS = {
    "MIMALLOC_PURGE_DELAY": "-1",
    "MIMALLOC_ALLOW_LARGE_OS_PAGES": "1",
    "_RJEM_MALLOC_CONF": "thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1",
}


# Polars writes its own jemalloc defaults in front of the variable when it is imported
# (an operator's value follows them, and jemalloc takes the last of each option): in a
# process that loaded Polars, that prefix is not an operator's choice.
_POLARS_OWN = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def _operator_value(name: str) -> str | None:
    value = os.environ.get(name)
    if name == "_RJEM_MALLOC_CONF" and value is not None and value.startswith(_POLARS_OWN):
        value = value[len(_POLARS_OWN) :].lstrip(",") or None
    return value


def batch_env() -> dict[str, str]:
    """The allocator variables for a batch process, each from the environment if set
    there, else openami's value."""
    defaults = {name: str(value) for name, (_, value) in _GLIBC.items()} | _OTHERS
    return {name: _operator_value(name) or value for name, value in defaults.items()}


def _mallopt(settings: dict[str, str]) -> None:
    """Apply glibc's settings to this process now (no-op where libc is not glibc)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: the variables alone, if anything
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    for name, (param, _) in _GLIBC.items():
        try:
            value = int(settings[name])
        except ValueError:
            continue  # an operator's value glibc would ignore too
        # mallopt takes an int: the largest it can say is what the process gets
        mallopt(param, min(value, 2**31 - 1))


def keep_freed_memory() -> dict[str, str]:
    """Set ``batch_env()`` in this process's environment (for allocators not started yet,
    and for child processes) and apply glibc's part now; return the settings."""
    settings = batch_env()
    os.environ.update(settings)
    _mallopt(settings)
    return settings
