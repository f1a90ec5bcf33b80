#!/usr/bin/env bash
# Every number of docs/results.md: the evaluation rows on held-out world seeds 5000-5004 (never used for
# training, 100-129, validation, 1000-1001, or choosing hyperparameters), then the table.
#   bash docs/results/run.sh            (after the five `ov-panoptic train --config world_*` runs of
#                                        world_full, world_no_distill, world_lo, world_lv, world_pfc; about 25 min)
# Reports land in runs/results/<row>/metrics.json; docs/results/table.py prints the markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/results}
SOURCE="world:5000:5005"
OPTS=(--option frames=10 --option every=20 --no-progress)
R=docs/results

row() {  # row NAME [evaluate arguments...]; ONLY="name name ..." runs just those rows (two shells in parallel)
  local name=$1; shift
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  rm -rf "$OUT/$name"
  echo "== $name: ov-panoptic evaluate $SOURCE ${OPTS[*]} $* --out $OUT/$name"
  ov-panoptic evaluate "$SOURCE" "${OPTS[@]}" "$@" --out "$OUT/$name"
}

row zeroshot       --config $R/zeroshot.yaml
row pfc            --config $R/pfc.yaml --checkpoint runs/world_pfc/network.pt
row no_distill     --config synthetic --checkpoint runs/world_no_distill/network.pt
row lo             --config synthetic --checkpoint runs/world_lo/network.pt
row lv             --config synthetic --checkpoint runs/world_lv/network.pt
row full           --config synthetic --checkpoint runs/world_full/network.pt
row full_split     --config $R/full_split.yaml --checkpoint runs/world_full/network.pt
row no_distill_split --config $R/full_split.yaml --checkpoint runs/world_no_distill/network.pt
row full_ensemble  --config $R/full_ensemble.yaml --checkpoint runs/world_full/network.pt
row full_synonyms  --config synthetic --checkpoint runs/world_full/network.pt \
                   --vocabulary $R/synonyms.yaml --mapping $R/synonyms_mapping.yaml
row full_distractors --config synthetic --checkpoint runs/world_full/network.pt \
                   --vocabulary $R/distractors.yaml --mapping $R/distractors_mapping.yaml
row zeroshot_synonyms --config $R/zeroshot.yaml --vocabulary $R/synonyms.yaml --mapping $R/synonyms_mapping.yaml
row zeroshot_distractors --config $R/zeroshot.yaml --vocabulary $R/distractors.yaml \
                   --mapping $R/distractors_mapping.yaml
python "$R/table.py" "$OUT"
