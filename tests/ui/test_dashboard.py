"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless) against a
live `loraplane serve` and `loraplane worker` (deploy/ensure-browser.sh installs Chromium;
`make test` runs it first). Each page is saved as a screenshot under
$LORAPLANE_TEST_ARTIFACTS/ui (default .test-artifacts/ui)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, LiveWorker, wait_for_job
from tests.specs import tiny_spec

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("LORAPLANE_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / ".test-artifacts") / "ui"
NAME = "ui-demo"
# Enough steps that the curve is seen growing, a point every step, a few checkpoints.
LONG_STEPS = 200  # outlasts opening the job's page on a fast, quiet machine


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, httpx.Client]]:
    root = tmp_path_factory.mktemp("ui")
    env = {"LORAPLANE_QUEUE_POLL_SECONDS": "0.2"}
    with LiveServer(root / "api", f"sqlite:///{root / 'db.sqlite'}", env=env) as server, \
            server.client() as client:
        worker = LiveWorker(server, root / "worker").start()
        try:
            yield server, client
        finally:
            worker.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/ensure-browser.sh (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live):
    server, _ = live
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: print(f"browser console {msg.type}: {msg.text}"))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, token: str, hash_: str = "#/jobs") -> None:
    page.goto(f"/ui/{hash_}")
    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").press("Enter")  # the keyboard signs in, no click needed


def test_a_bad_token_is_refused_readably_and_kept_out_of_urls(page, live):
    server, _ = live
    page.goto("/ui")  # redirected to /ui/, served by the API itself without a token
    assert page.url.endswith("/ui/")
    sign_in(page, "not-a-real-token")
    problem = page.locator(".problem")
    problem.wait_for()
    assert "HTTP 401" in problem.inner_text()
    assert problem.locator("code").inner_text() == "unauthorized"
    assert page.evaluate("sessionStorage.getItem('loraplane.token')") is None
    screenshot(page, "signin-error")

    sign_in(page, server.admin_token)
    page.get_by_role("heading", name="Jobs").wait_for()
    assert server.admin_token not in page.url
    assert page.evaluate("sessionStorage.getItem('loraplane.token')") == server.admin_token


def _points(page, chart: str) -> int:
    return int(page.get_by_label(chart, exact=True).get_attribute("data-points"))


def _wait_points(page, chart: str, at_least: int, timeout: float = 30) -> int:
    # Polled from here: the page's CSP (no eval) refuses Playwright's wait_for_function.
    deadline = time.monotonic() + timeout
    while (points := _points(page, chart)) < at_least:
        assert time.monotonic() < deadline, (
            f"{chart}: {points} points after {timeout} s; the page: "
            f"{page.locator('main').inner_text()[:1500]}")
        time.sleep(0.1)
    return points


