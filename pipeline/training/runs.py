"""A training run's heartbeat: a daemon thread that tells the database, every minute, that the run is alive.

A run killed with ``kill -9`` cannot close its row; its last heartbeat says until when it ran, so the next
start marks it 'interrupted' and costs it for that time (``storage.repository.interrupt_stale_training_runs``).

Example::

    from pipeline.training.runs import Heartbeat
    beat = Heartbeat(database, run_id).start()
    try:
        ...  # train
    finally:
        beat.stop()
"""

from __future__ import annotations

import logging
import threading

from storage import repository

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats ``run_id`` every ``every_s`` seconds until :meth:`stop` (or the process dies)."""

    def __init__(self, database, run_id: int, *, every_s: float = repository.HEARTBEAT_S) -> None:
        self.database = database
        self.run_id = run_id
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"training-run-{run_id}-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def beat(self) -> None:
        with self.database.session() as session:
            repository.beat_training_run(session, run_id=self.run_id)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 (a busy database must not stop the training)
                log.warning("heartbeat of training run %s failed: %s", self.run_id, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
