"""Pausing Python's cyclic garbage collector while a large acyclic result is built.

Building tens of thousands of small objects (the words of a five-hour transcript, the cues
of its subtitles) makes the collector run again and again over everything allocated so far;
measured, that was over half the time spent normalising a long provider result. The objects built
there hold no reference cycles, so reference counting frees them all the same and pausing
the collector for that stretch loses nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, restoring it after (nesting is safe)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
