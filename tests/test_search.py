"""`autocompress search` through the CLI, on tiny data with a real SQLite storage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autocompress.cache import trim
from autocompress.errors import UserError
from autocompress.search.space import SearchSpace
from helpers import SEARCH_SPACE, assert_user_error, counted_trials, open_study, run_cli, search_command, trials_while_searching

@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.toml"
    path.write_text(SEARCH_SPACE)
    return path


@pytest.fixture(scope="module")
def base_args(bar_npz, space_file, session_cache):
    return ["--dataset", str(bar_npz), "--config", str(space_file), "--cache-dir", str(session_cache),
            "--teacher-epochs", "3", "--quiet"]


def states(study_dir: Path, name: str = "bars") -> list[TrialState]:
    study = open_study(study_dir, name)
    return [t.state for t in study.get_trials()]


@pytest.fixture(scope="module")
def finished_study(base_args, tmp_path_factory) -> Path:
    """Three trials, then resumed to four."""
    out = tmp_path_factory.mktemp("study")
    run_cli("search", *base_args, "--trials", "3", "--out", str(out), "--seed", "3", check=True)
    assert states(out).count(TrialState.COMPLETE) == 3
    run_cli("search", *base_args, "--trials", "4", "--out", str(out), "--seed", "3", check=True)
    return out


def test_a_search_logged_to_a_file_shows_a_line_per_trial_and_per_epoch_trained(base_args, tmp_path):
    args = [a for a in base_args if a != "--quiet"]  # the default display, its output captured: not a terminal
    args[args.index("--cache-dir") + 1] = str(tmp_path / "cache")  # a new cache: the teacher trains first
    result = run_cli("search", *args, "--trials", "2", "--out", str(tmp_path / "study"), "--seed", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout.splitlines()
    lines = [line for line in output if line.startswith("trials ")]
    assert [line.split(" done")[0] for line in lines] == ["trials 0/2", "trials 1/2", "trials 2/2"], result.stdout
    assert "eta ?" in lines[0] and "eta 0.0 min" in lines[-1]
    teacher = [line.split(" loss")[0] for line in output if line.startswith("training the teacher: ")]
    assert teacher == [f"training the teacher: epoch {k}/3" for k in (1, 2, 3)], result.stdout
    assert output.index(lines[1]) > max(i for i, line in enumerate(output) if line.startswith("training the teacher"))
    epochs = open_study(tmp_path / "study").trials[0].user_attrs["config"]["epochs"]
    student = [line for line in output if line.startswith("trial 0: ")]
    assert [line.split(": ")[2].split(" loss")[0] for line in student] == \
        [f"epoch {k}/{epochs}" for k in range(1, epochs + 1)], result.stdout
    assert student[-1].endswith("eta 0.0 min") and output.index(student[-1]) < output.index(lines[1])
    rows = json.loads((tmp_path / "study" / "front.json").read_text())
    best = max(rows, key=lambda row: row["val_accuracy"])
    assert f"{100 * best['val_accuracy']:.2f}% val at {best['tflite_bytes']:,} B (trial {best['trial']})" in lines[-1]


def test_resume_adds_only_the_missing_trials(finished_study):
    finished = [s for s in states(finished_study) if s in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4  # failed trials (if any) do not count and are replaced


def test_trials_record_everything_and_store_their_tflite_as_artifacts(finished_study):
    study = open_study(finished_study)
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        for key in ("config", "val_accuracy", "test_accuracy", "tflite_bytes", "gzip_bytes", "params",
                    "latency_ms", "stage_seconds", "versions", "input_contract"):
            assert key in attrs, key
        assert attrs["versions"]["tensorflow"].startswith("2.")
        assert trial.values[0] == attrs["val_accuracy"] and trial.values[1] == attrs["tflite_bytes"]
        artifact = finished_study / "artifacts" / attrs["artifacts"]["tflite"]
        assert artifact.stat().st_size == attrs["tflite_bytes"]


def test_written_front_equals_optunas_best_trials(finished_study):
    study = open_study(finished_study)
    written = json.loads((finished_study / "front.json").read_text())
    assert sorted(row["trial"] for row in written) == sorted(t.number for t in study.best_trials)
    assert (finished_study / "front.csv").read_text().count("\n") == len(written) + 1
    html = (finished_study / "front.html").read_text()
    assert "Pareto front" in html and "plotly" in html.lower()


def test_front_command_rewrites_the_front(finished_study):
    (finished_study / "front.json").unlink()
    result = run_cli("front", "--study", "bars", "--out", str(finished_study), check=True)
    assert (finished_study / "front.json").exists() and "Pareto front" in result.stdout
    lines = result.stdout.splitlines()  # a log, not a terminal: each row on one line, not wrapped into columns
    for row in json.loads((finished_study / "front.json").read_text()):
        assert any(row["label"] in line and f"{100 * row['test_accuracy']:.2f}" in line for line in lines), result.stdout


def test_two_processes_on_one_sqlite_file_complete_exactly_n_trials(base_args, tmp_path):
    args = ["search", *base_args, "--trials", "4", "--out", str(tmp_path)]
    command = [sys.executable, "-m", "autocompress", *args]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for process in (first, second):
        assert process.wait() == 0, process.stderr.read()[-2000:]
    study = open_study(tmp_path)
    assert len(counted_trials(study)) == 4  # repeats of a completed configuration (which the two may draw) do not count


def test_workers_are_replaced_every_trials_per_process_and_keep_the_runs_space(bar_npz, session_cache, tmp_path):
    """Each worker runs --trials-per-process trials; its replacement draws anew (seeded draws do not
    repeat) and searches the space the run started with, although the file was edited meanwhile
    (a worker that read the edited file would stop the run: "different space")."""
    space, out = tmp_path / "space.toml", tmp_path / "study"
    space.write_text(SEARCH_SPACE)
    command = search_command(bar_npz, space, session_cache, out, "--teacher-epochs", "3", "--trials", "4",
                             "--trials-per-process", "2", "--sampler", "random", "--seed", "3")
    search = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while search.poll() is None and not trials_while_searching(out, TrialState.COMPLETE):
        time.sleep(0.5)
    space.write_text(SEARCH_SPACE.replace('quant = ["int8", "float16"]', 'quant = ["int8"]'))  # the next worker starts after this
    assert search.wait() == 0, search.stderr.read()[-2000:]
    trials = open_study(out).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    pids = [t.user_attrs["worker_pid"] for t in trials]
    assert pids[0] == pids[1] != pids[2] == pids[3] and os.getpid() not in pids  # two workers, two trials each
    assert [t.params for t in trials[:2]] != [t.params for t in trials[2:]]  # the new worker drew anew


def test_max_size_rejects_a_configuration_before_training(base_args, tmp_path):
    run_cli("search", *base_args, "--trials", "1", "--out", str(tmp_path), "--max-size", "1KB", check=True)
    study = open_study(tmp_path)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED
    assert "predicted_min_bytes" in trial.user_attrs and "stage_seconds" not in trial.user_attrs
    assert not (tmp_path / "trials").exists()  # nothing was trained or written


@pytest.mark.parametrize("extra, message", [
    (["--sampler", "annealing"], "unknown sampler"),
    (["--trials", "0"], "--trials must be >= 1"),
    (["--storage", "not a url://x"], "is not a URL"),
    (["--storage", "postgresql://nobody@127.0.0.1:9/none"], "cannot open storage"),
    (["--max-size", "lots"], "cannot read size"),
    (["--objectives", "accuracy"], "--objectives must be"),
    (["--dataset", "missing.npz"], "missing.npz does not exist"),
    (["--config", "missing.toml"], "config file missing.toml does not exist"),
])
def test_bad_search_input_is_one_line_and_exit_2(base_args, tmp_path, extra, message):
    """Refused before a worker starts: nothing is written, not even the study's folder."""
    result = run_cli("search", *base_args, "--trials", "2", "--out", tmp_path / "study", *extra, cwd=tmp_path)
    assert_user_error(result, message)
    assert not (tmp_path / "study").exists()


