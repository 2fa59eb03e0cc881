"""Loading any kind of long-view model from its file."""

from __future__ import annotations

import logging
from pathlib import Path

from ranking.long_view.constant import ConstantLongViewModel
from ranking.long_view.interface import LongViewModel
from ranking.long_view.logistic import LogisticLongViewModel
from ranking.long_view.model_file import LongViewModelError, read_model_file, retrain_hint

__all__ = ["load_long_view_model"]

logger = logging.getLogger(__name__)

_KINDS = {
    LogisticLongViewModel.KIND: LogisticLongViewModel,
    ConstantLongViewModel.KIND: ConstantLongViewModel,
}


def load_long_view_model(path: str | Path) -> LongViewModel:
    """Read a model file and return the model of the kind it names.

    Raises:
        LongViewModelError: if the file is missing or corrupt, has another format version, names
            an unknown kind, or has an invalid field. The message explains how to recreate the file.
    """
    file_path = Path(path)
    data = read_model_file(file_path)
    kind = data.get("kind")
    model_class = _KINDS.get(kind) if isinstance(kind, str) else None
    if model_class is None:
        raise LongViewModelError(
            f"long-view model file {file_path} has unknown kind {kind!r}; expected one of {sorted(_KINDS)}; "
            f"{retrain_hint(file_path)}"
        )
    try:
        model: LongViewModel = model_class.from_dict(data, source=f"file {file_path}")
    except LongViewModelError as error:
        raise LongViewModelError(f"{error}; {retrain_hint(file_path)}") from error
    logger.info("loaded %s long-view model from %s (embedding model version %s)", kind, file_path,
                model.embedding_model_version)
    return model
