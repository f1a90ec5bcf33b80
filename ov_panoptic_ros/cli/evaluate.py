"""`ov-panoptic evaluate`: any frame source (a world drive, a dataset, a bag) through a pipeline, scored; one report."""
from __future__ import annotations

from pathlib import Path

import typer
import yaml

from ov_panoptic_ros.cli.app import app, fail, yaml_assignments
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS


def vocabulary_from_file(path: Path, templates: tuple[str, ...]):
    """A YAML with `classes` (and `stuff`, optionally `templates`): the vocabulary to label with."""
    from ov_panoptic_ros.core.frame import Vocabulary

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        fail(f"vocabulary file {path}: expected a mapping with a `classes` list (and `stuff`, `templates`)")
    return Vocabulary(tuple(data["classes"]), tuple(data.get("stuff", ())), tuple(data.get("templates", templates)))


@app.command()
def evaluate(
    source: str = typer.Argument(..., help="world:SEED, world:FIRST:STOP, synthetic:SEED, nuscenes:DATAROOT,"
                                           " semantickitti:ROOT, or a bag path."),
    config: str = typer.Option("synthetic", "--config", "-c", help="Pipeline preset or YAML file."),
    out: Path = typer.Option(Path("runs/evaluate"), "--out", "-o", help="Report directory."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A trained 3D network (else the config's)."),
    vocabulary: Path | None = typer.Option(None, "--vocabulary", help="YAML: classes, stuff (and templates)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="YAML: predicted name -> ground-truth class."),
    option: list[str] = typer.Option([], "--option", help="Source option KEY=VALUE, e.g. frames=10, every=20."),
    min_points: int = typer.Option(NUSCENES_MIN_POINTS, "--min-points", min=1,
                                   help="Smallest unmatched segment counted as FP/FN: 15 as nuScenes' evaluator (and"
                                        " replay), 50 as SemanticKITTI's CLI."),
    figures: bool = typer.Option(False, "--figures/--no-figures", help="Draw the report's figures."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Score a source's frames through the pipeline (as offline replay does) and write the report."""
    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.core.pipeline import PanopticPipeline
    from ov_panoptic_ros.data.factory import open_source
    from ov_panoptic_ros.eval.evaluate import evaluate as run_evaluation

    overrides = {"checkpoint": str(checkpoint)} if checkpoint else None
    cfg = load_config(config, overrides)
    vocab = vocabulary_from_file(vocabulary, cfg.vocabulary.templates) if vocabulary else None
    options = yaml_assignments(option, "--option expects KEY=VALUE (a YAML value)")
    frames = open_source(source, **options)
    pipeline = PanopticPipeline(cfg, vocab)
    doc = run_evaluation(frames, pipeline, out, mapping=mapping, min_points=min_points, figures=figures,
                         progress=progress,
                         extra={"source": source, "source_options": options,
                                "checkpoint": cfg.checkpoint, "min_points": min_points})
    m, lat = doc["metrics"], doc["latency_ms"]
    if m:
        groups = m["groups"]
        typer.echo(f"PQ {m['PQ']:.4f}  PQ_base {groups['base']['PQ']:.4f}  PQ_novel {groups['novel']['PQ']:.4f}  "
                   f"mIoU {m['mIoU']:.4f}  latency p50 {lat['p50']:.1f} ms")
    typer.echo(f"report: {out}/metrics.json")
