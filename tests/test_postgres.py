"""PostgreSQL studies on a real server on loopback: several workers share one (exactly N trials, every
artifact), and a server restart or outage mid-study is survived."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SEARCH_SPACE, counted_trials, free_port, open_study, search_command


BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(*command: str) -> list[str]:
    """Run server tools as the `postgres` user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server in ``data`` serving one database at ``url``."""

    url: str
    data: Path
    bin_dir: str
    port: int

    def pg_ctl(self, *action: str) -> None:
        subprocess.run(_as_postgres(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-w", "-l", str(self.data / "log"),
                                    "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", *action),
                       check=True, capture_output=True)


@pytest.fixture(scope="module")
def postgres():
    if not BINARIES:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql; .ci/run installs it)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser")
    data = Path(tempfile.mkdtemp(prefix="autocompress-pg-"))  # pytest's own temp root is closed to other users
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    bin_dir, port = BINARIES[-1], free_port()
    subprocess.run(_as_postgres(f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"),
                   check=True, capture_output=True)
    server = Server(f"postgresql://postgres@127.0.0.1:{port}/autocompress", data, bin_dir, port)
    server.pg_ctl("start")
    subprocess.run(_as_postgres(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "autocompress"), check=True, capture_output=True)
    yield server
    subprocess.run(_as_postgres(f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"), capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def test_three_workers_share_one_postgresql_study(postgres, bar_npz, session_cache, tmp_path):
    postgres_url = postgres.url
    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE)
    out = tmp_path / "study"
    command = search_command(bar_npz, space, session_cache, out,
                             "--teacher-epochs", "3", "--trials", "5", "--storage", postgres_url, "--workers", "3")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    study = open_study(postgres_url)
    complete = counted_trials(study)
    assert len(complete) == 5
    assert len({t.number for t in complete}) == 5
    folders = {Path(t.user_attrs["tflite_path"]).parent for t in complete}
    assert len(folders) == 5  # each trial wrote its own folder: none ran twice
    for trial in complete:
        for artifact_id in trial.user_attrs["artifacts"].values():
            assert (out / "artifacts" / artifact_id).is_file()


def _table(study) -> str:
    """Each trial's number, state and recorded reasons: what a failed assertion shows."""
    keys = ("fail_reason", "pruned_reason", "surplus", "repeats", "worker_pid")
    return "".join(f"trial {t.number} {t.state.name} {({k: t.user_attrs[k] for k in keys if k in t.user_attrs})}\n"
                   for t in study.trials)


def _trials(url: str, name: str, state) -> list:
    """The trials in ``state`` of the study ``name`` another process is searching (none before it exists)."""
    try:
        return open_study(url, name).get_trials(deepcopy=False, states=(state,))
    except KeyError:
        return []


def test_a_server_restart_mid_study_is_survived(postgres, bar_npz, session_cache, tmp_path):
    """The server restarted (``pg_ctl -m fast``: every connection dropped) while a trial trains, then
    stopped for 15 s as a later trial ends: the search reconnects, fails and reruns the trial it could
    not record, and completes its 3 trials with every artifact stored."""
    from optuna.trial import TrialState

    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE.replace('distill = [true, false]', 'distill = false'))
    out = tmp_path / "study"
    command = search_command(bar_npz, space, session_cache, out, "--trials", "3", "--seed", "3",
                             "--storage", postgres.url, "--study-name", "restarted")
    search = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    disrupted: list[int] = []
    measured: set[Path] = set()  # the trials' files seen so far
    deadline = time.time() + 300
    while search.poll() is None and len(disrupted) < 2 and time.time() < deadline:
        if not disrupted:
            running = _trials(postgres.url, "restarted", TrialState.RUNNING)
            if running:
                postgres.pg_ctl("-m", "fast", "restart")
                disrupted.append(running[0].number)
        elif fresh := set(out.glob("trials/*/model.tflite")) - measured:  # a trial is about to end
            measured |= fresh
            os.killpg(search.pid, signal.SIGSTOP)  # frozen, it cannot end the trial before the outage
            running = {t.number for t in _trials(postgres.url, "restarted", TrialState.RUNNING)}
            ending = [int(path.parent.name) for path in fresh if int(path.parent.name) in running]
            if ending:
                postgres.pg_ctl("-m", "fast", "stop")
                os.killpg(search.pid, signal.SIGCONT)
                time.sleep(15)  # it measures the file, then cannot record the result
                postgres.pg_ctl("start")
                disrupted.append(ending[0])
            os.killpg(search.pid, signal.SIGCONT)
        time.sleep(0.05)
    _, stderr = search.communicate(timeout=600)
    assert len(disrupted) == 2 and search.returncode == 0, stderr[-3000:]
    study = open_study(postgres.url, "restarted")
    assert len(counted_trials(study)) == 3, _table(study) + stderr[-3000:]
    unrecorded = study.trials[disrupted[1]]
    assert unrecorded.state == TrialState.FAIL
    assert unrecorded.user_attrs["fail_reason"].startswith("the storage could not be reached as it ended")
    for trial in counted_trials(study):
        for artifact_id in trial.user_attrs["artifacts"].values():
            assert (out / "artifacts" / artifact_id).is_file()


def test_a_trial_beats_on_after_an_outage(postgres, tmp_path):
    """The heartbeat of a trial that trains through a 3 s outage goes on once the server is back (Optuna's
    own thread dies at the first missed beat, so the trial would go stale and be run again elsewhere)."""
    import optuna
    import sqlalchemy

    from autocompress.search import storage as storage_mod

    location = storage_mod.StudyLocation(tmp_path, postgres.url)
    study = optuna.create_study(study_name="beating", storage=storage_mod.open_storage(location, heartbeat=1))
    engine = sqlalchemy.create_engine(postgres.url)
    ages = []

    def objective(trial):
        time.sleep(1.5)  # it beats
        postgres.pg_ctl("-m", "fast", "stop")
        time.sleep(3)
        postgres.pg_ctl("start")
        time.sleep(3)
        with engine.connect() as db:
            ages.append(db.execute(sqlalchemy.text(
                "SELECT EXTRACT(EPOCH FROM now() - heartbeat) FROM trial_heartbeats WHERE trial_id = :id"),
                {"id": trial._trial_id}).scalar_one())
        return 0.0

    study.optimize(objective, n_trials=1)
    engine.dispose()
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert float(ages[0]) < 2.5  # beats every second again; without them it would be over 6 s old
