"""The `dreamumm` command: one subcommand per pipeline step, and `demo` to run them all."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from confluent_kafka import KafkaException

from dreamumm import steps
from dreamumm.config import ConfigError, Settings, load_settings
from infra import BrokerError, JarDownloadError, MissingToolError, TopicError

logger = logging.getLogger("dreamumm")


def _sample_paths() -> tuple[Path, Path]:
    from embeddings.sample_data import SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH

    return SAMPLE_EVENTS_PATH, VIDEO_FEATURES_PATH


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_setup(settings: Settings, args: argparse.Namespace) -> int:
    runtime = steps.prepare_runtime()
    state = "reused the cached" if runtime.reused_cache else "fetched the"
    _out(f"{state} Kafka broker jars and Flink Kafka connector ({runtime.jars.flink_kafka_connector})")
    return 0


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    broker = steps.local_broker(settings, steps.prepare_runtime())
    if args.action == "start":
        started = broker.start()
        _out(f"{'started' if started else 'reused the running'} broker at {broker.bootstrap_servers}")
    elif args.action == "stop":
        stopped = broker.stop()
        _out("stopped the broker" if stopped else "no broker was running")
    else:
        healthy = broker.is_healthy()
        _out(f"broker at {broker.bootstrap_servers}: {'healthy' if healthy else 'not reachable'}")
        return 0 if healthy else 1
    return 0


def cmd_create_topics(settings: Settings, args: argparse.Namespace) -> int:
    created = steps.create_topics(settings, recreate=args.recreate)
    _out(f"created topics: {', '.join(created) if created else 'none (all exist)'}")
    return 0


def cmd_publish_embeddings(settings: Settings, args: argparse.Namespace) -> int:
    videos = args.videos or _sample_paths()[1]
    count, version = steps.publish_embeddings(settings, videos)
    _out(f"published {count} video embeddings ({version}) to {settings.kafka.embeddings_topic}")
    return 0


def cmd_publish_events(settings: Settings, args: argparse.Namespace) -> int:
    events = args.events or _sample_paths()[0]
    count = steps.publish_events(settings, events)
    _out(f"published {count} watch events from {events} to {settings.kafka.events_topic}")
    return 0


def cmd_run_job(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.feature_job import run_feature_job

    try:
        settings = _with_job_options(settings, args)
    except (ValueError, OSError) as error:
        _out(f"run-job: {error}")
        return 2
    runtime = steps.prepare_runtime()
    run = run_feature_job(settings, runtime.jars)
    _out(f"job {run.job_id} finished in {run.seconds:.1f} s; {run.counters.describe()}")
    return 0


def _with_job_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """Apply run-job's command-line options to the job settings and validate the result."""
    from jobs.checkpoints import checkpoints_root, latest_checkpoint

    job: dict[str, object] = {}
    if args.bounded:
        job["bounded"] = True
    if args.restore == "latest":
        found = latest_checkpoint(checkpoints_root(settings))
        if found is None:
            raise ValueError(f"--restore latest: no completed checkpoint under {checkpoints_root(settings)}")
        job["restore_from"] = found
    elif args.restore:
        job["restore_from"] = Path(args.restore)
    if args.from_timestamp is not None:
        job.update(events_startup_mode="timestamp", events_start_timestamp_ms=args.from_timestamp)
    if args.range is not None:
        topic, start, stop = _offset_range(args.range)
        if topic != settings.kafka.events_topic:
            raise ValueError(f"--range {args.range} covers topic {topic}, but the job reads "
                             f"{settings.kafka.events_topic} (kafka.events_topic)")
        job.update(bounded=True, events_startup_mode="specific-offsets", events_start_offsets=start,
                   events_stop_offsets=stop)
    data = settings.model_dump()
    data["job"].update(job)
    return Settings.model_validate(data)


def _offset_range(path: Path) -> tuple[str, dict[int, int], dict[int, int]]:
    """Return (topic, start offsets, end offsets) of a recording's manifest.json or a replay-manifest.json."""
    from recording import REPLAY_MANIFEST_FILE, Manifest, ReplayResult

    if path.name == REPLAY_MANIFEST_FILE or (path.is_dir() and (path / REPLAY_MANIFEST_FILE).exists()):
        replay = ReplayResult.load(path)
        return replay.target_topic, replay.start_offsets(), replay.end_offsets()
    manifest = Manifest.load(path)
    return manifest.topic, manifest.start_offsets(), manifest.end_offsets()


