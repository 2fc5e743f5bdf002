"""Multi-fidelity: a trial dominated at its rung is stopped there; the rule itself, case by case."""

from __future__ import annotations

from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from autocompress.search.fidelity import MIN_HISTORY, Outcome, dominating, rung_epoch
from helpers import open_study, run_cli

SPACE = """
[space]
student = "cnn"
width = 0.25
epochs = 3
finetune_epochs = 1
batch_size = 32
seed = { low = 0, high = 100000 }
quant = "int8"
strip_names = true  # the direct conversion: seconds faster per trial
"""


def test_the_rung_is_a_third_of_the_budget_and_short_budgets_run_in_full():
    assert [rung_epoch(e) for e in (1, 2, 3, 6, 10)] == [None, None, 1, 2, 3]


def test_a_trial_is_stopped_only_when_a_completed_one_beats_its_best_case():
    history = [Outcome(0, 0.80, 0.90, 5000), Outcome(1, 0.70, 0.85, 2000), Outcome(2, 0.60, 0.62, 900)]
    # the largest gain after the rung was 0.15, so a trial at 0.70 could still reach 0.85
    assert dominating(history, 0.70, min_size=4000).number == 1  # trial 1: 0.85 at 2000 B <= 4000 B
    assert dominating(history, 0.71, min_size=4000) is None  # 0.86 would beat every smaller one
    assert dominating(history, 0.70, min_size=1500) is None  # nothing that small is as accurate
    assert dominating(history[: MIN_HISTORY - 1], 0.10, min_size=10**9) is None  # too little history
    perfect = [*history, Outcome(3, 0.30, 1.0, 800)]  # a gain of 0.7, but nothing beats 100%
    assert dominating(perfect, 0.5, min_size=1000).number == 3


def test_a_trial_dominated_at_its_rung_is_stopped_there(bar_npz, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "study"
    args = ["--dataset", str(bar_npz), "--config", str(space), "--cache-dir", str(tmp_path / "cache"), "--quiet",
            "--out", str(out)]  # each call seeds the sampler differently, so each trains its own student
    first = run_cli("search", *args, "--trials", "1", "--seed", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    study = open_study(out)
    assert 0 <= study.trials[0].user_attrs["rung_accuracy"] <= 1
    for number in range(MIN_HISTORY):  # completed trials that no new trial can beat: perfect at 100 bytes
        study.add_trial(create_trial(
            values=[1.0, 100.0], params={"seed": number}, distributions={"seed": IntDistribution(0, 100000)},
            user_attrs={**study.trials[0].user_attrs, "rung_accuracy": 1.0, "val_accuracy": 1.0,
                        "test_accuracy": 1.0, "tflite_bytes": 100}))

    full = run_cli("search", *args, "--trials", "5", "--full-fidelity", "--seed", "2")  # switched off: the new trial runs in full
    assert full.returncode == 0, full.stderr[-2000:]
    assert study.trials[4].state == TrialState.COMPLETE and "rung_accuracy" not in study.trials[4].user_attrs

    stopped = run_cli("search", *args, "--trials", "6", "--seed", "3")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    trial = open_study(out).trials[5]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["pruned_reason"].startswith("multi-fidelity: ") and "after 1 of 3 epochs" in \
        trial.user_attrs["pruned_reason"]
    assert not (out / "trials" / "00005" / "model.tflite").exists()  # stopped before quantization and export

    # the same student again (same seed): judged on trial 5's rung accuracy, before any training
    study = open_study(out)
    study.enqueue_trial({"seed": trial.params["seed"]})
    again = run_cli("search", *args, "--trials", "8", "--seed", "4")  # the waiting trial counts: it runs first
    assert again.returncode == 0, again.stderr[-2000:]
    repeat = open_study(out).trials[6]
    assert repeat.state == TrialState.PRUNED and repeat.params == trial.params
    assert repeat.user_attrs["rung_trial"] == 5 and repeat.user_attrs["rung_accuracy"] == trial.user_attrs["rung_accuracy"]
    assert "after 1 of 3 epochs (its student's, in trial 5)" in repeat.user_attrs["pruned_reason"]
    assert (repeat.datetime_complete - repeat.datetime_start).total_seconds() < 5  # nothing trained

    # once that student is trained in full (here with multi-fidelity off), its old rung no longer stops it
    for number, flags in ((8, ("--full-fidelity",)), (10, ())):  # each run adds one sampled trial after the queued one
        study.enqueue_trial({"seed": trial.params["seed"]})
        if number == 10:  # trial 8's files are gone, so its repeat runs again (from the cached student)
            attrs = open_study(out).trials[8].user_attrs
            (out / "artifacts" / attrs["artifacts"]["tflite"]).unlink()
            (out / "trials" / "00008" / "model.tflite").unlink()
        rerun = run_cli("search", *args, "--trials", str(number + 2), "--seed", str(number), *flags)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    trials = open_study(out).trials
    trained, cached = trials[8], trials[10]
    assert trained.state == cached.state == TrialState.COMPLETE and cached.params == trained.params == trial.params
    assert "rung_trial" not in cached.user_attrs and "student" in cached.user_attrs["reused"]
    assert "repeats" not in cached.user_attrs and cached.user_attrs["fingerprint"] == trained.user_attrs["fingerprint"]
