# Fashion-MNIST, identical recipe (configs/fashion_mnist.yaml, 10 epochs), side by side on one GPU.
# Data: .devdata/fm (the shared idx files).
#   FM_SET=compare  (default) InfoMamba (fusion_init 0.1), InfoMamba with P = F = 1 at init, the plain
#                   selective SSM (variant no_filter) and size-matched attention
#   FM_SET=diagnose InfoMamba, and InfoMamba without the hash restriction (n_buckets 1), without the
#                   MI objective (beta = gamma = 0), with fewer concepts than tokens (k_max 16, q_max 4)
source benchmarks/gpu/setup.sh
L=$OUT/logs_fm; mkdir -p $L
R="python3 benchmarks/recipe_run.py --out runs/results"
C="--task image --config configs/fashion_mnist.yaml --data.root .devdata/fm --data.num_workers ${FM_WORKERS:-3} --trainer.max_epochs 10 --trainer.max_time 00:00:06:00 --trainer.enable_progress_bar=false"
declare -A RUNS
if [ "${FM_SET:-compare}" = diagnose ]; then
  RUNS=([infomamba]="" [infomamba_1bucket]='--model.encoder.mixer_options={"n_buckets":1}'
        [infomamba_no_mi]="--config configs/ablations/no_mi.yaml" [infomamba_k16]='--model.encoder.mixer_options={"k_max":16,"q_max":4}')
else
  RUNS=([infomamba]="" [infomamba_init1]='--model.encoder.mixer_options={"fusion_init":1.0}'
        [no_filter]='--model.encoder.mixer_options={"variant":"no_filter"}'
        [attention]='--model.encoder.mixer=attention --model.encoder.mixer_options={"inner_dim":576}')
fi
for name in "${!RUNS[@]}"; do
  $R --name fm_$name -- $C ${RUNS[$name]} > $L/fm_$name.log 2>&1 &
done
wait
grep -h SUMMARY $L/*.log > $OUT/summaries_fm.jsonl; cat $OUT/summaries_fm.jsonl
for f in $L/*.log; do grep -q SUMMARY $f || { echo "== $f"; tail -5 $f; }; done
tar czf $OUT/logs_fm.tar.gz -C $OUT logs_fm && rm -r $L
