"""End-to-end fixtures: the real ``cocoseg serve`` process and the system Chromium.

The server runs as a subprocess (``python -m cocoseg serve``) with its own
COCOSEG_HOME, once per test session; browser tests drive it through Playwright's sync
API with the *system* Chromium (never a downloaded one).
"""

from __future__ import annotations

import dataclasses
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from benchmarks.browser import (  # noqa: F401 - re-exported for the browser tests
    CHROMIUM_ARGS,
    SYSTEM_CHROMIUM,
    chromium_executable,
    launch_chromium,
)
from benchmarks.server_process import (  # noqa: F401 - re-exported for the e2e tests
    ServerDidNotStart,
    free_port,
    read_log,
    serving,
)
from tests.conftest import TOOL_HANG_GUARD_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Server:
    url: str
    port: int
    home: Path
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return read_log(self.log_path)


def _serve(home: Path, log_path: Path, *arguments: str, options: tuple[str, ...] = (), **settings: str):
    """Start ``cocoseg serve`` for ``home``; yields the running Server and stops it afterwards.

    ``arguments``: more options of ``cocoseg serve`` (``--host 0.0.0.0``, ``--dev``); ``options``:
    cocoseg's own, before ``serve`` (``--verbose``). ``settings``: extra ``COCOSEG_*`` variables
    for the server and the jobs it starts (e.g. ``COCOSEG_STALL_SECONDS="10"``); every other
    ``COCOSEG_*`` variable is dropped. ``HOST=0.0.0.0`` is in its environment on purpose: the
    server must still bind 127.0.0.1 only (see test_serve_process.py). Click-to-mask calls get
    ``TOOL_HANG_GUARD_SECONDS`` instead of the page's 2 s: the browser tests are about what a tool
    does, on whatever machine.
    """
    settings = {"HOST": "0.0.0.0", "COCOSEG_TOOL_TIMEOUT_SECONDS": str(TOOL_HANG_GUARD_SECONDS), **settings}
    try:
        with serving(home, log_path, arguments, options, settings) as (port, process):
            yield Server(f"http://127.0.0.1:{port}", port, home, process, log_path)
    except ServerDidNotStart as error:
        pytest.fail(str(error))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the tail of each server's log it used: pytest's temp folders, where the
    logs live, are gone after three more sessions, and a server-side cause is otherwise lost."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, Server):
                report.sections.append((f"server log of {name} (last 5000 characters)", value.log()[-5000:]))


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """``cocoseg serve`` on a free port, with a private, empty COCOSEG_HOME (HOST=0.0.0.0: see ``_serve``)."""
    yield from _serve(
        tmp_path_factory.mktemp("e2e-home"), tmp_path_factory.mktemp("e2e-server") / "server.log"
    )


@pytest.fixture(scope="session")
def model_server(tmp_path_factory, prepared_workspace, exported_models) -> Server:
    """``cocoseg serve`` over a home holding the two tiny exported demo models and a mean ensemble of them."""
    import shutil

    from cocoseg.pipeline.core.workspace import Workspace
    from cocoseg.pipeline.inference.ensembles import create_ensemble
    from tests.conftest import LIMIT

    home = tmp_path_factory.mktemp("e2e-models-home")
    for name in exported_models:
        # not the partial evaluations (``*.first<N>.json``) that unit tests leave in the shared
        # workspace: the browser tests expect the full-split results they write themselves
        shutil.copytree(
            prepared_workspace.models_dir / name,
            home / "models" / name,
            ignore=shutil.ignore_patterns("*.first*.json"),
        )
    create_ensemble(Workspace(home).ensure(), "pair-mean", exported_models, "mean", LIMIT)
    yield from _serve(home, tmp_path_factory.mktemp("e2e-models-server") / "server.log")


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where browser tests leave a screenshot of each page (``test-results/``, not committed)."""
    folder = PROJECT_ROOT / "test-results" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    """The system Chromium under Playwright; a missing binary is a failure, never a skip."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = launch_chromium(playwright)
        except RuntimeError as error:
            pytest.fail(str(error))
        try:
            yield launched
        finally:
            launched.close()


ABORTED = "net::ERR_ABORTED"


