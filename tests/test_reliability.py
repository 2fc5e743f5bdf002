"""Crash safety: a search killed with SIGKILL mid-trial resumes to exactly N trials, nothing lost or doubled."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import sqlalchemy
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from helpers import SEARCH_SPACE, counted_trials, open_study, search_command, trials_while_searching


def _running_trial(folder: Path, deadline: float) -> int:
    while time.time() < deadline:
        running = trials_while_searching(folder, TrialState.RUNNING)
        if running:
            return running[0].number
        time.sleep(0.5)
    raise AssertionError("no trial started in time")


def _new_files(folder: Path, pattern: str, before: set) -> bool:
    return any(path not in before for path in folder.glob(pattern))


# The moments of a study at which the test kills it, each with what shows that it has come (seen from
# outside, as files and trials appear) and how long after that the kill falls (seeded random).
_MOMENTS = {
    "training": (lambda out, before: bool(trials_while_searching(out, TrialState.RUNNING)), (0.3, 2.0)),
    "the student cache's write": (lambda out, before: _new_files(out / "cache" / "students", "*.npz", before),
                                  (0.0, 0.05)),
    "pruning or conversion": (lambda out, before: _new_files(out / "cache" / "students", "*.keras", before),
                              (0.0, 0.3)),
    "measuring the file": (lambda out, before: _new_files(out / "trials", "*/model.tflite", before), (0.0, 0.2)),
    "the artifact upload": (lambda out, before: _new_files(out / "trials", "*/result.json", before), (0.0, 0.1)),
    "recording the trial": (lambda out, before: _new_files(out / "artifacts", "*", before), (0.0, 0.1)),
    "the front's writing": (lambda out, before: _new_files(out, "front.csv", before), (0.0, 0.0)),
}
# The first six go through one trial's life; the last four come in any run that has a trial left, whatever
# the sampler drew and however fast the machine (a second student's first training, say, may be over before
# the kill that would have caught it: a moment that needs a new student could not come again).
_KILLS = ("training", "the student cache's write", "pruning or conversion", "measuring the file",
          "the artifact upload", "recording the trial", "training", "measuring the file",
          "the artifact upload", "the front's writing")


def _snapshot(out: Path) -> set:
    return set(out.rglob("*")) if out.exists() else set()


def _kill_at(command: list[str], out: Path, moment: str, delay: float, whole_group: bool) -> int | None:
    """Run ``command`` until ``moment`` has come, then ``delay`` seconds more, then kill -9 it (its
    process, or its whole process group); the pid killed, or None if it ended first."""
    seen, _ = _MOMENTS[moment]
    before = _snapshot(out)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        while not seen(out, before):
            if process.poll() is not None:
                return None
            time.sleep(0.02)
        time.sleep(delay)
        # the search's run folder, named after it, is there while its workers write (not yet, perhaps, when
        # an earlier kill's RUNNING trial is what "training" sees; the front comes after the workers)
        assert moment in ("training", "the front's writing") or _run_folders(process.pid)
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGKILL)  # its workers die with it
        return process.pid
    finally:
        process.wait()


def _run_folders(pid: int) -> list[Path]:
    """The search process ``pid``'s run folders in the system's temporary directory."""
    return list(Path(tempfile.gettempdir()).glob(f"autocompress-run@*@{pid}@*"))


def _readable(path: Path, filename: str) -> None:
    """``path`` (a model file that was written as ``filename``) loads whole."""
    if filename.endswith(".tflite"):
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_path=str(path)).allocate_tensors()
    elif filename.endswith(".keras"):
        from autocompress._tf import keras

        named = path.with_name(f".{path.name}.{filename}")  # Keras reads the format from the suffix
        named.symlink_to(path.name)
        try:
            keras.models.load_model(named, compile=False)
        finally:
            named.unlink()
    else:
        import numpy as np

        with np.load(path) as arrays:
            [arrays[name] for name in arrays.files]


def test_kill_9_at_ten_moments_then_the_same_command_each_time_completes_the_study(bar_npz, session_cache,
                                                                                   tmp_path):
    import json
    import random

    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE)
    out = tmp_path / "study"
    # the default --heartbeat (30 s): no waiting for it
    command = search_command(bar_npz, space, session_cache, out,
                             "--teacher-epochs", "3", "--trials", "4", "--seed", "5")
    rng = random.Random(9)
    killed, pids = [], []
    for i, moment in enumerate(_KILLS):
        delay = rng.uniform(*_MOMENTS[moment][1])
        if pid := _kill_at(command, out, moment, delay, whole_group=i % 2 == 1):
            killed.append(moment)
            pids.append(pid)
    assert killed == list(_KILLS), killed  # the study was not done before its last kill

    again = subprocess.run(command, capture_output=True, text=True)  # at once
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished trials" not in again.stdout  # not short
    assert "Warning" not in again.stderr  # Optuna's "experimental" heartbeat retries are ours to use, quietly
    study = open_study(out)
    trials = study.get_trials()
    counted = counted_trials(study)
    assert len(counted) == 4
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    killed_trials = [t for t in trials if t.state == TrialState.FAIL
                     and t.user_attrs["fail_reason"].startswith("its worker (pid ")]
    assert len(killed_trials) >= 6  # the kills after the study's first trial started, but for the front's
    retry_of = RetryHeartbeatStaleTrialCallback.retried_trial_number
    for t in killed_trials:  # each killed configuration ran again, at once (with the parameters it had drawn
        # when it was killed); a retry killed too is not retried again (max_retry=1: a configuration that kills
        # its worker each time would loop)
        retried = [r for r in trials if retry_of(r) == t.number]
        if retry_of(t) is not None:
            assert retried == []
        else:
            assert len(retried) == 1 and t.params.items() <= retried[0].params.items()

    # every artifact any trial uploaded (those of killed trials too) is whole, or absent
    for t in trials:
        for key, meta in t.system_attrs.items():
            path = out / "artifacts" / key[len(ARTIFACTS_ATTR_PREFIX):]
            if key.startswith(ARTIFACTS_ATTR_PREFIX) and path.exists():
                _readable(path, json.loads(meta)["filename"])
    referenced = [artifact for t in counted for artifact in t.user_attrs["artifacts"].values()]
    assert len(set(referenced)) == len(referenced) == 8
    for t in counted:
        tflite = (out / "artifacts" / t.user_attrs["artifacts"]["tflite"]).read_bytes()
        assert len(tflite) == t.user_attrs["tflite_bytes"]
        assert tflite == (out / "trials" / f"{t.number:05d}" / "model.tflite").read_bytes()
    # every cache entry is whole: a later trial may load it
    entries = [p for folder in ("students", "pruned") for p in (out / "cache" / folder).iterdir()
               if not p.name.startswith(".")]
    assert entries
    for entry in entries:
        _readable(entry, entry.name)
    # what the killed runs were writing was swept away (sweep_temporaries); what stays hidden is the students'
    # locks and the epoch backups of killed trainings that no run has finished since
    assert not [p for p in out.rglob(".*") if "tmp@" in p.name]
    # and so were the killed searches' run folders in the system's temporary directory
    assert not [p for pid in pids for p in _run_folders(pid)]
    assert all(p.name.endswith(".lock") or ".training" in p.parts for p in out.rglob(".*"))
    # the front's files are whole and agree (the last kill fell while they were written)
    front = [row["trial"] for row in json.loads((out / "front.json").read_text())]
    with open(out / "front.csv", newline="") as handle:
        assert [int(row["trial"]) for row in csv.DictReader(handle)] == front
    assert set(front) <= {t.number for t in counted} and (out / "front.html").read_text().endswith("</html>")


def test_an_upload_cut_short_leaves_no_artifact(tmp_path):
    from autocompress.search.artifacts import AtomicArtifactStore

    class CutShort(io.RawIOBase):  # a model file whose reading fails after its first bytes
        sent = False

        def readable(self):
            return True

        def readinto(self, buffer):
            if self.sent:
                raise OSError("the disk went away")
            self.sent = True
            buffer[:4] = b"TFL3"
            return 4

    with pytest.raises(OSError, match="went away"):
        AtomicArtifactStore(tmp_path).write("an-artifact-id", io.BufferedReader(CutShort()))
    assert not list(tmp_path.iterdir())  # Optuna's own store leaves a truncated file under the id


def test_a_scratch_folder_sweeps_only_those_of_dead_processes_of_its_kind(tmp_path):
    """A run's scratch folder (its space, its workers' errors) that ``kill -9`` left is deleted by the
    next one; a live process's, and another kind's, stay."""
    import socket

    from autocompress.cache import scratch_folder

    gone = subprocess.Popen(["true"])
    gone.wait()
    root, host = Path(tempfile.gettempdir()), socket.gethostname()
    left = {name: root / f"autocompress-{kind}@{host}@{pid}@{tmp_path.name}" for name, kind, pid in
            [("dead", "run", gone.pid), ("live", "run", os.getpid()), ("other kind", "vela", gone.pid)]}
    for folder in left.values():
        (folder / "space.pickle").parent.mkdir()
        (folder / "space.pickle").write_bytes(b"x")
    try:
        with scratch_folder("run") as folder:
            assert folder.name.startswith(f"autocompress-run@{host}@{os.getpid()}@") and folder.is_dir()
        assert not folder.exists()
        assert {name for name, path in left.items() if path.exists()} == {"live", "other kind"}
    finally:
        for path in left.values():
            shutil.rmtree(path, ignore_errors=True)


def test_only_temporaries_of_dead_writers_on_this_host_are_swept(tmp_path):
    import socket

    from autocompress.cache import atomic_file, sweep_temporaries

    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    names = {"dead": f".model.tflite.tmp@{host}@{dead.pid}@x1.tflite", "live": f".model.tflite.tmp@{host}@{os.getpid()}@x2.tflite",
             "elsewhere": f".model.tflite.tmp@another-host@{dead.pid}@x3.tflite", "user's": ".model.tflite.tmp.tflite"}
    for name in names.values():
        (tmp_path / "trials" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "trials" / name).write_bytes(b"partial")
    with atomic_file(tmp_path / "trials" / "done.tflite") as tmp:  # the name a writer gives its temporary
        assert tmp.name.startswith(f".done.tflite.tmp@{host}@{os.getpid()}@")
        tmp.write_bytes(b"whole")
    assert sweep_temporaries(tmp_path) == [tmp_path / "trials" / names["dead"]]
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == sorted(
        [*(names[k] for k in ("live", "elsewhere", "user's")), "done.tflite"])


_TRAIN_STUDENT = """
import os, sys
from pathlib import Path
from autocompress._tf import keras
from autocompress.compress.config import CompressionConfig
from autocompress.compress.pipeline import Context, train_student
from autocompress.data import load_dataset

