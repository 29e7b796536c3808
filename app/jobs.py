"""The background-callback manager: DiskcacheManager in the workspace's private cache.

Background callbacks (evaluation now; preparation and training with the job issue) run
in a child process; Dash keeps their progress and results in this cache. The folder is
inside the workspace cache (0700), and entries expire after a day.
"""

from __future__ import annotations

from pipeline.workspace import Workspace

JOB_EXPIRE_SECONDS = 24 * 3600


def background_manager(workspace: Workspace):
    """A DiskcacheManager whose cache lives in ``<workspace>/cache/jobs``."""
    import diskcache
    from dash import DiskcacheManager

    workspace.ensure()
    cache = diskcache.Cache(str(workspace.cache_dir / "jobs"))
    return DiskcacheManager(cache, expire=JOB_EXPIRE_SECONDS)
