"""The long-view model f_seq(history, candidate) that weighs Candidate-DreamUMM, and its default.

- ``history``: ``WatchHistory``, the user's watched videos, oldest first.
- ``interface``: the ``LongViewModel`` protocol and the input checks every model shares.
- ``constant``: ``ConstantLongViewModel``, one probability for every candidate.
- ``features``: the features of (history, candidate) pairs, one function for training and serving.
- ``video_stats``: per-video duration, exposures and long views of the training window.
- ``logistic``: ``LogisticLongViewModel``, the default model, and ``logistic_fit``, its numpy fit.
- ``model_file``, ``loading``: the JSON model file and ``load_long_view_model``.
- ``examples``, ``training``, ``report``, ``metrics``: training with a time split and its evaluation.
- ``command``: ``train_long_view``, the entry point that reads the files and writes the model.

Only the serving names are imported here. Import training from ``ranking.long_view.training``.
"""

from ranking.long_view.constant import ConstantLongViewModel
from ranking.long_view.history import WatchHistory
from ranking.long_view.interface import LongViewModel
from ranking.long_view.loading import load_long_view_model
from ranking.long_view.logistic import LogisticLongViewModel
from ranking.long_view.model_file import FORMAT_VERSION, LongViewModelError

__all__ = [
    "FORMAT_VERSION",
    "ConstantLongViewModel",
    "LogisticLongViewModel",
    "LongViewModel",
    "LongViewModelError",
    "WatchHistory",
    "load_long_view_model",
]
