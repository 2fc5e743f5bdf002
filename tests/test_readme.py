"""The README's code blocks, as a new user runs them: its Python block for real (on the tiny bar data),
every ``autocompress`` command line parsed by the real CLI, its search-space TOML loaded."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import typer.main
from typer.exceptions import TyperException

from helpers import REPO, SEARCH_SPACE

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    blocks = [code for lang, code in BLOCK.findall((REPO / "README.md").read_text()) if lang == language]
    assert blocks, f"the README has no {language} block"
    return blocks


def _command_lines() -> list[list[str]]:
    """Every shell command of the README's bash blocks, continuation lines joined, comments and ``&&`` split."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                head, words = (words[: words.index("&&")], words[words.index("&&") + 1:]) if "&&" in words \
                    else (words, [])
                commands.append(head)
    return commands


def test_every_autocompress_command_in_the_readme_parses():
    """Each ``autocompress ...`` line names a real command and only options it takes (no TensorFlow runs)."""
    from autocompress.cli import app

    group = typer.main.get_command(app)
    commands = [words for words in _command_lines() if words[0].endswith("autocompress")]
    assert {words[1] for words in commands} >= {"datasets", "search", "dashboard", "report", "export", "teacher",
                                                "compress"}
    for words in commands:
        command = group.get_command(None, words[1])
        assert command is not None, words
        try:
            command.make_context(words[1], words[2:])
        except TyperException as error:  # typer's click: an unknown option, a missing value
            pytest.fail(f"README: {shlex.join(words)}: {error.format_message()}")
    scripts = {words[1] for words in _command_lines() if words[0] in ("python", "bash")}
    assert scripts == {"scripts/run_exported.py", ".ci/run"} and all((REPO / path).is_file() for path in scripts)


def test_the_readme_search_spaces_load(tmp_path):
    from autocompress.search.space import SearchSpace

    knobs, budget = set(), None
    for number, toml in enumerate(_blocks("toml")):
        (tmp_path / f"space{number}.toml").write_text(toml)
        space = SearchSpace.load(tmp_path / f"space{number}.toml")
        knobs |= {knob.name for knob in space.knobs}
        budget = budget or space.budget
    assert {"student", "width", "quant", "sparsity"} <= knobs and budget.epochs == (15, 30, 60, 120)


def test_the_readme_python_block_runs_as_written(bar_npz, session_cache, tmp_path):
    """The block runs in a fresh interpreter, as pasted, with only its data and size made tiny:
    the dataset is the bar npz, the configuration trains 2 epochs of batches of 32 instead of 10 of 128, and the search asks
    for 1 trial of the tests' tiny space instead of 30."""
    (code,) = [block for block in _blocks("python") if "run_search" in block]
    (tmp_path / "space.toml").write_text(SEARCH_SPACE)
    replacements = {'"fashion_mnist"': repr(str(bar_npz)), "CompressionConfig(width": "CompressionConfig(epochs=2, batch_size=32, width", "trials=30": "trials=1, config='space.toml'"}
    for old, new in replacements.items():
        assert old in code, f"the README's Python block no longer holds {old}; update this test"
        code = code.replace(old, new)
    code += "\nprint('study', study.study_name, len(study.best_trials))\n"
    done = _run_python(code, tmp_path, session_cache)
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy, size = done.stdout.splitlines()[-2].split()
    assert 0 <= float(accuracy) <= 1 and int(size) > 0
    assert (tmp_path / "runs" / "one" / "model.tflite").stat().st_size == int(size)
    assert done.stdout.splitlines()[-1] == "study bars 1"


def _run_python(code: str, cwd, cache) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter in ``cwd``, as a user pastes it."""
    env = {**os.environ, "AUTOCOMPRESS_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_readme_own_model_block_saves_a_model_that_compress_model_takes(bar_npz, bar_dataset, session_cache,
                                                                            tmp_path):
    """The "Your own model" block, on the bar data: the Keras 3 file it saves is one ``--model`` takes."""
    from autocompress.own_model import prepare

    (code,) = [block for block in _blocks("python") if "my_model.keras" in block]
    old = '"fashion_mnist", "../shared/datasets"'
    assert old in code, f"the README's own-model block no longer holds {old}; update this test"
    done = _run_python(code.replace(old, repr(str(bar_npz))), tmp_path, session_cache)
    assert done.returncode == 0, done.stderr[-3000:]
    own = prepare(bar_dataset, tmp_path / "my_model.keras", tmp_path / "cache")
    import keras

    saved = keras.models.load_model(tmp_path / "my_model.keras")
    assert own.params == saved.count_params() and own.val_accuracy > 0.6
