"""``autocompress export``: choosing the trial, the files and model card, verification, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from helpers import write_bar_npz
from helpers import REPO, assert_user_error, run_cli


def _front(study) -> list:
    return sorted(study.best_trials, key=lambda t: t.values[1])


def _expected(study, selector: list[str]) -> set[int]:
    """The trial(s) each selector may choose, worked out here from the front."""
    front = _front(study)
    option, value = selector
    if option == "--trial":
        return {int(value)}
    if value == "best-accuracy":
        return {max(front, key=lambda t: (t.values[0], -t.values[1])).number}
    if value == "smallest" or (value == "knee" and len(front) <= 2):  # a knee needs a point above the chord
        return {front[0].number}
    if value == "knee":
        return {t.number for t in front[1:-1]} | {front[0].number}
    if option == "--max-size":
        return {max((t for t in front if t.values[1] <= 64 * 1024), key=lambda t: t.values[0]).number}
    return {min((t for t in front if t.values[0] >= float(value)), key=lambda t: t.values[1]).number}


def _export(tiny_study, out: Path, *selector: str, study_dir: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli("export", "--study", tiny_study.name, "--study-dir", study_dir or tiny_study.folder,
                   "--dataset", tiny_study.dataset, "--cache-dir", tiny_study.cache, "--out", out, *selector)


@pytest.fixture(scope="module")
def exported(tiny_study, tmp_path_factory) -> Path:
    """The most accurate model, exported once for the card checks."""
    out = tmp_path_factory.mktemp("export") / "best"
    result = _export(tiny_study, out, "--pick", "best-accuracy")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("selector", [
    ["--trial", "1"], ["--pick", "best-accuracy"], ["--pick", "smallest"], ["--pick", "knee"],
    ["--max-size", "64KB"], ["--min-accuracy", "0.5"],
], ids=lambda s: " ".join(s))
def test_each_selector_exports_the_trial_it_names(tiny_study, tmp_path, selector):
    study = tiny_study.load()
    if selector[0] == "--max-size" and not any(t.values[1] <= 64 * 1024 for t in _front(study)):
        pytest.skip("no front model of the tiny study fits in 64 KB")
    result = _export(tiny_study, tmp_path / "out", *selector)
    assert result.returncode == 0, result.stdout + result.stderr
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    assert card["trial"] in _expected(study, selector)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", "model.keras", "model.tflite",
                                                                    "model_data.cc", "model_data.h", "model_ops.h"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_model_card_describes_the_files(tiny_study, exported):
    card = json.loads((exported / "model.json").read_text())
    trial = next(t for t in tiny_study.load().trials if t.number == card["trial"])
    tflite = (exported / "model.tflite").read_bytes()
    assert card["sha256"] == hashlib.sha256(tflite).hexdigest() == card["files"]["model.tflite"]["sha256"]
    assert card["files"]["model.keras"]["sha256"] == hashlib.sha256((exported / "model.keras").read_bytes()).hexdigest()
    assert card["tflite_bytes"] == len(tflite) == trial.user_attrs["tflite_bytes"]
    assert card["dataset"]["name"] == "bars" and Path(card["dataset"]["load_as"]) == tiny_study.dataset.resolve()
    assert card["config"] == trial.user_attrs["config"]
    assert card["val_accuracy"] == trial.values[0] and card["test_accuracy"] == trial.user_attrs["test_accuracy"]
    assert abs(card["test_accuracy_at_export"] - card["test_accuracy"]) <= 0.001
    assert card["input_contract"] == trial.user_attrs["input_contract"]
    assert card["objectives"] == ["accuracy", "size"] and card["size_metric"] == "tflite"
    assert {"ai-edge-litert", "optuna", "tensorflow", "autocompress"} <= set(card["versions"])
    assert "ai_edge_litert" in card["usage"]


FIRMWARE_CHECK = r"""
#include <stdint.h>
#include <stdio.h>
#include "model_data.h"