def cmd_read_features(settings: Settings, args: argparse.Namespace) -> int:
    from dreamumm.summary import latest_user_vectors

    users, count, _tombstones = latest_user_vectors(settings)
    # Sorting by length first puts numeric ids in numeric order (2 before 10).
    selected = [users[args.user]] if args.user in users else sorted(
        users.values(), key=lambda user: (len(user.user_id), user.user_id))
    if args.user and args.user not in users:
        _out(f"user {args.user} not found among {len(users)} users in {settings.kafka.features_topic}")
        return 1
    _out(f"{len(users)} users, {count} records in {settings.kafka.features_topic}")
    for user in selected[: args.limit]:
        head = ", ".join(f"{value:+.3f}" for value in user.vector[:6])
        _out(f"user {user.user_id}: events={user.event_count} weight={user.total_weight:.3f} "
             f"last_event_ms={user.last_event_time_ms} model={user.model_version} vector=[{head}, ...]")
    return 0


def cmd_record(settings: Settings, args: argparse.Namespace) -> int:
    from recording import ManifestError, RecordingError, record_topic

    try:
        manifest = record_topic(settings.kafka.bootstrap_servers, args.topic, args.out, args.start, args.stop,
                                show_progress=True)
    except (RecordingError, ManifestError) as error:
        logger.error("record failed: %s", error)
        return 1
    _out(f"recorded {manifest.record_count} records of {manifest.topic} "
         f"({manifest.partition_count} partitions) into {args.out}")
    for count in manifest.value_schemas:
        schema = f"{count.schema_file} ({count.schema_name})" if count.schema_file else "a schema not in schemas/"
        _out(f"  {count.record_count} values with fingerprint {count.fingerprint}: {schema}")
    if manifest.null_value_count or manifest.unmarked_value_count:
        _out(f"  {manifest.null_value_count} null values, {manifest.unmarked_value_count} values without "
             "the Avro single-object marker")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from recording import REPLAY_MANIFEST_FILE, ManifestError, ReplayError, replay_recording

    try:
        result = replay_recording(
            settings.kafka.bootstrap_servers, args.in_dir, args.topic, args.speed, args.partitioning,
            allow_log_append_time=args.allow_log_append_time, manifest_out=args.manifest_out,
            replication_factor=settings.kafka.replication_factor, show_progress=True,
        )
    except (ManifestError, ReplayError) as error:
        logger.error("replay failed: %s", error)
        return 1
    _out(f"replayed {result.record_count} records of {result.source_topic} into {result.target_topic} "
         f"in {result.seconds:.1f} s")
    ranges = ", ".join(f"{p.partition}: {p.start_offset} to {p.end_offset}" for p in result.partitions)
    _out(f"offsets written per partition (start inclusive, end exclusive): {ranges}")
    _out(f"replay manifest: {args.manifest_out or args.in_dir / REPLAY_MANIFEST_FILE}")
    return 0


