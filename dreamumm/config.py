"""The one configuration object of the pipeline, loaded from YAML with environment overrides.

Every command reads ``config/dreamumm.yaml`` unless ``--config`` or ``DREAMUMM_CONFIG`` names
another file. Any field can then be overridden by an environment variable named
``DREAMUMM__<SECTION>__<FIELD>`` (double underscores, case-insensitive), for example
``DREAMUMM__KAFKA__BOOTSTRAP_SERVERS=broker-1:9092``. Values are validated once, at start,
and an invalid value raises ``ConfigError`` naming the field, the value and the source.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "dreamumm.yaml"
ENV_PREFIX = "DREAMUMM__"


class ConfigError(ValueError):
    """Raised when the configuration file or an override is invalid."""


# A host name, an IPv4 address or a bracketed IPv6 address, then a port.
_HOST_PORT_PATTERN = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")


def split_host_port(address: str) -> tuple[str, int] | None:
    """Return the host (IPv6 without brackets) and port of ``host:port``, or None if it is not one."""
    match = _HOST_PORT_PATTERN.fullmatch(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        return None
    return match["host"].strip("[]"), int(match["port"])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


class KafkaSettings(_Section):
    """Kafka connection and the names of the pipeline's topics."""

    bootstrap_servers: str = "127.0.0.1:19092"
    """Comma-separated host:port list of the Kafka brokers."""
    events_topic: str = "watch-events"
    """Topic of WatchEvent records, keyed by user id."""
    embeddings_topic: str = "video-embeddings"
    """Compacted topic of VideoEmbedding records, keyed by video id."""
    features_topic: str = "user-interest"
    """Compacted topic the job writes UserInterest records to, keyed by user id."""
    dead_letter_topic: str = "watch-events-dead-letter"
    """Topic of DeadLetter records: input the job could not use, with the reason."""
    deletions_topic: str = "user-deletions"
    """Control topic of UserDeletion records, keyed by user id: each one erases a user's vector."""
    partitions: int = Field(default=2, ge=1)
    """Partition count used when this project creates the topics."""
    replication_factor: int = Field(default=1, ge=1)
    """Replication factor used when this project creates the topics."""
    consumer_group: str = "dreamumm-feature-job"
    """Consumer group id of the feature job's Kafka sources."""


class FixedThresholdSettings(_Section):
    """Long-view threshold that is the same for every video."""

    rule: Literal["fixed"] = "fixed"
    threshold_ms: float = Field(default=18_000.0, ge=0)
    """Watch time in ms at which the preference weight is 0.5."""
    no_duration_threshold_ms: float | None = Field(default=None, ge=0)
    """Threshold in ms for events whose duration is 0 or missing; defaults to threshold_ms."""


class DurationFractionThresholdSettings(_Section):
    """Long-view threshold as a fraction of the video's duration, clipped to [floor_ms, cap_ms]."""

    rule: Literal["duration_fraction"] = "duration_fraction"
    fraction: float = Field(default=1.0, gt=0)
    """Share of the duration that counts as a long view."""
    floor_ms: float = Field(default=5_000.0, ge=0)
    """Lowest threshold in ms, so that very short videos still need a real view."""
    cap_ms: float = Field(default=18_000.0, ge=0)
    """Highest threshold in ms, so that long videos do not need to be watched to the end."""
    no_duration_threshold_ms: float = Field(default=18_000.0, ge=0)
    """Threshold in ms for events whose duration is 0 (image posts) or missing."""

    @model_validator(mode="after")
    def _floor_below_cap(self) -> "DurationFractionThresholdSettings":
        if self.floor_ms > self.cap_ms:
            raise ValueError(f"floor_ms ({self.floor_ms}) must not exceed cap_ms ({self.cap_ms})")
        return self


class DurationBucketThresholdSettings(_Section):
    """Long-view threshold looked up in a table of duration buckets."""

    rule: Literal["duration_buckets"] = "duration_buckets"
    buckets: tuple[tuple[float, float], ...] = ((15_000.0, 7_000.0), (60_000.0, 15_000.0))
    """Pairs (upper bound of the duration in ms, threshold in ms), sorted by upper bound."""
    above_ms: float = Field(default=20_000.0, ge=0)
    """Threshold in ms for durations above the last bucket."""
    no_duration_threshold_ms: float = Field(default=18_000.0, ge=0)
    """Threshold in ms for events whose duration is 0 (image posts) or missing."""


ThresholdSettings = Annotated[
    Union[FixedThresholdSettings, DurationFractionThresholdSettings, DurationBucketThresholdSettings],
    Field(discriminator="rule"),
]


