"""Generic sharded TFRecord files: names, writing, listing. Knows nothing about COCO.

Shards are named ``<prefix>-00000-of-00004.tfrecord``. ``ShardedWriter`` spreads
records round-robin over its shards; callers write into a temporary folder and
publish it whole (see ``cocoseg.pipeline.prepare.writer``), so a shard set is never half-written.
"""

from __future__ import annotations

import re
from pathlib import Path

from cocoseg.pipeline.core.tf_runtime import tensorflow

SHARD_PATTERN = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def shard_name(prefix: str, index: int, count: int) -> str:
    """``train``, 0, 4 -> ``train-00000-of-00004.tfrecord``."""
    return f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


class ShardedWriter:
    """Write serialized records round-robin into ``count`` shards in ``folder``."""

    def __init__(self, folder: Path, prefix: str, count: int) -> None:
        if count < 1:
            raise ValueError("a shard set needs at least one shard")
        tf = tensorflow()
        self.paths = [Path(folder) / shard_name(prefix, index, count) for index in range(count)]
        self._writers = [tf.io.TFRecordWriter(str(path)) for path in self.paths]
        self._next = 0
        self.records = 0

    def write(self, record: bytes) -> None:
        self._writers[self._next].write(record)
        self._next = (self._next + 1) % len(self._writers)
        self.records += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def list_shards(folder: Path, prefix: str) -> list[Path]:
    """The complete shard set ``prefix-*-of-N`` in ``folder``, in order.

    Raises:
        FileNotFoundError: no shards, or fewer than the count their names promise.
    """
    shards = []
    for path in sorted(Path(folder).glob(f"{prefix}-*-of-*.tfrecord")):
        match = SHARD_PATTERN.match(path.name)
        if match and match["prefix"] == prefix:
            shards.append((int(match["index"]), int(match["count"]), path))
    if not shards:
        raise FileNotFoundError(f"no {prefix} shards in {folder}")
    count = shards[0][1]
    if sorted(index for index, _count, _path in shards) != list(range(count)) or any(
        c != count for _i, c, _p in shards
    ):
        raise FileNotFoundError(f"incomplete {prefix} shard set in {folder}: expected {count} shards")
    return [path for _index, _count, path in shards]