@dataclasses.dataclass
class PageProblems:
    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    failed_requests: list[str] = dataclasses.field(default_factory=list)
    documents: int = 0  # main-frame documents the page has received
    aborted: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # url, document that issued it
    issued_in: dict[object, int] = dataclasses.field(default_factory=dict)  # requests in flight

    def all(self) -> list[str]:
        """Every problem, judged now: an aborted request counts only if its document is still the page's."""
        aborted_here = [f"{url}: {ABORTED}" for url, document in self.aborted if document == self.documents]
        return self.console_errors + self.page_errors + self.failed_requests + aborted_here

    def request_issued(self, request: object) -> None:
        self.issued_in[request] = self.documents

    def request_finished(self, request: object) -> None:
        self.issued_in.pop(request, None)

    def document_received(self) -> None:
        """The main frame received a new document: the old one's requests still in flight are cancelled."""
        self.documents += 1

    def record_failed_request(self, url: str, failure: str | None, request: object = None) -> None:
        """Keep every failed request except one the user could not have seen fail.

        That is a request that ends as ``net::ERR_ABORTED`` (Chromium cancelled it; a server
        that died shows as a connection error instead, and that is always kept) and that was
        either issued by a document the page has since left (a script or poll still loading
        when a test reloads or goes to another page), or is a background-callback request (start,
        poll, supersede; see is_background_callback_request: one whose job was superseded by a
        newer trigger of the same callback is cancelled by the renderer, which never reads the
        response body), or a display picture (``/uploads/<key>.jpg``) whose ``img`` was replaced
        before it loaded (moving on to the next image of a queue). Whether the document was
        left is judged in ``all()``, because Chromium may report the cancel before the page
        reports its new document.
        """
        document = self.issued_in.pop(request, self.documents)
        if failure != ABORTED:
            self.failed_requests.append(f"{url}: {failure}")
        elif not (is_background_callback_request(url) or is_display_picture(url)):
            self.aborted.append((url, document))


def is_display_picture(url: str) -> bool:
    """One of the app's own display pictures (``cocoseg.app.main`` serves ``/uploads/<key>.jpg``)."""
    path = urllib.parse.urlsplit(url).path
    return path.startswith("/uploads/") and path.endswith(".jpg") and path.count("/") == 2


BACKGROUND_CALLBACK_KEYS = frozenset({"job", "endId", "cacheKey", "oldJob", "cancelJob"})


def is_background_callback_request(url: str) -> bool:
    """A ``_dash-update-component`` request whose query carries a background-callback handle.

    Dash 4.4's renderer adds these as query keys: ``endId`` (the page load's signed token),
    ``cacheKey`` and ``job`` on polls, ``oldJob``/``cancelJob`` when a newer trigger
    supersedes or cancels a job. The query is parsed, so a key merely quoted inside another
    value (``?x=job%3D1``) or a longer name (``?jobs=1``) does not count. Caveat: Dash 4.4
    sends ``endId`` on every callback request (dash.py puts ``end_id`` in each page's
    config) and a background job's first request carries nothing more, so by URL an aborted
    plain callback cannot be told from it and is dropped too.
    """
    parts = urllib.parse.urlsplit(url)
    keys = urllib.parse.parse_qs(parts.query, keep_blank_values=True).keys()
    return parts.path.endswith("/_dash-update-component") and not BACKGROUND_CALLBACK_KEYS.isdisjoint(keys)


COMMITTED_VALUE = """([componentId, expected]) => {
    const state = window.store && window.store.getState();
    const path = state && state.paths && state.paths.strs[componentId];
    if (!path) return false;
    let node = state.layout;
    for (const key of path) node = node[key];
    const value = node && node.props ? node.props.value : undefined;
    if (value === undefined || value === null || value === "") return false;
    return String(value) === expected || Number(value) === Number(expected);
}"""


def fill_input(page, component_id: str, value: str, timeout: float = 10_000) -> None:
    """Type into a (debounced) input, leave it with Tab, and wait until Dash's store holds the value.

    A debounced input commits on blur; a click on Start right after must read the new value,
    so the wait is on the renderer's own state, not on the DOM (which holds the typed text at once).
    """
    field = page.locator(f"#{component_id}")
    field.fill(value)
    field.press("Tab")
    page.wait_for_function(COMMITTED_VALUE, arg=[component_id, value], timeout=timeout)


