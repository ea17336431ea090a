# The scan kernel benchmark (beside the previous kernel file and fla) and the encoder benchmark of every
# size-matched mixer and timm's ViT-S, for docs/benchmarks.md. Carry .whl and .devdata.
source benchmarks/gpu/setup.sh
timeout 200 python3 benchmarks/bench_scan.py --baseline .devdata/baseline/selective_scan_v1.py > $OUT/bench_scan.log 2>&1; echo "bench_scan rc=$?" >> $OUT/bench_scan.log
timeout 280 infomamba bench --mixers infomamba attention mamba vmamba mambavision linformer localmamba vmisa \
  --resolutions 224 384 512 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 --timm \
  --kmax-sweep 25 50 100 200 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
grep "^|\|rc=" $OUT/bench_scan.log; tail -30 $OUT/bench.log
