"""Settings of a local standalone Flink cluster and the config.yaml built from them.

The cluster runs from the Flink distribution inside the apache-flink wheel (``pyflink/bin``,
``lib``, ``opt``, ``conf``). Each cluster gets its own folder, so the wheel stays unchanged:

    <root_dir>/conf/config.yaml   generated from these settings on every start
    <root_dir>/conf/log4j*.properties, logback*.xml   copied from the wheel's conf/
    <root_dir>/lib/               links to the wheel's lib/ jars and its opt/flink-python jar
    <root_dir>/log/<process>/     each JVM's .log, .out and .err files
    <root_dir>/checkpoints/, tmp/, run/
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra.broker_config import _validate_host

JOBMANAGER = "jobmanager"
TASKMANAGER_PREFIX = "taskmanager-"
DEFAULT_HOST = "127.0.0.1"
# Sized for a 2-core, shared machine. The TaskManager's managed memory (0.4 of its Flink
# memory) is what the Python workers of its slots share.
DEFAULT_JOBMANAGER_MEMORY = "768m"
DEFAULT_TASKMANAGER_MEMORY = "1280m"
DEFAULT_TASK_SLOTS = 2
# A killed TaskManager refuses connections, and the JobManager marks it lost after two failed
# heartbeat RPCs in a row (heartbeat.rpc-failure-threshold, 2 by default in Flink 2.2.1). With
# Flink's default 10 s interval that is about 20 s, with 1 s it took 1.3 to 2 s on a 2-core machine.
DEFAULT_HEARTBEAT_INTERVAL_MS = 1_000
DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000

_MEMORY_PATTERN = re.compile(r"[1-9][0-9]*[kKmMgG]?")
_OPTION_KEY_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
# Options of the wheel's conf/config.yaml that the generated file keeps: the JVM flags that
# Flink needs on Java 17, and the failover strategy.
_INHERITED_OPTIONS = ("env.java.opts.all", "jobmanager.execution.failover-strategy")


class FlinkDistributionError(RuntimeError):
    """The Flink distribution of the apache-flink wheel is missing or incomplete."""


def flink_home() -> Path:
    """Return the Flink distribution folder that the apache-flink wheel installs (``pyflink/``).

    The package is located without importing it, so the caller's process starts no JVM.
    Raises FlinkDistributionError if the wheel is missing or has no bin/jobmanager.sh.
    """
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise FlinkDistributionError(
            "the pyflink package is not installed; run `make setup` to install apache-flink into .venv")
    home = Path(spec.origin).resolve().parent
    for required in (home / "bin" / "jobmanager.sh", home / "bin" / "taskmanager.sh", home / "lib"):
        if not required.exists():
            raise FlinkDistributionError(
                f"{required} not found: the apache-flink installation in {home} is incomplete; "
                "reinstall it with `make setup`")
    return home


@dataclass(frozen=True)
class FlinkClusterSettings:
    """Addresses, ports, sizes and folder of a local standalone Flink cluster.

    ``plugins_dir`` is the folder of Flink plugins (metric reporters, file systems) that the
    processes load at start; None uses the distribution's plugins/. ``extra_options`` are
    written last into config.yaml, so they override the generated entries. Ports not named here (blob server, TaskManager RPC and data) are picked by
    Flink from the free ones on ``host``.
    """

    root_dir: Path
    jobmanager_rpc_port: int
    rest_port: int
    host: str = DEFAULT_HOST
    task_slots: int = DEFAULT_TASK_SLOTS
    jobmanager_memory: str = DEFAULT_JOBMANAGER_MEMORY
    taskmanager_memory: str = DEFAULT_TASKMANAGER_MEMORY
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    heartbeat_timeout_ms: int = DEFAULT_HEARTBEAT_TIMEOUT_MS
    plugins_dir: Path | None = None
    extra_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root_dir", Path(self.root_dir).expanduser().resolve())
        if self.plugins_dir is not None:
            object.__setattr__(self, "plugins_dir", Path(self.plugins_dir).expanduser().resolve())
        _validate_host(self.host)
        for name, port in (("jobmanager_rpc_port", self.jobmanager_rpc_port), ("rest_port", self.rest_port)):
            if not 1 <= port <= 65535:
                raise ValueError(f"{name} must be between 1 and 65535, got {port}")
        if self.jobmanager_rpc_port == self.rest_port:
            raise ValueError(f"jobmanager_rpc_port and rest_port must differ, both are {self.rest_port}")
        if self.task_slots < 1:
            raise ValueError(f"task_slots must be at least 1, got {self.task_slots}")
        for name, size in (("jobmanager_memory", self.jobmanager_memory),
                           ("taskmanager_memory", self.taskmanager_memory)):
            if not _MEMORY_PATTERN.fullmatch(size):
                raise ValueError(f"{name} must be a memory size such as 768m or 1g, got {size!r}")
        if not 0 < self.heartbeat_interval_ms < self.heartbeat_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms must be positive and below heartbeat_timeout_ms, got "
                f"{self.heartbeat_interval_ms} and {self.heartbeat_timeout_ms}")
        for key, value in self.extra_options.items():
            if not _OPTION_KEY_PATTERN.fullmatch(key) or not isinstance(value, str):
                raise ValueError(
                    f"invalid Flink option {key!r}: {value!r}; names use letters, digits, '.', '_' and '-', "
                    "and values are strings")

    @property
    def rest_address(self) -> str:
        """``host:port`` of the REST endpoint, the form that job.jobmanager_address takes."""
        return f"{self.host}:{self.rest_port}"

    @property
    def conf_dir(self) -> Path:
        return self.root_dir / "conf"

    @property
    def config_path(self) -> Path:
        return self.conf_dir / "config.yaml"

    @property
    def lib_dir(self) -> Path:
        return self.root_dir / "lib"

    @property
    def log_root(self) -> Path:
        return self.root_dir / "log"

    def log_dir(self, process_name: str) -> Path:
        """Folder of the .log, .out and .err files of one process (``jobmanager``, ``taskmanager-0``)."""
        return self.log_root / process_name

    def pid_dir(self, process_name: str) -> Path:
        """Folder of the pid file that Flink's start script writes for one process."""
        return self.root_dir / "run" / process_name

    @property
    def checkpoint_dir(self) -> Path:
        return self.root_dir / "checkpoints"

    @property
    def tmp_dir(self) -> Path:
        return self.root_dir / "tmp"


