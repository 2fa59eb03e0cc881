"""The demo's last step: materialise the job's output into a fresh store and rank for two users."""

from __future__ import annotations

import pandas as pd

from dreamumm.config import Settings
from ranking import Candidate, HistoryItem, RankResult, build_ranker
from store import FeatureStoreReader, Materialiser

CANDIDATES = 200
"""Candidates per example request: sample videos the user did not watch."""


def _describe(title: str, result: RankResult) -> list[str]:
    lines = [f"{title}: {result.choice.source.value} ({result.choice.reason.value})"]
    for item in result.items:
        probability = ("" if item.long_view_probability is None
                       else f", long-view probability {item.long_view_probability:.2f}")
        lines.append(f"    video {item.video_id}: score {item.score:.3f}{probability}")
    return lines


def rank_examples(settings: Settings, events: pd.DataFrame, user_id: str) -> list[str]:
    """Rebuild the store from the topics, then rank for ``user_id`` and for an unknown user with the
    same history; return the lines to print."""
    # The demo recreated the topics, so an older store contains offsets and topic ids of the old topics.
    with Materialiser(settings, rebuild=True) as materialiser:
        stats = materialiser.run(until_caught_up=True)
    watched = events[events["user_id"].astype(str) == user_id].sort_values("time_ms")
    unseen = events.loc[~events["video_id"].isin(watched["video_id"]), "video_id"].drop_duplicates()
    candidates = [Candidate(str(video)) for video in unseen.iloc[:CANDIDATES]]
    history = [HistoryItem(str(row.video_id), float(row.play_time_ms), float(row.duration_ms), int(row.time_ms))
               for row in watched.tail(settings.ranking.history_limit).itertuples()]
    with FeatureStoreReader.open(settings.store) as reader:
        ranker = build_ranker(settings, reader)
        stored = ranker.rank(user_id, history, candidates, k=3)
        fresh = ranker.rank("user-not-in-the-store", history, candidates, k=3)
    return [f"materialised {stats.feature_records} feature and {stats.embedding_records} embedding records "
            f"into the store at {settings.store.path}",
            *_describe(f"top 3 of {len(candidates)} unseen videos for user {user_id}", stored),
            *_describe("the same request for a user the store does not have", fresh),
            "serve it over HTTP: .venv/bin/dreamumm materialise & .venv/bin/dreamumm serve (README, Serving)"]
