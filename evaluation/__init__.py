"""Offline evaluation of recommendation quality on an event log, with the pipeline's own operators.

- ``events``: the events the job would sum, in event-time order, with accounting of the rest.
- ``replay``: the job's per-user DreamUMM state after every event.
- ``windows``: the validation and test windows and what each scores.
- ``methods`` and ``long_view``: scores of DreamUMM, Candidate-DreamUMM and the baselines.
- ``metrics``, ``kmeans``, ``results``, ``bootstrap``: metrics per user and their intervals.
- ``sweep``, ``run``, ``report``, ``plots``, ``command``: the sweep and the `dreamumm evaluate` command.
"""

from evaluation.command import evaluate
from evaluation.run import EvaluationOutcome, MethodNames, run_evaluation

__all__ = ["EvaluationOutcome", "MethodNames", "evaluate", "run_evaluation"]
