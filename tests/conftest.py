"""Shared fixtures: a tiny learnable dataset, a session cache, a quick teacher, a finished tiny study;
and which tests share a worker (the ones of an expensive fixture)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from helpers import write_bar_npz  # noqa: E402


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
    from helpers import search_tiny_study

    return search_tiny_study(tmp_path_factory.mktemp("tiny-study"), bar_npz, session_cache)


SHARED_FIXTURES = ("tiny_study", "finished_study", "ram_study", "precision_runs")  # each takes a minute or more to build


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups (it runs first otherwise)
def pytest_collection_modifyitems(items):
    """Under ``pytest -n 3 --dist loadgroup``, the tests of one expensive fixture run on one worker,
    which builds it once (each worker would build its own)."""
    for item in items:
        for name in SHARED_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break
