"""The shipped models (models/teacher.pt + models/ov_synthetic.pt, the `synthetic` preset) load and reach the PQ
that docs/results.md states for them on a fixed held-out drive: if a change to the model, the merge, the
teacher's text side or the scoring moves that number, this test says so."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# docs/results.md carries the line this test reads, e.g. "shipped-model check (world:5000, ...): PQ 0.1234"
CHECK = re.compile(r"shipped-model check \(world:(\d+), frames=(\d+), every=(\d+)\): PQ (\d\.\d+), PQ_novel (\d\.\d+)")
TOLERANCE = 0.01  # CPU kernels differ in summation order between machines; a real regression moves PQ further


@pytest.mark.slow
def test_the_shipped_models_reach_the_documented_pq(tmp_path):
    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.core.pipeline import PanopticPipeline
    from ov_panoptic_ros.data.factory import open_source
    from ov_panoptic_ros.eval.evaluate import evaluate

    found = CHECK.search((ROOT / "docs" / "results.md").read_text())
    assert found, "docs/results.md lost its shipped-model check line"
    seed, frames, every = (int(g) for g in found.groups()[:3])
    pq, pq_novel = (float(g) for g in found.groups()[3:])
    cfg = load_config("synthetic", {"device": "cpu"})
    assert cfg.checkpoint and cfg.checkpoint.endswith("models/ov_synthetic.pt")
    doc = evaluate(open_source(f"world:{seed}", frames=frames, every=every), PanopticPipeline(cfg), tmp_path,
                   figures=False, progress=False)
    m = doc["metrics"]
    assert doc["pipeline_mode"] == "ov"
    assert m["PQ"] == pytest.approx(pq, abs=TOLERANCE)
    assert m["groups"]["novel"]["PQ"] == pytest.approx(pq_novel, abs=TOLERANCE)
