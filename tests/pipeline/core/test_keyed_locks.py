"""KeyedLocks: one lock per key, none held in a forked child."""

from __future__ import annotations

import os

import pytest

from cocoseg.pipeline.core.keyed_locks import KeyedLocks


def test_one_lock_per_key_until_it_is_discarded():
    locks = KeyedLocks()
    first = locks.lock("model-a")
    assert locks.lock("model-a") is first and locks.lock("model-b") is not first and len(locks) == 2
    with first:
        assert locks.lock("model-b").acquire(blocking=False)  # other keys go on meanwhile
    locks.discard("model-a")
    assert locks.lock("model-a") is not first and len(locks) == 2
    locks.discard("never-made")  # nothing to forget is fine


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_starts_with_no_lock_held():
    locks = KeyedLocks()
    held = locks.lock("split")
    held.acquire()  # as a parent's thread parsing at the moment a background callback forks
    try:
        child = os.fork()
        if child == 0:  # the child: the key's lock is a fresh one, free
            os._exit(0 if len(locks) == 0 and locks.lock("split").acquire(timeout=5) else 1)
        _, status = os.waitpid(child, 0)
    finally:
        held.release()
    assert os.waitstatus_to_exitcode(status) == 0
