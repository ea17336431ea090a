# IMDb and Fashion-MNIST, InfoMamba vs the size-matched attention baseline, identical recipes, run side
# by side on one GPU (so wall times include sharing the GPU), with the Triton kernel tests beside them.
# Data: .devdata/imdb (the shared IMDb parquet, recompressed) and .devdata/fashion-mnist.
source benchmarks/gpu/setup.sh
(python3 -m pytest tests/kernels -q -x -k "not every_config" > $OUT/kernel_tests.log 2>&1; echo "rc=$?" >> $OUT/kernel_tests.log) &
R="python3 benchmarks/recipe_run.py --out runs/results"
Q="--trainer.enable_progress_bar=false"
declare -A TEXT=([infomamba]="" [attention]='--model.encoder.mixer_options={"inner_dim":768}')
declare -A IMG=([infomamba]="" [attention]='--model.encoder.mixer_options={"inner_dim":576}')
for m in infomamba attention; do
  $R --name imdb_$m -- --task text --config configs/imdb.yaml --data.root .devdata/imdb --data.num_workers 3 \
     --model.encoder.mixer=$m ${TEXT[$m]} --trainer.max_epochs ${IMDB_EPOCHS:-4} --trainer.max_time 00:00:05:30 $Q > $OUT/imdb_$m.log 2>&1 &
  $R --name fmnist_$m -- --task image --config configs/fashion_mnist.yaml --data.root .devdata/fashion-mnist \
     --data.num_workers 3 --model.encoder.mixer=$m ${IMG[$m]} --trainer.max_time 00:00:05:30 $Q > $OUT/fmnist_$m.log 2>&1 &
done
wait
grep -h SUMMARY $OUT/*.log; tail -3 $OUT/kernel_tests.log
