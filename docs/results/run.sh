#!/usr/bin/env bash
# Every number of docs/results.md: the evaluation rows on held-out world seeds 5000-5004 (never used for
# training, 100-129, validation, 1000-1001, or choosing hyperparameters), then the table.
#   bash docs/results/run.sh            (after the `ov-panoptic train --config world_*` runs: world_full,
#                                        world_no_distill, world_pfc and the world_*_q64 ones; about 60 min)
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

# The shipped recipe: 128 learnable queries (world_full, world_no_distill, world_pfc)
row zeroshot       --config $R/zeroshot.yaml
row pfc            --config $R/pfc.yaml --checkpoint runs/world_pfc/network.pt
row no_distill     --config synthetic --checkpoint runs/world_no_distill/network.pt
row full           --config synthetic --checkpoint runs/world_full/network.pt
row full_synonyms  --config synthetic --checkpoint runs/world_full/network.pt \
                   --vocabulary $R/synonyms.yaml --mapping $R/synonyms_mapping.yaml
row full_distractors --config synthetic --checkpoint runs/world_full/network.pt \
                   --vocabulary $R/distractors.yaml --mapping $R/distractors_mapping.yaml
row zeroshot_synonyms --config $R/zeroshot.yaml --vocabulary $R/synonyms.yaml --mapping $R/synonyms_mapping.yaml
row zeroshot_distractors --config $R/zeroshot.yaml --vocabulary $R/distractors.yaml \
                   --mapping $R/distractors_mapping.yaml
# 64 learnable queries: the whole ablation (world_*_q64)
row pfc_q64        --config $R/pfc_q64.yaml --checkpoint runs/world_pfc_q64/network.pt
row no_distill_q64 --config $R/q64.yaml --checkpoint runs/world_no_distill_q64/network.pt
row lo_q64         --config $R/q64.yaml --checkpoint runs/world_lo_q64/network.pt
row lv_q64         --config $R/q64.yaml --checkpoint runs/world_lv_q64/network.pt
row full_q64       --config $R/q64.yaml --checkpoint runs/world_full_q64/network.pt
row full_320_q64   --config $R/teacher_320_q64.yaml --checkpoint runs/world_full_q64/network.pt
row full_exclusive_q64 --config $R/q64.yaml --checkpoint runs/world_full_exclusive_q64/network.pt
row full_split_q64 --config $R/full_split_q64.yaml --checkpoint runs/world_full_q64/network.pt
row no_distill_split_q64 --config $R/full_split_q64.yaml --checkpoint runs/world_no_distill_q64/network.pt
row full_ensemble_q64 --config $R/full_ensemble_q64.yaml --checkpoint runs/world_full_q64/network.pt
row full_synonyms_q64 --config $R/q64.yaml --checkpoint runs/world_full_q64/network.pt \
                   --vocabulary $R/synonyms.yaml --mapping $R/synonyms_mapping.yaml
row full_distractors_q64 --config $R/q64.yaml --checkpoint runs/world_full_q64/network.pt \
                   --vocabulary $R/distractors.yaml --mapping $R/distractors_mapping.yaml
python "$R/table.py" "$OUT"