int main() {
  if ((uintptr_t)bars_model_data % 16 != 0) return 3;
  fwrite(bars_model_data, 1, bars_model_data_len, stdout);
  return 0;
}
"""


def test_firmware_sources_compile_to_the_tflite_bytes(tiny_study, exported, tmp_path):
    """``cc -c`` compiles model_data.cc; a program linked with it writes back exactly model.tflite from a
    16-byte-aligned const array; the header's arena and the op resolver calls are the measured ones."""
    from autocompress.compress import micro

    compiled = tmp_path / "model_data.o"
    subprocess.run(["cc", "-c", exported / "model_data.cc", "-o", compiled], check=True, cwd=exported)
    symbols = subprocess.run(["nm", compiled], capture_output=True, text=True, check=True).stdout
    assert " R bars_model_data\n" in symbols  # read-only data: const, so it stays in flash
    (tmp_path / "check.cc").write_text(FIRMWARE_CHECK)
    subprocess.run(["c++", f"-I{exported}", tmp_path / "check.cc", compiled, "-o", tmp_path / "check"], check=True)
    written = subprocess.run([tmp_path / "check"], capture_output=True, check=True).stdout
    assert written == (exported / "model.tflite").read_bytes()

    card = json.loads((exported / "model.json").read_text())
    trial = next(t for t in tiny_study.load().trials if t.number == card["trial"])
    board = card["microcontroller"]
    assert board["arena_bytes"] == trial.user_attrs["arena_bytes"] > 0 and board["flash_bytes"] == len(written)
    assert f"#define BARS_TENSOR_ARENA_SIZE {board['arena_bytes']}\n" in (exported / "model_data.h").read_text()
    operators = micro.operators(exported / "model.tflite")
    assert board["operators"] == list(operators) and "CONV_2D" in operators and board["macs"] > 0
    calls = [line.split("resolver.")[1].split("(")[0] for line in (exported / "model_ops.h").read_text().splitlines()
             if "resolver.Add" in line]
    assert calls == [micro.resolver_call(op) for op in operators] and "AddConv2D" in calls
    assert set(board["quantization"]) == {"input", "output"}
    assert board["quantization"]["input"]["shape"] == card["input_contract"]["shape"]


def test_usage_snippet_runs(exported):
    card = json.loads((exported / "model.json").read_text())
    result = subprocess.run([sys.executable, "-c", card["usage"]], cwd=exported, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("class ")


def test_run_exported_script_reproduces_the_card(exported):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_exported.py"), str(exported / "model.json")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    card = json.loads((exported / "model.json").read_text())
    assert f"{100 * card['test_accuracy']:.2f}%" in result.stdout and "OK" in result.stdout


def test_front_exports_each_front_point_up_to_the_size_verified_beside_the_front_files(tiny_study, tmp_path):
    front = _front(tiny_study.load())
    cap = int(front[min(1, len(front) - 1)].values[1])  # the second-smallest point: it and those below it
    out = tmp_path / "fronts" / "bars"
    result = _export(tiny_study, out, "--front", "--max-size", str(cap))
    assert result.returncode == 0, result.stdout + result.stderr
    wanted = [t for t in front if t.values[1] <= cap]
    assert sorted(p.name for p in out.glob("trial-*")) == sorted(f"trial-{t.number}" for t in wanted)
    assert result.stdout.count("(verified)") == len(wanted)
    rows = json.loads((out / "front.json").read_text())
    assert [row["trial"] for row in rows] == [t.number for t in front]  # the whole front, files or not
    assert (out / "front.csv").is_file() and not (out / "front.html").exists()  # no 5 MB page among the files
    for trial in wanted:
        folder = out / f"trial-{trial.number}"
        assert (folder / "model.tflite").stat().st_size == trial.user_attrs["tflite_bytes"]
        card = json.loads((folder / "model.json").read_text())
        assert card["trial"] == trial.number
        check = subprocess.run([sys.executable, str(REPO / "scripts" / "run_exported.py"), str(folder / "model.json")],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0 and "OK" in check.stdout, check.stdout + check.stderr
    again = _export(tiny_study, out, "--front")  # an earlier front export is replaced, now with every point
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.glob("trial-*")) == sorted(f"trial-{t.number}" for t in front)


def test_native_log_lines_stay_off_stderr_unless_asked_for(tiny_study, tmp_path):
    quiet = _export(tiny_study, tmp_path / "quiet", "--pick", "smallest")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    imports = {switch: subprocess.run([sys.executable, "-c", "import autocompress._tf"], capture_output=True, text=True,
                                      env={**os.environ, "AUTOCOMPRESS_TF_LOGS": switch}) for switch in ("0", "1")}
    assert imports["0"].returncode == 0 and imports["0"].stderr == "", imports["0"].stderr
    assert imports["1"].returncode == 0 and imports["1"].stderr.strip(), "TensorFlow logged nothing to hide"


def test_export_replaces_an_earlier_export(tiny_study, exported, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(exported, out)
    result = _export(tiny_study, out, "--pick", "smallest")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "model.json").read_text())["trial"] == _front(tiny_study.load())[0].number


