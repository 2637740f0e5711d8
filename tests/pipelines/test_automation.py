"""Schedules and landing-folder sensors, evaluated with Dagster's test contexts."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import dagster as dg

from twinhub import sample
from twinhub.hub.registration import register
from twinhub.pipelines.factory import build_definitions


def _landing(hub, tmp_path):
    folder = tmp_path / "landing" / "water"
    folder.mkdir(parents=True)
    shutil.copy(sample.CITY / "water" / "pumping_stations.yaml", folder)
    shutil.copy(sample.CITY / "water" / "pumping_stations.zip", folder)
    register(hub, folder / "pumping_stations.yaml")
    return folder


def test_the_landing_sensor_runs_a_dataset_once_per_new_file_version(hub, tmp_path):
    folder = _landing(hub, tmp_path)
    defs = build_definitions(hub)
    sensor = next(s for s in defs.sensors if s.name == "landing_water")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        assert first.run_requests == []  # the first tick takes stock
        unchanged = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
        assert unchanged.run_requests == []

        source = folder / "pumping_stations.zip"
        source.write_bytes(source.read_bytes() + b"\0")  # a new export lands
        os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
        changed = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=unchanged.cursor, definitions=defs))
        [request] = changed.run_requests
        assert request.run_key.startswith("water.pumping_stations@")
        assert {k.to_user_string() for k in request.asset_selection} == {
            "water/pumping_stations_staged", "water/pumping_stations"}
        assert request.tags["twinhub/department"] == "water"
        again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=changed.cursor, definitions=defs))
        assert again.run_requests == []


def test_the_schedule_runs_its_dataset_at_the_manifest_cron_in_the_city_timezone(hub, tmp_path):
    _landing(hub, tmp_path)
    defs = build_definitions(hub)
    schedule = next(s for s in defs.schedules if s.name == "at_30_2_x_x_1")
    tick = dt.datetime(2026, 11, 23, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # a Monday, 02:30 Shanghai
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    [request] = result.run_requests
    assert schedule.job_name == "at_30_2_x_x_1_job"
    job = defs.resolve_job_def(schedule.job_name)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "water/pumping_stations_staged", "water/pumping_stations"}
    assert schedule.execution_timezone == "Asia/Shanghai"