class PreferenceSettings(_Section):
    """Parameters of the preference weight a = 1 / (1 + exp(-alpha * (w - t)))."""

    alpha_per_s: float = Field(default=0.5, gt=0)
    """Sensitivity alpha in 1/second: how sharply the weight rises around the threshold."""
    threshold: ThresholdSettings = DurationFractionThresholdSettings()
    """Rule for the long-view threshold t."""
    max_watch_time_ms: float = Field(default=86_400_000.0, gt=0)
    """Watch times above this (default one day) are dead-lettered as implausible."""
    recency_half_life_ms: float | None = Field(default=None, gt=0)
    """Half-life in ms of an exponential decay on event time: an event's weight halves for every
    half-life between it and the user's newest event. None (the default) keeps the method's plain
    sum, in which every event counts fully however old it is."""


class EmbeddingSettings(_Section):
    """The video embeddings the job joins with."""

    dimension: int = Field(default=64, ge=2, le=4096)
    """Length of every embedding vector; a vector of another length is dead-lettered."""
    content_salt: str = "kuairand-content-v1"
    """Salt of the feature hashing in the content-feature embedding built from the video table."""


class EmissionSettings(_Section):
    """Emission policy: when the job writes a user's vector to the feature topic."""

    policy: Literal["every_event", "interval"] = "interval"
    """every_event: after each contributing event. interval: at most once per user per mini-batch."""
    interval_ms: int = Field(default=100, ge=1)
    """With policy interval, the job buffers events for this long (a Flink SQL mini-batch) and then
    updates each user of the batch once. A batch closes earlier when job.mini_batch_size events
    arrive, so under load users can be updated more often than once per interval."""


