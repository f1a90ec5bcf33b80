"""The markdown tables of docs/results.md from the reports of docs/results/run.sh (runs/results/<row>/)."""
import json
import sys
from pathlib import Path

ROWS = [("zeroshot", "point-CLIP zero-shot (no 3D training)"),
        ("pfc", "PFC-style baseline (LiDAR only + pooled CLIP), 128 queries"),
        ("no_distill", "3D fusion, no distillation, 128 queries"),
        ("full", "full (L_O + L_V), 128 queries: the shipped network"),
        ("pfc_q64", "PFC-style baseline, 64 queries"), ("no_distill_q64", "3D fusion, no distillation, 64 queries"),
        ("lo_q64", "+ L_O, 64 queries"), ("lv_q64", "+ L_V, 64 queries"), ("full_q64", "full, 64 queries"),
        ("full_320_q64", "full, 64 queries, teacher at its native 320 px"),
        ("full_exclusive_q64", "full, 64 queries + loss.stuff_masks_exclusive (not the paper's)"),
        ("no_distill_split_q64", "no distillation, 64 queries + instances split at inference (diagnostic)"),
        ("full_split_q64", "full, 64 queries + instances split at inference (diagnostic, not the paper's)"),
        ("full_ensemble_q64", "full, 64 queries + pooled-CLIP ensemble at inference (diagnostic, not the paper's)")]
VOCAB_RUNS = [("synonyms", "5 classes renamed to synonyms"), ("distractors", "10 distractor names added")]


def load(root: Path, name: str) -> dict | None:
    path = root / name / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def cells(doc: dict) -> list[str]:
    m, g = doc["metrics"], doc["metrics"]["groups"]
    values = [m["PQ"], g["base"]["PQ"], g["novel"]["PQ"], g["things_novel"]["PQ"], g["stuff_novel"]["PQ"], m["mIoU"]]
    return [f"{100 * v:.1f}" for v in values] + [f"{doc['latency_ms']['p50']:.0f}"]


def main(root: Path) -> None:
    print("| row | PQ | PQ_base | PQ_novel | PQ^Th_novel | PQ^St_novel | mIoU | latency p50 (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label in ROWS:
        doc = load(root, name)
        print(f"| {label} | " + (" | ".join(cells(doc)) if doc else "not run | " * 6 + "not run") + " |")
    print()
    print("| vocabulary | model | PQ | kept (of the row's PQ) | PQ_novel | kept |")
    print("|---|---|---|---|---|---|")
    for suffix, label in VOCAB_RUNS:
        for model, q64 in (("full", ""), ("zeroshot", ""), ("full", "_q64")):
            base, doc = load(root, model + q64), load(root, f"{model}_{suffix}{q64}")
            if not (base and doc):
                continue
            pq, pq0 = doc["metrics"]["PQ"], base["metrics"]["PQ"]
            nv, nv0 = doc["metrics"]["groups"]["novel"]["PQ"], base["metrics"]["groups"]["novel"]["PQ"]
            print(f"| {label} | {model + q64} | {100 * pq:.1f} | {100 * pq / pq0:.0f}% | {100 * nv:.1f} | "
                  f"{100 * nv / nv0 if nv0 else float('nan'):.0f}% |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/results"))
