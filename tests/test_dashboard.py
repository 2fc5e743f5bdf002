"""``autocompress dashboard``: optuna-dashboard on the study, checked in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import REPO, assert_user_error, chromium, cli_command, free_port, run_cli, wait_for

SCREENSHOT = Path("/tmp/dashboard-screenshot.png")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture
def served(tiny_study, tmp_path):
    """The CLI serving the tiny study on a free port: yields the base URL, stops the server after."""
    port = free_port()
    log = open(tmp_path / "dashboard.log", "w+")
    server = subprocess.Popen(cli_command("dashboard", "--study", tiny_study.name, "--study-dir", tiny_study.folder,
                                          "--port", port),
                              stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, (tmp_path / "dashboard.log").read_text()
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
        assert f"{base}/dashboard/studies/" in output, output


def test_dashboard_shows_the_study_and_serves_the_models(tiny_study, served, tmp_path):
    from selenium.webdriver.common.by import By

    study = tiny_study.load()
    summary = json.loads(_get(f"{served}/api/studies"))["study_summaries"]
    study_id = next(s["study_id"] for s in summary if s["study_name"] == tiny_study.name)
    detail = json.loads(_get(f"{served}/api/studies/{study_id}"))
    assert len(detail["trials"]) == 3 and detail["best_trials"]
    for trial in detail["trials"]:  # every trial's .tflite downloads, byte for byte
        attrs = next(t for t in study.trials if t.number == trial["number"]).user_attrs
        downloaded = _get(f"{served}/artifacts/{study_id}/{trial['trial_id']}/{attrs['artifacts']['tflite']}")
        assert downloaded == (tiny_study.folder / "trials" / f"{trial['number']:05d}" / "model.tflite").read_bytes()

    driver = chromium(tmp_path, height=1400)
    try:
        driver.get(f"{served}/dashboard")
        wait_for(driver, lambda d: tiny_study.name in d.find_element(By.TAG_NAME, "body").text)
        driver.save_screenshot(str(tmp_path / "studies.png"))

        driver.get(f"{served}/dashboard/studies/{study_id}/trials")
        note = study.trials[0].user_attrs["label"]
        wait_for(driver, lambda d: "Trial 0" in d.find_element(By.TAG_NAME, "body").text)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert all(f"Trial {n}" in body for n in range(3)), body
        wait_for(driver, lambda d: "val," in d.find_element(By.TAG_NAME, "body").text)  # the trial's note
        assert note.split()[0] in body
        wait_for(driver, lambda d: "model.tflite" in d.find_element(By.TAG_NAME, "body").text)  # download card
        driver.save_screenshot(str(tmp_path / "trials.png"))

        driver.get(f"{served}/dashboard/studies/{study_id}")
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"))
        time.sleep(2)  # let the plots draw
        driver.save_screenshot(str(tmp_path / "study.png"))
    finally:
        driver.quit()
    shutil.copyfile(tmp_path / "trials.png", SCREENSHOT)


def test_port_in_use_is_one_line_and_exit_2(tiny_study):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("dashboard", "--study", tiny_study.name, "--study-dir", tiny_study.folder, "--port", port,
                         timeout=60)
    assert_user_error(result, f"port {port}", "in use")


def test_unknown_study_is_one_line_and_exit_2(tiny_study):
    assert_user_error(run_cli("dashboard", "--study", "nope", "--study-dir", tiny_study.folder, "--port", free_port(),
                              timeout=60), "no study 'nope'")
