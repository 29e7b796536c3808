"""Component ids, namespaced per page so two pages never collide."""

from __future__ import annotations


class Home:
    DATASETS = "home-datasets"
    DEVICE = "home-device"
    RUNS = "home-runs"
