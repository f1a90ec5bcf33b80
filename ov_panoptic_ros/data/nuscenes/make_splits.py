"""Writes splits.json: nuScenes' official scene splits, taken once from nuscenes-devkit (utils/splits.py).

The devkit cannot be imported at run time (it pins numpy < 2), so its hard-coded scene lists ship as data
next to this file. Regenerate from the repository root with the oracle venv (`make oracle-venv`):

    .venv-oracle/bin/python ov_panoptic_ros/data/nuscenes/make_splits.py

which runs `from nuscenes.utils.splits import create_splits_scenes` and writes what it returns. `--print`
writes the same text to stdout instead: test/test_nuscenes_source.py compares it with the shipped file.
Only the standard library and the devkit are imported, so this runs in the oracle venv alone.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parent / "splits.json"


def splits_text() -> str:
    """The devkit's splits as JSON: one line per split, so a diff shows which list changed."""
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    source = f"nuscenes-devkit {version('nuscenes-devkit')} utils/splits.py"
    lines = [f'  "source": {json.dumps(source)}']
    lines += [f"    {json.dumps(name)}: {json.dumps(list(scenes))}" for name, scenes in sorted(splits.items())]
    return "{\n" + lines[0] + ',\n  "splits": {\n' + ",\n".join(lines[1:]) + "\n  }\n}\n"


if __name__ == "__main__":
    text = splits_text()
    if "--print" in sys.argv[1:]:
        sys.stdout.write(text)
    else:
        OUT.write_text(text)