data, folder = load_dataset(sys.argv[1]), Path(sys.argv[2])
class Epochs(keras.callbacks.Callback):  # logs each epoch it trains; dies (as kill -9 would) after the second
    def on_epoch_begin(self, epoch, logs=None):
        with open(folder / "epochs", "a") as log:
            log.write(f"{epoch}\\n")
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and sys.argv[3] == "die":
            os._exit(9)
config = CompressionConfig(student="cnn", width=0.25, epochs=4, batch_size=32)
train_student(config, Context(data, folder / "cache"), None, [Epochs()], [])
"""


def test_a_student_training_killed_midway_goes_on_from_its_last_epoch(bar_npz, tmp_path):
    import sys

    script = [sys.executable, "-c", _TRAIN_STUDENT, str(bar_npz), str(tmp_path)]
    assert subprocess.run([*script, "die"], capture_output=True).returncode == 9  # killed after epoch 2 of 4
    backups = list((tmp_path / "cache" / "students" / ".training").iterdir())
    assert len(backups) == 1 and not list((tmp_path / "cache" / "students").glob("*.keras"))
    again = subprocess.run([*script, "live"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "epochs").read_text().split() == ["0", "1", "2", "3"]  # epochs 3 and 4 only, the second time
    assert len(list((tmp_path / "cache" / "students").glob("*.keras"))) == 1
    assert not backups[0].exists()  # removed once the training ended


_TRAIN_TEACHER = """
import sys, time
from pathlib import Path
from autocompress._tf import keras
from autocompress.api import get_teacher
from autocompress.data import load_dataset

