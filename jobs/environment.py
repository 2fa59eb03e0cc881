"""Flink configuration of the feature job, derived from the settings."""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from pyflink.common import Configuration

from dreamumm.config import REPO_ROOT, Settings


def prepare_process_environment(settings: Settings) -> None:
    """Set the environment variables that the Flink JVM and its Python workers inherit.

    Call this before the first PyFlink environment is created, because that launches the JVM.
    Thread mode runs Python inside the JVM with the base interpreter's ``sys.path``, so the
    virtualenv's site-packages and the repository root go on ``PYTHONPATH``.
    """
    paths = [str(REPO_ROOT), *site.getsitepackages()]
    existing = os.environ.get("PYTHONPATH")
    if existing:
        paths.append(existing)
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    tmp_dir = settings.job.work_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    # PyFlink leaves temporary folders behind; keep them under the project's ignored var/ folder.
    os.environ["TMPDIR"] = str(tmp_dir)


def flink_configuration(settings: Settings, connector_jar: Path) -> Configuration:
    """Build the Flink configuration: jars, Python workers, checkpoints and state backend."""
    job = settings.job
    work_dir = job.work_dir
    config = Configuration()
    config.set_string("pipeline.name", "dreamumm-feature-job")
    config.set_string("pipeline.jars", connector_jar.resolve().as_uri())
    config.set_string("parallelism.default", str(job.parallelism))
    config.set_string("python.execution-mode", job.execution_mode)
    # Python workers otherwise start whatever `python` is first on PATH.
    config.set_string("python.executable", sys.executable)
    config.set_string("python.client.executable", sys.executable)
    config.set_string("python.fn-execution.bundle.size", str(job.bundle_size))
    config.set_string("python.fn-execution.bundle.time", str(job.bundle_time_ms))
    config.set_string("execution.checkpointing.interval", f"{job.checkpoint_interval_ms} ms")
    config.set_string("execution.checkpointing.dir", (work_dir / "checkpoints").resolve().as_uri())
    config.set_string("state.backend.type", job.state_backend)
    config.set_string("io.tmp.dirs", str((work_dir / "tmp").resolve()))
    # Stable operator ids for the planner-generated source and sink operators, for savepoints.
    config.set_string("table.exec.uid.generation", "ALWAYS")
    return config