class JobSettings(_Section):
    """Runtime settings of the PyFlink job."""

    parallelism: int = Field(default=1, ge=1)
    """Parallelism of every operator."""
    bounded: bool = False
    """Stop at the end offsets seen at start (backfill, demo) instead of running forever."""
    events_startup_mode: Literal[
        "earliest-offset", "group-offsets", "latest-offset", "timestamp", "specific-offsets"] = "earliest-offset"
    """Start position in the events topic of a job without restored state. The default rebuilds every
    user's sum from the oldest retained event. timestamp starts at events_start_timestamp_ms,
    specific-offsets at events_start_offsets. group-offsets resumes after the consumer group's
    committed offsets, which is right only when the state comes from a checkpoint. A job restored
    from a checkpoint or savepoint ignores this and resumes at the offsets stored there."""
    events_start_timestamp_ms: int | None = Field(default=None, ge=0)
    """Kafka record timestamp (epoch ms) to start from, with events_startup_mode timestamp."""
    events_start_offsets: dict[int, int] | None = None
    """Partition to first offset to read, with events_startup_mode specific-offsets."""
    events_stop_offsets: dict[int, int] | None = None
    """With bounded, partition to end offset (exclusive) at which the events source stops, for
    example the end offsets of a recording's manifest. None stops at the offsets that are the
    newest when the job starts. It must list every partition of the topic; the job checks this at start."""
    event_time_disorder_ms: int = Field(default=200, ge=0)
    """Bounded disorder of event times: the watermark trails the largest event time read by this
    much. An event within it of the newest event waits for the watermark, so that it joins the
    embedding version valid at its time. Older events are joined at the watermark's next step."""
    allowed_lateness_ms: int = Field(default=86_400_000, ge=0)
    """An event whose Kafka record timestamp is more than this after its event time is dead-lettered
    as too_late. The rule looks at the record alone, so a replay that keeps the record timestamps
    gets the same verdicts as the live run. The default is one day."""
    max_event_time_ahead_ms: int = Field(default=3_600_000, ge=0)
    """An event whose time is more than this after its Kafka record timestamp is dead-lettered as
    invalid_field, because one event from a clock in the future would move the watermark ahead
    and make every later event late."""
    dedup_window_ms: int = Field(default=600_000, ge=0)
    """Duplicates of an event (same event id, or without ids the same video and event time, for
    one user) are dropped when they are at most this much older than the user's newest event.
    0 turns deduplication off."""
    delivery_guarantee: Literal["exactly-once", "at-least-once"] = "exactly-once"
    """exactly-once writes the feature and dead-letter topics in Kafka transactions committed at
    each checkpoint, so read_committed consumers see every record once but only after the
    checkpoint completes. at-least-once writes at once and may repeat records after a failure."""
    transaction_timeout_ms: int = Field(default=600_000, ge=1_000)
    """Kafka transaction timeout of the exactly-once sinks. It must exceed the time between two
    checkpoints plus a restart, and must not exceed the broker's transaction.max.timeout.ms
    (Kafka's default is 900000). The job checks the broker's value at start."""
    restore_from: Path | None = None
    """Checkpoint or savepoint folder to restore the job's state and offsets from."""
    idle_timeout_ms: int = Field(default=1_000, ge=1)
    """A source partition without records for this long is idle and stops holding back the watermark."""
    watermark_interval_ms: int = Field(default=50, ge=1)
    """Interval between watermark updates of the sources."""
    checkpoint_interval_ms: int = Field(default=10_000, ge=100)
    """Interval between Flink checkpoints. With exactly-once delivery it is also how long
    read_committed consumers wait for new features, at most."""
    state_backend: Literal["hashmap", "rocksdb"] = "hashmap"
    """Flink state backend."""
    mini_batch_size: int = Field(default=5_000, ge=1)
    """Maximum events buffered per mini-batch, with emission policy interval."""
    bundle_size: int = Field(default=100_000, ge=1)
    """Records per bundle sent to the Python worker (python.fn-execution.bundle.size)."""
    bundle_time_ms: int = Field(default=20, ge=1)
    """Maximum time in ms before a bundle is sent (python.fn-execution.bundle.time)."""
    arrow_batch_size: int = Field(default=10_000, ge=1)
    """Rows per Arrow batch handed to the vectorised Python functions."""
    rest_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the local Flink cluster's REST API on 127.0.0.1 (job status, checkpoint sizes,
    metrics). None leaves the port to Flink."""
    work_dir: Path = REPO_ROOT / "var" / "flink"
    """Folder for Flink's temporary files, checkpoints and the counter files of the job's metrics."""
    jobmanager_address: str | None = None
    """host:port of a standalone Flink cluster's REST endpoint; None runs the job on an embedded
    local cluster in this process."""

    @model_validator(mode="after")
    def _positions_complete(self) -> "JobSettings":
        if self.events_startup_mode == "timestamp" and self.events_start_timestamp_ms is None:
            raise ValueError("events_startup_mode timestamp needs events_start_timestamp_ms")
        if self.events_startup_mode == "specific-offsets" and not self.events_start_offsets:
            raise ValueError("events_startup_mode specific-offsets needs events_start_offsets")
        if self.events_stop_offsets is not None and not self.bounded:
            raise ValueError("events_stop_offsets needs bounded: true")
        for name in ("events_start_offsets", "events_stop_offsets"):
            offsets = getattr(self, name) or {}
            if any(partition < 0 or offset < 0 for partition, offset in offsets.items()):
                raise ValueError(f"{name} must map partitions >= 0 to offsets >= 0, got {offsets}")
        if self.delivery_guarantee == "exactly-once" and self.transaction_timeout_ms <= self.checkpoint_interval_ms:
            raise ValueError(f"transaction_timeout_ms ({self.transaction_timeout_ms}) must exceed "
                             f"checkpoint_interval_ms ({self.checkpoint_interval_ms}) with exactly-once delivery")
        return self

    @field_validator("jobmanager_address")
    @classmethod
    def _host_and_port(cls, address: str | None) -> str | None:
        if address is not None and split_host_port(address) is None:
            raise ValueError(f"expected host:port with a port from 1 to 65535, such as 127.0.0.1:8081, got {address!r}")
        return address

    @model_validator(mode="after")
    def _one_cluster(self) -> "JobSettings":
        if self.jobmanager_address is not None and self.rest_port is not None:
            raise ValueError(f"rest_port ({self.rest_port}) applies only to the embedded cluster, but "
                             f"jobmanager_address ({self.jobmanager_address}) selects a standalone one; unset one of them")
        return self


class BrokerSettings(_Section):
    """The local single-node broker that the demo and tests start."""

    port: int = Field(default=19092, ge=1, le=65535)
    """Client port of the local broker on 127.0.0.1."""
    controller_port: int = Field(default=19093, ge=1, le=65535)
    """KRaft controller port of the local broker on 127.0.0.1."""
    root_dir: Path = REPO_ROOT / "var" / "kafka" / "local"
    """Folder of the local broker's configuration, data and logs."""