def test_resuming_with_a_different_space_is_refused(finished_study, bar_npz, session_cache, tmp_path):
    changed = tmp_path / "changed.toml"
    changed.write_text(SEARCH_SPACE.replace('quant = ["int8", "float16"]', 'quant = ["int8"]'))
    before = len(states(finished_study))
    result = run_cli("search", "--dataset", str(bar_npz), "--config", str(changed), "--trials", "5",
                          "--out", str(finished_study), "--cache-dir", str(session_cache), "--quiet")
    assert result.returncode == 2 and "different space" in result.stderr
    assert len(states(finished_study)) == before  # nothing added, nothing damaged


@pytest.mark.parametrize("toml, message", [
    ("[space]\nwidht = [0.5]\n", "unknown key 'widht'"),
    ("[space]\nsparsity = { low = 0.8, high = 0.2 }\n", "low 0.8 > high 0.2"),
    ("[space]\nquant = []\n", "quant has no choices"),
    ("[space]\nquant = [\"int4\"]\n", "quant cannot be 'int4'"),
    ("[space\n", "not valid TOML"),
    ("[other]\nx = 1\n", "unknown table"),
    ("[space]\nalpha = 2.0\n", "alpha must be in"),
    ("[space]\nalpha = { low = 0, high = 0.5, step = 0.0 }\n", "`step > 0` must hold"),
    ("[space]\nlearning_rate = { low = 0.0, high = 0.1, log = true }\n", "`low > 0` must hold for `log=True`"),
    ("[space]\nsparsity = { low = 0.1, high = 0.5, step = 0.1, log = true }\n", "`step` is not supported when `log`"),
    ("[space]\nalpha = { low = 0, high = 1, step = 1e-99 }\n", "step 1e-99 is too fine"),
])
def test_malformed_config_files_are_user_errors(tmp_path, toml, message):
    path = tmp_path / "space.toml"
    path.write_text(toml)
    with pytest.raises(UserError, match=message):
        SearchSpace.load(path)