def test_a_running_job_appears_live_and_its_curves_grow(page, live):
    server, client = live
    sign_in(page, server.admin_token, "#/jobs?state=running")
    page.get_by_role("heading", name="Jobs").wait_for()
    page.get_by_text("Live").wait_for()

    spec = tiny_spec(NAME, max_steps=LONG_STEPS, save_interval=60, lr=0.005)
    spec["actor"]["global_batch_size"] = 4  # one micro-batch a step: a quicker step
    job = client.post("/jobs", json=spec).json()
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    row.wait_for()  # the `running` filter shows it once it runs, without a reload
    assert row.get_attribute("data-state") == "running"
    screenshot(page, "jobs")

    # Live updates change the row in place: a link focused from the keyboard stays focused.
    link = row.get_by_role("link").first
    link.focus()
    time.sleep(1)  # a few updates of the running job
    assert page.evaluate("document.activeElement.getAttribute('href')") == f"#/jobs/{job['id']}"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=NAME).wait_for()  # the experiment's name
    assert job["id"] in page.locator("main").inner_text()
    first = _wait_points(page, "Loss", 3)
    assert first < LONG_STEPS, "the job ended before its page showed it running"
    _wait_points(page, "Loss", first + 1)  # drawn as they arrive, without a reload
    assert _points(page, "Learning rate") > 0
    screenshot(page, "job-running")

    done = wait_for_job(client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    page.get_by_text("The job ended").wait_for()
    assert _points(page, "Loss") == LONG_STEPS
    page.locator(".badge.state-succeeded").first.wait_for()
    checkpoint_rows = page.locator("section[aria-labelledby='h-Checkpoints'] tbody tr")
    checkpoint_rows.first.wait_for()
    assert checkpoint_rows.count() == len(client.get(f"/jobs/{job['id']}/checkpoints").json()["items"])
    assert page.locator(".event-state").count() >= 3  # queued, running, succeeded
    screenshot(page, "job")


def test_adapter_lineage_alias_move_and_download(page, live, tmp_path: Path):
    server, client = live
    parents = client.get("/adapters", params={"name": NAME}).json()["items"]
    assert parents, "the previous test trains the first version"
    parent = parents[-1]
    child_job = client.post("/jobs", json=tiny_spec(NAME, max_steps=6, save_interval=3,
                                                    lora_path=parent["lora_path"])).json()
    child_job = wait_for_job(client, child_job["id"], {"succeeded", "failed"})
    assert child_job["state"] == "succeeded", child_job["error"]
    child = client.get(f"/adapters/{child_job['adapter_id']}").json()
    assert client.put(f"/aliases/{NAME}/prod", json={"adapter_id": parent["id"]}).status_code == 200

    sign_in(page, server.admin_token, f"#/adapters/{child['id']}")
    page.get_by_role("heading", name=f"{NAME} v{child['version']}").wait_for()
    graph = page.locator("svg.lineage")
    assert graph.get_attribute("data-nodes") == "2"
    parent_link = graph.locator(f'a[href="#/adapters/{parent["id"]}"]')
    assert f"{NAME} v{parent['version']}" in parent_link.text_content()

    # Move `prod` to this version: the dialog asks first; Cancel changes nothing.
    page.get_by_label("Alias", exact=True).fill("prod")
    page.get_by_role("button", name="Move alias…").click()
    dialog = page.locator("dialog#confirm")
    assert f"from v{parent['version']} to v{child['version']}" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert client.get(f"/aliases/{NAME}/prod").json()["adapter_id"] == parent["id"]
    page.get_by_role("button", name="Move alias…").click()
    dialog.get_by_role("button", name="Move alias").click()
    page.locator(".notice").wait_for()
    assert client.get(f"/aliases/{NAME}/prod").json()["adapter_id"] == child["id"]
    assert page.locator(f'tr[data-version="{child["version"]}"] .chip').inner_text() == "prod"
    screenshot(page, "adapter")

    # A file downloads with the bearer header (fetched as a blob), its sha256 checked.
    config = next(f for f in child["files"] if f["name"] == "adapter_config.json")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download adapter_config.json").click()
    saved = tmp_path / "adapter_config.json"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == config["sha256"]
    page.get_by_text("Saved, sha256 verified").wait_for()

    # The parent's page shows the child it was continued into; a graph node is a link.
    parent_link = page.locator("svg.lineage").locator(f'a[href="#/adapters/{parent["id"]}"]')
    parent_link.focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=f"{NAME} v{parent['version']}").wait_for()
    assert page.locator("svg.lineage").locator(f'a[href="#/adapters/{child["id"]}"]').count() == 1

    page.get_by_role("link", name="Adapters", exact=True).click()
    page.locator(f'tr[data-adapter="{child["id"]}"]').wait_for()
    screenshot(page, "adapters")


def test_datasets_list_and_a_missing_adapter(page, live):
    server, client = live
    body = b'{"prompt": "2+2=", "response": "4"}\n{"prompt": "3+3=", "response": "6"}\n'
    created = client.post("/datasets", params={"name": "arith.jsonl"}, content=body,
                          headers={"Content-Type": "application/jsonl"})
    assert created.status_code == 201, created.text
    sign_in(page, server.admin_token, "#/datasets")
    page.get_by_role("cell", name="arith.jsonl").wait_for()
    assert created.json()["sha256"] in page.locator("table").inner_text()
    screenshot(page, "datasets")

    page.goto("/ui/#/adapters/ad_doesnotexist")
    problem = page.locator(".problem")
    problem.wait_for()
    assert "HTTP 404" in problem.inner_text()
    assert problem.locator(".problem-detail").inner_text()  # the API's detail, shown as is


def test_a_job_is_cancelled_from_its_page_after_confirming(page, live):
    server, client = live
    job = client.post("/jobs", json=tiny_spec("ui-cancel", max_steps=400, save_interval=-1)).json()
    sign_in(page, server.admin_token, f"#/jobs/{job['id']}")
    page.get_by_role("heading", name="ui-cancel").wait_for()
    page.get_by_role("button", name="Cancel job…").click()
    page.locator("dialog#confirm").get_by_role("button", name="Cancel job").click()
    # Queued: cancelled at once; running: `cancelling` until its worker stops at a step.
    wait_for_job(client, job["id"], {"cancelling", "cancelled"}, timeout=30)
    page.locator(".facts .badge.state-cancelling, .facts .badge.state-cancelled").wait_for()
    page.get_by_role("button", name="Cancel job…").wait_for(state="detached")
