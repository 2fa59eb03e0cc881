"""Building the ranker's long-view model from the configuration: the model file or a factory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dreamumm.config import ConfigError, load_settings
from ranking import load_configured_long_view_model
from ranking.long_view import ConstantLongViewModel, LogisticLongViewModel, LongViewModelError


def settings_with(**ranking: object):
    return load_settings(environ={f"DREAMUMM__RANKING__{name.upper()}": str(value) for name, value in ranking.items()})


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on sys.path with factories of a good model, a failing one and a wrong type."""
    name = f"long_view_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        from ranking.long_view import ConstantLongViewModel

        def constant(settings):
            return ConstantLongViewModel(0.25)

        def failing(settings):
            raise RuntimeError("no weights here")

        def not_a_model(settings):
            return object()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_default_loads_shipped_file() -> None:
    assert isinstance(load_configured_long_view_model(load_settings(environ={})), LogisticLongViewModel)


def test_factory_returns_its_model(plugin_module: str) -> None:
    model = load_configured_long_view_model(settings_with(long_view_model_factory=f"{plugin_module}:constant"))
    assert isinstance(model, ConstantLongViewModel)
    assert model.probability == 0.25


@pytest.mark.parametrize("function, message", [
    ("missing", "cannot be imported"),
    ("failing", "failed: RuntimeError\\('no weights here'\\)"),
    ("not_a_model", "returned object, which lacks predict\\(\\)"),
])
def test_factory_errors_name_the_path(plugin_module: str, function: str, message: str) -> None:
    with pytest.raises(LongViewModelError, match=message):
        load_configured_long_view_model(settings_with(long_view_model_factory=f"{plugin_module}:{function}"))


def test_unknown_module_is_reported() -> None:
    with pytest.raises(LongViewModelError, match="'no_such_module:make' cannot be imported"):
        load_configured_long_view_model(settings_with(long_view_model_factory="no_such_module:make"))


def test_factory_path_format_is_checked() -> None:
    with pytest.raises(ConfigError, match="ranking.long_view_model_factory = 'not a path'"):
        settings_with(long_view_model_factory="not a path")
