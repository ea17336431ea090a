# Kernels on the GPU: every kernel test (bf16 + fp32, the scan's every-config sweep included), the
# concept-filter stage benchmark with a profiler table, the scan benchmark beside the previous kernel
# file (.devdata/baseline, carried) and fla, the scan config sweep, and the encoder benchmark.
source benchmarks/gpu/setup.sh
set -o pipefail
timeout 240 python3 -m pytest tests/kernels -q -x -p no:cacheprovider 2>&1 | tail -25 > $OUT/kernel_tests.log; echo "tests rc=$?" >> $OUT/kernel_tests.log
timeout 100 python3 benchmarks/bench_filter.py --profile > $OUT/bench_filter.log 2>&1; echo "bench_filter rc=$?" >> $OUT/bench_filter.log
timeout 150 python3 benchmarks/bench_scan.py --baseline .devdata/baseline/selective_scan_v1.py > $OUT/bench_scan.log 2>&1; echo "bench_scan rc=$?" >> $OUT/bench_scan.log
timeout 150 python3 benchmarks/bench_scan.py --sweep > $OUT/scan_sweep.log 2>&1; echo "sweep rc=$?" >> $OUT/scan_sweep.log
timeout 90 infomamba bench --mixers infomamba mamba attention --resolutions 224 512 1024 --batch 64 --dim 384 \
  --depth 12 --dtype bf16 --warmup 3 --repeats 10 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
cat $OUT/kernel_tests.log; cat $OUT/bench_filter.log | grep -v "^-\|^ \{20\}"; grep "^|" $OUT/bench_scan.log; tail -12 $OUT/bench.log
