"""Publishing onto a full filesystem: one clear error, the previous version still served, nothing left behind.

The hub's catalog and staging folders live on a small tmpfs the test mounts (a loop-mounted
ext4 image if tmpfs is refused); both need root, which the test and CI run as.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from twinhub.catalog.vacuum import data_files
from twinhub.hub.home import Hub
from twinhub.hub.ingest import ingest
from twinhub.hub.registration import register
from twinhub.hub.registry import lookup
from twinhub.pipelines.runner import run_datasets

from .conftest import DATASET, expected, served, write_manifest, write_source

pytestmark = pytest.mark.slow
SIZE_MB = 24


def _mount(folder: pathlib.Path, image: pathlib.Path) -> str:
    """Mount a SIZE_MB filesystem on ``folder``; returns which kind."""
    tmpfs = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if tmpfs.returncode == 0:
        return "tmpfs"
    subprocess.run(["truncate", "-s", f"{SIZE_MB}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["mount", "-o", "loop", str(image), str(folder)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.fail(f"cannot mount a small filesystem (tmpfs: {tmpfs.stderr.strip()}; loop: {loop.stderr.strip()}); "
                    "the disk-full tests need root")
    return "ext4 loop"


@pytest.fixture
def small_disk(tmp_path: pathlib.Path):
    folder = tmp_path / "small"
    folder.mkdir()
    kind = _mount(folder, tmp_path / "small.img")
    try:
        yield folder, kind
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: pathlib.Path, leave: int) -> pathlib.Path:
    """Write a filler file until only ``leave`` bytes are free."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with filler.open("wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * max(0, free - leave))
        fh.flush()
        os.fsync(fh.fileno())
    return filler


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_full_disk_fails_clearly_keeps_the_served_version_and_leaves_no_files(tmp_path, small_disk):
    disk, kind = small_disk
    home = tmp_path / "home"
    Hub.open(home)
    for name in ("catalog", "staging"):  # the hub's data on the small disk; Dagster's records stay beside it
        shutil.move(str(home / name), str(disk / name))
        (home / name).symlink_to(disk / name)
    hub = Hub.open(home)
    source = write_source(tmp_path / "drill.csv", 60)
    register(hub, write_manifest(tmp_path, source))
    ingest(hub, lookup(hub, DATASET), run_id="first")
    before = served(hub)
    files_before = data_files(hub.lake)

    write_source(source, 60_000, version=2)  # several MB staged: more than the disk has left
    filler = _fill(disk, leave=256 * 1024)
    summary = run_datasets(hub, [DATASET])
    outcome = next(o for o in summary.outcomes if o.dataset == DATASET)
    assert not outcome.ok
    assert outcome.error.startswith("disk full while ") and DATASET in outcome.error, outcome.error
    assert "free space on the filesystem of" in outcome.error and "or move the hub home" in outcome.error
    assert "Traceback" not in outcome.error and "\n" not in outcome.error

    filler.unlink()  # make room so the catalog can be read and written again
    assert served(hub) == {**before, "snapshots": served(hub)["snapshots"]}  # the previous version serves
    assert _files(hub.staging_dir) == []  # no stage, no spill file left
    assert data_files(hub.lake) == files_before  # no half-written data file
    print(f"filesystem: {kind}")

    again = run_datasets(hub, [DATASET])
    assert again.ok, [o.error for o in again.outcomes]
    assert served(hub)["rows"] == served(hub)["keys"] == expected(60_000)[0]
