#!/usr/bin/env bash
# The whole m6abert pipeline on the embedded demo data, with a tiny model, in a few minutes on a CPU.
# Usage: bash examples/demo/run_demo.sh [OUTPUT_DIR]
#   OUTPUT_DIR (relative to the current folder) must be new, empty, or the output of an earlier run of
#   this script (it holds the marker file .m6abert-demo and nothing but the demo's folders), which is
#   then replaced. Default: demo_output/ in the repository. PYTHON picks the interpreter (python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-python3}"
OUT="${1:-$ROOT/demo_output}"
case "$OUT" in
  /*) ;;
  *) OUT="$PWD/$OUT" ;;
esac
MARKER=.m6abert-demo
LAYOUT=("$MARKER" data pretrained finetuned prediction visualize motifs genome sites)

refuse() {
  echo "run_demo.sh: error: $OUT: $1" >&2
  exit 2
}

is_layout_name() {
  local name
  for name in "${LAYOUT[@]}"; do
    [ "$1" = "$name" ] && return 0
  done
  return 1
}

# an existing OUTPUT_DIR is used only if it is empty or an earlier demo output, whose folders are replaced
if [ -e "$OUT" ] || [ -L "$OUT" ]; then
  [ -d "$OUT" ] || refuse "exists and is not a folder"
  shopt -s nullglob dotglob
  ENTRIES=("$OUT"/*)
  shopt -u nullglob dotglob
  if [ "${#ENTRIES[@]}" -gt 0 ]; then
    [ -f "$OUT/$MARKER" ] || refuse "folder is not empty and is not an earlier demo output (no $MARKER); give a new or empty folder"
    for ENTRY in "${ENTRIES[@]}"; do
      is_layout_name "$(basename "$ENTRY")" || refuse "holds $(basename "$ENTRY"), which is not part of an earlier demo output; give a new or empty folder"
    done
    for ENTRY in "${ENTRIES[@]}"; do
      rm -rf -- "$ENTRY"
    done
  fi
fi
mkdir -p -- "$OUT"
echo "m6abert demo output (examples/demo/run_demo.sh); this folder is replaced by the next run" > "$OUT/$MARKER"
cd "$ROOT"

export KMER=6  # 6-mers: the planted TGTAAATA is three tokens a tiny model learns quickly
export RAW_DATA_PATH=examples/demo
export DATA_PATH="$OUT/data"
export MODEL_PATH="$OUT/pretrained"
export OUTPUT_PATH="$OUT/finetuned"
export PREDICTION_PATH="$OUT/prediction"
export VIS_PATH="$OUT/visualize"
export MOTIF_PATH="$OUT/motifs"
export SITES_PATH="$OUT/sites"
GENOME_PATH="$OUT/genome"  # a copy of examples/demo/genome: its index (.fai) is written beside it
ISM_DATA_PATH="$DATA_PATH/ism"  # the test positives that are mutated
N_ISM=12
ISM_WINDOW=-150:50  # relative to the site, half-open
PLANTED="planted motif: -120..-80"

echo "== 1/8 get_input.py: balanced, split, k-merised TSVs and a pretraining corpus"
"$PY" get_input.py --do_val --kmer "$KMER" --extend_len 250 --task finetune --data_dir "$RAW_DATA_PATH" \
    --save_dir "$DATA_PATH"
"$PY" get_input.py --do_val --kmer "$KMER" --extend_len 250 --task pretrain --data_dir "$RAW_DATA_PATH" \
    --fasta "$RAW_DATA_PATH/neg.fa" --save_dir "$DATA_PATH"

echo "== 2/8 run_pretrain.py: a tiny masked-LM m6A-BERT"
"$PY" run_pretrain.py --model_type dna --tokenizer_name "dna$KMER" --config_name tiny --line_by_line --mlm \
    --train_data_file "$DATA_PATH/pre/${KMER}_train.txt" --eval_data_file "$DATA_PATH/pre/${KMER}_val.txt" \
    --output_dir "$MODEL_PATH" --per_gpu_train_batch_size 16 --learning_rate 1e-3 --max_steps 40 \
    --logging_steps 20 --save_steps 20 --evaluate_during_training --block_size 512

echo "== 3/8 run_finetune_degradation.py: m6A-BERT-Deg (the README command; a tiny model needs fewer epochs, a higher lr)"
"$PY" run_finetune_degradation.py --model_type dna "--tokenizer_name=dna$KMER" --model_name_or_path "$MODEL_PATH" \
    --task_name dnaprom --do_train --do_eval --data_dir "$DATA_PATH" --save_steps 30 --logging_steps 30 \
    --max_seq_length 512 --per_gpu_eval_batch_size=40 --per_gpu_train_batch_size=16 --learning_rate 2e-3 \
    --warmup_percent 0.1 --num_train_epochs 10 --output_dir "$OUTPUT_PATH" --n_process 10 \
    --hidden_dropout_prob 0.1 --evaluate_during_training --weight_decay 0.01

echo "== 4/8 run_predict_degradation.py: probabilities for test.tsv"
"$PY" run_predict_degradation.py --model_type dna "--tokenizer_name=dna$KMER" --model_name_or_path "$MODEL_PATH" \
    --task_name dnaprom --data_dir "$DATA_PATH" --do_predict --max_seq_length 512 --per_gpu_pred_batch_size 40 \
    --output_dir "$OUTPUT_PATH" --predict_dir "$PREDICTION_PATH"

echo "== 5/8 visualize_all.py: attention (all 600 sequences) and attribution (the 120 test sequences; log-odds"
echo "         against 4 dinucleotide-shuffled references, steps adapted per sequence: the defaults) per nucleotide, heatmaps"
"$PY" visualize_all.py --kmer "$KMER" --model_name_or_path "$MODEL_PATH" --model_path "$OUTPUT_PATH" \
    --output_dir "$VIS_PATH" --data_dir "$DATA_PATH" --data_name all --vis_task attn --batch_size 20
"$PY" visualize_all.py --kmer "$KMER" --model_name_or_path "$MODEL_PATH" --model_path "$OUTPUT_PATH" \
    --output_dir "$VIS_PATH" --data_dir "$DATA_PATH" --data_name test --vis_task attr --batch_size 20

echo "== 6/8 visualize_all.py --vis_task ism: in-silico mutagenesis of the first $N_ISM test positives, $ISM_WINDOW nt"
"$PY" - "$DATA_PATH/test.tsv" "$ISM_DATA_PATH/test.tsv" "$N_ISM" <<'PYEOF'
import sys
from m6abert import io
table = io.read_tsv(sys.argv[1])
keep = [s for s, y in zip(table.sentences, table.labels, strict=True) if y == 1][: int(sys.argv[3])]
io.write_tsv(sys.argv[2], keep, [1] * len(keep))
PYEOF
"$PY" visualize_all.py --kmer "$KMER" --model_path "$OUTPUT_PATH" --output_dir "$VIS_PATH" --data_dir "$ISM_DATA_PATH" \
    --data_name test --vis_task ism --ism_window="$ISM_WINDOW" --batch_size 20

echo "== 7/8 find_motifs.py: motifs enriched in high-attribution regions, with logos"
"$PY" find_motifs.py --set pos --data_dir "$DATA_PATH" --npy_dir "$VIS_PATH" --window_size 24 --min_len 5 \
    --pval_cutoff 0.05 --min_n_motif 3 --align_all_ties --save_file_dir "$MOTIF_PATH" --data_name test \
    --do_plot --vis_task attr

echo "== 8/8 m6abert-windows: m6A sites as genome coordinates (BED + genome + GTF) -> spliced mRNA windows -> predictions"
cp -r examples/demo/genome "$GENOME_PATH"
"$PY" -m m6abert.cli.windows --sites "$GENOME_PATH/sites.bed" --genome "$GENOME_PATH/genome.fa" --gtf "$GENOME_PATH/genes.gtf" \
    --out "$SITES_PATH/sites.fa"
"$PY" run_predict_degradation.py --output_dir "$OUTPUT_PATH" --predict_fasta "$SITES_PATH/sites.fa" \
    --predict_dir "$SITES_PATH/prediction" --per_gpu_pred_batch_size 16

echo
echo "Done. Outputs:"
echo "  data splits        $DATA_PATH/{train,dev,test}.tsv"
echo "  pretrained model   $MODEL_PATH/ (eval_results.txt: perplexity)"
echo "  fine-tuned model   $OUTPUT_PATH/ (eval_results.txt, best_checkpoint.json, all_results.json)"
echo "  predictions        $PREDICTION_PATH/{pred_results.npy,predictions.tsv,pred_metrics.json}"
echo "  scores and plots   $VIS_PATH/ (ISM of test positives: ism_test.npy, ism_summary_test.npy, mutation map)"
echo "  motifs and logos   $MOTIF_PATH/"
echo "  sites -> windows   $SITES_PATH/sites.fa, predictions with coordinates in $SITES_PATH/prediction/"
"$PY" - "$PREDICTION_PATH/pred_metrics.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
print("  test metrics       " + "  ".join(f"{k}={m[k]:.3f}" for k in ("acc", "auc", "mcc", "f1")))
PYEOF
echo "  top motifs (planted: TGTAAATA at -120..-80 nt; GC content is a weak cue):"
head -4 "$MOTIF_PATH/motifs_pos.tsv" | cut -f1-4 | sed 's/^/    /'
echo "  mean score profiles of positives, smoothed over 25 nt (attention: all 600; attribution: test; ISM: $N_ISM test positives):"
for TASK in attn:all attr:test; do
  PEAK="$("$PY" -m m6abert.cli.profile_peak --data_dir "$DATA_PATH" --npy_dir "$VIS_PATH" --data_name "${TASK#*:}" --vis_task "${TASK%%:*}")"
  echo "    $PEAK ($PLANTED)"
done
PEAK="$("$PY" -m m6abert.cli.profile_peak --data_dir "$ISM_DATA_PATH" --npy_dir "$VIS_PATH" --data_name test --vis_task ism)"
echo "    $PEAK ($PLANTED)"
"$PY" - "$VIS_PATH/attributions_test_qc.tsv" <<'PYEOF'
import sys
import numpy as np
from m6abert import io
qc = io.read_columns(sys.argv[1], "completeness table")
rel, steps = np.array(qc["rel_error"], dtype=float), np.array(qc["steps"], dtype=int)
by = {d: qc["decided_by"].count(d) for d in ("relative", "absolute", "none")}
print(f"  attribution QC     {len(rel) - by['none']} of {len(rel)} within tolerance ({by['relative']} relative, "
      f"{by['absolute']} absolute), {by['none']} flagged; median relative error {np.median(rel):.2g}; "
      f"steps median {np.median(steps):g}, 90th percentile {np.percentile(steps, 90):g}, max {steps.max()}")
PYEOF
echo "  P(degraded) of the 16 genome sites (the motif planted 100 nt upstream in the mRNA of those named *_motif):"
"$PY" - "$SITES_PATH/prediction/predictions.tsv" <<'PYEOF'
import sys
from m6abert import io
table = io.read_columns(sys.argv[1], "predictions")
p = {i: float(x) for i, x in zip(table["id"], table["probability"], strict=True)}
motif = [v for k, v in p.items() if k.endswith("_motif")]
other = [v for k, v in p.items() if not k.endswith("_motif")]
print(f"    with the motif: mean {sum(motif) / len(motif):.3f} (n = {len(motif)}); "
      f"without: mean {sum(other) / len(other):.3f} (n = {len(other)})")
PYEOF