def test_builtin_spaces_load_and_suggest_valid_configurations():
    for name in ("fashion_mnist", "cifar10", "mnist", "cifar100", "default"):
        space = SearchSpace.for_dataset(name)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
        for _ in range(20):
            trial = study.ask()
            config = space.suggest(trial)
            assert config.prune_structure != "2:4" or config.sparsity == 0.5
            assert config.per_channel or config.quant == "int8"
            study.tell(trial, state=TrialState.FAIL)
        assert space.distils()  # each trains the teacher before its first trial


@pytest.mark.parametrize("table, distils", [
    ({"distill": [True, False], "alpha": 0.5}, True), ({"alpha": {"low": 0.2, "high": 1.0}}, True),
    ({"distill": False, "alpha": 0.5}, False), ({"distill": [False], "alpha": [0.5]}, False),
    ({"distill": True}, False), ({"distill": True, "alpha": [1.0]}, False), ({"temperature": 4.0}, False),
])
def test_a_space_distils_only_when_some_draw_has_alpha_below_one(table, distils):
    """What decides whether a search trains the teacher before its first trial."""
    space = SearchSpace.from_dict({"student": "cnn", **table})
    assert space.distils() is distils
    draws = [space.suggest(optuna.trial.FixedTrial(params)).distills
             for params in ({"distill": True, "alpha": 0.2}, {"distill": True, "alpha": 0.5})]
    assert any(draws) is distils  # the same answer as the configurations it draws


