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

    if args.bounded:
        settings = settings.model_copy(update={"job": settings.job.model_copy(update={"bounded": True})})
    runtime = steps.prepare_runtime()
    steps.require_topics(settings)
    run = run_feature_job(settings, runtime.jars)
    _out(f"job {run.job_id} finished in {run.seconds:.1f} s")
    return 0


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
    _out(f"demo took {time.monotonic() - started:.1f} s; the broker keeps running (stop it: make broker-stop)")
    return 0 if summary.balanced else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamumm", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML configuration file (default: config/dreamumm.yaml)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
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
    read = add("read-features", cmd_read_features, "print the newest vector per user from the feature topic")
    read.add_argument("--user", help="print only this user id")
    read.add_argument("--limit", type=int, default=10, help="maximum users to print (default: 10)")
    add("demo", cmd_demo, "run everything on the shipped KuaiRand sample and print a summary")
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
