# Kernel benchmark (Triton vs chunked reference vs per-token loop vs fla chunk_simple_gla) and the
# encoder benchmark (`infomamba bench`: size-matched mixers at 224-1024 px, timm ViT-S, k_max sweep).
source benchmarks/gpu/setup.sh
timeout 260 python3 benchmarks/bench_scan.py > $OUT/bench_scan.log 2>&1; echo "bench_scan rc=$?" >> $OUT/bench_scan.log
timeout 290 infomamba bench --mixers infomamba attention mamba vmamba mambavision linformer localmamba vmisa \
  --resolutions 224 384 512 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 --timm \
  --kmax-sweep 25 50 100 200 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
tail -30 $OUT/bench_scan.log; tail -45 $OUT/bench.log