def test_a_built_wheel_ships_every_builtin_space(tmp_path):
    """A non-editable install finds the same studies/*.toml (copied into autocompress/spaces)."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(root)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(next((tmp_path / "wheel").glob("*.whl"))),
                    str(tmp_path / "installed")], check=True)
    shipped = tmp_path / "installed" / "autocompress" / "spaces"
    builtin = sorted((root / "studies").glob("*.toml"))
    assert builtin and sorted(p.name for p in shipped.iterdir()) == [p.name for p in builtin]
    assert all((shipped / p.name).read_text() == p.read_text() for p in builtin)
    found = subprocess.run([sys.executable, "-c", "from autocompress.search import space; print(space.BUILTIN_SPACES)"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "installed")},
                           capture_output=True, text=True, check=True)
    assert Path(found.stdout.strip()) == shipped


def test_cache_trim_removes_least_recently_used_models_with_their_notes(tmp_path):
    students, pruned = tmp_path / "students", tmp_path / "pruned"
    students.mkdir(), pruned.mkdir()
    files = {students / "old.keras": 100, pruned / "mid.keras": 100, pruned / "mid.notes.json": 10,
             students / "new.keras": 100, students / ".new.keras.tmp123.keras": 500}  # the last: being written
    for age, (path, size) in enumerate(reversed(files.items())):
        path.write_bytes(b"x" * size)
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    assert trim([students, pruned], max_bytes=150) == ["old", "mid"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [".new.keras.tmp123.keras", "new.keras"]
    assert trim([students, pruned], max_bytes=150) == []


ONE_CONFIGURATION = """
[space]
student = "cnn"
width = 0.25
epochs = 1
finetune_epochs = 1
batch_size = 32
distill = false
prune_structure = "none"
quant = "dynamic"
"""


def test_a_search_with_a_zero_cache_limit_reuses_nothing_and_keeps_no_models(bar_npz, tmp_path):
    """--cache-limit 0B: the one configuration asked for twice runs twice and counts twice; no
    student or pruned model is kept; the teacher is (teachers are few and dear)."""
    space, cache, out = tmp_path / "one.toml", tmp_path / "cache", tmp_path / "study"
    space.write_text(ONE_CONFIGURATION.replace("distill = false", "distill = true\nalpha = 0.5"))
    run_cli("search", "--dataset", bar_npz, "--config", space, "--cache-dir", cache, "--teacher-epochs", "3",
            "--quiet", "--trials", "2", "--out", out, "--cache-limit", "0B", check=True)
    first, second = open_study(out).get_trials()
    assert first.state == second.state == TrialState.COMPLETE
    assert first.user_attrs["fingerprint"] == second.user_attrs["fingerprint"]
    assert "repeats" not in second.user_attrs and "distill" in second.user_attrs["stage_seconds"]
    assert (out / "cache" / "students").is_dir() and not (cache / "students").exists()  # models live with the study
    assert not [p for p in (out / "cache" / "students").iterdir() if not p.name.startswith(".")]
    assert list((cache / "teachers").iterdir())


def test_a_repeated_configuration_takes_its_twins_result_and_does_not_count(bar_npz, session_cache, tmp_path):
    """A one-configuration space asked for 2 trials: with reuse, the repeats take trial 0's result, do not
    count towards --trials, and after MAX_REPEATS_IN_A_ROW of them the search says why it stops short."""
    from autocompress.search.front import front_trials
    from autocompress.search.settings import finished_or_running
    from autocompress.search.study import MAX_REPEATS_IN_A_ROW

    space, out = tmp_path / "one.toml", tmp_path / "study"
    space.write_text(ONE_CONFIGURATION)
    result = run_cli("search", "--dataset", bar_npz, "--config", space, "--cache-dir", session_cache,
                     "--quiet", "--trials", "2", "--out", out)
    study = open_study(out)
    first, second, *rest = study.get_trials()
    assert first.state == second.state == TrialState.COMPLETE
    assert first.user_attrs["fingerprint"] == second.user_attrs["fingerprint"]
    assert_user_error(result, f"{MAX_REPEATS_IN_A_ROW} configurations in a row", "stops at 1 distinct trials of 2")
    assert len(rest) == MAX_REPEATS_IN_A_ROW - 1 and [t.number for t in finished_or_running(study)] == [0]
    assert all(t.user_attrs["repeats"] == 0 and t.values == first.values for t in (second, *rest))
    assert [t.number for t in front_trials(study)] == [0]  # one front point, not one per repeat
    assert len({t.user_attrs["worker_pid"] for t in study.get_trials()}) == 1  # repeats train nothing: no new worker
    assert second.user_attrs["stage_seconds"] == {} and second.user_attrs["test_accuracy"] == first.user_attrs["test_accuracy"]
    twin_file, copy = (out / "trials" / f"{n:05d}" / "model.tflite" for n in (0, 1))
    assert copy.read_bytes() == twin_file.read_bytes()
    assert (out / "artifacts" / second.user_attrs["artifacts"]["tflite"]).read_bytes() == twin_file.read_bytes()
    assert json.loads((copy.parent / "result.json").read_text())["tflite_path"] == str(copy)


def test_per_tensor_is_drawn_only_for_int8_ptq():
    space = SearchSpace.from_dict({"quant": ["int8", "qat", "float16", "dynamic"], "per_channel": [True, False]})
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = space.suggest(trial)
        seen.add((config.quant, config.per_channel))
        assert ("per_channel" in trial.params) == (config.quant == "int8")
        study.tell(trial, state=TrialState.FAIL)
    assert seen == {("int8", True), ("int8", False), ("qat", True), ("float16", True), ("dynamic", True)}


def test_a_seeded_single_worker_study_suggests_the_same_parameters():
    space = SearchSpace.for_dataset("fashion_mnist")
    from autocompress.search.study import make_sampler

    def params(seed):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler("tpe", seed))
        out = []
        for i in range(12):
            trial = study.ask()
            out.append(space.suggest(trial))
            study.tell(trial, [0.5 + 0.01 * i, 1000.0 - i])
        return out

    assert params(7) == params(7) and params(7) != params(8)


def test_failures_in_a_row_count_only_this_runs_trials(tmp_path):
    from autocompress.search.study import MAX_FAILURES_IN_A_ROW, work

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", directions=["maximize", "minimize"])

    def broken(trial):
        raise RuntimeError("a cause the user has not fixed")

    with pytest.raises(UserError, match="5 trials in a row failed"):
        work(study, broken, target=50, run_started=time.time())
    assert len(study.trials) == MAX_FAILURES_IN_A_ROW
    time.sleep(0.01)
    with pytest.raises(UserError, match="5 trials in a row failed"):  # a rerun gets its own five tries
        work(study, broken, target=50, run_started=time.time())
    assert len(study.trials) == 2 * MAX_FAILURES_IN_A_ROW
