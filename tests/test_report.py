"""``autocompress report``: one self-contained page with the front, hypervolume, importances,
techniques and the front table; it renders in a real browser."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import create_trial

from helpers import assert_user_error, chromium, run_cli, wait_for

HEADINGS = ("Pareto front", "Hypervolume over trials", "Parameter importances", "Techniques compared",
            "Pareto-optimal trials")
SCREENSHOT = Path("/tmp/report-screenshot.png")


@pytest.fixture(scope="module")
def report_page(tiny_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = run_cli("report", "--study", tiny_study.name, "--study-dir", tiny_study.folder, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_report_has_every_section_and_plotly_once(report_page):
    page = report_page.read_text()
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert page.count('class="plotly-graph-div"') >= 4  # front, hypervolume, importances, techniques
    assert page.count("* plotly.js v") == 1 and "<script src=" not in page  # inlined once, nothing fetched
    assert "Importance for validation accuracy" in page and "Importance for size" in page
    assert "<th>val_accuracy</th>" in page


def test_browser_tests_skip_when_chromium_has_no_driver(monkeypatch, tmp_path):
    """Chromium installed without chromium-driver: a skip saying what to install, not NoSuchDriverException."""
    import helpers

    browser = tmp_path / "chromium"
    browser.write_text("")
    monkeypatch.setattr(helpers, "CHROMIUM", browser)
    monkeypatch.setattr(helpers, "CHROMEDRIVER", tmp_path / "no-chromedriver")
    with pytest.raises(pytest.skip.Exception, match="no-chromedriver is not installed"):
        chromium(tmp_path)


def test_report_renders_in_chromium(report_page, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chromium(tmp_path, height=3400)
    try:
        driver.get(report_page.as_uri())
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 4)
        headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        assert headings == list(HEADINGS)
        assert driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    shutil.copyfile(tmp_path / "report.png", SCREENSHOT)


def _one_trial_study() -> optuna.Study:
    study = optuna.create_study(study_name="one", directions=["maximize", "minimize"])
    study.set_user_attr("search", {"dataset": "bars", "objectives": ["accuracy", "size"], "size_metric": "tflite"})
    config = {"alpha": 0.5, "sparsity": 0.0, "quant": "int8"}
    study.add_trial(create_trial(
        values=[0.9, 20000.0], params={"quant": "int8"}, distributions={"quant": CategoricalDistribution(["int8"])},
        user_attrs={"config": config, "label": "cnn T4 a0.5 int8", "test_accuracy": 0.89, "tflite_bytes": 20000}))
    return study


def test_a_one_trial_study_gets_notes_instead_of_importances():
    from autocompress.report import build_report

    page = build_report(_one_trial_study())
    assert "needs at least 2 completed trials (the study has 1)" in page
    assert all(f"<h2>{heading}</h2>" in page for heading in HEADINGS)


def test_hypervolume_of_two_points():
    from autocompress.report import hypervolume_2d

    # boxes [0.1, 1] x [10, 20] and [0.5, 1] x [2, 20] overlap on [0.5, 1] x [10, 20]: 9 + 9 - 5
    assert hypervolume_2d([(0.1, 10.0), (0.5, 2.0)], (1.0, 20.0)) == pytest.approx(13.0)
    assert hypervolume_2d([(1.5, 1.0)], (1.0, 20.0)) == 0.0


def test_hypervolume_history_never_decreases(tiny_study):
    from autocompress.report import hypervolume_history

    values = [value for _, value in hypervolume_history(tiny_study.load())]
    assert len(values) == 3 and all(0 < v <= 1 for v in values)
    assert values == sorted(values)


@pytest.mark.parametrize("config, group", [
    ({"alpha": 1.0, "sparsity": 0.0, "quant": "none"}, "plain"),
    ({"alpha": 0.3, "sparsity": 0.0, "quant": "none"}, "KD only"),
    ({"alpha": 1.0, "sparsity": 0.5, "quant": "none"}, "pruning only"),
    ({"alpha": 1.0, "sparsity": 0.0, "quant": "qat"}, "quantization only"),
    ({"alpha": 0.3, "sparsity": 0.0, "quant": "int8"}, "combined"),
])
def test_techniques(config, group):
    from autocompress.report import technique

    assert technique(config) == group


def test_bad_input_is_one_line_and_exit_2(tiny_study, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_user_error(run_cli("report", "--study", tiny_study.name, "--study-dir", tiny_study.folder,
                              "--out", blocker / "report.html"), "cannot write")
    assert_user_error(run_cli("report", "--study", "nope", "--study-dir", tiny_study.folder,
                              "--out", tmp_path / "r.html"), "no study 'nope'")
    folder = tmp_path / "empty"
    folder.mkdir()
    optuna.create_study(study_name="empty", storage=f"sqlite:///{folder / 'study.db'}",
                        directions=["maximize", "minimize"])
    assert_user_error(run_cli("report", "--study", "empty", "--study-dir", folder, "--out", tmp_path / "r.html"),
                      "has no completed trial")
