"""Fixtures for preparation tests: one prepared demo set shared by the session."""

from __future__ import annotations

import pytest

from pipeline.prepare import PrepareConfig, prepare
from pipeline.workspace import Workspace

LIMIT = 1024**3
PREPARED_CONFIG = PrepareConfig("demo", labels="voc21", size=128, shards=3, workers=2)


@pytest.fixture(scope="session")
def prepared_workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("prepared-home")).ensure()


@pytest.fixture(scope="session")
def prepared_demo(prepared_workspace):
    """``cocoseg prepare demo --labels voc21 --size 128`` written once per test session."""
    return prepare(prepared_workspace, PREPARED_CONFIG, LIMIT)