def _argument_parser_of(parse: Callable[[str], object]) -> Callable[[str], object]:
    """Wrap a parse function so that argparse reports its ValueError message as an invalid argument."""

    def parse_argument(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    return parse_argument


def _parse_start(text: str) -> object:
    from recording import parse_start

    return parse_start(text)


def _parse_stop(text: str) -> object:
    from recording import parse_stop

    return parse_stop(text)


def _parse_speed(text: str) -> object:
    from recording import parse_speed

    return parse_speed(text)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from embeddings import ContentEmbeddingConfig, load_video_table, tag_vectors
    from dreamumm.summary import format_summary, summarise_run
    from jobs.feature_job import run_feature_job

    started = time.monotonic()
    events_path, videos_path = _sample_paths()
    runtime = steps.prepare_runtime()
    _out(("reused the cached jars in " if runtime.reused_cache else "fetched jars with Maven into ")
         + str(runtime.jars.flink_kafka_connector.parent.parent))
    broker = steps.local_broker(settings, runtime)
    _out(f"{'started a' if broker.start() else 'reused the running'} Kafka broker at {broker.bootstrap_servers}")
    steps.create_topics(settings, recreate=True)
    _out("created empty topics: " + ", ".join(spec.name for spec in steps.topic_specs(settings)))
    count, version = steps.publish_embeddings(settings, videos_path)
    _out(f"published {count} content-feature video embeddings ({version})")
    _out(f"published {steps.publish_events(settings, events_path)} real KuaiRand watch events from {events_path.name}")

    bounded = settings.model_copy(update={"job": settings.job.model_copy(update={"bounded": True})})
    _out("running the PyFlink feature job until the sample is consumed ...")
    run = run_feature_job(bounded, runtime.jars)
    _out(f"job finished in {run.seconds:.1f} s")

    config = ContentEmbeddingConfig(dimension=settings.embedding.dimension, salt=settings.embedding.content_salt)
    tags = sorted({tag for value in load_video_table(videos_path)["tag"].dropna() for tag in str(value).split(",")})
    summary = summarise_run(settings, tag_vectors(config, tags))
    _out(format_summary(summary))
    if summary.users:
        from dreamumm.ranking_demo import rank_examples
        from embeddings import load_events

        from store import StoreError

        busiest = max(summary.users, key=lambda user_id: summary.users[user_id].event_count)
        try:
            lines = rank_examples(settings, load_events(events_path), busiest)
        except StoreError as error:
            logger.error("demo failed: %s", error)
            return 1
        for line in lines:
            _out(line)
    _out(f"demo took {time.monotonic() - started:.1f} s; the broker keeps running (stop it: make broker-stop)")
    return 0 if summary.balanced else 1


def cmd_materialise(settings: Settings, args: argparse.Namespace) -> int:
    from store.command import materialise

    return materialise(settings, until_caught_up=args.until_caught_up, rebuild=args.rebuild)


def cmd_train_long_view(settings: Settings, args: argparse.Namespace) -> int:
    from ranking.long_view.command import train_long_view

    events_path, videos_path = _sample_paths()
    out_path = args.out or settings.ranking.long_view_model_path
    try:
        report = train_long_view(settings, args.events or events_path, args.videos or videos_path, out_path,
                                 split_fraction=args.split_fraction, l2=args.l2)
    except (FileNotFoundError, ValueError) as error:
        logger.error("train-long-view failed: %s", error)
        return 1
    _out(report.to_text())
    _out(f"wrote the model to {out_path}")
    return 0


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from evaluation import evaluate

    events_path, videos_path = _sample_paths()
    try:
        outcome, summary = evaluate(settings, args.events or events_path, args.videos or videos_path, args.report)
    except (OSError, ValueError) as error:
        logger.error("evaluate failed: %s", error)
        return 1
    _out(summary)
    report_path = args.report or settings.evaluation.report_path
    _out(f"wrote the report to {report_path} and its plots to {Path(report_path).with_suffix('')}/")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from ranking.long_view import LongViewModelError
    from service import serve

    try:
        return serve(settings, args.config)
    except LongViewModelError as error:
        logger.error("serve failed: %s", error)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamumm", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML configuration file (default: config/dreamumm.yaml)")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="logging level (default: INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[Settings, argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("setup", cmd_setup, "fetch the Kafka broker and Flink connector jars with Maven")
    broker = add("broker", cmd_broker, "start, stop or check the local single-node KRaft broker")
    broker.add_argument("action", choices=["start", "stop", "status"])
    topics = add("create-topics", cmd_create_topics, "create the pipeline's topics")
    topics.add_argument("--recreate", action="store_true", help="delete the topics first, so they start empty")
    embeddings = add("publish-embeddings", cmd_publish_embeddings,
                     "build content-feature video embeddings and publish them to the embeddings topic")
    embeddings.add_argument("--videos", type=Path, help="KuaiRand-Pure video feature CSV (default: shipped sample)")
    events = add("publish-events", cmd_publish_events, "publish watch events from a KuaiRand-format CSV")
    events.add_argument("--events", type=Path, help="event CSV (default: shipped KuaiRand-1K extract)")
    job = add("run-job", cmd_run_job, "run the feature job on a local embedded Flink cluster")
    job.add_argument("--bounded", action="store_true", help="stop at the end offsets seen at start")
    job.add_argument("--restore", metavar="PATH|latest",
                     help="restore state and offsets from a checkpoint or savepoint folder, or from the newest "
                          "completed checkpoint under job.work_dir with 'latest'")
    job.add_argument("--from-timestamp", type=int, metavar="MS",
                     help="start the events topic at this record timestamp (epoch ms) instead of the earliest offset")
    job.add_argument("--range", type=Path, metavar="MANIFEST",
                     help="read exactly the offsets of a recording's manifest.json or a replay-manifest.json, "
                          "then stop (implies --bounded)")
    read = add("read-features", cmd_read_features, "print the newest vector per user from the feature topic")
    read.add_argument("--user", help="print only this user id")
    read.add_argument("--limit", type=int, default=10, help="maximum users to print (default: 10)")
    add("demo", cmd_demo, "run everything on the shipped KuaiRand sample and print a summary")
    record = add("record", cmd_record, "record a topic's committed records into Avro files and a manifest.json")
    record.add_argument("--topic", required=True, help="topic to record")
    record.add_argument("--out", type=Path, required=True, help="new or empty folder to write the recording to")
    record.add_argument("--from", dest="start", type=_argument_parser_of(_parse_start), default="earliest",
                        help="first offsets: earliest (default), timestamp:MS (first record at or after MS, in ms "
                             "since the Unix epoch), or offsets:FILE (a JSON object {\"partition\": offset}, "
                             "or an earlier recording's manifest.json to continue it)")
    record.add_argument("--to", dest="stop", type=_argument_parser_of(_parse_stop), default="end",
                        help="end offsets (exclusive): end (default, the last stable offsets at start) or "
                             "timestamp:MS (stop before the first record at or after MS)")
    replay = add("replay", cmd_replay, "produce a recording back into a topic, keeping keys, values, headers, "
                                       "timestamps and per-partition order")
    replay.add_argument("--in", dest="in_dir", type=Path, required=True, help="folder of the recording")
    replay.add_argument("--topic", help="target topic, created if missing (default: the recorded topic)")
    replay.add_argument("--speed", type=_argument_parser_of(_parse_speed), default="max",
                        help="max (default) to send as fast as possible, or K > 0 to pace by record "
                             "timestamps at K times real time")
    replay.add_argument("--partitioning", choices=["same", "key"], default="same",
                        help="same (default) writes each record to its recorded partition number, and key "
                             "lets the murmur2 partitioner choose by key")
    replay.add_argument("--allow-log-append-time", action="store_true",
                        help="replay into a LogAppendTime topic, whose broker replaces the recorded timestamps")
    replay.add_argument("--manifest-out", type=Path,
                        help="where to write the replay manifest (default: replay-manifest.json in the recording)")
    materialise = add("materialise", cmd_materialise,
                      "copy the feature and embeddings topics into the serving store until stopped")
    materialise.add_argument("--until-caught-up", action="store_true",
                             help="stop once every partition of both topics is read to its end")
    materialise.add_argument("--rebuild", action="store_true",
                             help="delete the store at store.path first and fill a new one from the beginning of both "
                                  "topics, for example after a topic was recreated; fails while another materialiser "
                                  "runs on store.path")
    train = add("train-long-view", cmd_train_long_view,
                "train the long-view model f_seq on an event log, print its AUC on a time split, save it")
    train.add_argument("--events", type=Path, help="event CSV (default: shipped KuaiRand-1K extract)")
    train.add_argument("--videos", type=Path, help="KuaiRand-Pure video feature CSV (default: shipped sample)")
    train.add_argument("--out", type=Path, help="model file to write, replacing it (default: ranking.long_view_model_path, "
                                                "models/long_view.json in this clone)")
    train.add_argument("--split-fraction", type=float, default=0.75,
                       help="share of the events, by event time, that trains the evaluated model (default: 0.75)")
    train.add_argument("--l2", type=float, default=1.0,
                       help="L2 penalty on the standardised weights, added to the summed log loss (default: 1.0)")
    evaluate = add("evaluate", cmd_evaluate,
                   "measure recommendation quality of DreamUMM and baselines on an event log; write a report")
    evaluate.add_argument("--events", type=Path,
                          help="event CSV with the columns user_id, video_id, time_ms, play_time_ms, duration_ms, "
                               "long_view and optionally is_rand, like the shipped KuaiRand-1K extract (the default)")
    evaluate.add_argument("--videos", type=Path, help="KuaiRand-Pure video feature CSV (default: shipped sample)")
    evaluate.add_argument("--report", type=Path,
                          help="Markdown report to write; plots go to a folder of the same name without .md "
                               "(default: evaluation.report_path, docs/evaluation.md in this clone)")
    add("serve", cmd_serve, "serve ranking and vector look-ups over HTTP (OpenAPI document at /openapi.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # PyFlink imports Apache Beam, which logs at INFO about optional Google Cloud modules.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        logger.error("%s", error)
        return 2
    try:
        return args.handler(settings, args)
    except (BrokerError, JarDownloadError, MissingToolError, TopicError, KafkaException, TimeoutError) as error:
        # These errors carry a message that explains what to do, which a traceback would only bury.
        logger.error("%s failed: %s", args.command, error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
