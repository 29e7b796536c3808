"""The Train page in a real browser: start, watch, finish, cancel, reload, crash, restart.

Tiny runs (UNet, 4 base filters, depth 2, 64 px voc21 prepared from the demo) so each
epoch takes seconds on two cores. The server is the real ``cocoseg serve`` process;
jobs run as its DiskCache background callbacks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.request

import psutil
import pytest

from cocoseg.app.ids import Home, Prepare, Train
from cocoseg.pipeline.core.workspace import Workspace
from cocoseg.pipeline.jobs.registry import RunFolder
from cocoseg.pipeline.prepare.config import PrepareConfig
from cocoseg.pipeline.prepare.writer import prepare
from tests.conftest import LIMIT
from tests.e2e.conftest import _serve, assert_fits_window, fill_input, in_window
from tests.e2e.test_prepare_browser import _choose
from tests.waiting import process_running, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def train_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-train-home")
    prepare(
        Workspace(home).ensure(), PrepareConfig("demo", labels="voc21", size=64, shards=1, workers=1), LIMIT
    )
    return home


@pytest.fixture(scope="module")
def train_server(train_home, tmp_path_factory):
    yield from _serve(train_home, tmp_path_factory.mktemp("e2e-train-server") / "server.log")


def fill_form(page, epochs: int, export: bool = False, learning_rate: str | None = None) -> None:
    page.wait_for_selector("#train-start")
    for component_id, value in (
        ("train-base-filters", "4"),
        ("train-depth", "2"),
        ("train-epochs", str(epochs)),
        ("train-batch-size", "8"),
    ):
        fill_input(page, component_id, value)
    if learning_rate is not None:
        fill_input(page, "train-learning-rate", learning_rate)
    switch = page.locator("#train-export")
    if switch.is_checked() != export:
        switch.click()


def start(page) -> str:
    """Click Start and return the newly queued run's name (from the notice).

    The notice of the previous Start stays on the page until the new one replaces it, so
    this waits for a notice naming another run (CI once read the finished run's name here).
    """
    message = page.locator("#train-form-message")
    before = message.inner_text()
    page.click("#train-start")
    page.wait_for_function(
        """([selector, before]) => {
            const text = document.querySelector(selector)?.innerText || "";
            return text.includes("Queued run ") && text !== before;
        }""",
        arg=["#train-form-message", before],
        timeout=30_000,
    )
    return message.inner_text().split("Queued run ")[1].split(";")[0]


def card(page, name: str):
    return page.locator(".run-card").filter(has=page.locator(".run-name", has_text=name))


def wait_for_status(page, name: str, status: str, timeout: int = TRAIN_TIMEOUT_MS) -> None:
    card(page, name).locator(".job-status", has_text=status).wait_for(timeout=timeout)


def run_status(home, name: str) -> dict:
    return RunFolder(home / "runs" / name).status()


def test_a_run_started_from_the_page_moves_finishes_exports_and_is_listed(train_server, page, screenshot_dir):
    page.goto(train_server.url + "/train")
    page.locator("#train-model-summary", has_text="parameters").wait_for(
        timeout=90_000
    )  # counted by a job, cached
    fill_form(page, epochs=2, export=True)
    name = start(page)
    bar = card(page, name).locator(".progress-bar")
    bar.wait_for(timeout=60_000)
    wait_for(
        lambda: run_status(train_server.home, name).get("progress"), 120, "the run never reported progress"
    )
    wait_for(lambda: float(bar.get_attribute("aria-valuenow") or 0) > 0, 120, "the progress bar never moved")
    wait_for_status(page, name, "finished")
    row = page.locator("tr", has=page.locator(".run-name", has_text=name))
    row.get_by_text("model ready").wait_for(timeout=TRAIN_TIMEOUT_MS)  # exported at the end, on by default
    assert row.get_by_role("button", name="Evaluate").is_visible()
    status = run_status(train_server.home, name)
    assert (
        status["status"] == "finished" and status["export"] == "done" and status["owner"] == "dash-diskcache"
    )
    assert (train_server.home / "models" / name / "model.onnx").is_file()
    card(page, name).locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(
        timeout=30_000
    )  # the loss / mIoU curves
    assert_fits_window(page)  # the runs table and its buttons stay inside the window
    page.set_viewport_size({"width": 1280, "height": 720})  # a 1920x1080 laptop at 150 %
    assert_fits_window(page)
    assert row.get_by_role("button", name="Delete").is_visible()
    page.set_viewport_size({"width": 1400, "height": 900})
    page.screenshot(path=str(screenshot_dir / "train.png"))
    row.get_by_role(
        "button", name="Evaluate"
    ).click()  # a background job through ONNX Runtime on the val split
    page.locator("#train-action-message", has_text="mIoU").wait_for(timeout=120_000)
    page.once("dialog", lambda dialog: dialog.accept())  # Delete asks first
    row.get_by_role("button", name="Delete").click()
    page.locator("#train-action-message", has_text=f"Deleted run {name}").wait_for()
    assert (
        not (train_server.home / "runs" / name).exists()
        and (train_server.home / "models" / name / "model.onnx").is_file()
    )
    assert page.problems.all() == []


@pytest.mark.extended
def test_reload_kill_resume_and_cancel_mid_run(train_server, page):
    """One long run: live after a reload; a SIGKILLed job shows interrupted and resumes; Cancel stops it, no
    process left.
    """
    page.goto(train_server.url + "/train")
    fill_form(page, epochs=40)
    name = start(page)
    wait_for(
        lambda: RunFolder(train_server.home / "runs" / name).state().get("epoch", 0) >= 1,
        180,
        "the first epoch never finished",
    )
    page.reload()
    wait_for_status(page, name, "running", timeout=30_000)  # the registry, not the tab, is the truth
    os.kill(run_status(train_server.home, name)["pid"], signal.SIGKILL)  # a crash: out of memory, kill -9
    wait_for_status(page, name, "interrupted", timeout=30_000)
    assert "ended without finishing" in run_status(train_server.home, name)["message"]
    row = page.locator("tr", has=page.locator(".run-name", has_text=name))
    row.get_by_role("button", name="Resume").click()
    wait_for(
        lambda: RunFolder(train_server.home / "runs" / name).state().get("epoch", 0) >= 2,
        180,
        "the resumed run made no progress",
    )
    assert run_status(train_server.home, name)["status"] == "running"
    pid = run_status(train_server.home, name)["pid"]  # the resumed job's process
    card(page, name).get_by_role("button", name="Cancel").click()
    wait_for_status(page, name, "cancelled", timeout=60_000)
    assert "cancelled during epoch" in run_status(train_server.home, name)["message"]
    wait_for(lambda: not process_running(pid), 30, "the job's process to end after cancel")
    # Home's runs table fits its third of a 1280 px window, with the longest architecture's run name
    longest = train_server.home / "runs" / f"attention_unet-{name.split('-', 1)[1]}"
    shutil.copytree(train_server.home / "runs" / name, longest)
    try:
        page.set_viewport_size({"width": 1280, "height": 720})
        page.goto(train_server.url + "/")
        page.locator(f"#{Home.RUNS}", has_text=longest.name).wait_for()
        assert_fits_window(page)
    finally:
        shutil.rmtree(longest)
    assert page.problems.all() == []


def test_strengths_chosen_on_prepare_are_the_ones_the_next_run_applies(train_server, page):
    page.goto(train_server.url + "/prepare")
    message = page.locator(f"#{Prepare.AUGMENT_MESSAGE}")
    message.filter(has_text="rotation ±10° · brightness ±0.15").filter(has_text="(the defaults)").wait_for()
    handle = page.locator(f"#{Prepare.ROTATION} [role=slider]")
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")  # 1 degree a step
    wait_for(lambda: handle.get_attribute("aria-valuenow") == "15", 10, "the rotation slider to reach 15")
    page.locator(f"#{Prepare.AUGMENT_USE}").click()
    message.filter(has_text="The Train page's next runs apply").filter(has_text="rotation ±15°").wait_for()
    page.goto(train_server.url + "/train")
    summary = page.locator(f"#{Train.AUGMENT_SUMMARY}")
    summary.filter(has_text="rotation ±15°").filter(has_text="chosen on Prepare").wait_for()
    fill_form(page, epochs=1)
    name = start(page)
    applied = RunFolder(train_server.home / "runs" / name).config()["augmentation"]
    assert applied["rotation_degrees"] == 15 and applied["brightness"] == 0.15  # every strength recorded
    card(page, name).get_by_role("button", name="Cancel").click()
    page.goto(train_server.url + "/prepare")  # the page opens on training's strengths, not the defaults
    message.filter(has_text="rotation ±15°").filter(has_text="(chosen here before)").wait_for()
    assert handle.get_attribute("aria-valuenow") == "15"
    page.locator(f"#{Prepare.AUGMENT_RESET}").click()
    message.filter(has_text="defaults again").wait_for()
    wait_for(lambda: handle.get_attribute("aria-valuenow") == "10", 10, "the rotation slider back at 10")
    page.goto(train_server.url + "/train")
    wait_for_status(page, name, "cancelled", timeout=60_000)
    assert page.problems.all() == []


def test_bad_fields_are_refused_beside_the_field_and_nothing_starts(train_server, page):
    page.set_viewport_size({"width": 1280, "height": 720})  # the form scrolls; Start stays in view
    page.goto(train_server.url + "/train")
    page.wait_for_selector("#train-start")
    assert in_window(page, "#train-start"), "Start training is below the window's edge"
    runs_before = (
        len(list((train_server.home / "runs").glob("*"))) if (train_server.home / "runs").is_dir() else 0
    )
    fill_form(page, epochs=0)
    page.focus("#train-epochs")
    page.keyboard.press("Control+Enter")  # the keyboard shortcut starts (here: tries to) without the mouse
    page.locator("#train-epochs-feedback", has_text="from 1 to 1000").wait_for(timeout=10_000)
    fill_form(page, epochs=5000)
    page.click("#train-start")
    page.locator("#train-epochs-feedback", has_text="got 5000").wait_for(timeout=10_000)
    fill_form(page, epochs=2)
    fill_input(page, "train-batch-size", "0")
    page.click("#train-start")
    page.locator("#train-batch-size-feedback", has_text="from 1 to").wait_for(timeout=10_000)
    fill_input(page, "train-batch-size", "8")
    fill_input(page, "train-depth", "7")  # 64 px cannot be halved 7 times, and depth stops at 6
    page.locator("#train-model-info", has_text="depth").wait_for(timeout=10_000)
    page.click("#train-start")
    page.locator("#train-options-feedback", has_text="between 2 and 6").wait_for(timeout=10_000)
    runs_after = (
        len(list((train_server.home / "runs").glob("*"))) if (train_server.home / "runs").is_dir() else 0
    )
    assert runs_after == runs_before
    assert page.problems.all() == []


def test_a_diverging_run_fails_with_its_reason(train_server, page):
    page.goto(train_server.url + "/train")
    fill_form(page, epochs=3, learning_rate="1e12")
    name = start(page)
    wait_for_status(page, name, "failed", timeout=TRAIN_TIMEOUT_MS)
    assert "loss became NaN" in run_status(train_server.home, name)["message"]
    row = page.locator("tr", has=page.locator(".run-name", has_text=name))
    assert "loss became NaN" in row.locator("td").nth(2).get_attribute("title")
    assert page.problems.all() == []


def test_each_training_runs_in_a_new_interpreter_and_two_in_a_row_both_finish(train_server, page):
    """A job forked from a server that already ran jobs hung on an Intel Xeon: jobs must be new
    interpreters.
    """
    page.goto(train_server.url + "/train")
    server = psutil.Process(train_server.process.pid)
    names = []
    for _ in range(2):
        fill_form(page, epochs=1)
        if names:  # the second starts from the first ("Start from"): its architecture is filled in
            page.reload()
            fill_form(page, epochs=1)
            _choose(page, "train-start-from", names[0])
        name = start(page)
        names.append(name)
        wait_for(
            lambda name=name: run_status(train_server.home, name).get("pid"),
            120,
            "the job to record its process",
        )
        job = psutil.Process(run_status(train_server.home, name)["pid"])
        assert job.cmdline()[1:5] == ["-m", "cocoseg.pipeline.jobs", "train", name], job.cmdline()
        assert job.ppid() != server.pid and job.pid not in {child.pid for child in server.children()}
        wait_for_status(page, name, "finished")
        assert run_status(train_server.home, name)["status"] == "finished"
    child = RunFolder(train_server.home / "runs" / names[1])
    assert child.config()["parent"]["run"] == names[0] and child.config()["parent"]["copy_classifier"] is True
    assert [event for event in child.events() if event["type"] == "initialised"]
    row = page.locator("tr", has=page.locator(".run-name", has_text=names[1]))
    row.locator(".run-parent", has_text=f"from {names[0]}").wait_for(timeout=30_000)  # the lineage, listed
    assert page.problems.all() == []


@pytest.mark.extended
def test_a_hung_job_is_shown_stalled_and_cancel_ends_its_process(train_home, tmp_path_factory, page):
    """The job stops itself (SIGSTOP, heartbeat thread included) at its 2nd progress step, as a hang in
    native code would.
    """
    servers = _serve(
        train_home,
        tmp_path_factory.mktemp("e2e-stall") / "server.log",
        COCOSEG_STALL_SECONDS="8",
        COCOSEG_TEST_STOP_AT_PROGRESS="2",
    )
    server = next(servers)
    try:
        page.goto(server.url + "/train")
        fill_form(page, epochs=3)
        name = start(page)
        wait_for_status(page, name, "stalled", timeout=TRAIN_TIMEOUT_MS)
        status = run_status(train_home, name)
        pid = status["pid"]
        assert (
            status["status"] == "running" and psutil.Process(pid).status() == psutil.STATUS_STOPPED
        )  # the file says running
        message = card(page, name).locator(".job-message")
        assert "no heartbeat for" in message.inner_text() and f"pid {pid}" in message.inner_text()
        card(page, name).get_by_role("button", name="Cancel").click()
        wait_for_status(page, name, "cancelled", timeout=60_000)
        wait_for(lambda: not process_running(pid), 30, "the stalled job's process to end")
        assert "stalled" in run_status(train_home, name)["message"]
        assert page.problems.all() == []
    finally:
        servers.close()


def test_a_forged_old_job_does_not_kill_an_unrelated_process(train_server):
    """Dash asks the manager to terminate ``oldJob`` pids; ours refuses any it did not start."""
    bystander = psutil.Popen(["sleep", "60"])
    try:
        body = json.dumps(
            {
                "output": "train-model-summary.children",
                "outputs": {"id": "train-model-summary", "property": "children"},
                "inputs": [{"id": "train-summary-request", "property": "data", "value": None}],
                "changedPropIds": ["train-summary-request.data"],
                "state": [],
            }
        ).encode()
        for forged in (str(bystander.pid), f"{bystander.pid}.forged-signature"):
            request = urllib.request.Request(
                f"{train_server.url}/_dash-update-component?oldJob={forged}",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError:
                pass  # refusing the request is fine too; killing the bystander is not
        # the manager's terminate_job returns only once a process it ended is gone, and the response comes
        # after it
        assert bystander.is_running() and bystander.status() != psutil.STATUS_ZOMBIE
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.extended
def test_restarting_the_server_mid_run_recovers_the_state(train_home, tmp_path_factory, browser):
    servers = _serve(train_home, tmp_path_factory.mktemp("e2e-restart") / "first.log")
    first = next(servers)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(first.url + "/train")
        fill_form(page, epochs=40)
        name = start(page)
        # killed after its first epoch, so it has a checkpoint to resume from (saved before state.json's
        # epoch)
        wait_for(
            lambda: RunFolder(train_home / "runs" / name).state().get("epoch", 0) >= 1,
            180,
            "the first epoch never finished",
        )
        assert RunFolder(train_home / "runs" / name).last_checkpoint.is_file()
        for child in psutil.Process(first.process.pid).children(
            recursive=True
        ):  # the server and its jobs die together
            child.kill()
        first.process.kill()
        first.process.wait()
    finally:
        servers.close()
    second_servers = _serve(train_home, tmp_path_factory.mktemp("e2e-restart") / "second.log")
    second = next(second_servers)
    try:
        assert run_status(train_home, name)["status"] == "interrupted"  # marked at start-up, not left running
        page.goto(second.url + "/train")
        row = page.locator("tr", has=page.locator(".run-name", has_text=name))
        row.locator(".job-status", has_text="interrupted").wait_for(timeout=30_000)
        assert "resume it to continue" in run_status(train_home, name)["message"]
        assert row.get_by_role("button", name="Resume").count() == 1  # an epoch had finished: resumable
    finally:
        second_servers.close()
        context.close()
