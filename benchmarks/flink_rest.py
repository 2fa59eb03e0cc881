"""Reads job facts from the local Flink cluster's REST API on 127.0.0.1 (``job.rest_port``)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class FlinkRestError(RuntimeError):
    """A REST request failed or returned something unexpected."""


@dataclass(frozen=True)
class CheckpointSizes:
    """State sizes of one completed checkpoint, per job vertex name."""

    checkpoint_id: int
    bytes_by_vertex: dict[str, int]
    duration_ms: int


class FlinkRest:
    """A small client of the REST API of the cluster at ``127.0.0.1:port``."""

    def __init__(self, port: int) -> None:
        self._base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self._base + path, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
            raise FlinkRestError(f"GET {self._base}{path} failed: {error}") from error

    def running_job_id(self, timeout_s: float) -> str:
        """Wait until one job is RUNNING and return its id."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                for job in self.get("/jobs").get("jobs", []):
                    if job.get("status") == "RUNNING":
                        return str(job["id"])
            except FlinkRestError:
                pass
            if time.monotonic() > deadline:
                raise FlinkRestError(f"timed out after {timeout_s} s waiting for a running job at {self._base}; "
                                     "see the job's log for why it did not start")
            time.sleep(0.5)

    def latest_checkpoint(self, job_id: str) -> CheckpointSizes | None:
        """Return the sizes of the newest completed checkpoint, or None if none completed."""
        latest = self.get(f"/jobs/{job_id}/checkpoints").get("latest", {}).get("completed")
        if not latest:
            return None
        checkpoint_id = int(latest["id"])
        details = self.get(f"/jobs/{job_id}/checkpoints/details/{checkpoint_id}")
        names = {vertex["id"]: vertex["name"] for vertex in self.get(f"/jobs/{job_id}").get("vertices", [])}
        sizes = {names.get(vertex_id, vertex_id): int(task.get("state_size", task.get("checkpointed_size", 0)))
                 for vertex_id, task in details.get("tasks", {}).items()}
        return CheckpointSizes(checkpoint_id, sizes, int(latest.get("end_to_end_duration", 0)))

    def wait_for_checkpoint(self, job_id: str, after_id: int, timeout_s: float) -> CheckpointSizes | None:
        """Wait for a checkpoint newer than ``after_id``. Return None if none completes in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sizes = self.latest_checkpoint(job_id)
            if sizes is not None and sizes.checkpoint_id > after_id:
                return sizes
            time.sleep(1.0)
        return None

    def heap_used_bytes(self) -> int | None:
        """Return the heap in use of the first TaskManager, or None if the metric is missing."""
        managers = self.get("/taskmanagers").get("taskmanagers", [])
        if not managers:
            return None
        metrics = self.get(f"/taskmanagers/{managers[0]['id']}/metrics?get=Status.JVM.Memory.Heap.Used")
        for metric in metrics:
            if metric.get("id") == "Status.JVM.Memory.Heap.Used":
                return int(float(metric["value"]))
        return None
