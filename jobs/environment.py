"""Flink configuration of the feature job, derived from the settings."""

from __future__ import annotations

import os
import shutil
import site
import sys
from pathlib import Path
from typing import Sequence

import pyflink
from pyflink.table import TableConfig

from dreamumm.config import REPO_ROOT, Settings, split_host_port
from infra import RuntimeJars

REPORTER_NAME = "dreamumm"
"""Name of the counter file reporter in the metrics.reporter.<name>.* options."""
REPORTER_PLUGIN = "dreamumm-counters"
"""Plugin folder of the counter file reporter."""
PYTHON_WORKER_PACKAGES = ("dreamumm", "jobs", "operators", "schemas")
"""Packages of this project that the job's Python functions import, which a standalone cluster
receives with the job (python.files)."""


def prepare_process_environment(settings: Settings, jars: RuntimeJars) -> None:
    """Set the environment variables that the Flink JVM and its Python workers inherit.

    Call this before the first PyFlink environment is created, because that launches the JVM,
    and the JVM reads its plugin folder (with the job's counter reporter) once, at start.
    Thread mode runs Python inside the JVM with the base interpreter's ``sys.path``, so the
    virtualenv's site-packages and the repository root go on ``PYTHONPATH``.
    """
    paths = [str(REPO_ROOT), *site.getsitepackages()]
    existing = os.environ.get("PYTHONPATH")
    if existing:
        paths.append(existing)
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # On a local cluster PyFlink otherwise runs every Python function in this process ("loopback"),
    # all of them behind one interpreter lock. Separate worker processes run beside the JVM, as
    # they do on a real cluster.
    # NOTE: _python_worker_execution_mode is read by PyFlink's TableEnvironment (checked in
    # apache-flink 2.2.1) but is not a documented option, so a later release may drop it.
    os.environ["_python_worker_execution_mode"] = "process"
    tmp_dir = settings.job.work_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    # PyFlink leaves temporary folders behind; keep them under the project's ignored var/ folder.
    os.environ["TMPDIR"] = str(tmp_dir)
    os.environ["FLINK_PLUGINS_DIR"] = str(prepare_plugins_dir(settings.job.work_dir / "plugins", jars))
    if settings.job.jobmanager_address is not None:
        stage_python_packages(python_packages_dir(settings))


def prepare_plugins_dir(plugins_dir: Path, jars: RuntimeJars) -> Path:
    """Fill ``plugins_dir`` with Flink's bundled plugins and the job's counter reporter; return it.

    Flink loads metric reporters from plugin folders when the cluster starts, not from the job's
    jars, so the functions jar (which contains ``CounterFileReporter``) is also a plugin.
    """
    bundled = Path(pyflink.__file__).resolve().parent / "plugins"
    plugins_dir.mkdir(parents=True, exist_ok=True)
    for plugin in bundled.iterdir():
        link = plugins_dir / plugin.name
        if plugin.is_dir() and not link.exists():
            link.symlink_to(plugin, target_is_directory=True)
    reporter_dir = plugins_dir / REPORTER_PLUGIN
    shutil.rmtree(reporter_dir, ignore_errors=True)
    reporter_dir.mkdir()
    shutil.copy2(jars.flink_functions, reporter_dir / jars.flink_functions.name)
    return plugins_dir


def counters_dir(settings: Settings) -> Path:
    """Return the folder that the job's counter reporter writes ``counters-<pid>.json`` files to."""
    return settings.job.work_dir.resolve() / "counters"


def job_parameters(settings: Settings) -> dict[str, str]:
    """Return the global job parameters that the Java functions read in ``open``."""
    half_life = settings.preference.recency_half_life_ms
    return {
        "dreamumm.recency-half-life-ms": repr(float(half_life or 0.0)),
        "dreamumm.dedup-window-ms": str(settings.job.dedup_window_ms),
    }


