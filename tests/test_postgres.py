"""Several workers on one PostgreSQL study: a real server on loopback, exactly N trials, every artifact."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import SEARCH_SPACE, counted_trials, free_port, open_study, search_command


BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(*command: str) -> list[str]:
    """Run server tools as the `postgres` user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="module")
def postgres_url():
    if not BINARIES:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql; .ci/run installs it)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser")
    data = Path(tempfile.mkdtemp(prefix="autocompress-pg-"))  # pytest's own temp root is closed to other users
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    bin_dir, port = BINARIES[-1], free_port()
    subprocess.run(_as_postgres(f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust"),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres(f"{bin_dir}/pg_ctl", "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                                f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "autocompress"), check=True, capture_output=True)
    yield f"postgresql://postgres@127.0.0.1:{port}/autocompress"
    subprocess.run(_as_postgres(f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"), capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def test_three_workers_share_one_postgresql_study(postgres_url, bar_npz, session_cache, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(SEARCH_SPACE)
    out = tmp_path / "study"
    command = search_command(bar_npz, space, session_cache, out,
                             "--teacher-epochs", "3", "--trials", "5", "--storage", postgres_url, "--workers", "3")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    study = open_study(postgres_url)
    complete = counted_trials(study)
    assert len(complete) == 5
    assert len({t.number for t in complete}) == 5
    folders = {Path(t.user_attrs["tflite_path"]).parent for t in complete}
    assert len(folders) == 5  # each trial wrote its own folder: none ran twice
    for trial in complete:
        for artifact_id in trial.user_attrs["artifacts"].values():
            assert (out / "artifacts" / artifact_id).is_file()
