"""`ov-panoptic replay` (offline or live through the node; scored where the bag has ground truth) and
`ov-panoptic play` (bag playback)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
import yaml

from ov_panoptic_ros.cli.app import EXIT_INTERRUPTED, EXIT_PARTIAL, app, fail, yaml_assignments

MIN_POINTS = 15  # nuScenes' (eval/metrics.py NUSCENES_MIN_POINTS), here as a literal: --help imports no numpy


class ExtrinsicsSource(str, Enum):
    """bridge/extrinsics.py SOURCES, spelled out here: --help imports no numpy."""

    auto = "auto"
    tf = "tf"
    file = "file"


def _topics(topics_file: Path | None, **overrides: str | None):
    """BagTopics from the --topics YAML, then the single-topic options (`overrides`: layout key -> topic), which
    win over the file."""
    from ov_panoptic_ros.data.bag.errors import BagError
    from ov_panoptic_ros.data.bag.layout import BagTopics

    data = {}
    if topics_file is not None:
        try:
            data = yaml.safe_load(topics_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            fail(f"topics file {topics_file}: {e}")
        if not isinstance(data, dict):
            fail(f"topics file {topics_file}: expected a mapping of layout key -> topic name")
    data.update({key: topic for key, topic in overrides.items() if topic})
    try:
        return BagTopics.from_mapping(data)
    except BagError as e:
        fail(str(e))


def _check_no_ground_truth(live: bool, mapping: Path | None, min_points: int) -> None:
    """Options that only mean something when scoring are refused with --no-ground-truth, not ignored."""
    if live:
        fail("--no-ground-truth is offline only: --live scores the node's output against the bag's ground truth")
    if mapping is not None:
        fail("--mapping maps predictions to ground-truth classes; drop it or --no-ground-truth")
    if min_points != MIN_POINTS:
        fail("--min-points sets how segments are scored against ground truth; drop it or --no-ground-truth")


def _check_live_cameras(extrinsics: ExtrinsicsSource, fixed_frame: str, rectified: list[str]) -> None:
    """Camera placement options are the offline replay's; the live node takes its own parameters for them."""
    if extrinsics != ExtrinsicsSource.auto or fixed_frame or rectified:
        fail("--extrinsics, --fixed-frame and --rectified are offline options; with --live set the node's: "
             "--node-param extrinsics_source=tf --node-param tf.fixed_frame=odom --node-param CAMERA.rectified=true")


def _print_metrics(doc: dict) -> None:
    m = doc.get("metrics")
    if not doc.get("ground_truth", True):
        typer.echo("no ground truth: predictions and latency only, no metrics")
    elif m:
        typer.echo(f"PQ {m['PQ']:.4f}  PQ† {m['PQ_dagger']:.4f}  SQ {m['SQ']:.4f}  RQ {m['RQ']:.4f}  "
                   f"mIoU {m['mIoU']:.4f}")
        for split in ("base", "novel"):
            g = m["groups"].get(split, {})
            if g.get("PQ") is not None:
                typer.echo(f"  {split:5s}: PQ {g['PQ']:.4f}  mIoU {g['mIoU']:.4f}")
    else:
        typer.echo("no frame could be scored")


def _print_summary(doc: dict, out: Path) -> None:
    scored = doc.get("ground_truth", True)
    frames = doc["frames"]
    _print_metrics(doc)
    lat = doc["latency_ms"]
    typer.echo(f"frames: {frames['processed']} {'scored' if scored else 'processed'}, {frames['skipped']} skipped "
               f"{frames['skipped_by_reason'] or ''}")
    if lat["n"]:
        typer.echo(f"latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}")
    live = doc.get("live")
    if live:
        e2e = live["end_to_end_latency_ms"]
        typer.echo(f"live: {live['clouds_sent']} clouds sent, {live['clouds_received']} labeled clouds received, "
                   f"{live['dropped']} dropped" + (f"; end-to-end p50 {e2e['p50']:.1f} ms" if e2e["n"] else ""))
    for reason in doc.get("partial_reasons", []):
        typer.echo(f"PARTIAL: {reason}", err=True)
    shards = doc.get("shards", {})
    if shards.get("count", 1) > 1:
        typer.echo(f"shards: {len(shards['merged'])} of {shards['count']} merged ({shards['launcher']}, by "
                   f"{shards['split']})")
    tables = f", {out}/per_class.csv" if scored else ""
    typer.echo(f"report: {out}/metrics.json{tables}, {len(doc.get('figures', []))} figures")


