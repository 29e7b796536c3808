"""Preparation fixtures live in tests/conftest.py; the names stay importable from here."""

from tests.conftest import LIMIT, PREPARED_CONFIG  # noqa: F401
