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
strip_names = true
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

    def search(trials: int, seed: int, *flags: str) -> list:
        """Search to ``trials`` trials (a queued trial counts, and runs first); the study's trials."""
        done = run_cli("search", *args, "--trials", str(trials), "--seed", str(seed), *flags)
        assert done.returncode == 0, done.stderr[-2000:]
        return open_study(out).trials

    first = search(1, 1, "--full-fidelity")[0]
    study = open_study(out)
    for number in range(MIN_HISTORY):  # completed trials that no new trial can beat: perfect at 100 bytes
        study.add_trial(create_trial(
            values=[1.0, 100.0], params={"seed": number}, distributions={"seed": IntDistribution(0, 100000)},
            user_attrs={**first.user_attrs, "rung_accuracy": 1.0, "val_accuracy": 1.0, "test_accuracy": 1.0,
                        "tflite_bytes": 100}))

    # a new student, then the same student again (same seed): the second is judged on the first's
    # rung accuracy, before any training
    for _ in range(2):
        study.enqueue_trial({"seed": 7})
    trial, repeat = search(MIN_HISTORY + 3, 3)[-2:]
    assert trial.state == TrialState.PRUNED and 0 <= trial.user_attrs["rung_accuracy"] <= 1
    assert trial.user_attrs["pruned_reason"].startswith("multi-fidelity: ") and "after 1 of 3 epochs" in \
        trial.user_attrs["pruned_reason"]
    assert not (out / "trials" / f"{trial.number:05d}" / "model.tflite").exists()  # stopped before quantization
    assert repeat.state == TrialState.PRUNED and repeat.params == trial.params == {"seed": 7}
    assert repeat.user_attrs["rung_trial"] == trial.number
    assert repeat.user_attrs["rung_accuracy"] == trial.user_attrs["rung_accuracy"]
    assert f"after 1 of 3 epochs (its student's, in trial {trial.number})" in repeat.user_attrs["pruned_reason"]
    assert (repeat.datetime_complete - repeat.datetime_start).total_seconds() < 5  # nothing trained

    # --full-fidelity switches the rule off: the dominated student is trained in full, no rung measured
    study.enqueue_trial({"seed": trial.params["seed"]})
    trained = search(len(study.trials), 5, "--full-fidelity")[-1]
    assert trained.state == TrialState.COMPLETE and trained.params == trial.params
    assert "rung_accuracy" not in trained.user_attrs and "rung_accuracy" not in first.user_attrs

    # once that student is trained in full, its old rung no longer stops it: with trained's files gone,
    # its repeat runs again (from the cached student), with the rule on
    (out / "artifacts" / trained.user_attrs["artifacts"]["tflite"]).unlink()
    (out / "trials" / f"{trained.number:05d}" / "model.tflite").unlink()
    study.enqueue_trial({"seed": trial.params["seed"]})
    cached = search(len(study.trials), 6)[-1]
    assert cached.state == TrialState.COMPLETE and cached.params == trial.params
    assert "rung_trial" not in cached.user_attrs and "student" in cached.user_attrs["reused"]
    assert "repeats" not in cached.user_attrs and cached.user_attrs["fingerprint"] == trained.user_attrs["fingerprint"]