def _exit_code(doc: dict) -> int:
    """130 interrupted; 1 partial, or nothing to show (no frame scored; without ground truth, none run)."""
    reasons = doc.get("partial_reasons", [])
    if any(r.startswith("interrupted") for r in reasons):
        return EXIT_INTERRUPTED
    done = doc.get("metrics") if doc.get("ground_truth", True) else doc["frames"]["processed"]
    if reasons or not done:
        return EXIT_PARTIAL
    return 0


@app.command()
def replay(
    bags: list[Path] = typer.Argument(
        None, help="rosbag2 directories, .mcap or .db3 files in the evaluation layout (several: one report)."),
    source: str | None = typer.Option(
        None, "--source", help="A frame source instead of bags: world:FIRST:STOP, synthetic:SEED, nuscenes:ROOT, "
        "semantickitti:ROOT (sharded by frame)."),
    source_option: list[str] = typer.Option(
        [], "--source-option", help="--source option KEY=VALUE (repeatable), e.g. frames=10, every=5, split=val."),
    workers: int = typer.Option(1, "--workers", min=1, help="Shards run as this many local processes (this one and "
                                "N-1 spawned), merged into one report; under torchrun each rank is one shard."),
    shard_timeout: float = typer.Option(
        24 * 3600.0, "--shard-timeout", min=1.0, help="torchrun rank 0: seconds to wait for the other ranks' state."),
    config: str = typer.Option("tiny", "--config", "-c", help="Pipeline preset name or YAML file."),
    out: Path = typer.Option(Path("runs/replay"), "--out", "-o", help="Report directory."),
    mapping: Path | None = typer.Option(None, help="YAML: predicted vocabulary name -> ground-truth class."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after this many LiDAR frames."),
    every: int = typer.Option(1, "--every", min=1, help="Use every N-th LiDAR frame."),
    output_bag: Path | None = typer.Option(None, "--output-bag", help="Also write predictions to this bag."),
    calibration: Path | None = typer.Option(None, help="Calibration YAML overriding the one in the bag."),
    topics_file: Path | None = typer.Option(None, "--topics", help="YAML of layout topic names (docs/bag_layout.md)."),
    lidar_topic: str | None = typer.Option(None, "--lidar-topic", help="LiDAR PointCloud2 topic."),
    image_topic: str | None = typer.Option(
        None, "--image-topic", help="Camera image topic pattern, {camera} for the camera name, e.g. "
        "/sensing/camera/{camera}/image_rect_color; without a calibration the cameras are the names it finds."),
    info_topic: str | None = typer.Option(
        None, "--info-topic", help="CameraInfo topic pattern, e.g. /sensing/camera/{camera}/camera_info."),
    extrinsics: ExtrinsicsSource = typer.Option(
        ExtrinsicsSource.auto, "--extrinsics", help="Camera extrinsics from the bag's /tf_static and /tf (tf), the "
        "calibration (file), or TF for the cameras whose frame TF knows and the calibration for the rest (auto)."),
    fixed_frame: str = typer.Option(
        "", "--fixed-frame", help="A frame still while driving (odom, map): TF carries each cloud to its images' "
        "stamps through it (ego-motion)."),
    rectified: list[str] = typer.Option(
        [], "--rectified", help="A camera whose images are rectified though its topic is not image_rect* "
        "(repeatable): projected with CameraInfo P and R, no distortion."),
    min_points: int = typer.Option(MIN_POINTS, "--min-points", min=0, help="Smallest segment counted as FP/FN."),
    figure_frames: int = typer.Option(3, "--figure-frames", min=0, help="Frames drawn as BEV/camera figures."),
    live: bool = typer.Option(False, "--live", help="Play the bag over DDS into the real node and score its output."),
    rate: float = typer.Option(1.0, "--rate", min=0.001, help="Live: playback speed relative to the recording."),
    node_param: list[str] = typer.Option([], "--node-param", help="Live: extra node parameter NAME=VALUE."),
    startup_timeout: float = typer.Option(180.0, "--startup-timeout", help="Live: seconds to wait for the node."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    no_ground_truth: bool = typer.Option(
        False, "--no-ground-truth", help="Predictions, latency and figures only, no metrics (a bag recorded on a "
        "vehicle); automatic when the bag has no ground-truth topic."),
) -> None:
    """Replay bags (offline, or one live through the node) or a frame source and write the evaluation report."""
    if bool(bags) == bool(source):
        fail("name the bags to replay, or --source SPEC; not both" if bags else "name one or more bags, or --source")
    if no_ground_truth:
        _check_no_ground_truth(live, mapping, min_points)
    if live:
        _check_live_cameras(extrinsics, fixed_frame, rectified)
        _check_single(bags, source, workers, "--live plays one bag into the node in real time")
    if source and (topics_file or lidar_topic or image_topic or info_topic or calibration or fixed_frame or rectified
                   or extrinsics != ExtrinsicsSource.auto or every != 1 or max_frames is not None):
        fail("bag options (--topics, --*-topic, --calibration, --extrinsics, --fixed-frame, --rectified, --every, "
             "--max-frames) do not apply to --source; give the source's own: --source-option every=N")
    topics = _topics(topics_file, lidar=lidar_topic, image=image_topic, camera_info=info_topic)
    if output_bag is not None and output_bag.exists():
        fail(f"output bag {output_bag} exists already; not overwriting it")
    if live and every != 1:
        fail("--every does not apply to --live (the node sees every frame; use --rate to slow the bag down)")
    try:
        if live:
            from ov_panoptic_ros.eval.live import replay_live

            doc = replay_live(bags[0], config, out, rate=rate, mapping=mapping, max_frames=max_frames,
                              topics=topics, calibration_file=calibration, min_points=min_points,
                              figure_frames=figure_frames, node_params=yaml_assignments(node_param, "--node-param expects NAME=VALUE"),
                              startup_timeout_s=startup_timeout, progress=progress, output_bag=output_bag)
        else:
            from ov_panoptic_ros.eval.replay import ReplayJob, replay as run_replay
            from ov_panoptic_ros.eval.scoring import user_table
            from ov_panoptic_ros.eval.shards import plan_shards

            job = ReplayJob(
                bags=[str(b) for b in bags or []], source=source, config=config, mapping=user_table(mapping),
                source_options=yaml_assignments(source_option, "--source-option expects KEY=VALUE (a YAML value)"),
                every=every, max_frames=max_frames, topics=topics, calibration_file=calibration,
                extrinsics=extrinsics.value, fixed_frame=fixed_frame, rectified=tuple(rectified),
                min_points=min_points, ground_truth=False if no_ground_truth else None, figure_frames=figure_frames,
                output_bag=str(output_bag) if output_bag else None)
            plan = plan_shards(_useful_workers(workers, bags), job.fingerprint())
            doc = run_replay(job, out, plan, progress=progress, shard_timeout_s=shard_timeout)
    except KeyboardInterrupt:  # before the first frame (loading the model): there is nothing to report
        typer.echo("interrupted before any frame was processed; no report written", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if doc.get("report", True) is False:  # another torchrun rank: rank 0 writes the report
        typer.echo(f"shard {doc['rank']} of {doc['world']}: {doc['processed']} frames; rank 0 writes the report "
                   f"into {out}")
        interrupted = any(r.startswith("interrupted") for r in doc["partial_reasons"])
        raise typer.Exit(EXIT_INTERRUPTED if interrupted else 0)
    _print_summary(doc, out)
    raise typer.Exit(_exit_code(doc))


def _check_single(bags: list[Path] | None, source: str | None, workers: int, why: str) -> None:
    if source or len(bags or []) > 1 or workers > 1:
        fail(f"{why}: name exactly one bag, without --source or --workers")


def _useful_workers(workers: int, bags: list[Path] | None) -> int:
    """Bags go whole to a shard: more workers than bags would only build pipelines that get nothing to do."""
    return min(workers, len(bags)) if bags else workers


@app.command()
def play(
    bag: Path = typer.Argument(..., help="rosbag2 directory, .mcap or .db3 file."),
    rate: float = typer.Option(1.0, "--rate", min=0.001, help="Playback speed relative to the recording."),
    loop: bool = typer.Option(False, "--loop", help="Start over at the end (stamps jump back)."),
    clock: bool = typer.Option(False, "--clock", help="Publish rosgraph_msgs/Clock on /clock (bag time)."),
    topic: list[str] = typer.Option([], "--topic", help="Play only these topics (repeatable)."),
    wait_for_subscribers: float = typer.Option(
        0.0, "--wait-for-subscribers", help="Seconds to wait until every played topic has a subscriber."),
) -> None:
    """Publish a bag's messages over DDS at the recorded rate (a `ros2 bag play` without ROS installed)."""
    from ov_panoptic_ros.ros.player import play_bag

    stats = play_bag(bag, rate=rate, loop=loop, clock=clock, topics=topic or None,
                     wait_for_subscribers_s=wait_for_subscribers, progress=True)
    typer.echo(f"published {stats.published} messages in {stats.wall_s:.1f} s ({stats.loops} pass(es))"
               + (f"; skipped topics: {stats.skipped_topics}" if stats.skipped_topics else ""))
    if stats.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
