# Fashion-MNIST, identical recipe (configs/fashion_mnist.yaml, 10 epochs): InfoMamba (fusion_init 0.1),
# InfoMamba with P = F = 1 at init, the plain selective SSM (variant no_filter) and size-matched attention,
# side by side on one GPU. Data: .devdata/fm (the shared idx files).
source benchmarks/gpu/setup.sh
mkdir -p $OUT/logs
R="python3 benchmarks/recipe_run.py --out runs/results"
C="--task image --config configs/fashion_mnist.yaml --data.root .devdata/fm --data.num_workers 3 --trainer.max_epochs 10 --trainer.max_time 00:00:06:00 --trainer.enable_progress_bar=false"
$R --name fm_infomamba -- $C > $OUT/logs/fm_infomamba.log 2>&1 &
$R --name fm_infomamba_init1 -- $C '--model.encoder.mixer_options={"fusion_init":1.0}' > $OUT/logs/fm_infomamba_init1.log 2>&1 &
$R --name fm_no_filter -- $C '--model.encoder.mixer_options={"variant":"no_filter"}' > $OUT/logs/fm_no_filter.log 2>&1 &
$R --name fm_attention -- $C --model.encoder.mixer=attention '--model.encoder.mixer_options={"inner_dim":576}' > $OUT/logs/fm_attention.log 2>&1 &
wait
grep -h SUMMARY $OUT/logs/*.log > $OUT/summaries.jsonl; cat $OUT/summaries.jsonl
for f in $OUT/logs/*.log; do grep -q SUMMARY $f || { echo "== $f"; tail -5 $f; }; done
tar czf $OUT/logs.tar.gz -C $OUT logs && rm -r $OUT/logs
