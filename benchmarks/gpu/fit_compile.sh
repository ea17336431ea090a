# One short Fashion-MNIST fit per compile setting on the lent GPU (carry .whl and .devdata/fashion-mnist):
# wall time of a 2-epoch fit, eager vs --compile=reduce-overhead. Usage: bash benchmarks/gpu/fit_compile.sh
source benchmarks/gpu/setup.sh
for c in false reduce-overhead; do
  start=$(date +%s)
  timeout 110 python3 -c "from infomamba.cli import main; main()" fit --task image --config configs/fashion_mnist.yaml \
    --data.root .devdata/fashion-mnist --trainer.max_epochs 2 --trainer.enable_progress_bar false \
    --model.compile=$c --run_dir /tmp/fit_$c > $OUT/fit_$c.log 2>&1
  echo "compile=$c rc=$? wall $(( $(date +%s) - start )) s"
  cp /tmp/fit_$c/metrics.csv $OUT/metrics_$c.csv 2>/dev/null
  grep -v "Warning\|warn" $OUT/fit_$c.log | tail -4
done
