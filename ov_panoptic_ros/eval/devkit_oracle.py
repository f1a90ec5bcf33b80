"""nuscenes-devkit's PanopticEval as an oracle, run in its own venv (``.venv-oracle``).

nuscenes-devkit 1.2.0 pins numpy<2 and pulls OpenCV, Shapely, scikit-learn..., so it cannot live in
the project venv (numpy 2). ``make oracle-venv`` (mk/oracle.mk) builds ``.venv-oracle`` from
requirements-oracle.txt, and this file is both sides of a tiny file protocol:

* client (project venv): :func:`run_devkit` writes the cases to an .npz, runs this file with the
  oracle's python, and reads back JSON;
* server (oracle venv): ``python devkit_oracle.py IN.npz OUT.json`` feeds every frame to the
  devkit's ``PanopticEval.addBatch`` unchanged and writes its numbers (floats survive JSON exactly).

Before the devkit sees a frame, the server applies the encoding that nuScenes / SemanticKITTI label
files already have and that our evaluator assumes: stuff points carry instance id 0, and a
prediction of UNLABELED (65535, which the devkit has no row for) becomes the first ignore class,
which the devkit counts as a wrong answer for the point's ground-truth class. The devkit's own
algorithm is not touched. Only the standard library and numpy are imported at module level, and
nothing from ov_panoptic_ros, so the server runs with the oracle venv alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

UNLABELED = 65535
ORACLE_ENV = "OV_PANOPTIC_ORACLE_PYTHON"  # the oracle venv's python; `make test` / `make bench` set it


class OracleUnavailable(RuntimeError):
    """The oracle venv is missing; the message says how to build it."""


@dataclass
class OracleCase:
    """One evaluator set-up and the frames to feed it. ``repeat`` > 1 re-runs the frames for timing."""

    name: str
    n_classes: int
    ignore: Sequence[int]
    things: Sequence[int]
    min_points: int
    frames: list = field(default_factory=list)  # [(pred_sem, pred_inst, gt_sem, gt_inst), ...]
    repeat: int = 1


# ---------------------------------------------------------------------------------- client side
def oracle_python() -> Path:
    """The oracle venv's python, from $OV_PANOPTIC_ORACLE_PYTHON; OracleUnavailable says how to get one."""
    configured = os.environ.get(ORACLE_ENV)
    if not configured:
        raise OracleUnavailable(
            f"${ORACLE_ENV} is not set: point it at the python of a venv with nuscenes-devkit==1.2.0 "
            "(in a source checkout: `make oracle-venv`, then export "
            f"{ORACLE_ENV}=$PWD/.venv-oracle/bin/python; `make test` and `make bench` do both)")
    path = Path(configured)
    if not path.exists():
        raise OracleUnavailable(f"${ORACLE_ENV} points at {path}, which does not exist; build the oracle venv "
                                "with `make oracle-venv` (requirements-oracle.txt)")
    return path


def run_devkit(cases: Sequence[OracleCase], timeout: float = 600.0) -> dict:
    """Evaluate ``cases`` with nuscenes-devkit in the oracle venv; returns {"cases": {name: result}, ...}."""
    python = oracle_python()
    with tempfile.TemporaryDirectory(prefix="devkit-oracle-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        _write_cases(cases, src)
        proc = subprocess.run(
            [str(python), str(Path(__file__).resolve()), str(src), str(dst)],
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"devkit oracle failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(dst.read_text())


def _write_cases(cases: Sequence[OracleCase], path: Path) -> None:
    arrays, spec = {}, []
    for ci, case in enumerate(cases):
        spec.append({
            "name": case.name, "n_classes": int(case.n_classes), "ignore": [int(i) for i in case.ignore],
            "things": [int(i) for i in case.things], "min_points": int(case.min_points),
            "frames": len(case.frames), "repeat": int(case.repeat),
        })
        for fi, frame in enumerate(case.frames):
            for tag, arr in zip(("ps", "pi", "gs", "gi"), frame):
                arrays[f"c{ci}_f{fi}_{tag}"] = np.asarray(arr, dtype=np.int64)
    np.savez(path, spec=np.array(json.dumps(spec)), **arrays)


# ---------------------------------------------------------------------------------- server side
def _canonical(frame, n_classes: int, ignore: list[int], things: list[int]):
    """Label-file encoding: stuff instance id 0; UNLABELED predictions -> the first ignore class."""
    ps, pi, gs, gi = (np.asarray(a, dtype=np.int64) for a in frame)
    thing = np.zeros(n_classes + 1, dtype=bool)
    thing[things] = True
    ps = np.where(ps == UNLABELED, ignore[0] if ignore else n_classes, ps)
    pi = np.where(thing[np.minimum(ps, n_classes)], pi, 0)
    gi = np.where(thing[gs], gi, 0)
    return ps, pi, gs, gi


def _evaluate_case(evaluator_cls, spec: dict, data) -> dict:
    ci, n = spec["index"], spec["n_classes"]
    frames = [
        _canonical([data[f"c{ci}_f{fi}_{t}"] for t in ("ps", "pi", "gs", "gi")], n, spec["ignore"], spec["things"])
        for fi in range(spec["frames"])
    ]
    best = float("inf")
    for _ in range(max(1, spec["repeat"])):
        ev = evaluator_cls(n_classes=n, ignore=spec["ignore"], min_points=spec["min_points"])
        t0 = time.perf_counter()
        for ps, pi, gs, gi in frames:
            ev.addBatch(ps, pi, gs, gi)
        best = min(best, time.perf_counter() - t0)
    pq, sq, rq, pq_all, sq_all, rq_all = ev.getPQ()
    miou, iou_all = ev.getSemIoU()
    things = spec["things"]
    stuff = [c for c in range(n) if c not in things and c not in spec["ignore"]]
    # PQ-dagger exactly as nuscenes/eval/panoptic/evaluate.py wraps it.
    dagger = np.mean([float(pq_all[c]) for c in things] + [float(iou_all[c]) for c in stuff])
    return {
        "PQ": float(pq), "SQ": float(sq), "RQ": float(rq), "mIoU": float(miou), "PQ_dagger": float(dagger),
        "pq": pq_all.tolist(), "sq": sq_all.tolist(), "rq": rq_all.tolist(), "iou": iou_all.tolist(),
        "tp": ev.pan_tp.tolist(), "fp": ev.pan_fp.tolist(), "fn": ev.pan_fn.tolist(),
        "iou_sum": ev.pan_iou.tolist(),
        "points_per_pass": int(sum(f[0].size for f in frames)), "seconds_per_pass": best,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: devkit_oracle.py IN.npz OUT.json", file=sys.stderr)
        return 2
    # nuscenes-devkit exists only in the oracle venv.
    from importlib.metadata import version

    from nuscenes.eval.panoptic.panoptic_seg_evaluator import PanopticEval

    with np.load(argv[0]) as data:
        specs = json.loads(str(data["spec"]))
        results = {}
        for ci, spec in enumerate(specs):
            spec["index"] = ci
            results[spec["name"]] = _evaluate_case(PanopticEval, spec, data)
    out = {"devkit": version("nuscenes-devkit"), "numpy": np.__version__, "cases": results}
    Path(argv[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.exit(main(sys.argv[1:]))
