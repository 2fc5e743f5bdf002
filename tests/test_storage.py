"""Opening a study's storage: workers that start together on a new SQLite file all get it."""

from __future__ import annotations

import subprocess
import sys
import time

OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from autocompress.search.storage import StudyLocation, open_storage
database, go = Path(sys.argv[1]), Path(sys.argv[2])
Path(sys.argv[3]).touch()  # imported: ready
while not go.exists():
    time.sleep(0.001)
open_storage(StudyLocation(database.parent, f"sqlite:///{database}"))
"""


def test_workers_racing_to_create_a_new_sqlite_schema_all_open_it(tmp_path):
    for round_number in range(2):  # each round lost about one worker in three before the retry
        folder = tmp_path / str(round_number)
        folder.mkdir()
        workers = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, str(folder / "study.db"), str(folder / "go"),
                                     str(folder / f"ready-{number}")], stderr=subprocess.PIPE, text=True)
                   for number in range(8)]
        while len(list(folder.glob("ready-*"))) < len(workers):  # every worker has imported Optuna and waits
            assert all(worker.poll() is None for worker in workers)
            time.sleep(0.05)
        (folder / "go").touch()
        for worker in workers:
            assert worker.wait() == 0, worker.stderr.read()[-1500:]
