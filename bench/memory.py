"""Peak resident memory of the current process (Linux ``/proc``, with a portable fallback).

A measurement resets the kernel's high-water mark first (``/proc/self/clear_refs`` ← ``5``),
so the peak it reads afterwards belongs to the measured work and not to the set-up before it.
"""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        text = _STATUS.read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def max_rss_mb() -> float:
    """The largest resident set of this process so far (``ru_maxrss``), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """The resident set now, in MiB (``None`` where ``/proc`` is missing)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def reset_peak() -> bool:
    """Reset the high-water mark to the current resident set; ``False`` if not supported."""
    try:
        _CLEAR_REFS.write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The resident high-water mark since the last :func:`reset_peak` (else since start)."""
    kib = _status_kib("VmHWM")
    return max_rss_mb() if kib is None else kib / 1024
