"""Unit tests of the job's Flink options for a standalone cluster, and of the Python packages it ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dreamumm.config import REPO_ROOT, Settings, load_settings
from jobs.environment import PYTHON_WORKER_PACKAGES, flink_options, python_packages_dir, stage_python_packages


def settings_with(tmp_path: Path, **job: object) -> Settings:
    data = load_settings(environ={}).model_dump()
    data["job"].update({"work_dir": tmp_path / "flink", **job})
    return Settings.model_validate(data)


def test_embedded_cluster_has_no_remote_options(tmp_path: Path) -> None:
    options = flink_options(settings_with(tmp_path), [])

    assert "execution.target" not in options
    assert "python.files" not in options


def test_remote_options_name_the_cluster(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, jobmanager_address="flink-jm.internal:8081")

    options = flink_options(settings, [])

    assert options["execution.target"] == "remote"
    assert options["rest.address"] == "flink-jm.internal"
    assert options["rest.port"] == "8081"
    assert options["python.files"] == str((tmp_path / "flink" / "python-packages").resolve())


def test_remote_options_strip_ipv6_brackets(tmp_path: Path) -> None:
    options = flink_options(settings_with(tmp_path, jobmanager_address="[::1]:8081"), [])

    assert options["rest.address"] == "::1"


def test_staged_packages_replace_old_content(tmp_path: Path) -> None:
    target = tmp_path / "python-packages"
    (target / "stale").mkdir(parents=True)

    stage_python_packages(target)

    assert sorted(path.name for path in target.iterdir()) == sorted(PYTHON_WORKER_PACKAGES)
    for package in PYTHON_WORKER_PACKAGES:
        assert (target / package / "__init__.py").is_file(), package
    assert not list(target.rglob("__pycache__"))
    assert (target / "schemas" / "watch_event.avsc").is_file()


def test_staged_packages_cover_udf_imports(tmp_path: Path) -> None:
    target = stage_python_packages(python_packages_dir(settings_with(tmp_path)))
    # A worker puts the shipped folder first on its path. Any module of this project that
    # still loads from the repository is missing from PYTHON_WORKER_PACKAGES.
    project_dirs = [f"{path}/" for path in REPO_ROOT.iterdir() if (path / "__init__.py").is_file()]
    script = (
        "import json, sys\n"
        "import jobs.udfs\n"
        "files = [getattr(module, '__file__', None) or '' for module in list(sys.modules.values())]\n"
        f"print(json.dumps([path for path in files if path.startswith(tuple({project_dirs!r}))]))\n"
    )

    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "http://127.0.0.1:8081",
                                     ":8081", "host name:8081"])
def test_jobmanager_address_must_be_host_and_port(tmp_path: Path, address: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        settings_with(tmp_path, jobmanager_address=address)


def test_jobmanager_address_excludes_rest_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rest_port .* applies only to the embedded cluster"):
        settings_with(tmp_path, jobmanager_address="127.0.0.1:8081", rest_port=18081)