OVERFLOWING = """() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll(".panel, .page-header")]
        .filter((element) => element.getBoundingClientRect().right > width + 1)
        .map((element) => (element.querySelector(".card-header, h2") || element).textContent.trim());
    if (document.documentElement.scrollWidth > width + 1) wide.push("the page itself");
    // a table wider than its panel hides its last columns, cut off or scrolled sideways (a run's
    // buttons on Train, the mIoU on Home, once)
    // (not DataTable's inner grid, whose cells scroll within it)
    for (const table of document.querySelectorAll(".panel table:not(.cell-table)")) {
        const panel = table.closest(".panel").getBoundingClientRect();
        if (table.offsetParent !== null && table.getBoundingClientRect().right > panel.right + 1) {
            wide.push(`a table wider than its panel: ${table.querySelector("th")?.textContent.trim()}`);
        }
    }
    return wide;
}"""


WRAPPED_BUTTONS = """() => [...document.querySelectorAll(".btn")]
    .filter((button) => {
        const style = getComputedStyle(button);
        const text = button.getBoundingClientRect().height - parseFloat(style.paddingTop)
            - parseFloat(style.paddingBottom) - parseFloat(style.borderTopWidth)
            - parseFloat(style.borderBottomWidth);
        return button.offsetParent !== null && text > 1.5 * parseFloat(style.lineHeight);
    })
    .map((button) => button.textContent.trim() || button.id)"""


CUT_LABELS = """(graph) => {
    const box = document.getElementById(graph).getBoundingClientRect();
    return [...document.querySelectorAll(`#${graph} .xtick text, #${graph} .ytick text`)]
        .filter((label) => {
            const edges = label.getBoundingClientRect();
            return edges.left < box.left - 1 || edges.right > box.right + 1 || edges.bottom > box.bottom + 1;
        })
        .map((label) => label.textContent);
}"""


def assert_labels_inside(page, graph_id: str) -> None:
    """Every tick label of a Plotly graph lies inside the graph (not cut by a too-small margin)."""
    assert page.evaluate(CUT_LABELS, graph_id) == []


def assert_fits_window(page) -> None:
    """No panel reaches past the window's right edge (the desktop-tool layout scrolls inside panels), no
    table is wider than its panel, and no button is squeezed until its label wraps."""
    assert page.evaluate(OVERFLOWING) == []
    wrapped = page.evaluate(WRAPPED_BUTTONS)
    assert wrapped == [], f"these buttons' labels wrap onto a second line: {wrapped}"


def in_window(page, selector: str) -> bool:
    """Whether the element can be clicked where it stands: its whole box inside the window, and its centre
    not hidden by a panel that scrolls it away or by anything drawn over it."""
    return page.evaluate(
        """(selector) => {
            const element = document.querySelector(selector);
            const box = element.getBoundingClientRect();
            const inside = box.top >= 0 && box.left >= 0 && box.bottom <= window.innerHeight
                && box.right <= window.innerWidth && box.height > 0;
            const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
            return inside && element.contains(hit);
        }""",
        selector,
    )


@pytest.fixture
def page(browser):
    """A fresh browser context and page; ``page.problems`` collects console errors,
    uncaught page errors and failed requests."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    new_page = context.new_page()
    problems = PageProblems()
    new_page.on(
        "console",
        lambda message: (
            problems.console_errors.append(f"{message.text} @ {message.location}")
            if message.type == "error"
            else None
        ),
    )
    new_page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    new_page.on("request", problems.request_issued)
    new_page.on("requestfinished", problems.request_finished)
    new_page.on(
        "requestfailed", lambda request: problems.record_failed_request(request.url, request.failure, request)
    )
    new_page.on(
        "response",
        lambda response: (
            problems.document_received()
            if response.request.is_navigation_request() and response.frame == new_page.main_frame
            else None
        ),
    )
    new_page.problems = problems
    new_page.set_default_timeout(30_000)
    try:
        yield new_page
    finally:
        context.close()