data, folder, me = load_dataset(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
class Epochs(keras.callbacks.Callback):  # counts the epochs this process trains
    def on_epoch_end(self, epoch, logs=None):
        with open(folder / "epochs", "a") as log:
            log.write(me + "\\n")
(folder / me).touch()
while len(list(folder.glob("ready-*"))) < 2:  # both processes ask for the teacher at the same moment
    time.sleep(0.01)
teacher = get_teacher(data, folder / "cache", epochs=3, callbacks=[Epochs()])
print(teacher.path, teacher.train_seconds)
"""


def test_two_processes_that_need_one_teacher_train_it_once(bar_npz, tmp_path):
    import sys

    runs = [subprocess.Popen([sys.executable, "-c", _TRAIN_TEACHER, str(bar_npz), str(tmp_path), f"ready-{i}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    assert outputs[0][0] == outputs[1][0]  # the same teacher
    trained = (tmp_path / "epochs").read_text().split()
    assert len(trained) == 3 and len(set(trained)) == 1  # by one of them; the other waited and loaded it


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(bar_npz, session_cache, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE + "learning_rate = [0.003, 1e30]\n")
    out = tmp_path / "study"
    command = search_command(bar_npz, space, session_cache, out,
                             "--teacher-epochs", "3", "--trials", "3", "--seed", "2", "--sampler", "random")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    study = open_study(out)
    failed = study.get_trials(states=(TrialState.FAIL,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3 and all(t.params.get("learning_rate", 0.003) == 0.003 for t in complete)
    huge = [t for t in study.get_trials() if t.params.get("learning_rate") == 1e30]
    assert huge and all(t.state == TrialState.FAIL for t in huge)
    assert all(any(word in t.user_attrs["fail_reason"] for word in ("diverged", "collapsed")) for t in failed)
    assert {t.number for t in study.best_trials} <= {t.number for t in complete}


def test_a_teacher_no_better_than_chance_is_refused_before_training(bar_dataset, bar_teacher, tmp_path):
    from dataclasses import replace

    from autocompress.compress import pipeline
    from autocompress.compress.config import CompressionConfig
    from autocompress.errors import UselessTeacher

    useless = replace(bar_teacher, val_accuracy=0.3)
    context = pipeline.Context(bar_dataset, tmp_path / "cache", useless)
    with pytest.raises(UselessTeacher, match="no better than chance"):
        pipeline.run(CompressionConfig(alpha=0.5, epochs=1), context, tmp_path / "out")
    assert not (tmp_path / "cache" / "students").exists()  # nothing was trained


def test_bad_teacher_file(bar_dataset, tmp_path):
    from autocompress.errors import UserError
    from autocompress.models import build_model
    from autocompress.teacher import load_user_teacher

    junk = tmp_path / "teacher.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot load teacher"):
        load_user_teacher(bar_dataset, junk, tmp_path / "cache")
    with pytest.raises(UserError, match="does not exist"):
        load_user_teacher(bar_dataset, tmp_path / "missing.keras", tmp_path / "cache")
    wrong_shape = tmp_path / "wrong_shape.keras"
    build_model("cnn", (32, 32, 3), bar_dataset.num_classes, width=0.25).save(wrong_shape)
    with pytest.raises(UserError, match="takes inputs of shape"):
        load_user_teacher(bar_dataset, wrong_shape, tmp_path / "cache")
    wrong_classes = tmp_path / "wrong_classes.keras"
    build_model("cnn", bar_dataset.input_shape, 7, width=0.25).save(wrong_classes)
    with pytest.raises(UserError, match="outputs 7 classes"):
        load_user_teacher(bar_dataset, wrong_classes, tmp_path / "cache")


def test_an_unwritable_trial_folder_stops_cleanly_and_the_study_resumes(bar_npz, tmp_path):
    space, cache = tmp_path / "space.toml", tmp_path / "cache"
    space.write_text(SEARCH_SPACE.replace('distill = [true, false]', 'distill = false'))
    out = tmp_path / "study"
    out.mkdir()
    (out / "trials").write_text("a file where the trial folders should go")
    command = search_command(bar_npz, space, cache, out, "--trials", "2")
    blocked = subprocess.run(command, capture_output=True, text=True)
    assert blocked.returncode == 2 and "5 trials in a row failed" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    study = open_study(out)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL] * 5  # consistent: nothing half-recorded
    assert not (out / "cache" / "students").exists()  # each failed before training a student
    assert not (cache / "teachers").exists()  # and the space does not distil: no teacher was trained either

    (out / "trials").unlink()
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    study = open_study(out)
    assert len(counted_trials(study)) == 2  # an unseeded sampler may repeat one: repeats do not count


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB file system (tmpfs) that the test can fill; skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here (needs root): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(disk: Path) -> Path:
    """Write zeros to ``disk`` until it is full; the filler file is returned."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_mid_study_keeps_the_storage_consistent_and_the_study_resumable(bar_npz, session_cache,
                                                                                   small_disk, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE.replace('distill = [true, false]', 'distill = false'))
    out = small_disk / "study"
    command = search_command(bar_npz, space, session_cache, out, "--seed", "3")
    run = lambda trials: subprocess.run([*command, "--trials", str(trials)], capture_output=True, text=True,  # noqa: E731
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    first = run(1)
    assert first.returncode == 0, first.stderr[-2000:]
    storage = f"sqlite:///{out / 'study.db'}"
    completed = open_study(storage).get_trials(states=(TrialState.COMPLETE,))
    artifacts_before = sorted(p.relative_to(out) for p in (out / "artifacts").rglob("*") if p.is_file())

    filler = _fill(small_disk)
    full = run(3)
    assert full.returncode != 0 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert full.stderr.strip().splitlines()[-1].startswith("error: the study's storage could not be written")
    check = sqlalchemy.create_engine(storage).connect().exec_driver_sql("PRAGMA integrity_check").scalar()
    assert check == "ok"

    filler.unlink()
    resumed = run(3)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    study = open_study(storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3 and done[0].user_attrs == completed[0].user_attrs  # nothing lost, nothing doubled
    artifacts_after = sorted(p.relative_to(out) for p in (out / "artifacts").rglob("*") if p.is_file())
    assert set(artifacts_before) <= set(artifacts_after) and len(artifacts_after) == 3 * len(artifacts_before)


def test_only_a_running_trial_whose_worker_is_known_dead_is_failed_and_retried_at_once(tmp_path):
    """Same host, process gone: FAIL and queued again now; so is the caller's own RUNNING trial (called
    between trials, it is one a storage outage left unended), and one that no worker claimed for the
    heartbeat's grace period after its start (created as the storage dropped out). Another live
    process's trial, another host's (watched by its heartbeat), or a just-created one, is left running."""
    import datetime

    from autocompress.search import storage as storage_mod
    from autocompress.search.study import retry_dead_workers_trials
    from autocompress.search.study._liveness import _process_start, claim_seconds, this_process, worth_waiting_for

    backend = storage_mod.open_storage(storage_mod.locate("s", tmp_path))
    study = optuna.create_study(study_name="s", storage=backend, directions=["maximize", "minimize"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    live = subprocess.Popen(["sleep", "60"])
    host = this_process()["worker_host"]
    owners = {"dead": {**this_process(), "worker_pid": gone.pid, "worker_started": "1"},
              "mine": this_process(),
              "live": {**this_process(), "worker_pid": live.pid, "worker_started": _process_start(live.pid)},
              "elsewhere": {**this_process(), "worker_host": "another-machine", "worker_pid": 1},
              "starting": {"worker_host": host, "worker_pid": live.pid}}  # no start time yet
    numbers = {}
    for owner, attrs in owners.items():
        trial = study.ask({"width": optuna.distributions.CategoricalDistribution([0.25, 0.5])})
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        numbers[owner] = trial.number
    numbers["unclaimed"] = study.ask().number  # its worker is about to record itself
    orphan = optuna.trial.create_trial(state=TrialState.RUNNING, params={"width": 0.5}, distributions={
        "width": optuna.distributions.CategoricalDistribution([0.25, 0.5])})
    orphan.datetime_start = datetime.datetime.now() - datetime.timedelta(seconds=claim_seconds(study) + 5)
    study.add_trial(orphan)
    numbers["orphan"] = len(numbers)
    assert claim_seconds(study) == 3 * storage_mod.HEARTBEAT_SECONDS  # the heartbeat's grace period
    assert worth_waiting_for(study, [study.trials[numbers["elsewhere"]]])  # its heartbeat will tell

    assert retry_dead_workers_trials(study) == [numbers["dead"], numbers["mine"], numbers["orphan"]]
    live.kill()
    trials = study.get_trials()
    assert trials[numbers["dead"]].state == trials[numbers["mine"]].state == TrialState.FAIL
    assert trials[numbers["dead"]].user_attrs["fail_reason"] == f"its worker (pid {gone.pid} on {host}) died"
    assert trials[numbers["mine"]].user_attrs["fail_reason"] == \
        f"the storage could not be reached as it ended (pid {os.getpid()} on {host})"
    assert trials[numbers["orphan"]].state == TrialState.FAIL
    assert trials[numbers["orphan"]].user_attrs["fail_reason"] == \
        f"no worker recorded itself running it within {claim_seconds(study)} s of its start"
    assert {trials[numbers[owner]].state for owner in ("live", "elsewhere", "starting", "unclaimed")} == \
        {TrialState.RUNNING}
    retries = study.get_trials(states=(TrialState.WAITING,))
    assert [RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in retries] == \
        [numbers["dead"], numbers["mine"], numbers["orphan"]]
    assert all(t.params == trials[numbers["dead"]].params for t in retries[:1])
    assert not any({"fail_reason", "worker_pid"} & set(t.user_attrs) for t in retries)  # each worker records itself
    assert retry_dead_workers_trials(study) == []  # nothing twice


def test_sigterm_acts_like_ctrl_c(bar_npz, session_cache, tmp_path):
    """``kill PID`` of a search: its workers record the running trial as FAIL (not left RUNNING),
    it prints the interrupted line and exits 130."""
    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE.replace("epochs = 2", "epochs = 4"))
    out = tmp_path / "study"
    command = search_command(bar_npz, space, session_cache, out,
                             "--teacher-epochs", "3", "--trials", "2", "--seed", "5")
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = _running_trial(out, time.time() + 300)
    time.sleep(2)  # inside the trial
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr[-3000:]
    assert "interrupted: completed trials are saved; rerun the same command to resume" in stderr
    study = open_study(out)
    assert study.get_trials()[stopped].state == TrialState.FAIL
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_a_worker_whose_trial_another_process_failed_goes_on(tmp_path):
    """A stale heartbeat lets another process fail a live worker's trial (and queue it again): the
    worker's own tell then fails, and it must go on with the next trial rather than crash."""
    from autocompress.search.study._loop import work

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}",
                                directions=["maximize", "minimize"])

    def objective(trial):
        if trial.number == 0:  # what optuna.storages.fail_stale_trials does from another process
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        return 0.5, 100.0

    work(study, objective, target=2)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
