# One short Fashion-MNIST fit per replay setting on the lent GPU (carry .whl and .devdata/fashion-mnist): the recipe
# as shipped (`cuda_graphs: true`, the eager encoder captured) against `--compile=reduce-overhead` (Inductor's
# graphs), FIT_EPOCHS epochs each (default 2), every epoch's time from the fit's log.
# Usage: bash benchmarks/gpu/fit_compile.sh
source benchmarks/gpu/setup.sh
for c in graphs reduce-overhead; do
  [ $c = graphs ] && flags="--model.cuda_graphs=true" || flags="--model.cuda_graphs=false --model.compile=$c"
  start=$(date +%s)
  timeout ${FIT_GUARD:-200} python3 -m infomamba.cli fit --task image --config configs/fashion_mnist.yaml \
    --data.root .devdata/fashion-mnist --trainer.max_epochs ${FIT_EPOCHS:-2} --trainer.enable_progress_bar false \
    $flags --run_dir /tmp/fit_$c > $OUT/fit_$c.log 2>&1
  echo "$c rc=$? wall $(( $(date +%s) - start )) s"
  cp /tmp/fit_$c/metrics.csv $OUT/metrics_$c.csv 2>/dev/null
  grep "\[infomamba\] epoch\|fit done" $OUT/fit_$c.log | cut -c1-200
done
