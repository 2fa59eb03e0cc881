"""Unit tests of the standalone Flink cluster's settings and generated files; no process starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.flink_cluster_config import (
    FlinkClusterSettings,
    FlinkDistributionError,
    cluster_options,
    flink_home,
    render_config,
    write_cluster_files,
)

JAVA_OPTIONS = "--add-opens=java.base/java.lang=ALL-UNNAMED"


def make_settings(tmp_path: Path, **overrides: object) -> FlinkClusterSettings:
    values: dict[str, object] = {"root_dir": tmp_path / "cluster", "jobmanager_rpc_port": 46123, "rest_port": 48081}
    values.update(overrides)
    return FlinkClusterSettings(**values)  # type: ignore[arg-type]


def fake_distribution(tmp_path: Path, python_jars: int = 1) -> Path:
    """Create the folders of a Flink distribution with empty jars, as the apache-flink wheel lays them out."""
    home = tmp_path / "pyflink"
    for folder in ("conf", "lib", "opt", "bin"):
        (home / folder).mkdir(parents=True)
    (home / "conf" / "config.yaml").write_text(
        f"env:\n  java:\n    opts:\n      all: {JAVA_OPTIONS}\n"
        "jobmanager:\n  rpc:\n    address: localhost\n  execution:\n    failover-strategy: region\n",
        encoding="utf-8")
    (home / "conf" / "log4j-console.properties").write_text("rootLogger.level = INFO\n", encoding="utf-8")
    (home / "conf" / "masters").write_text("localhost:8081\n", encoding="utf-8")
    for name in ("flink-dist-2.2.1.jar", "flink-table-runtime-2.2.1.jar"):
        (home / "lib" / name).write_bytes(b"")
    for index in range(python_jars):
        (home / "opt" / f"flink-python-2.2.{index}.jar").write_bytes(b"")
    return home


def test_options_bind_everything_to_loopback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    options = cluster_options(settings, {})

    for name in ("jobmanager.rpc.address", "jobmanager.bind-host", "taskmanager.host", "taskmanager.bind-host",
                 "rest.address", "rest.bind-address"):
        assert options[name] == "127.0.0.1", name
    assert options["jobmanager.rpc.port"] == "46123"
    assert options["rest.port"] == "48081"
    assert options["rest.bind-port"] == "48081"


def test_options_sizes_and_folders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, task_slots=3, jobmanager_memory="700m", taskmanager_memory="1g")

    options = cluster_options(settings, {})

    assert options["taskmanager.numberOfTaskSlots"] == "3"
    assert options["jobmanager.memory.process.size"] == "700m"
    assert options["taskmanager.memory.process.size"] == "1g"
    assert options["execution.checkpointing.dir"] == (tmp_path / "cluster" / "checkpoints").resolve().as_uri()
    assert options["io.tmp.dirs"] == str((tmp_path / "cluster" / "tmp").resolve())
    assert options["heartbeat.interval"] == "1000"
    assert options["heartbeat.timeout"] == "10000"


def test_options_keep_distribution_java_flags(tmp_path: Path) -> None:
    distribution = {"env.java.opts.all": JAVA_OPTIONS, "jobmanager.rpc.address": "localhost",
                    "taskmanager.memory.process.size": "1728m"}

    options = cluster_options(make_settings(tmp_path), distribution)

    assert options["env.java.opts.all"] == JAVA_OPTIONS
    assert options["jobmanager.rpc.address"] == "127.0.0.1"
    assert options["taskmanager.memory.process.size"] == "1280m"


def test_extra_options_override_generated(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_options={"heartbeat.timeout": "30000", "restart-strategy.type": "none"})

    options = cluster_options(settings, {})

    assert options["heartbeat.timeout"] == "30000"
    assert options["restart-strategy.type"] == "none"


def test_rendered_config_has_unquoted_scalars(tmp_path: Path) -> None:
    options = cluster_options(make_settings(tmp_path), {"env.java.opts.all": JAVA_OPTIONS})

    text = render_config(options)

    # Flink's start scripts grep config.yaml lines as text, so 'true' would not read as true.
    assert "env.stdout-err.redirect-to-file: true\n" in text
    assert "rest.port: 48081\n" in text
    parsed = yaml.safe_load(text)
    assert parsed["env.java.opts.all"] == JAVA_OPTIONS
    assert parsed["taskmanager.memory.process.size"] == "1280m"
    assert parsed["rest.port"] == 48081


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "flink.example.internal", "::1"])
def test_settings_reject_non_loopback_host(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        make_settings(tmp_path, host=host)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rest_port": 46123}, "must differ"),
    ({"rest_port": 0}, "rest_port must be between 1 and 65535"),
    ({"task_slots": 0}, "task_slots must be at least 1"),
    ({"taskmanager_memory": "1.5g"}, "taskmanager_memory must be a memory size"),
    ({"heartbeat_interval_ms": 10_000}, "heartbeat_interval_ms must be positive and below"),
    ({"extra_options": {"bad key": "1"}}, "invalid Flink option"),
    ({"extra_options": {"rest.port": 1}}, "invalid Flink option"),
])
def test_settings_reject_invalid_values(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_settings(tmp_path, **overrides)


def test_write_cluster_files_links_python_jar(tmp_path: Path) -> None:
    home = fake_distribution(tmp_path)
    settings = make_settings(tmp_path)

    write_cluster_files(settings, home)

    linked = sorted(path.name for path in settings.lib_dir.iterdir())
    assert linked == ["flink-dist-2.2.1.jar", "flink-python-2.2.0.jar", "flink-table-runtime-2.2.1.jar"]
    assert (settings.lib_dir / "flink-python-2.2.0.jar").resolve() == home / "opt" / "flink-python-2.2.0.jar"
    assert (settings.conf_dir / "log4j-console.properties").is_file()
    assert not (settings.conf_dir / "masters").exists()
    written = yaml.safe_load(settings.config_path.read_text(encoding="utf-8"))
    assert written["env.java.opts.all"] == JAVA_OPTIONS
    assert written["jobmanager.execution.failover-strategy"] == "region"
    assert written["jobmanager.rpc.address"] == "127.0.0.1"
    for folder in (settings.log_root, settings.checkpoint_dir, settings.tmp_dir):
        assert folder.is_dir(), folder


def test_write_cluster_files_twice_replaces_links(tmp_path: Path) -> None:
    home = fake_distribution(tmp_path)
    settings = make_settings(tmp_path)
    write_cluster_files(settings, home)
    (home / "lib" / "flink-table-runtime-2.2.1.jar").unlink()

    write_cluster_files(settings, home)

    assert not (settings.lib_dir / "flink-table-runtime-2.2.1.jar").exists()


@pytest.mark.parametrize("python_jars", [0, 2])
def test_write_cluster_files_needs_one_python_jar(tmp_path: Path, python_jars: int) -> None:
    home = fake_distribution(tmp_path, python_jars=python_jars)

    with pytest.raises(FlinkDistributionError, match=f"found {python_jars}"):
        write_cluster_files(make_settings(tmp_path), home)


def test_flink_home_is_the_wheel_distribution() -> None:
    home = flink_home()

    assert (home / "bin" / "taskmanager.sh").is_file()
    assert len(list((home / "opt").glob("flink-python-*.jar"))) == 1