def test_a_model_that_does_not_reproduce_its_accuracy_is_not_exported(tiny_study, tmp_path):
    """Swap a trial's .tflite (artifact and trial folder) for another trial's: exit 1, nothing written."""
    copy = tiny_study.copy(tmp_path / "study")
    trials = copy.load().get_trials(states=(TrialState.COMPLETE,))
    target, donor = max(((a, b) for a in trials for b in trials),
                        key=lambda pair: abs(pair[0].user_attrs["test_accuracy"] - pair[1].user_attrs["test_accuracy"]))
    assert abs(target.user_attrs["test_accuracy"] - donor.user_attrs["test_accuracy"]) > 0.001
    source = copy.folder / "trials" / f"{donor.number:05d}" / "model.tflite"
    shutil.copyfile(source, copy.folder / "artifacts" / target.user_attrs["artifacts"]["tflite"])
    shutil.copyfile(source, copy.folder / "trials" / f"{target.number:05d}" / "model.tflite")

    result = _export(copy, tmp_path / "out", "--trial", str(target.number), study_dir=copy.folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_verification_compares_test_accuracy_within_a_tenth_of_a_point(tmp_path):
    from autocompress.export import VerificationError, verify

    model = tmp_path / "model.tflite"
    model.write_bytes(b"0" * 100)
    trial = create_trial(values=[0.9, 100.0], user_attrs={"test_accuracy": 0.9, "tflite_bytes": 100})
    verify(trial, model, 0.9009)
    with pytest.raises(VerificationError, match="recorded 90.00%"):
        verify(trial, model, 0.8985)


def _synthetic_front(points: list[tuple[float, float]]) -> list:
    """Completed trials at (size bytes, accuracy), numbered in order."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for size, accuracy in points:
        study.add_trial(create_trial(values=[accuracy, size], params={"x": 0.0},
                                     distributions={"x": FloatDistribution(0, 1)}))
    return study


def test_pick_rules_on_a_known_front():
    from autocompress.export import Selection, choose_trial

    study = _synthetic_front([(1000, 0.50), (2000, 0.90), (8000, 0.95), (64000, 0.97), (80000, 0.96)])
    pick = lambda **kw: choose_trial(study, Selection(**kw)).number  # noqa: E731
    assert pick(pick="smallest") == 0
    assert pick(pick="best-accuracy") == 3
    assert pick(pick="knee") == 1  # the elbow: +40 points for one doubling, then little
    assert pick(max_size=8000) == 2 and pick(max_size=7999) == 1
    assert pick(min_accuracy=0.91) == 2
    assert pick(trial=4) == 4  # any completed trial, on the front or not


def test_knee_of_a_two_point_front_is_the_smaller():
    from autocompress.export import Selection, choose_trial

    study = _synthetic_front([(1000, 0.5), (4000, 0.9)])
    assert choose_trial(study, Selection(pick="knee")).number == 0


@pytest.mark.parametrize("arguments, fragments", [
    (["--pick", "smallest", "--study", "nope"], ["no study 'nope'"]),
    (["--trial", "99"], ["has no trial 99"]),
    ([], ["exactly one of --trial, --pick, --max-size or --min-accuracy"]),
    (["--pick", "smallest", "--trial", "0"], ["exactly one of"]),
    (["--pick", "middle"], ["unknown --pick 'middle'"]),
    (["--max-size", "1KB"], ["is <= 1.0 KB; the smallest is trial"]),
    (["--min-accuracy", "1.0", "--max-size", "1KB"], ["exactly one of"]),
    (["--min-accuracy", "1.5"], ["--min-accuracy is a fraction"]),
    (["--front", "--pick", "smallest"], ["--front exports every front point", "drop --trial, --pick"]),
    (["--front", "--max-size", "1KB"], ["is <= 1.0 KB; the smallest is trial"]),
], ids=["unknown study", "unknown trial", "no choice", "two choices", "bad pick", "nothing fits",
        "two constraints", "accuracy over 1", "front and a pick", "no front point fits"])
def test_bad_input_is_one_line_and_exit_2(tiny_study, tmp_path, arguments, fragments):
    base = ["export", "--study-dir", tiny_study.folder, "--cache-dir", tiny_study.cache, "--out", tmp_path / "out"]
    if "--study" not in arguments:
        base += ["--study", tiny_study.name]
    base += ["--dataset", tiny_study.dataset]
    assert_user_error(run_cli(*base, *arguments), *fragments)
    assert not (tmp_path / "out").exists()


def test_another_dataset_is_a_user_error(tiny_study, tmp_path):
    other = write_bar_npz(tmp_path / "other.npz", train=30, test=10)
    result = run_cli("export", "--study", tiny_study.name, "--study-dir", tiny_study.folder, "--dataset", other,
                     "--pick", "smallest", "--out", tmp_path / "out")
    assert_user_error(result, "'other'", "was searched on 'bars'")
    assert not (tmp_path / "out").exists()


def test_export_reads_the_data_where_the_search_read_it(tiny_study, tmp_path):
    result = run_cli("export", "--study", tiny_study.name, "--study-dir", tiny_study.folder, "--cache-dir",
                     tiny_study.cache, "--pick", "smallest", "--out", tmp_path / "out")  # no --dataset
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(verified)" in result.stdout and (tmp_path / "out" / "model.tflite").is_file()


def test_unwritable_out_is_a_user_error(tiny_study, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_user_error(_export(tiny_study, blocker / "out", "--pick", "smallest"), "cannot write to")
    assert_user_error(_export(tiny_study, blocker, "--pick", "smallest"), "is not an earlier export")


def test_a_study_without_completed_trials_is_a_user_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    optuna.create_study(study_name="empty", storage=f"sqlite:///{folder / 'study.db'}",
                        directions=["maximize", "minimize"])
    result = run_cli("export", "--study", "empty", "--study-dir", folder, "--pick", "smallest",
                     "--out", tmp_path / "out")
    assert_user_error(result, "has no completed trial")


def test_storage_alone_finds_the_study_folder_from_any_working_directory(tiny_study, tmp_path, monkeypatch):
    """The search recorded its folder: export, front, report and dashboard need only ``--storage``."""
    from autocompress.dashboard import prepare

    storage = f"sqlite:///{(tiny_study.folder / 'study.db').resolve()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    given = ("--study", tiny_study.name, "--storage", storage)
    exported = run_cli("export", *given, "--pick", "smallest", "--cache-dir", tiny_study.cache,
                       "--out", tmp_path / "e", cwd=elsewhere)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (tmp_path / "e" / "model.tflite").is_file()
    (tiny_study.folder / "front.csv").unlink()
    front = run_cli("front", *given, cwd=elsewhere)
    assert front.returncode == 0 and (tiny_study.folder / "front.csv").is_file(), front.stderr
    report = run_cli("report", *given, "--out", tmp_path / "r.html", cwd=elsewhere)
    assert report.returncode == 0 and (tmp_path / "r.html").is_file(), report.stderr
    assert not list(elsewhere.iterdir())  # nothing written where the commands ran
    monkeypatch.chdir(elsewhere)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    dashboard = prepare(tiny_study.name, None, storage, port=port)
    assert dashboard.artifact_store is not None  # the .tflite downloads