def flink_options(settings: Settings, jars: Sequence[Path]) -> dict[str, str]:
    """Return the Flink options of the job: jars, Python workers, checkpoints, state, batching."""
    job, emission = settings.job, settings.emission
    work_dir = job.work_dir.resolve()
    options = {
        "pipeline.name": "dreamumm-feature-job",
        "pipeline.jars": ";".join(jar.resolve().as_uri() for jar in jars),
        "parallelism.default": str(job.parallelism),
        # The job's Python functions are vectorised, which PyFlink runs only in worker processes.
        "python.execution-mode": "process",
        # Python workers otherwise start whatever `python` is first on PATH.
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.fn-execution.bundle.size": str(job.bundle_size),
        "python.fn-execution.bundle.time": str(job.bundle_time_ms),
        "python.fn-execution.arrow.batch.size": str(job.arrow_batch_size),
        "execution.checkpointing.interval": f"{job.checkpoint_interval_ms} ms",
        "execution.checkpointing.dir": (work_dir / "checkpoints").as_uri(),
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        # Keep the last checkpoints when the job is cancelled or its process dies, so that a new
        # run can restore from them (job.restore_from).
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "pipeline.global-job-parameters": ",".join(
            f"{name}:{value}" for name, value in job_parameters(settings).items()),
        # The job's counters, summed by name, in a JSON file per process (CounterFileReporter).
        f"metrics.reporter.{REPORTER_NAME}.factory.class": "dev.dreamumm.flink.CounterFileReporterFactory",
        f"metrics.reporter.{REPORTER_NAME}.dir": str(counters_dir(settings)),
        f"metrics.reporter.{REPORTER_NAME}.interval": "1 s",
        "state.backend.type": job.state_backend,
        "io.tmp.dirs": str(work_dir / "tmp"),
        "pipeline.auto-watermark-interval": f"{job.watermark_interval_ms} ms",
        # A partition without records for this long stops holding back the watermark.
        "table.exec.source.idle-timeout": f"{job.idle_timeout_ms} ms",
        # Decode and join once for both sinks: identical sub-plans become one shared node.
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
        # Chained operators hand rows on without a defensive copy; the planner's operators do
        # not keep references to input rows they have passed on.
        "pipeline.object-reuse": "true",
        # Stable operator ids for every planner-generated operator, so savepoints restore.
        "table.exec.uid.generation": "ALWAYS",
    }
    # A job that keeps failing ends with its error instead of retrying without end, so a
    # supervisor can start it again with --restore latest. An embedded cluster never replaces a
    # TaskManager that died (a Kafka outage of more than a minute can kill it), so without these
    # limits the job would wait for task slots forever.
    options["slot.request.timeout"] = "60 s"
    if job.bounded:
        options.update({"restart-strategy.type": "fixed-delay",
                        "restart-strategy.fixed-delay.attempts": "5",
                        "restart-strategy.fixed-delay.delay": "2 s"})
    else:
        options.update({"restart-strategy.type": "exponential-delay",
                        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "10"})
    if job.restore_from is not None:
        options["execution.state-recovery.path"] = job.restore_from.resolve().as_uri()
    if job.rest_port is not None:
        options.update({"rest.bind-address": "127.0.0.1", "rest.address": "127.0.0.1",
                        "rest.bind-port": str(job.rest_port), "rest.port": str(job.rest_port)})
    if job.jobmanager_address is not None:
        options.update(remote_cluster_options(settings))
    if emission.policy == "interval":
        # Mini-batches buffer input for interval_ms, then update each user once per batch.
        options.update({
            "table.exec.mini-batch.enabled": "true",
            "table.exec.mini-batch.allow-latency": f"{emission.interval_ms} ms",
            "table.exec.mini-batch.size": str(job.mini_batch_size),
            # Users are spread out, so a local pre-aggregation rarely combines two events of
            # one user and only costs (measured about 0.8x at d=128 on 2 cores).
            "table.optimizer.agg-phase-strategy": "ONE_PHASE",
        })
    else:
        options["table.exec.mini-batch.enabled"] = "false"
    return options


def remote_cluster_options(settings: Settings) -> dict[str, str]:
    """Return the options that submit the job to the standalone cluster at job.jobmanager_address.

    The client uploads the jars of pipeline.jars and the folder of python.files to the cluster
    with the job. Each TaskManager unpacks the folder and puts it first on its Python workers'
    PYTHONPATH, so the workers run the code that built the job even when another copy of the
    project is installed next to python.executable. That interpreter must exist on the
    TaskManagers' hosts with the job's third-party packages.
    """
    address = settings.job.jobmanager_address
    host_port = split_host_port(address) if address is not None else None
    if host_port is None:
        raise ValueError(f"job.jobmanager_address must be host:port, got {address!r}")
    host, port = host_port
    return {
        "execution.target": "remote",
        "rest.address": host,
        "rest.port": str(port),
        "python.files": str(python_packages_dir(settings)),
    }


def python_packages_dir(settings: Settings) -> Path:
    """Return the folder that stage_python_packages fills for a standalone cluster."""
    return settings.job.work_dir.resolve() / "python-packages"


def stage_python_packages(target: Path) -> Path:
    """Copy the packages of PYTHON_WORKER_PACKAGES into ``target``, replacing its content; return it.

    PyFlink 2.2.1 puts a folder of python.files itself on the workers' PYTHONPATH, so the
    modules inside it import at top level. Shipping the package folders one by one would make
    ``udfs`` importable but not ``jobs.udfs``, hence one folder that contains the packages.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for package in PYTHON_WORKER_PACKAGES:
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def apply_configuration(config: TableConfig, settings: Settings, jars: Sequence[Path]) -> None:
    """Set the job's Flink options on a table environment's configuration."""
    for name, value in flink_options(settings, jars).items():
        config.set(name, value)
