"""How the hub scales with the number of registered datasets.

    python -m bench.definitions [--datasets 1000] [--repeat 3] [--out bench-results]

Registers one real dataset, then copies its registry entry under N names (the
registry is what definition loading reads; sources are not opened), and
measures, each as the median of --repeat runs in a fresh process:

- loading the Dagster definitions (`import twinhub.pipelines.definitions`),
- `twinhub datasets`,
- the code location snapshot every process serving the UI reads: its size, and
  the CPU seconds to build and to read it back, and with --ui
- the web UI: dagster-webserver until its code location answers, and the asset
  catalog page until it shows its rows in headless Chromium,

for N datasets and for the same hub with 1 dataset (the baseline in the same
run), so the figures come with their ratio. Wall seconds rise with the
machine's load (shared machines): CPU seconds (user + system of the process)
and the load average are recorded beside them. Targets: definitions < 5 s and
`twinhub datasets` < 1 s at 1,000 datasets.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

from twinhub import sample
from twinhub.hub.home import Hub
from twinhub.hub.registration import register

TARGETS = {"definitions_s": 5.0, "datasets_cli_s": 1.0}


def make_hub(root: pathlib.Path, datasets: int) -> Hub:
    hub = Hub.open(root)
    entry, _ = register(hub, sample.CITY / "water" / "pumping_stations.yaml")
    data = yaml.safe_load(entry.path.read_text(encoding="utf-8"))
    for i in range(1, datasets):
        department = f"dept_{i % 40:02d}"
        data.update(department=department, dataset=f"assets_{i:05d}", title=f"Assets {i}")
        target = hub.registry_dir / department / f"assets_{i:05d}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return hub


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_cpu(cmd: list[str], home: pathlib.Path, repeat: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of ``cmd`` run ``repeat`` times on ``home``."""
    env = dict(os.environ, TWINHUB_HOME=str(home))
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _children_cpu(), time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def timed(cmd: list[str], home: pathlib.Path, repeat: int) -> float:
    return timed_cpu(cmd, home, repeat)[0]


SNAPSHOT = """
import json, time
import twinhub.pipelines.definitions as d
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster_shared.serdes import deserialize_value, serialize_value
start = time.process_time()
text = serialize_value(RepositorySnap.from_def(d.defs.get_repository_def(), defer_snapshots=True))
built = time.process_time()
deserialize_value(text, RepositorySnap)
print(json.dumps({"mb": round(len(text) / 1e6, 2), "build_cpu_s": round(built - start, 2),
                  "read_cpu_s": round(time.process_time() - built, 2)}))
"""


def snapshot(home: pathlib.Path) -> dict:
    """The code location snapshot (what dagster-webserver and the daemon read): MB, CPU s to build and read."""
    env = dict(os.environ, TWINHUB_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", SNAPSHOT], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def ui_seconds(home: pathlib.Path, datasets: int) -> dict:
    """Start dagster-webserver on ``home``; seconds until its code location answers, and until the
    asset catalog page shows its first rows in headless Chromium (Debian's /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TWINHUB_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-m", "twinhub.pipelines.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    query = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    try:
        loaded = None
        while loaded is None and time.perf_counter() - start < 600:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    if len(json.load(response)["data"]["assetNodes"]) >= datasets:
                        loaded = time.perf_counter() - start
            except (OSError, KeyError, TypeError, ValueError):
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            opened = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/assets")
            page.wait_for_selector("[class*='VirtualizedTable_row']", timeout=120_000)
            catalog_page = time.perf_counter() - opened
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return {"code_location_loaded_s": round(loaded, 2) if loaded else None, "catalog_page_s": round(catalog_page, 2)}


def measure(datasets: int, repeat: int, ui: bool = False) -> dict:
    definitions = [sys.executable, "-c", "import twinhub.pipelines.definitions as d; d.defs.resolve_asset_graph()"]
    listing = [sys.executable, "-m", "twinhub", "datasets"]
    with tempfile.TemporaryDirectory() as tmp:
        base, big = make_hub(pathlib.Path(tmp) / "one", 1), make_hub(pathlib.Path(tmp) / "many", datasets)
        result = {"datasets": datasets, "repeat": repeat, "cpus": os.cpu_count(),
                  "load_before": round(os.getloadavg()[0], 2)}
        for name, cmd in (("definitions_s", definitions), ("datasets_cli_s", listing)):
            (one, one_cpu), (many, many_cpu) = timed_cpu(cmd, base.home, repeat), timed_cpu(cmd, big.home, repeat)
            result[name] = {"baseline_1": round(one, 3), f"n_{datasets}": round(many, 3),
                            "ratio": round(many / one, 2), "target": TARGETS[name], "met": many < TARGETS[name],
                            "cpu_baseline_1": round(one_cpu, 3), f"cpu_n_{datasets}": round(many_cpu, 3),
                            "cpu_met": many_cpu < TARGETS[name]}
        result["snapshot"] = {"baseline_1": snapshot(base.home), f"n_{datasets}": snapshot(big.home)}
        if ui:
            result["ui"] = {"baseline_1": ui_seconds(base.home, 1), f"n_{datasets}": ui_seconds(big.home, datasets)}
        result["load_after"] = round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    parser.add_argument("--ui", action="store_true", help="also time the web UI (needs Debian's chromium)")
    args = parser.parse_args(argv)
    result = measure(args.datasets, args.repeat, args.ui)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "definitions.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    n = args.datasets
    print(f"{os.cpu_count()} CPUs, load average {result['load_before']} before, {result['load_after']} after")
    for name in TARGETS:
        r = result[name]
        print(f"{name}: {r[f'n_{n}']} s for {n} datasets (baseline {r['baseline_1']} s with 1, x{r['ratio']}; "
              f"CPU {r[f'cpu_n_{n}']} s, baseline {r['cpu_baseline_1']} s; target < {r['target']} s: "
              f"{'met' if r['met'] else 'MISSED'}{'' if r['met'] or not r['cpu_met'] else ' (met in CPU seconds)'})")
    print(f"snapshot: {json.dumps(result['snapshot'])}")
    if "ui" in result:
        print(f"ui: {json.dumps(result['ui'])}")
    return result


if __name__ == "__main__":
    main()