class StoreSettings(_Section):
    """The serving store: a RocksDB folder that the materialiser fills from the feature and
    embeddings topics, and that rankers read."""

    path: Path = REPO_ROOT / "var" / "store" / "features"
    """RocksDB folder of the store. One materialiser process writes it, holding an exclusive lock on the
    file ``<path>.lock`` beside the folder, so a second writer fails at start, also after the folder
    was deleted."""
    secondary_dir: Path = REPO_ROOT / "var" / "store" / "readers"
    """Folder under which each reader process keeps the files of its RocksDB secondary instance,
    one subfolder per process."""
    max_batch_records: int = Field(default=5_000, ge=1)
    """Most topic records the materialiser applies in one write batch."""
    poll_timeout_ms: int = Field(default=200, ge=1)
    """How long the materialiser waits for records before it writes what it has."""
    heartbeat_interval_ms: int = Field(default=1_000, ge=1)
    """The materialiser writes its heartbeat at least this often while it is in contact with Kafka, even
    without new records, so readers can tell a quiet topic from a stopped materialiser or a Kafka outage."""
    catch_up_interval_ms: int = Field(default=200, ge=1)
    """How often a reader replays the writer's new changes into its secondary instance."""
    partition_refresh_interval_ms: int = Field(default=30_000, ge=1)
    """How often the materialiser reads the topics' metadata again, to find partitions added later and to
    compare each topic's id with the stored one, which changes when a topic is deleted and created again."""


class RankingSettings(_Section):
    """The online ranking: which user vector to use and how to combine scores."""

    embedding_model_version: str | None = None
    """Embedding model version of the videos the ranker scores. None takes the version of the content
    embedding that the embedding section describes, the one `dreamumm publish-embeddings` publishes."""

    max_vector_age_ms: int | None = Field(default=None, ge=0)
    """A stored vector whose newest contributing event is older than this at request time is not
    used: Candidate-DreamUMM replaces it. None accepts stored vectors of any age."""
    min_event_count: int = Field(default=1, ge=1)
    """A stored vector summed from fewer events than this is not used: Candidate-DreamUMM replaces it."""
    interest_weight: float = 1.0
    """Weight of the interest score <x_i, mu> in a candidate's final score."""
    score_weights: dict[str, float] = {}
    """Weights of the other scores a request may carry per candidate, by name. The final score is
    interest_weight * <x_i, mu> + the sum of weight * score over these names. A request must give
    every named score for every candidate and no other names."""
    long_view_model_path: Path = REPO_ROOT / "models" / "long_view.json"
    """File of the long-view model f_seq(history, candidate) that weighs Candidate-DreamUMM."""
    long_view_model_factory: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """Import path ``module:function`` of another f_seq: a function that takes the Settings and returns
    an object with the LongViewModel interface (ranking.long_view). None loads long_view_model_path."""
    history_limit: int = Field(default=50, ge=1)
    """Most recent history items f_seq looks at; older items of a request are ignored."""
    default_k: int = Field(default=10, ge=1)
    """Number of candidates returned when a request sets no k."""
    max_k: int = Field(default=1_000, ge=1)
    """Largest k a request may ask for."""
    max_candidates: int = Field(default=5_000, ge=1)
    """Most candidates one request may carry."""
    max_history: int = Field(default=1_000, ge=0)
    """Most history items one request may carry."""

    @model_validator(mode="after")
    def _default_k_allowed(self) -> "RankingSettings":
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self


class ServingSettings(_Section):
    """The HTTP service that rankers in other languages call."""

    host: str = "127.0.0.1"
    """Address the service listens on."""
    port: int = Field(default=8080, ge=1, le=65535)
    """Port the service listens on."""
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1_024)
    """Largest request body the service reads; a larger one gets 413 before it is parsed."""
    workers: int = Field(default=1, ge=1)
    """Worker processes of the HTTP server; each opens its own secondary instance of the store."""
    max_materialiser_silence_ms: int = Field(default=30_000, ge=1)
    """The service reports not ready when the materialiser's last heartbeat in the store is older
    than this, because its vectors may be stale."""


_HOUR_MS = 3_600_000.0
_DAY_MS = 24 * _HOUR_MS


