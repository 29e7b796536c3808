"""One in-process lock per key, for work that must not run twice at once for the same thing (opening
a model, parsing a split) while the same work for other things goes on."""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable


class KeyedLocks:
    """Locks made on first use of their key. A forked child (a DiskCache background callback) starts
    with none: a lock a parent's thread held at the fork would never be released in the child."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: Hashable) -> threading.Lock:
        """The lock of ``key``; every caller asking for the same key gets the same lock until ``discard``."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def discard(self, key: Hashable) -> None:
        """Forget ``key``'s lock once its work is done for good (holders keep theirs)."""
        with self._guard:
            self._locks.pop(key, None)

    def __len__(self) -> int:
        return len(self._locks)