def cluster_options(settings: FlinkClusterSettings, distribution_options: Mapping[str, object]) -> dict[str, str]:
    """Return the flat config.yaml entries of the cluster.

    ``distribution_options`` are the flattened options of the wheel's conf/config.yaml, of
    which only the Java 17 flags and the failover strategy are kept.
    """
    options = {key: str(distribution_options[key]) for key in _INHERITED_OPTIONS if key in distribution_options}
    host = settings.host
    options.update({
        # Every address and bind address is on loopback: this cluster has no authentication.
        "jobmanager.rpc.address": host,
        "jobmanager.rpc.port": str(settings.jobmanager_rpc_port),
        "jobmanager.bind-host": host,
        "taskmanager.host": host,
        "taskmanager.bind-host": host,
        "rest.address": host,
        "rest.bind-address": host,
        "rest.port": str(settings.rest_port),
        "rest.bind-port": str(settings.rest_port),
        "jobmanager.memory.process.size": settings.jobmanager_memory,
        "taskmanager.memory.process.size": settings.taskmanager_memory,
        "taskmanager.numberOfTaskSlots": str(settings.task_slots),
        "heartbeat.interval": str(settings.heartbeat_interval_ms),
        "heartbeat.timeout": str(settings.heartbeat_timeout_ms),
        "execution.checkpointing.dir": settings.checkpoint_dir.as_uri(),
        "io.tmp.dirs": str(settings.tmp_dir),
        # The .out and .err files catch what the JVM and the Python workers print; the
        # console appender is then off, so nothing is logged twice.
        "env.stdout-err.redirect-to-file": "true",
    })
    options.update(settings.extra_options)
    return options


def render_config(options: Mapping[str, str]) -> str:
    """Return ``options`` as a config.yaml document with one flat ``key: value`` entry a line.

    Booleans and integers are written unquoted. Flink's shell scripts read some options
    (env.stdout-err.redirect-to-file among them) as raw text, where ``'true'`` is not ``true``.
    """
    header = "# Generated by infra/flink_cluster_config.py. Edits are overwritten on the next start.\n"
    typed = {key: _yaml_scalar(value) for key, value in options.items()}
    return header + yaml.safe_dump(typed, sort_keys=True, default_flow_style=False, width=1_000_000)


def _yaml_scalar(value: str) -> str | bool | int:
    if value in ("true", "false"):
        return value == "true"
    if value.isdigit():
        return int(value)
    return value


def distribution_options(home: Path) -> dict[str, object]:
    """Return the options of ``home``/conf/config.yaml, flattened to dotted keys."""
    path = home / "conf" / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise FlinkDistributionError(f"cannot read the Flink distribution's {path}: {error}") from error
    return _flatten(raw)


def _flatten(node: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def write_cluster_files(settings: FlinkClusterSettings, home: Path) -> None:
    """Write the cluster's conf/ and lib/ folders and create its other folders."""
    for folder in (settings.conf_dir, settings.log_root, settings.checkpoint_dir, settings.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for source in sorted((home / "conf").iterdir()):
        if source.name.startswith(("log4j", "logback")):
            shutil.copyfile(source, settings.conf_dir / source.name)
    options = cluster_options(settings, distribution_options(home))
    settings.config_path.write_text(render_config(options), encoding="utf-8")
    link_lib_jars(home, settings.lib_dir)


def link_lib_jars(home: Path, lib_dir: Path) -> list[Path]:
    """Fill ``lib_dir`` with links to the distribution's lib/ jars and its opt/flink-python jar.

    The JobManager and TaskManagers load every jar in this folder. The flink-python jar
    contains the operators that run Python functions, and the distribution keeps it in opt/.
    From the plain lib/, the JobManager rejects a job with Python functions (a
    ClassNotFoundException for ArrowPythonScalarFunctionOperator in apache-flink 2.2.1).
    Returns the links.
    """
    python_jars = sorted((home / "opt").glob("flink-python-*.jar"))
    if len(python_jars) != 1:
        raise FlinkDistributionError(
            f"expected exactly one flink-python-*.jar in {home / 'opt'}, found {len(python_jars)}; "
            "reinstall apache-flink with `make setup`")
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    lib_dir.mkdir(parents=True)
    links = []
    for jar in [*sorted((home / "lib").glob("*.jar")), python_jars[0]]:
        link = lib_dir / jar.name
        link.symlink_to(jar)
        links.append(link)
    return links
