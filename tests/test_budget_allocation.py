"""Successive halving across students: which student trains how long (autocompress/search/budget.py)."""

from __future__ import annotations

import optuna
import pytest

from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.search.budget import Rungs
from autocompress.search.space import SearchSpace

RUNGS = Rungs((10, 20, 40), eta=2)


def _config(width: float, epochs: int = 10, **more) -> CompressionConfig:
    return CompressionConfig(student="resnet8", width=width, epochs=epochs, **more)


def _study(*done: tuple[CompressionConfig, float, float]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for config, accuracy, size in done:
        study.add_trial(optuna.trial.create_trial(values=[accuracy, size], user_attrs={"config": config.to_dict()}))
    return study


def test_a_new_student_gets_the_first_rung_and_a_front_leader_is_promoted_once():
    # four students at 10 epochs: widths 0.5 and 1.0 are on the front, 0.75 and 1.25 are dominated
    study = _study((_config(0.5), 0.70, 20_000), (_config(0.75), 0.69, 40_000),
                   (_config(1.0), 0.80, 60_000), (_config(1.25), 0.78, 90_000))
    assert RUNGS.allocate(_config(0.25, epochs=99), study).epochs == 10  # never trained: the first rung
    assert RUNGS.allocate(_config(1.0), study).epochs == 20  # a leader (quota 4 // 2 = 2) is promoted
    assert RUNGS.allocate(_config(0.5, quant="int8"), study).epochs == 20  # whatever is done downstream
    assert RUNGS.allocate(_config(0.75), study).epochs == 10  # dominated: stays, its model is cached
    assert RUNGS.allocate(_config(1.25), study).epochs == 10
    study.add_trial(optuna.trial.create_trial(values=[0.84, 60_000], user_attrs={"config": _config(1.0, 20).to_dict()}))
    study.add_trial(optuna.trial.create_trial(values=[0.74, 20_000], user_attrs={"config": _config(0.5, 20).to_dict()}))
    assert RUNGS.allocate(_config(1.0), study).epochs == 40  # the better of the two at 20 epochs (quota 1)
    assert RUNGS.allocate(_config(0.5), study).epochs == 20
    assert RUNGS.allocate(_config(0.75), study).epochs == 10  # the two promotions of rung 0 are taken
    only = _study((_config(0.5), 0.70, 20_000), (_config(1.0), 0.80, 60_000), (_config(1.0, 20), 0.84, 60_000))
    assert RUNGS.allocate(_config(1.0), only).epochs == 20  # alone at 20 epochs: quota 1 // 2 = 0


def test_the_last_rung_is_the_longest_budget():
    study = _study(*[(_config(w, epochs), 0.5 + w / 10 + epochs / 100, 1000 * w) for w in (0.5, 1.0, 1.5, 2.0)
                     for epochs in (10, 20, 40)])
    assert RUNGS.allocate(_config(2.0), study).epochs == 40


def test_a_space_file_budget_replaces_the_epochs_knob(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nstudent = "cnn"\nwidth = [0.25, 0.5]\n\n[budget]\nepochs = [2, 4, 8]\neta = 3\n')
    space = SearchSpace.load(path)
    assert space.budget == Rungs((2, 4, 8), 3) and space.to_dict()["[budget]"] == {"epochs": [2, 4, 8], "eta": 3}
    path.write_text('[space]\nstudent = "cnn"\nepochs = 3\n\n[budget]\nepochs = [2, 4]\n')
    with pytest.raises(UserError, match="replaces the epochs knob"):
        SearchSpace.load(path)
    with pytest.raises(UserError, match="increasing whole numbers"):
        Rungs((4, 2))