class EvaluationSettings(_Section):
    """The offline evaluation of recommendation quality (`dreamumm evaluate`).

    The events are split by event time into three parts: history only, the validation window and
    the test window. The sweep picks its configuration on the validation window and reports it on
    the test window."""

    validation_start: float = Field(default=0.4, gt=0, lt=1)
    """Share of the events, by event time, before the validation window starts."""
    test_start: float = Field(default=0.7, gt=0, lt=1)
    """Share of the events, by event time, before the test window starts. The validation window ends here."""
    k: int = Field(default=5, ge=1)
    """Length of the recommended list for HitRate@K, NDCG@K and the diversity figures."""
    clusters: int = Field(default=20, ge=2)
    """Number of k-means clusters of the video embeddings that the diversity figures count."""
    kmeans_iterations: int = Field(default=100, ge=1)
    """Most Lloyd iterations of the k-means clustering."""
    bootstrap_resamples: int = Field(default=1_000, ge=100)
    """Resamples of users for every confidence interval."""
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    """Coverage of the bootstrap intervals."""
    seed: int = Field(default=20_220_422, ge=0)
    """Seed of the bootstrap resamples and of the k-means start. Ties and the random baseline need none,
    because every ranking figure is its exact expectation over the orders of tied candidates."""
    select_by: Literal["user_auc", "auc", "ndcg", "hit_rate"] = "user_auc"
    """Validation metric that picks the sweep's configuration. user_auc, the mean AUC within a user's
    events, measures how well a method orders one user's videos. It uses every labelled event of the
    window, while the ranking metrics use only the users with a long-viewed candidate."""
    sweep_alpha_per_s: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    """Values of the sensitivity alpha (1/second) the sweep tries."""
    sweep_thresholds: tuple[ThresholdSettings, ...] = (
        DurationFractionThresholdSettings(),
        DurationFractionThresholdSettings(fraction=0.5, floor_ms=3_000.0, cap_ms=18_000.0),
        FixedThresholdSettings(threshold_ms=10_000.0),
        DurationBucketThresholdSettings(),
    )
    """Threshold rules the sweep tries, in the format of preference.threshold."""
    sweep_half_life_ms: tuple[float | None, ...] = (None, 6 * _HOUR_MS, _DAY_MS, 3 * _DAY_MS, 7 * _DAY_MS)
    """Recency half-lives the sweep tries; None is the plain sum without decay."""
    report_path: Path = REPO_ROOT / "docs" / "evaluation.md"
    """Markdown report the command writes. Its plots go to a folder of the same name without .md."""

    @field_validator("sweep_alpha_per_s")
    @classmethod
    def _positive_alphas(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if not values or any(not value > 0 for value in values):
            raise ValueError(f"must be a non-empty list of numbers > 0, got {list(values)}")
        return values

    @field_validator("sweep_thresholds")
    @classmethod
    def _some_thresholds(cls, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not values:
            raise ValueError("must list at least one threshold rule")
        return values

    @field_validator("sweep_half_life_ms")
    @classmethod
    def _positive_half_lives(cls, values: tuple[float | None, ...]) -> tuple[float | None, ...]:
        if not values or any(value is not None and not value > 0 for value in values):
            raise ValueError(f"must be a non-empty list of half-lives > 0 ms or null, got {list(values)}")
        return values

    @model_validator(mode="after")
    def _windows_in_order(self) -> "EvaluationSettings":
        if not self.validation_start < self.test_start:
            raise ValueError(
                f"validation_start ({self.validation_start}) must be below test_start ({self.test_start})")
        return self


class Settings(_Section):
    """Complete configuration of the pipeline."""

    kafka: KafkaSettings = KafkaSettings()
    preference: PreferenceSettings = PreferenceSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    emission: EmissionSettings = EmissionSettings()
    job: JobSettings = JobSettings()
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    ranking: RankingSettings = RankingSettings()
    serving: ServingSettings = ServingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()

    @field_validator("kafka")
    @classmethod
    def _distinct_topics(cls, kafka: KafkaSettings) -> KafkaSettings:
        topics = [kafka.events_topic, kafka.embeddings_topic, kafka.features_topic, kafka.dead_letter_topic,
                  kafka.deletions_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"the five topics must be distinct, got {topics}")
        return kafka


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the YAML file at ``path``, apply ``DREAMUMM__`` overrides and validate the result."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("DREAMUMM_CONFIG") or DEFAULT_CONFIG_PATH
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ConfigError(f"configuration file {path} not found; pass --config or set DREAMUMM_CONFIG") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"configuration file {path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping of sections, got {type(raw).__name__}")
    _apply_overrides(raw, environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from error


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not keys:
            continue
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name} overrides {key!r}, which is not a section")
            node = child
        # YAML parsing turns "3" into 3 and "[1, 2]" into a list, like values in the file.
        node[keys[-1]] = yaml.safe_load(value) if value.strip() else value


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"invalid configuration (file {path}, with DREAMUMM__ environment overrides):"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        env_name = ENV_PREFIX + "__".join(str(part).upper() for part in item["loc"] if isinstance(part, str))
        lines.append(f"  {field} = {item.get('input')!r}: {item['msg']} (override with {env_name})")
    return "\n".join(lines)
