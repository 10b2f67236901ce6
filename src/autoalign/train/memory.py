"""Handing freed heap memory back to the operating system during CPU training.

glibc's malloc keeps freed blocks in its heap for reuse. A training step frees and allocates
activations of many different sizes, so the heap fragments and, in a 135M DPO step, ~1 GB of it
stays resident though free (bench/dpo.py; measured with mallinfo2 against /proc/self/statm).
malloc_trim(0) returns every whole free page of every arena (madvise), at the price of faulting
those pages in again when they are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, musl, Windows)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
