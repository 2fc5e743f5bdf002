"""Shared fixtures: a tiny learnable dataset, a session cache, and a quick teacher."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from helpers import write_bar_npz  # noqa: E402

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def bar_npz(tmp_path_factory) -> Path:
    return write_bar_npz(tmp_path_factory.mktemp("data") / "bars.npz")


@pytest.fixture(scope="session")
def bar_dataset(bar_npz):
    from autocompress.data import load_dataset

    return load_dataset(str(bar_npz))


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def bar_teacher(bar_dataset, session_cache):
    """A small teacher (2 epochs of a narrow CNN): enough to distil from on the bar data."""
    from autocompress.teacher import TeacherRecipe, train_or_load
    from autocompress.training import TrainingConfig

    recipe = TeacherRecipe("cnn", 0.5, TrainingConfig(epochs=3, batch_size=32))
    return train_or_load(bar_dataset, recipe, session_cache)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, bar_npz, session_cache):
    """A finished 3-trial study of the bar data, for the export, report and dashboard tests."""
    from study_fixture import search_tiny_study

    return search_tiny_study(tmp_path_factory.mktemp("tiny-study"), bar_npz, session_cache)
