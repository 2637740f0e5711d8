"""The Dagster UI shows the hub's catalog: department groups, column schemas and check results.

Runs the sample city through ``twinhub demo`` in a temporary home, serves the
``twinhub.pipelines.definitions`` code location with ``dagster-webserver`` on loopback and
drives the UI in headless Chromium (Debian's /usr/bin/chromium, not a
Playwright-downloaded browser). Full-page screenshots of every page visited go to
``test-output/ui/`` at the repo root (git-ignored), also when an assertion fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
CODE_MODULE = "twinhub.pipelines.definitions"
DEPARTMENTS = {  # group -> its dataset in the sample city
    "civil_affairs": "elderly_care",
    "emergency": "shelters",
    "health": "health_centres",
    "water": "pumping_stations",
}
COLUMNS = ["facility_id", "name", "category", "district", "address", "capacity", "geometry"]
UI_TIMEOUT_MS = 30_000
expect.set_options(timeout=UI_TIMEOUT_MS)  # the UI is a React SPA fed by GraphQL: give it time
SERVER_START_S = 90
LOCATION_LOAD_S = 60


@dataclasses.dataclass(frozen=True)
class DagsterUI:
    base_url: str
    location: str  # code location name, as used in /locations/<name>/... URLs
    log: pathlib.Path

    def url(self, path: str) -> str:
        return self.base_url + path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log: pathlib.Path, chars: int = 8000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no output captured)"


def _graphql(base_url: str, query: str) -> dict:
    request = urllib.request.Request(
        base_url + "/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _wait_for_server(proc: subprocess.Popen, base_url: str, log: pathlib.Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode} before serving:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(base_url + "/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer {base_url}/server_info within {SERVER_START_S} s:\n{_tail(log)}")


def _wait_for_location(base_url: str, log: pathlib.Path) -> str:
    """The loaded code location's name; fails with Dagster's load error if it did not load."""
    deadline = time.monotonic() + LOCATION_LOAD_S
    entries: list = []
    while time.monotonic() < deadline:
        workspace = _graphql(base_url, WORKSPACE_QUERY)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            pytest.fail(f"Dagster could not read the workspace: {workspace.get('message')}\n{_tail(log)}")
        entries = workspace["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            broken = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
            if broken:
                errors = "\n\n".join(f"{e['name']}: {e['locationOrLoadError']['message']}" for e in broken)
                pytest.fail(f"code location failed to load in the Dagster UI:\n{errors}")
            assert len(entries) == 1, entries
            return entries[0]["name"]
        time.sleep(0.5)
    pytest.fail(f"code location still not loaded after {LOCATION_LOAD_S} s: {entries}\n{_tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the webserver and everything in its process group (the code server too)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    # children (the gRPC code server) may outlive the webserver: kill whatever is left of the group
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory):
    """The sample city materialized in a temporary home, served by dagster-webserver on loopback."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("TWINHUB_HOME", "DAGSTER_HOME")}
    demo = subprocess.run(
        [sys.executable, "-m", "twinhub", "--home", str(home), "demo"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    if demo.returncode != 0:
        pytest.fail(f"twinhub demo failed ({demo.returncode}):\n{demo.stdout[-4000:]}\n{demo.stderr[-4000:]}")
    assert (home / "dagster" / "dagster.yaml").is_file(), "the demo did not create a DAGSTER_HOME"

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = root / "webserver.log"
    env.update(TWINHUB_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", CODE_MODULE, "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: teardown reaches the code server too
        )
    try:
        _wait_for_server(proc, base_url, log)
        location = _wait_for_location(base_url, log)
        # the "Join the Dagster community" dialog covers the page on loopback until it has been seen
        _graphql(base_url, "mutation { setNuxSeen }")
        yield DagsterUI(base_url=base_url, location=location, log=log)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Page:
    # Dagster scrolls inside its own panes, so full-page screenshots are only as tall as the viewport
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def _screenshot(page: Page, name: str) -> pathlib.Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception:  # a screenshot is evidence, not the assertion: never mask the real failure
        pass
    return path


def _table_rows(page: Page):
    """Rows of Dagster's virtualized tables (asset list, check list): divs without an ARIA role."""
    return page.locator("[class*='VirtualizedTable_row']")


def _open(page: Page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    # the SPA has rendered once the navigation sidebar is up
    expect(page.get_by_role("link", name="Catalog")).to_be_visible()


def test_catalog_lists_every_dataset_in_its_department_group(dagster_ui: DagsterUI, page: Page):
    try:
        _open(page, dagster_ui.url("/assets"))
        for group, dataset in DEPARTMENTS.items():
            row = _table_rows(page).filter(has=page.locator(f'a[href="/assets/{group}/{dataset}"]'))
            expect(row).to_have_count(1)
            expect(row).to_be_visible()
            expect(row.get_by_role("link", name=re.compile(rf"(^|\s){group}$"))).to_be_visible()  # the asset group column
            expect(row).to_contain_text(dagster_ui.location)  # the code location column
            expect(row).to_contain_text("Materialized")
        expect(page.get_by_text("Elderly care facilities", exact=False).first).to_be_visible()
    finally:
        _screenshot(page, "catalog")


def test_asset_groups_page_shows_each_department(dagster_ui: DagsterUI, page: Page):
    try:
        _open(page, dagster_ui.url("/asset-groups"))
        expect(page.get_by_text("Global asset lineage")).to_be_visible()
        for group in DEPARTMENTS:
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
    finally:
        _screenshot(page, "asset_groups")


def test_group_page_lists_the_departments_dataset(dagster_ui: DagsterUI, page: Page):
    try:
        _open(page, dagster_ui.url(f"/locations/{dagster_ui.location}/asset-groups/civil_affairs"))
        expect(page.get_by_text("Asset Group in")).to_be_visible()
        expect(page.get_by_text(dagster_ui.location, exact=True).first).to_be_visible()
        expect(page.get_by_text("elderly_care", exact=True).first).to_be_visible()
        expect(page.get_by_text("elderly_care_staged", exact=True).first).to_be_visible()
        # the lineage nodes fill in their live data: materialized, and the staging audit passed
        expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
        expect(page.get_by_text("7 / 7 Passed", exact=True)).to_be_visible()
    finally:
        _screenshot(page, "group_civil_affairs")


def test_asset_page_shows_the_column_schema(dagster_ui: DagsterUI, page: Page):
    try:
        _open(page, dagster_ui.url("/assets/civil_affairs/elderly_care"))
        expect(page.get_by_text("Elderly care facilities", exact=True)).to_be_visible()
        columns = page.locator("table").filter(has_text="Column name")
        expect(columns).to_have_count(1)
        expect(columns).to_be_visible()
        for column in COLUMNS:
            expect(columns.get_by_text(column, exact=True).first).to_be_visible()
        # constraints and vocabulary from the standard make it into the schema
        expect(columns).to_contain_text("non-nullable")
        expect(columns).to_contain_text("geometry: Point")
        expect(columns).to_contain_text("The owning department's identifier for the facility")
    finally:
        _screenshot(page, "asset_elderly_care")


def test_checks_tab_shows_check_results(dagster_ui: DagsterUI, page: Page):
    try:
        # health's staging: 15 of 16 rows carry mapped labels, under the 95% the audit wants
        _open(page, dagster_ui.url("/assets/health/health_centres_staged?view=checks"))
        expect(page.get_by_text("Checks (7)")).to_be_visible()
        passing = _table_rows(page).filter(has=page.get_by_text("crs_and_geometry", exact=True))
        warning = _table_rows(page).filter(has=page.get_by_text("label_coverage", exact=True))
        expect(passing).to_have_count(1)
        expect(warning).to_have_count(1)
        expect(passing).to_contain_text("Succeeded")
        expect(warning).to_contain_text("Failed")

        warning.click()
        expect(page).to_have_url(re.compile(r"label_coverage"))
        expect(page.get_by_text("non-blocking", exact=True)).to_be_visible()
        expect(page.get_by_text("unmapped rows wait in quarantine", exact=False)).to_be_visible()
        expect(page.get_by_text("Evaluation result")).to_be_visible()
        expect(page.get_by_text("Failed", exact=True)).to_have_count(2)  # in the list and as the latest result
        _screenshot(page, "checks_label_coverage")

        passing.click()
        expect(page).to_have_url(re.compile(r"crs_and_geometry"))
        expect(page.get_by_text("blocking", exact=True)).to_be_visible()
        expect(page.get_by_text("a wrong CRS fails most rows", exact=False)).to_be_visible()
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()  # the latest result
    finally:
        _screenshot(page, "checks_crs_and_geometry")
