# Which change of commit 98b3b78 ended InfoMamba's training collapse on Fashion-MNIST (k_eff 38 -> 8.5,
# best val at epoch 0 before it)? The same recipe, side by side on one GPU, four code versions:
#   v0  the code before it (4843214)
#   v1  v0 + kept entries must be positive (no straight-through candidate gradient for zero picks)
#   v2  v0 + the Gumbel bucket sample in fp32 (it was drawn in bf16 under autocast)
#   new the current code (dense R_bar, fused assignment kernel, both changes above)
# Prepare here (needs git): bash benchmarks/gpu/fm_fix_isolation.sh prepare   -> .devdata/old/v0..v2
# Run on the GPU, carrying .whl and .devdata: bash benchmarks/gpu/fm_fix_isolation.sh
if [ "$1" = prepare ]; then
  rm -rf .devdata/old
  for v in v0 v1 v2; do
    mkdir -p .devdata/old/$v && git archive 4843214 src/infomamba tasks kernels | tar x -C .devdata/old/$v
    (cd .devdata/old/$v && mv src/infomamba infomamba && rmdir src && mv tasks infomamba/tasks && mv kernels infomamba/kernels)
  done
  sed -i 's/    values = values \* (ranks < q.unsqueeze(-1))/    values = values * ((ranks < q.unsqueeze(-1)) \& (values > 0))/' .devdata/old/v1/infomamba/concepts.py
  sed -i 's/F.gumbel_softmax(logits, tau=1.0, hard=True)/F.gumbel_softmax(logits.float(), tau=1.0, hard=True)/' .devdata/old/v2/infomamba/concepts.py
  exit
fi
source benchmarks/gpu/setup.sh
L=$OUT/logs_fix; mkdir -p $L
C="--task image --config configs/fashion_mnist.yaml --data.root .devdata/fm --data.num_workers 3 --trainer.max_epochs 10 --trainer.max_time 00:00:06:00 --trainer.enable_progress_bar=false"
for v in v0 v1 v2; do
  PYTHONPATH=$PWD/.devdata/old/$v:$PYTHONPATH python3 benchmarks/recipe_run.py --out runs/fix --name fm_$v -- $C > $L/fm_$v.log 2>&1 &
done
python3 benchmarks/recipe_run.py --out runs/fix --name fm_new -- $C > $L/fm_new.log 2>&1 &
wait
grep -h SUMMARY $L/*.log > $OUT/summaries_fix.jsonl; cat $OUT/summaries_fix.jsonl
for f in $L/*.log; do grep -q SUMMARY $f || { echo "== $f"; tail -5 $f; }; done
for f in $L/*.log; do echo "== $f"; grep "^\[infomamba\] epoch" $f | grep -o "epoch [0-9]*\|train/k_eff=[0-9.]*\|train/red=[0-9.]*\|val/acc=[0-9.]*" | paste -sd' ' | sed 's/ epoch/\nepoch/g'; done
tar czf $OUT/logs_fix.tar.gz -C $OUT logs_fix && rm -r $L
