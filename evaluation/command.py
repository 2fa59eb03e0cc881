"""`dreamumm evaluate`: run the evaluation, write the report and its plots, return the short table."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from dreamumm.config import Settings
from evaluation.plots import plot_paths, write_plots
from evaluation.report import render_report, render_summary
from evaluation.run import EvaluationOutcome, run_evaluation

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)


def evaluate(settings: Settings, events_path: Path, videos_path: Path,
             report_path: Path | None = None) -> tuple[EvaluationOutcome, str]:
    """Evaluate on the given files and write the report (default ``evaluation.report_path``).

    The plots go to a folder beside the report with the report's name minus ``.md``. Returns the
    outcome and the short table of the test window.

    Raises:
        FileNotFoundError: if an input file does not exist.
        OSError: if the report or its plots cannot be written.
        ValueError: if an input is invalid or too small to form both windows, or the report path does
            not end in .md.
    """
    started = time.monotonic()
    target = Path(report_path or settings.evaluation.report_path)
    if target.suffix != ".md":
        raise ValueError(f"report path {target} must end in .md, because its plots go to the folder of the same "
                         "name without .md")
    outcome = run_evaluation(settings, events_path, videos_path)
    # Render first, so that an error there leaves no new plots beside an old report.
    folder = target.with_suffix("")
    text = render_report(outcome, plot_paths(folder), target)
    summary = render_summary(outcome)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        plots = write_plots(outcome, folder)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise OSError(f"cannot write the report {target} or its plots to {folder}/: {error}") from error
    logger.info("wrote %s and %s plots in %.1f s", target, len(plots), time.monotonic() - started)
    return outcome, summary
