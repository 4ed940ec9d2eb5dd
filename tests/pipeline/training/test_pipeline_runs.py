"""Training runs killed with kill -9: the next start marks them 'interrupted' and costs the time they ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.training.cost import cost_report
from pipeline.settings import Settings
from storage import repository
from storage.db import Database
from storage.models import TrainingRun
from tests.fakes.awesomeapi_server import FakeAwesomeAPI

CHILD = textwrap.dedent("""
    import sys, time
    from storage import repository
    from storage.db import Database
    from pipeline.training.runs import Heartbeat
    database = Database(sys.argv[1])
    with database.session() as session:
        run_id = repository.create_training_run(session, base_model="embedded", gpu_hourly_usd=3600.0).id
    Heartbeat(database, run_id, every_s=0.1).start()
    print(run_id, flush=True)
    time.sleep(600)
""")


def _database(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'o.db'}")
    database.upgrade()
    return database


def test_kill_9_of_a_training_process_is_found_interrupted_and_costed(tmp_path):
    with FakeAwesomeAPI(rate=5.0) as fake:
        settings = Settings(DATA_DIR=tmp_path / "data", AWESOMEAPI_URL=fake.url, TIMEZONE="UTC")
        database = Database(settings.database_url)
        database.upgrade()
        child = subprocess.Popen([sys.executable, "-c", CHILD, settings.database_url], stdout=subprocess.PIPE,
                                 text=True, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
        try:
            run_id = int(child.stdout.readline())
            time.sleep(0.8)  # a few heartbeats
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        with database.session() as session:
            assert session.get(TrainingRun, run_id).status == "running"  # nobody closed it
        report = cost_report(settings)
    with database.session() as session:
        run = session.get(TrainingRun, run_id)
        assert run.status == "interrupted" and f"process {child.pid}" in run.error
        assert 0.3 < run.duration_s < 5  # up to its last heartbeat, not until now
        assert run.cost_usd == pytest.approx(run.duration_s)  # 3600 US$/h = 1 US$/s
        assert run.cost_brl == pytest.approx(run.cost_usd * 5.0) and run.usd_brl == 5.0
    database.dispose()
    assert report["month_runs_interrupted"] == [run_id] and report["month_runs_without_rate"] == []
    assert report["last"]["status"] == "interrupted"


def test_the_next_run_marks_dead_and_silent_runs_interrupted_and_leaves_live_ones(tmp_path):
    database = _database(tmp_path)
    now = datetime.now(timezone.utc)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with database.session() as session:
        def run(**fields):
            row = TrainingRun(status="running", base_model="m", gpu_hourly_usd=36.0, **fields)
            session.add(row)
            session.flush()
            return row.id

        here = repository.create_training_run(session, base_model="m").host
        dead_here = run(host=here, pid=dead.pid, started_at=now - timedelta(minutes=5),
                        heartbeat_at=now - timedelta(minutes=3))
        alive_here = run(host=here, pid=os.getppid(), started_at=now - timedelta(hours=5), heartbeat_at=None)
        mine = run(host=here, pid=os.getpid(), started_at=now - timedelta(hours=5), heartbeat_at=None)
        silent_elsewhere = run(host="other-machine", pid=1, started_at=now - timedelta(hours=2),
                               heartbeat_at=now - timedelta(hours=1))
        beating_elsewhere = run(host="other-machine", pid=2, started_at=now - timedelta(hours=2),
                                heartbeat_at=now - timedelta(seconds=30))
        legacy = run(started_at=now - timedelta(days=3))  # from before hosts and heartbeats were recorded
    with database.session() as session:
        repository.create_training_run(session, base_model="m")
        status = {i: session.get(TrainingRun, i).status
                  for i in (dead_here, alive_here, mine, silent_elsewhere, beating_elsewhere, legacy)}
        assert status == {dead_here: "interrupted", alive_here: "running", mine: "running",
                          silent_elsewhere: "interrupted", beating_elsewhere: "running", legacy: "interrupted"}
        row = session.get(TrainingRun, dead_here)
        assert row.duration_s == pytest.approx(120, abs=1) and row.cost_usd == pytest.approx(1.2, abs=0.01)
        assert row.cost_brl is None  # storage has no quote: the cost report adds it
        # a run presumed dead that finishes after all has the last word
        repository.finish_training_run(session, run_id=silent_elsewhere, status="succeeded")
        assert session.get(TrainingRun, silent_elsewhere).status == "succeeded"
    database.dispose()
