# The fused-SSM issue on one GPU: kernel tests (fused op vs reference in fp32/bf16, compile tracing),
# the 200-step training-curve equality, and the eager encoder bench (images and 1-D lengths).
# Carry .whl (and, for scan_chunks, .devdata/scan_triton_7b75a56.py: the kernels before time chunks, made by
# `git show 7b75a56:src/infomamba/ops/selective_scan/triton.py > .devdata/scan_triton_7b75a56.py`).
# Usage: bash benchmarks/gpu/fused_ssm_runs.sh PART... (the case labels below)
source benchmarks/gpu/setup.sh
compiled() {  # part name, compile modes: attention then InfoMamba at 224 / 1024 px, eager and compiled, one run
  local name=$1; shift
  TORCH_LOGS=recompiles timeout 570 python3 -m infomamba.bench --mixers attention infomamba --resolutions 224 1024 \
    --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --compile --compile-modes "$@" \
    --out $OUT/bench_$name > $OUT/bench_$name.log 2>&1; echo "$name rc=$?" >> $OUT/bench_$name.log
  grep -v Warning $OUT/bench_$name.log | grep "rc=\|^| \|Recompiling" | tail -30
}
goal_bench() {  # part name, then `infomamba.bench` options: the compiled goal rows, then the goals read from them
  local name=$1; shift
  TORCH_LOGS=recompiles timeout ${COMPILE_GUARD:-560} python3 -m infomamba.bench "$@" --dim 384 --depth 12 \
    --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs --compile --compile-modes reduce-overhead \
    --out $OUT/bench_$name > $OUT/bench_$name.log 2>&1
  echo "bench rc=$?" >> $OUT/bench_$name.log
  grep -v Warning $OUT/bench_$name.log | grep "rc=\|^| \|Recompiling\|out of memory" | tail -30
  python3 benchmarks/ssm_goals.py $OUT/bench_$name/bench.csv --mixers 'infomamba{ssm_heads: 12}'
}
profiled() {  # part name, then benchmarks/profile_step.py options
  local name=$1; shift
  timeout 200 python3 benchmarks/profile_step.py "$@" > $OUT/$name.log 2>&1; echo "$name rc=$?" >> $OUT/$name.log
  grep "^==" $OUT/$name.log
}
per_base() {  # label, guard (s), base folders (made as the aux chain's), then `infomamba.bench` options: the bench
  # on each folder's src/, then on this code, one process each; log and results in $OUT/bench_<label>_<base or new>
  local label=$1 guard=$2 bases=$3 src name log; shift 3
  for src in $bases .; do
    name=$([ $src = . ] && echo new || basename $src)
    log=$OUT/bench_${label}_$name.log
    echo "== $src $(cat $src/COMMIT 2>/dev/null)" > $log
    PYTHONPATH=$([ $src = . ] || echo $PWD/$src/src:)$PYTHONPATH timeout $guard python3 -m infomamba.bench "$@" \
      --out $OUT/bench_${label}_$name >> $log 2>&1
    echo "rc=$?" >> $log
    rm -f $OUT/bench_${label}_$name/bench.md; grep -v Warning $log | grep "^==\|rc=\|^| "
  done
}
for part in "$@"; do
  case $part in
    # the kernels', the CUDA graphs' and the compile tests in worker processes (serially they outlast the guard: 32 %
    # in 420 s on an H100; carry pytest-xdist's and execnet's wheels in .whl)
    tests) timeout 420 python3 -m pytest -q -p no:cacheprovider -n ${WORKERS:-14} tests/test_cuda_graphs.py \
             tests/mixers/test_compile.py tests/ops \
             > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests.log; tail -5 $OUT/gpu_tests.log ;;
    # the whole test suite on the GPU in worker processes (carry pytest-xdist's and execnet's wheels in .whl); on a
    # slow host it outlasts one call (99 % in 540 s on an H100 at bf6901d): then suite_kernels and suite_rest, a call
    # each, run its two halves (the op, mixer and layer tests; the rest)
    suite|suite_kernels|suite_rest)
           paths=$(case $part in suite) echo tests ;; suite_kernels) echo tests/ops tests/mixers tests/layers ;;
                   suite_rest) echo tests --ignore=tests/ops --ignore=tests/mixers --ignore=tests/layers ;; esac)
           timeout ${SUITE_GUARD:-540} python3 -m pytest -q -p no:cacheprovider -n ${WORKERS:-14} $paths \
             > $OUT/gpu_$part.log 2>&1; echo "$part rc=$?" >> $OUT/gpu_$part.log
           grep -i "failed\|error" $OUT/gpu_$part.log | head -40; tail -3 $OUT/gpu_$part.log ;;
    # the step `infomamba fit` runs (Eq. 14) on the src/ of each folder in AUX_BASES (made as ab_base's), then on this
    # code beside attention; then where this code's Eq. 14 step goes at 224 and 1024 px
    aux_chain) for src in ${AUX_BASES:-} .; do
             name=$([ $src = . ] && echo new || basename $src)
             echo "== $src $(cat $src/COMMIT 2>/dev/null)" > $OUT/bench_aux_$name.log
             PYTHONPATH=$([ $src = . ] || echo $PWD/$src/src:)$PYTHONPATH timeout ${AUX_GUARD:-150} python3 -m \
               infomamba.bench --mixers 'infomamba{ssm_heads: 12}' $([ $src = . ] && echo attention) --resolutions 224 \
               1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs \
               --aux-loss --out $OUT/bench_aux_$name >> $OUT/bench_aux_$name.log 2>&1
             echo "rc=$?" >> $OUT/bench_aux_$name.log
             rm -f $OUT/bench_aux_$name/bench.md; grep -v Warning $OUT/bench_aux_$name.log | grep "^==\|rc=\|^| "
           done
           for px in 224 1024; do
             profiled profile_aux_$px --mixers 'infomamba{ssm_heads: 12}' --resolution $px --aux-loss --top 30 \
               --top-ops 45
           done ;;
    # the cross-entropy step's goal rows (224 and 1024 px, graphed) of each folder in AB_BASES (made as the aux
    # chain's) and of this code, each beside attention in its own run, and the goals read from each run
    ab_step) per_base ce ${AB_GUARD:-170} "${AB_BASES:-}" --mixers 'infomamba{ssm_heads: 12}' attention --resolutions \
               224 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs
           for run in $OUT/bench_ce_*/; do
             python3 benchmarks/ssm_goals.py $run/bench.csv --mixers 'infomamba{ssm_heads: 12}' | tee -a ${run%/}.log
           done ;;
    # the 2-D routes' mixers (VMamba's columns, LocalMamba's windows): their tests on the GPU, then at 224 px eager,
    # graphed and compiled with reduce-overhead, on each of AB_BASES (.devdata/ab/<commit>) and this code
    grid_routes) timeout 200 python3 -m pytest -q -p no:cacheprovider -n ${WORKERS:-14} tests/mixers/test_compile.py \
             tests/layers tests/mixers/test_vmamba.py tests/mixers/test_localmamba.py tests/test_cuda_graphs.py \
             > $OUT/tests_grid.log 2>&1; echo "tests rc=$?" >> $OUT/tests_grid.log; tail -3 $OUT/tests_grid.log
           per_base grid ${AB_GUARD:-220} "${AB_BASES:-}" --mixers ${GRID_MIXERS:-vmamba localmamba} --resolutions 224 \
             --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs --compile \
             --compile-modes reduce-overhead ;;
    # the MI-hash term's kernels, beside the earlier file HASH_BASELINE; their tests and the optimizer's
    hash) timeout 240 python3 -m pytest -q -p no:cacheprovider -n 8 --durations 15 tests/ops/test_hash_bucket_triton.py \
            tests/ops/test_hash_bucket.py tests/tasks/test_base.py tests/test_cuda_graphs.py tests/test_bench.py \
            > $OUT/tests_hash.log 2>&1; echo "tests_hash rc=$?" >> $OUT/tests_hash.log; tail -3 $OUT/tests_hash.log
          timeout 90 python3 benchmarks/bench_hash.py ${HASH_BASELINE:+--baseline $HASH_BASELINE} \
            > $OUT/bench_hash.log 2>&1; echo "bench_hash rc=$?" >> $OUT/bench_hash.log; cat $OUT/bench_hash.log ;;
    # this project's SSD kernels beside Dao & Gu's own (mamba_chunk_scan_combined), GPU time of the calls replayed as
    # CUDA graphs and each kernel's share; carry MAMBA_SSM_DIR, a clone's Python files, e.g. made in .devdata/mamba by
    # `git -C <clone> archive HEAD mamba_ssm/ops/triton mamba_ssm/utils | tar -x -C .devdata/mamba`. mamba-ssm
    # autotunes each shape and chunk for about a minute on an H100: MAMBA_SSM_SHAPES and MAMBA_SSM_CHUNKS split the
    # four shapes (chunk 256, Mamba-2's) over calls
    mamba_ssm) timeout ${MAMBA_SSM_GUARD:-420} python3 benchmarks/bench_ssd.py \
                 --shapes ${MAMBA_SSM_SHAPES:-64x196 64x1024 64x4096 8x16384} --no-reference --graphs --profile \
                 --mamba-ssm ${MAMBA_SSM_DIR:-.devdata/mamba} --mamba-ssm-chunks ${MAMBA_SSM_CHUNKS:-256} \
                 > $OUT/bench_ssd_mamba_ssm.log 2>&1; echo "bench_ssd rc=$?" >> $OUT/bench_ssd_mamba_ssm.log
               grep "^|\|rc=\|GPU ms\|Error" $OUT/bench_ssd_mamba_ssm.log ;;
    # the SSD kernels' product order (benchmarks/ssd_rounding.py), on each folder of AB_BASES (made as the aux
    # chain's) and on this code: the SSD kernel tests of this code (the half-precision ones bound y's, dB's and dC's
    # mean error), the kernels' GPU time, then their bf16 gradients' error (benchmarks/ssd_grad_rounding.py)
    ssd_order) for src in ${AB_BASES:-} .; do
               name=$([ $src = . ] && echo new || basename $src)
               path=$([ $src = . ] || echo $PWD/$src/src:)$PYTHONPATH
               if [ $src = . ]; then  # the tests of this tree, on its own code
                 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py \
                   > $OUT/tests_ssd_$name.log 2>&1; echo "tests $name rc=$?" >> $OUT/tests_ssd_$name.log
                 grep "^E .*mean error\|passed\|failed\|rc=" $OUT/tests_ssd_$name.log | tail -4
               fi
               PYTHONPATH=$path timeout 120 python3 benchmarks/bench_ssd.py --shapes 64x196 64x1024 8x16384 \
                 --no-reference --graphs > $OUT/bench_ssd_order_$name.log 2>&1
               echo "bench $name rc=$?" >> $OUT/bench_ssd_order_$name.log
               grep "^| [0-9]\|rc=" $OUT/bench_ssd_order_$name.log
               PYTHONPATH=$path timeout 90 python3 benchmarks/ssd_grad_rounding.py --shapes 64x196 8x4096 \
                 > $OUT/ssd_grad_rounding_$name.log 2>&1; echo "grads $name rc=$?" >> $OUT/ssd_grad_rounding_$name.log
               grep "^| [0-9]\|rc=" $OUT/ssd_grad_rounding_$name.log
             done ;;
    # each SSD kernel's DRAM bytes and time (Nsight Compute, benchmarks/ssd_bytes.py) at three shapes, and the
    # backward's over the forward's
    ssd_bytes) m=dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum
               m=$m,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_write.sum
               timeout 300 ncu --clock-control none --profile-from-start off --csv --metrics $m \
                 python3 benchmarks/ssd_bytes.py --launch 64x196 64x1024 8x16384 > $OUT/ncu_ssd_bytes.txt \
                 2> $OUT/ncu_ssd_bytes.log; echo "ncu rc=$?" >> $OUT/ncu_ssd_bytes.log; tail -3 $OUT/ncu_ssd_bytes.log
               python3 benchmarks/ssd_bytes.py --ncu-csv $OUT/ncu_ssd_bytes.txt --shapes 64x196 64x1024 8x16384 \
                 --plot $OUT/ssd_bytes.png | tee $OUT/ssd_bytes.md ;;
    # the goal rows at 224 and 1024 px beside attention, steps replayed as CUDA graphs: a change's spot check
    spot) timeout 200 python3 -m infomamba.bench --mixers 'infomamba{ssm_heads: 12}' attention --resolutions 224 1024 \
            --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs \
            --out $OUT/bench_spot > $OUT/bench_spot.log 2>&1; echo "bench rc=$?" >> $OUT/bench_spot.log
          rm -f $OUT/bench_spot/bench.md; grep -v Warning $OUT/bench_spot.log | grep "^| \|rc="
          python3 benchmarks/ssm_goals.py $OUT/bench_spot/bench.csv --mixers 'infomamba{ssm_heads: 12}' ;;
    # where the SSD form's inference forward goes, at 224 and 1024 px, beside attention
    profile_inference_ssd) for px in 224 1024; do
             profiled profile_inference_ssd_$px --inference --mixers 'infomamba{ssm_heads: 12}' attention \
               --resolution $px --top 30 --top-ops 45
           done ;;
    # every goal row in one run of this code: the SSD form beside attention, mamba and timm's ViT-S at 224, 512 and
    # 1024 px and 16,384 tokens, steps replayed as CUDA graphs, the goals read from it; then the SSD form's 200-step
    # curve, the kernels against the references of the SSM op, the gate and the hash bucketing
    goals) timeout ${GOALS_GUARD:-420} python3 -m infomamba.bench --mixers 'infomamba{ssm_heads: 12}' attention mamba \
             --resolutions 224 512 1024 --lengths 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 \
             --dtype bf16 --warmup 2 --repeats 5 --train --timm --cuda-graphs --out $OUT/bench_goals \
             > $OUT/bench_goals.log 2>&1; echo "bench rc=$?" >> $OUT/bench_goals.log
           rm -f $OUT/bench_goals/bench.md; grep -v Warning $OUT/bench_goals.log | grep "^| \|rc="
           python3 benchmarks/ssm_goals.py $OUT/bench_goals/bench.csv --mixers 'infomamba{ssm_heads: 12}' \
             | tee -a $OUT/bench_goals.log
           timeout ${CURVE_GUARD:-130} python3 benchmarks/curve_equality.py --mixers 'infomamba{ssm_heads: 4}' --steps 200 \
             --reference-ops ssm_inner silu_gate hash_bucket --out $OUT > $OUT/curve_goals.log 2>&1
           echo "curve rc=$?" >> $OUT/curve_goals.log; rm -f $OUT/*.csv; tail -2 $OUT/curve_goals.log ;;
    # the inference rows (224, 512 and 1024 px, graphed and eager) of each folder in AB_BASES and of this code, each
    # beside attention in its own run; then the tests of predictions without the loss-only terms
    ab_infer) per_base infer ${AB_GUARD:-150} "${AB_BASES:-}" --mixers 'infomamba{ssm_heads: 12}' attention \
               --resolutions 224 512 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 \
               --cuda-graphs
           timeout 200 python3 -m pytest -q -p no:cacheprovider -n 8 tests/mixers/test_infomamba.py tests/test_bench.py \
             tests/tasks/test_base.py tests/layers/test_gate.py tests/layers/test_concepts.py > $OUT/tests_infer.log 2>&1
           echo "tests_infer rc=$?" >> $OUT/tests_infer.log; tail -3 $OUT/tests_infer.log ;;
    tests_graphs) timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/tasks/test_base.py \
             > $OUT/tests_graphs.log 2>&1; echo "tests_graphs rc=$?" >> $OUT/tests_graphs.log; tail -5 $OUT/tests_graphs.log ;;
    curve) timeout 150 python3 benchmarks/curve_equality.py --mixers infomamba mamba --steps 200 --out $OUT \
             > $OUT/curve.log 2>&1; echo "curve rc=$?" >> $OUT/curve.log; tail -4 $OUT/curve.log ;;
    bench) timeout 280 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 512 1024 \
             --lengths 1024 4096 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 \
             --train --timm --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
           tail -40 $OUT/bench.log ;;
    tests2) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py tests/layers/test_ssm.py \
             tests/mixers/test_compile.py > $OUT/gpu_tests2.log 2>&1; echo "tests2 rc=$?" >> $OUT/gpu_tests2.log; tail -3 $OUT/gpu_tests2.log ;;
    profile) profiled profile --mixers infomamba mamba attention --resolution 224 ;;
    profile_1024) profiled profile_1024 --mixers infomamba mamba --resolution 1024 --top 25 --top-ops 45 ;;
    profile_ssd_1024) profiled profile_ssd_1024 --mixers 'infomamba{ssm_heads: 12}' attention --resolution 1024 --top 45 \
             --top-ops 45 ;;
    profile_16k) profiled profile_16k --mixers infomamba attention --length 16384 --batch 8 --top 25 --top-ops 45 ;;
    profile_inference) for size in "1024 --resolution 1024" "224 --resolution 224" "16k --length 16384 --batch 8"; do
             read -r name shape <<< "$size"
             profiled profile_inference_$name --inference --mixers infomamba mamba attention $shape --top 25 --top-ops 40
           done ;;
    curve32) timeout 150 python3 benchmarks/curve_equality.py --mixers infomamba --steps 200 --dtype fp32 --out $OUT \
             > $OUT/curve32.log 2>&1; echo "curve32 rc=$?" >> $OUT/curve32.log; tail -2 $OUT/curve32.log ;;
    compile_small) timeout 300 python3 -m infomamba.bench --mixers infomamba attention --resolutions 224 1024 \
             --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 --train --compile \
             --out $OUT/bench_compile_small > $OUT/bench_compile_small.log 2>&1
           echo "compile rc=$?" >> $OUT/bench_compile_small.log; grep -v Warning $OUT/bench_compile_small.log | tail -12 ;;
    curve_ssm) timeout 75 python3 benchmarks/curve_equality.py --mixers infomamba --steps 200 --reference-ops ssm_inner \
             --out $OUT > $OUT/curve_ssm.log 2>&1; echo "curve_ssm rc=$?" >> $OUT/curve_ssm.log; tail -2 $OUT/curve_ssm.log ;;
    final) timeout 370 python3 -m infomamba.bench --mixers attention infomamba mamba --resolutions 224 1024 \
             --lengths 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 \
             --warmup 2 --repeats 5 --train --timm --compile --compile-mixers infomamba \
             --out $OUT/bench_final > $OUT/bench_final.log 2>&1; echo "final rc=$?" >> $OUT/bench_final.log
           grep -v Warning $OUT/bench_final.log | tail -24 ;;
    compile) timeout 420 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 512 1024 \
             --lengths 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 3 --repeats 10 \
             --train --compile --out $OUT/bench_compile > $OUT/bench_compile.log 2>&1; echo "compile rc=$?" >> $OUT/bench_compile.log
           tail -40 $OUT/bench_compile.log ;;
    # the goal rows under torch.compile (the issue's "--compile rows"): the SSD form and attention, eager, replayed as
    # CUDA graphs and compiled with reduce-overhead, at COMPILE_RES (default 224 512: a call each for 224 512 and 1024);
    # COMPILE_MORE adds --mixers entries and flags (the issue's full set, a call a size: 'mamba infomamba --timm')
    compile_goals) goal_bench $part --mixers 'infomamba{ssm_heads: 12}' attention ${COMPILE_MORE:-} \
             --resolutions ${COMPILE_RES:-224 512} --batch 64 ;;
    # the SSD form compiled with reduce-overhead (and eager, graphed) at COMPILE_RES, one process per entry of REF_SETS:
    # "kernels" (every Triton kernel), or op folders sent to their PyTorch references (INFOMAMBA_KERNELS=reference:...),
    # which Inductor can fuse into the glue around them where it cannot see into a custom op
    compile_refs) for refs in ${REF_SETS:-kernels silu_gate silu_gate,concept_assign,hash_bucket}; do
             log=$OUT/bench_refs_${refs//,/-}.log; echo "== INFOMAMBA_KERNELS=reference:$refs" > $log
             INFOMAMBA_KERNELS=$([ $refs = kernels ] || echo reference:$refs) timeout ${REFS_GUARD:-200} python3 -m \
               infomamba.bench --mixers 'infomamba{ssm_heads: 12}' --resolutions ${COMPILE_RES:-224} --batch 64 \
               --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs --compile \
               --compile-modes reduce-overhead --out $OUT/bench_refs_${refs//,/-} >> $log 2>&1
             echo "rc=$?" >> $log; rm -f $OUT/bench_refs_${refs//,/-}/bench.md
             grep -v Warning $log | grep "^==\|rc=\|^| \|path"
           done ;;
    # the 16,384-token goal row under torch.compile (SSD form, attention, mamba; eager, graphed, reduce-overhead); with
    # COMPILE_RES='224 384 512 1024' the image sizes too, which checks the bench's reset after each model's rows (before
    # it, attention's 1024 px step ran out of memory after InfoMamba's compiled sizes)
    compile_lengths) goal_bench $part --mixers 'infomamba{ssm_heads: 12}' attention mamba \
             --resolutions ${COMPILE_RES:-} --lengths 16384 --max-tokens-attention 16384 ;;
    # mamba's compiled 16,384-token row beside the SSD form's (compile_lengths's guard stops before it with attention)
    compile_lengths_mamba) goal_bench $part --mixers 'infomamba{ssm_heads: 12}' mamba --resolutions --lengths 16384 ;;
    # what each bench row starts with allocated, by the lines that allocated it and what holds it (the bench's rows
    # at 224 px and 16,384 tokens, InfoMamba then attention, eager and graphed)
    held_memory) timeout ${HELD_GUARD:-200} python3 benchmarks/held_memory.py --mixers 'infomamba{ssm_heads: 12}' \
             attention --resolutions 224 --lengths 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 \
             --dtype bf16 --warmup 2 --repeats 3 --train --cuda-graphs --out $OUT/bench_$part > $OUT/$part.log 2>&1
           echo "rc=$?" >> $OUT/$part.log; rm -f $OUT/bench_$part/bench.md
           grep -v Warning $OUT/$part.log | grep "^==\|MiB\|rc=" | cut -c1-180 | head -90
           python3 benchmarks/ssm_goals.py $OUT/bench_$part/bench.csv --mixers 'infomamba{ssm_heads: 12}' | grep peak ;;
    # where each row's training peak goes (`benchmarks/peak_memory.py`): InfoMamba and attention at PEAK_RES px, eager
    # and compiled with reduce-overhead, the live blocks at the warm-up steps' peak by the lines that allocated them
    peak_memory) timeout ${PEAK_GUARD:-420} python3 benchmarks/peak_memory.py --mixers 'infomamba{ssm_heads: 12}' \
             attention --resolutions ${PEAK_RES:-224} --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 \
             --repeats 3 --train --compile --compile-modes reduce-overhead --out $OUT/bench_$part > $OUT/$part.log 2>&1
           echo "rc=$?" >> $OUT/$part.log; rm -f $OUT/bench_$part/bench.md
           grep -v Warning $OUT/$part.log | grep "^==\|MiB\|rc=\|train_first_peak" | cut -c1-400 | head -120 ;;
    # the Mamba-1 form compiled with reduce-overhead at 1024 px beside attention, three timed steps and the slowest of
    # them; perf_hints logs a graph that reduce-overhead declines to replay ("cudagraph" in the log)
    m1_compiled_1024) TORCH_LOGS=recompiles,perf_hints timeout ${M1_GUARD:-300} python3 -m infomamba.bench --mixers \
             infomamba attention --resolutions 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 \
             --train --compile --compile-modes reduce-overhead --out $OUT/bench_$part > $OUT/bench_$part.log 2>&1
           echo "bench rc=$?" >> $OUT/bench_$part.log; rm -f $OUT/bench_$part/bench.md
           grep -v Warning $OUT/bench_$part.log | grep "rc=\|^| \|Recompiling\|out of memory" | tail -20
           grep -i cudagraph $OUT/bench_$part.log | sort | uniq -c | head -20
           python3 benchmarks/ssm_goals.py $OUT/bench_$part/bench.csv | tail -4 ;;
    ssd) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py tests/ops/test_ssd_scan.py \
             > $OUT/tests_ssd.log 2>&1; echo "tests_ssd rc=$?" >> $OUT/tests_ssd.log; tail -3 $OUT/tests_ssd.log
         timeout 360 python3 benchmarks/bench_ssd.py --shapes 64x196 64x1024 16x4096 8x16384 --chunks 32 64 \
             --configs ${SSD_CONFIGS:-64,4,2/8,1 64,8,2/4,1 32,4,2/8,2 16,2,2/4,2 64,8,1/8,1 32,4,1/4,1} > $OUT/bench_ssd.log 2>&1
         echo "bench_ssd rc=$?" >> $OUT/bench_ssd.log; cat $OUT/bench_ssd.log ;;
    ssd_model) timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner_ssd_triton.py \
             tests/ops/test_ssm_inner_ssd.py tests/mixers/test_contract.py tests/layers/test_ssm.py \
             > $OUT/tests_ssd_model.log 2>&1; echo "tests_ssd_model rc=$?" >> $OUT/tests_ssd_model.log
           tail -3 $OUT/tests_ssd_model.log
           timeout 100 python3 benchmarks/curve_equality.py --mixers 'infomamba{ssm_heads: 4}' --steps 200 --out $OUT \
             > $OUT/curve_ssd.log 2>&1; echo "curve_ssd rc=$?" >> $OUT/curve_ssd.log; tail -2 $OUT/curve_ssd.log
           timeout 330 python3 -m infomamba.bench --mixers infomamba 'infomamba{ssm_heads: 12}' attention mamba \
             --resolutions 224 512 1024 --lengths 1024 4096 16384 --max-tokens-attention 16384 --batch 64 --dim 384 \
             --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --timm --cuda-graphs --out $OUT/bench_ssd_model \
             > $OUT/bench_ssd_model.log 2>&1; echo "bench rc=$?" >> $OUT/bench_ssd_model.log
           rm -f $OUT/curve_equality_bf16.csv $OUT/bench_ssd_model/bench.md; grep -v Warning $OUT/bench_ssd_model.log | tail -45 ;;
    ssd_accuracy) timeout 170 python3 benchmarks/curve_equality.py --mixers 'infomamba{ssm_heads: 4}' --steps 200 \
             --reference-ops ssm_inner --out $OUT > $OUT/curve_ssd.log 2>&1 &
           timeout ${SSD_GUARD:-420} python3 benchmarks/reproduce.py --table ssd_fashion_mnist --jobs 2 --out /tmp/ssd_fmnist \
             -- --data.root .devdata/fashion-mnist --data.num_workers=6 --trainer.max_epochs=${EPOCHS_ssd:-10} \
             > $OUT/ssd_fmnist.log 2>&1; echo "ssd_fmnist rc=$?" >> $OUT/ssd_fmnist.log
           wait; echo "curve_ssd done" >> $OUT/curve_ssd.log; tail -3 $OUT/curve_ssd.log
           cp /tmp/ssd_fmnist/table.md /tmp/ssd_fmnist/results.json /tmp/ssd_fmnist/curves.png $OUT/ 2>/dev/null
           rm -f $OUT/curve_equality_bf16_ssm_inner.csv; tail -8 $OUT/ssd_fmnist.log; cat $OUT/table.md ;;
    ssd_profile) timeout 240 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py \
             tests/ops/test_ssd_scan.py tests/ops/test_ssm_inner_ssd_triton.py > $OUT/tests_ssd.log 2>&1
           echo "tests_ssd rc=$?" >> $OUT/tests_ssd.log; tail -3 $OUT/tests_ssd.log
           timeout 200 python3 benchmarks/bench_ssd.py --shapes 64x196 64x1024 16x4096 8x16384 --no-reference \
             --profile --reps-ms 60 > $OUT/bench_ssd_profile.log 2>&1; echo "bench_ssd rc=$?" >> $OUT/bench_ssd_profile.log
           cat $OUT/bench_ssd_profile.log
           profiled profile_ssd_1024 --mixers 'infomamba{ssm_heads: 12}' attention --resolution 1024 --top 30 --top-ops 45
           profiled profile_ssd_224 --mixers 'infomamba{ssm_heads: 12}' attention --resolution 224 --top 30 --top-ops 45 ;;
    host_profile) profiled host_224 --mixers 'infomamba{ssm_heads: 12}' infomamba mamba attention --resolution 224 \
             --host 20 --top 45 ;;
    fused_glue) timeout 240 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py \
             tests/ops/test_ssd_scan.py tests/ops/test_ssm_inner_ssd_triton.py tests/ops/test_ssm_inner_ssd.py \
             tests/ops/test_silu_gate_triton.py tests/layers/test_gate.py tests/layers/test_ssm.py \
             tests/mixers/test_infomamba.py tests/mixers/test_compile.py \
             > $OUT/tests_fused_glue.log 2>&1; echo "tests_fused_glue rc=$?" >> $OUT/tests_fused_glue.log
           tail -3 $OUT/tests_fused_glue.log
           timeout 150 python3 benchmarks/bench_ssd.py --shapes 64x196 64x1024 16x4096 8x16384 --profile \
             > $OUT/bench_ssd_fused.log 2>&1; echo "bench_ssd rc=$?" >> $OUT/bench_ssd_fused.log
           grep -v "^  [ 0-9]\|_warn\|^$" $OUT/bench_ssd_fused.log ;;
    # the fused and reference paths' 200-step curves, both SSM forms (at d5651f7 the two took more than 150 s)
    curve_glue) timeout 330 python3 benchmarks/curve_equality.py --mixers infomamba 'infomamba{ssm_heads: 4}' \
             --steps 200 --reference-ops ssm_inner silu_gate --out $OUT > $OUT/curve_fused_glue.log 2>&1
           echo "curve rc=$?" >> $OUT/curve_fused_glue.log; rm -f $OUT/*.csv; tail -4 $OUT/curve_fused_glue.log ;;
    ssd_bench) timeout 560 python3 -m infomamba.bench --mixers infomamba 'infomamba{ssm_heads: 12}' attention mamba \
             --resolutions 224 512 1024 --lengths 1024 4096 16384 --max-tokens-attention 16384 --batch 64 --dim 384 \
             --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --timm --cuda-graphs --out $OUT/bench_ssd_bench \
             > $OUT/bench_ssd_bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench_ssd_bench.log
           rm -f $OUT/bench_ssd_bench/bench.md; grep -v Warning $OUT/bench_ssd_bench.log | tail -45
           python3 benchmarks/ssm_goals.py $OUT/bench_ssd_bench/bench.csv --mixers infomamba 'infomamba{ssm_heads: 12}' ;;
    # the SSD form through the whole Fashion-MNIST recipe as its Mamba-1 numbers were made (8-minute guard, one
    # seed a call, SEED=0/1/2; carry .devdata/fashion-mnist): the evidence the SSD-as-default question waits for
    ssd_recipe) timeout 575 python3 benchmarks/reproduce.py --table ssd_fashion_mnist --rows infomamba_ssd \
             --seeds ${SEED:-0} --jobs 1 --out /tmp/ssd_recipe -- --data.root .devdata/fashion-mnist \
             --data.num_workers=12 --trainer.max_time=00:00:08:05 > $OUT/ssd_recipe.log 2>&1
           echo "ssd_recipe rc=$?" >> $OUT/ssd_recipe.log
           cp /tmp/ssd_recipe/table.md /tmp/ssd_recipe/results.json $OUT/ 2>/dev/null; tail -4 $OUT/ssd_recipe.log ;;
    # the SSD form compiled at 224 px, both compile modes, beside attention (a284d51: 353 s of the call)
    compile_ssd) TORCH_LOGS=recompiles timeout 470 python3 -m infomamba.bench \
             --mixers attention 'infomamba{ssm_heads: 12}' --resolutions 224 --batch 64 --dim 384 --depth 12 \
             --dtype bf16 --warmup 3 --repeats 10 --train --compile --compile-modes reduce-overhead default \
             --out $OUT/bench_compile_ssd > $OUT/bench_compile_ssd.log 2>&1
           echo "bench rc=$?" >> $OUT/bench_compile_ssd.log
           grep -v Warning $OUT/bench_compile_ssd.log | grep "rc=\|^| " | tail -8
           python3 benchmarks/ssm_goals.py $OUT/bench_compile_ssd/bench.csv --mixers 'infomamba{ssm_heads: 12}' ;;
    quicktests) timeout 120 python3 -m pytest -q -p no:cacheprovider tests/ops/test_concept_assign_triton.py \
             tests/ops/test_causal_conv_triton.py > $OUT/quicktests.log 2>&1; echo "quicktests rc=$?" >> $OUT/quicktests.log
           tail -3 $OUT/quicktests.log ;;
    # what the GPU runs of the conv walk backward (9c92d94) did not reach (its K = 1..8 walk, the strided input of the
    # fused op: first), then the rest of its selection (at d64a070 240 s reached 14 of it: each swept config compiles
    # for about 15 s); then the scan tests after its autotuner-config ones
    tests_walk) timeout 180 python3 -m pytest -q -p no:cacheprovider tests/ops/test_causal_conv_triton.py \
             -k "every_tap or strided" > $OUT/tests_walk_first.log 2>&1
           echo "tests_walk_first rc=$?" >> $OUT/tests_walk_first.log; tail -3 $OUT/tests_walk_first.log
           timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py \
             tests/ops/test_causal_conv_triton.py -k "ssm_inner or swept or causality or non_contiguous" \
             > $OUT/tests_walk.log 2>&1; echo "tests_walk rc=$?" >> $OUT/tests_walk.log; tail -3 $OUT/tests_walk.log
           timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_selective_scan_triton.py \
             -k "not every_config and not matches_reference" > $OUT/tests_scan_rest.log 2>&1
           echo "tests_scan_rest rc=$?" >> $OUT/tests_scan_rest.log; tail -3 $OUT/tests_scan_rest.log ;;
    convsweep) timeout 120 python3 benchmarks/bench_conv.py --sweep > $OUT/conv_sweep.log 2>&1
           echo "convsweep rc=$?" >> $OUT/conv_sweep.log; cat $OUT/conv_sweep.log ;;
    graphs) compiled graphs default reduce-overhead ;;
    # graphs at 6a822f1 reached only the default-mode InfoMamba rows in 570 s (compiling takes most of it):
    # the CUDA-graph rows alone, attention first
    graphs_ro) compiled graphs_ro reduce-overhead ;;
    profile_compiled) timeout 150 python3 benchmarks/profile_step.py --mixers infomamba --resolution 224 --compile \
             > $OUT/profile_compiled.log 2>&1; echo "profile rc=$?" >> $OUT/profile_compiled.log
           grep "^==" -A 22 $OUT/profile_compiled.log ;;
    # tests_inner at 29e0a5e (with the glue files below) had passed 136 tests when 200 s stopped it
    tests_inner) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py \
             tests/ops/test_causal_conv_triton.py > $OUT/tests_inner.log 2>&1
           echo "tests_inner rc=$?" >> $OUT/tests_inner.log
           tail -3 $OUT/tests_inner.log ;;
    # the gate's and Eq. 8's kernels with their layers: 55 passed in about 80 s at ac13766
    tests_fused) timeout 90 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py -k fused_matches \
             tests/tasks/image/test_image_frontend.py > $OUT/tests_fused.log 2>&1
           echo "tests_fused rc=$?" >> $OUT/tests_fused.log; tail -3 $OUT/tests_fused.log ;;
    # the backward's chunk transfers launched with the forward's layout (33b9448): the chunked-scan tests, the 1-D row
    transfers_16k) timeout 80 python3 -m pytest -q -p no:cacheprovider tests/ops/test_selective_scan_triton.py \
             -k "time_chunk or transfers" > $OUT/tests_transfers.log 2>&1
           echo "tests_transfers rc=$?" >> $OUT/tests_transfers.log; tail -2 $OUT/tests_transfers.log
           timeout 100 python3 -m infomamba.bench --mixers infomamba --resolutions --lengths 16384 --dim 384 --depth 12 \
             --dtype bf16 --warmup 2 --repeats 5 --train --out $OUT/bench_16k > $OUT/bench_16k.log 2>&1
           echo "bench_16k rc=$?" >> $OUT/bench_16k.log; grep -v Warning $OUT/bench_16k.log | grep "rc=\|^| " ;;
    # h saved as its recipe: the mixer's own test and the whole-step CUDA-graph capture with it
    tests_recipe) timeout 150 python3 -m pytest -q -p no:cacheprovider tests/layers/test_recompute.py \
             tests/mixers/test_infomamba.py tests/test_cuda_graphs.py > $OUT/tests_recipe.log 2>&1
           echo "tests_recipe rc=$?" >> $OUT/tests_recipe.log; tail -3 $OUT/tests_recipe.log ;;
    tests_glue) timeout 150 python3 -m pytest -q -p no:cacheprovider tests/ops/test_silu_gate_triton.py \
             tests/layers/test_gate.py tests/ops/test_hash_bucket_triton.py tests/ops/test_hash_bucket.py \
             tests/layers/test_concepts.py > $OUT/tests_glue.log 2>&1; echo "tests_glue rc=$?" >> $OUT/tests_glue.log
           tail -3 $OUT/tests_glue.log ;;
    bench_eager) timeout 330 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 1024 \
             --lengths 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 \
             --repeats 5 --train --timm --cuda-graphs --out $OUT/bench_eager > $OUT/bench_eager.log 2>&1
           echo "bench_eager rc=$?" >> $OUT/bench_eager.log; grep -v Warning $OUT/bench_eager.log | grep "rc=\|^| " ;;
    bench_ro) TORCH_LOGS=perf_hints,recompiles timeout 240 python3 -m infomamba.bench --mixers infomamba attention \
             --resolutions 224 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 6 --repeats 10 --train \
             --compile --compile-modes reduce-overhead --out $OUT/bench_ro > $OUT/bench_ro.log 2>&1
           echo "bench_ro rc=$?" >> $OUT/bench_ro.log; grep -v Warning $OUT/bench_ro.log | grep "rc=\|^| \|skip\|cudagraph" | head -30 ;;
    # what changed in the kernels and the SSM layer since the last GPU tests (d5651f7): the Mamba-1 scan's dB and dC
    # side by side (4b4b335), the projections' weights cast before the op (a828a54), the causal exclusive prefix
    tests_since) timeout 500 python3 -m pytest -q -p no:cacheprovider tests/ops/test_selective_scan_triton.py \
             tests/layers/test_ssm.py tests/ops/test_ssm_inner.py tests/mixers/test_infomamba.py \
             tests/mixers/test_compile.py > $OUT/tests_since.log 2>&1; echo "tests_since rc=$?" >> $OUT/tests_since.log
           tail -3 $OUT/tests_since.log ;;
    # what changed after bfc024b without a GPU run: the mixer's Eq. 12/13 and MI-hash terms in fp32 under autocast
    tests_mixers) timeout 400 python3 -m pytest -q -p no:cacheprovider tests/mixers/test_infomamba.py \
             tests/mixers/test_compile.py tests/layers/test_concepts.py tests/layers/test_precision.py \
             tests/test_losses.py tests/test_cuda_graphs.py > $OUT/tests_mixers.log 2>&1
           echo "tests_mixers rc=$?" >> $OUT/tests_mixers.log; tail -3 $OUT/tests_mixers.log ;;
    tests_scan) timeout 300 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py \
             tests/ops/test_selective_scan_triton.py > $OUT/tests_scan.log 2>&1; echo "tests_scan rc=$?" >> $OUT/tests_scan.log
           tail -3 $OUT/tests_scan.log ;;
    scan_chunks) timeout 200 python3 benchmarks/bench_scan.py --shapes 64x196 64x1024 16x4096 8x16384 \
             --dtypes bfloat16 --reps-ms 100 --baseline .devdata/scan_triton_7b75a56.py > $OUT/scan_chunks.log 2>&1
           echo "scan_chunks rc=$?" >> $OUT/scan_chunks.log; grep -v "reference\|sequential" $OUT/scan_chunks.log ;;
    sweep_fused) timeout 400 python3 benchmarks/bench_scan.py --sweep --fused > $OUT/sweep_fused.log 2>&1
           echo "sweep_fused rc=$?" >> $OUT/sweep_fused.log; grep "rc=\|^| " $OUT/sweep_fused.log | head -60 ;;
    bench_mem) timeout 200 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 512 1024 \
             --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --timm --out $OUT/bench_mem \
             > $OUT/bench_mem.log 2>&1; echo "bench rc=$?" >> $OUT/bench_mem.log; grep -v Warning $OUT/bench_mem.log | grep "rc=\|^| " ;;
    bench_full) timeout 330 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 512 1024 \
             --lengths 1024 4096 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 \
             --warmup 2 --repeats 5 --train --timm --out $OUT/bench_full > $OUT/bench_full.log 2>&1
           echo "bench_full rc=$?" >> $OUT/bench_full.log; grep -v Warning $OUT/bench_full.log | grep "rc=\|^| " ;;
    # every goal row of the issue in one run: 224/512/1024 px and the 1-D sweep, eager and CUDA-graph rows, timm
    bench_all) timeout 560 python3 -m infomamba.bench --mixers infomamba attention mamba --resolutions 224 512 1024 \
             --lengths 1024 4096 16384 --max-tokens-attention 16384 --batch 64 --dim 384 --depth 12 --dtype bf16 \
             --warmup 2 --repeats 5 --train --timm --cuda-graphs --out $OUT/bench_all > $OUT/bench_all.log 2>&1
           echo "bench_all rc=$?" >> $OUT/bench_all.log; grep -v Warning $OUT/bench_all.log | grep "rc=\|^| " ;;
    # the issue's scan ratio at its own shape (B64 L1024, d 768): the kernel alone, autotuned, fwd and fwd+bwd;
    # SCAN_BASELINE=<an earlier kernel file> times it beside (`bench_scan.py --baseline`)
    scan_ratio) timeout 200 python3 benchmarks/bench_scan.py --shapes 64x1024 16x4096 8x16384 --dtypes bfloat16 \
             ${SCAN_BASELINE:+--baseline $SCAN_BASELINE} > $OUT/scan_ratio.log 2>&1
           echo "scan_ratio rc=$?" >> $OUT/scan_ratio.log
           grep "rc=\|^| \|^- " $OUT/scan_ratio.log | grep -v "reference\|sequential" ;;
    # the chunked backward (transfers from its ADJOINT_ONLY launch): its GPU tests, then the 1-D rows against attention
    chunked_bwd) timeout 240 python3 -m pytest -q -p no:cacheprovider tests/ops/test_selective_scan_triton.py \
             tests/ops/test_ssm_inner.py -k "time_chunk or strided or matches_reference or long_sequence" \
             > $OUT/tests_chunked.log 2>&1
           echo "tests_chunked rc=$?" >> $OUT/tests_chunked.log; tail -3 $OUT/tests_chunked.log
           timeout 200 python3 -m infomamba.bench --mixers infomamba attention --resolutions --lengths 4096 16384 \
             --max-tokens-attention 16384 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train \
             --out $OUT/bench_1d > $OUT/bench_1d.log 2>&1; echo "bench_1d rc=$?" >> $OUT/bench_1d.log
           grep -v Warning $OUT/bench_1d.log | grep "rc=\|^| " ;;
    # what the concept filter costs: the SSD form with and without it (variant no_filter: a plain selective SSM at
    # InfoMamba's widths) beside attention, eager and graphed, then one profiled 224 px step of each
    attribution) timeout 330 python3 -m infomamba.bench --mixers 'infomamba{ssm_heads: 12}' \
             'infomamba{ssm_heads: 12, variant: no_filter}' attention --resolutions 224 512 1024 --batch 64 --dim 384 \
             --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs --out $OUT/bench_attribution \
             > $OUT/bench_attribution.log 2>&1; echo "bench rc=$?" >> $OUT/bench_attribution.log
           rm -f $OUT/bench_attribution/bench.md; grep -v Warning $OUT/bench_attribution.log | grep "rc=\|^| "
           profiled profile_attribution_224 --mixers 'infomamba{ssm_heads: 12}' \
             'infomamba{ssm_heads: 12, variant: no_filter}' attention --resolution 224 --top 40 --top-ops 60 ;;
    # the readout gate's backward in a runtime loop of small tiles (72 registers, from 238): its GPU tests, the gate
    # kernels alone beside the kernel file before it (carry .devdata/silu_gate_triton_01d2ffd.py, made by
    # `git show 01d2ffd:src/infomamba/ops/silu_gate/triton.py`), then the SSD form and attention, eager and graphed
    gate) timeout 120 python3 -m pytest -q -p no:cacheprovider tests/ops/test_silu_gate_triton.py \
             tests/layers/test_gate.py > $OUT/tests_gate.log 2>&1; echo "tests_gate rc=$?" >> $OUT/tests_gate.log; tail -2 $OUT/tests_gate.log
           timeout 90 python3 benchmarks/bench_gate.py --baseline .devdata/silu_gate_triton_01d2ffd.py \
             > $OUT/bench_gate.log 2>&1; echo "bench_gate rc=$?" >> $OUT/bench_gate.log; cat $OUT/bench_gate.log
           timeout 200 python3 -m infomamba.bench --mixers 'infomamba{ssm_heads: 12}' attention --resolutions 224 1024 \
             --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 --train --cuda-graphs \
             --out $OUT/bench_gate_model > $OUT/bench_gate_model.log 2>&1
           echo "bench rc=$?" >> $OUT/bench_gate_model.log
           rm -f $OUT/bench_gate_model/bench.md; grep -v Warning $OUT/bench_gate_model.log | grep "rc=\|^| " ;;
    # the SSD chunk walks at their H100-picked launch (FWD_CONFIG (64, 4, 3), 7886440): the kernels' and the fused
    # op's GPU tests (not run at this launch yet), then the old and new launch on this GPU (an H200 never timed them)
    walks) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py \
             tests/ops/test_ssm_inner_ssd_triton.py > $OUT/tests_walks.log 2>&1; echo "tests_walks rc=$?" >> $OUT/tests_walks.log
           tail -2 $OUT/tests_walks.log
           timeout 150 python3 benchmarks/bench_ssd.py --shapes 64x4096 8x16384 --no-reference --reps-ms 60 \
             --configs 32,4,2/4,2 32,4,3/4,2 64,4,3/4,2 > $OUT/bench_walks.log 2>&1; echo "rc=$?" >> $OUT/bench_walks.log
           grep "SSD\|rc=" $OUT/bench_walks.log ;;
    # both scan directions as one op (e38b8d2): its GPU tests and those of the kernels it changed (durations listed)
    pair) timeout 100 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/ops/test_ssm_inner_pair.py \
             tests/layers/test_ssm.py > $OUT/tests_pair.log 2>&1; echo "tests_pair rc=$?" >> $OUT/tests_pair.log
           grep "passed\|failed\|rc=\|Error" $OUT/tests_pair.log
           timeout 200 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/ops/test_ssm_inner_ssd_triton.py \
             tests/ops/test_ssm_inner.py tests/mixers/test_infomamba.py > $OUT/tests_pair_more.log 2>&1
           echo "tests_pair_more rc=$?" >> $OUT/tests_pair_more.log; grep "passed\|failed\|rc=" $OUT/tests_pair_more.log ;;
    # the SSD kernels alone (benchmarks/bench_ssd.py at 224 and 1024 px's shapes, each kernel's GPU time) on the code
    # of .devdata/base (see ab_base), of each src folder's parent in SSD_VARIANTS (other kernel files to compare,
    # e.g. .devdata/loopB), then on this code at its launch and SSD_CONFIGS's; one log; then the SSD kernels' GPU tests
    ssd_ab) for src in .devdata/base ${SSD_VARIANTS:-} .; do
             echo "== $src $(cat $src/COMMIT 2>/dev/null)" >> $OUT/ssd_ab.log
             PYTHONPATH=$([ $src = . ] || echo $PWD/$src/src:)$PYTHONPATH timeout 150 python3 benchmarks/bench_ssd.py \
               --shapes 64x196 64x4096 --no-reference --reps-ms 60 --profile $([ $src = . ] && echo ${SSD_CONFIGS:-}) \
               >> $OUT/ssd_ab.log 2>&1; echo "rc=$?" >> $OUT/ssd_ab.log
           done
           grep "^==\|SSD Triton\|GPU ms\|_ssd_bwd_chunk\|sum\|rc=" $OUT/ssd_ab.log
           timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssd_scan_triton.py \
             tests/ops/test_ssm_inner_ssd_triton.py tests/ops/test_ssm_inner_pair.py > $OUT/tests_ssd_ab.log 2>&1
           echo "tests rc=$?" >> $OUT/tests_ssd_ab.log; grep "passed\|failed\|rc=" $OUT/tests_ssd_ab.log ;;
    # the injection backward forming x_proj's input gradient itself: its GPU tests and those of the ops around it,
    # then the kernel alone against .devdata/base's (matmul + kernel) and at other blocks
    injection) timeout 240 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py \
             tests/ops/test_ssm_inner_pair.py tests/ops/test_ssm_inner_ssd_triton.py tests/layers/test_ssm.py \
             > $OUT/tests_injection.log 2>&1; echo "tests rc=$?" >> $OUT/tests_injection.log
           grep "passed\|failed\|rc=" $OUT/tests_injection.log
           timeout 100 python3 benchmarks/bench_injection.py --rows 64x196 64x4096 \
             --baseline .devdata/base/src/infomamba/ops/ssm_inner/triton.py \
             --configs 16,8192,8,4 32,4096,4,4 64,4096,2,4 16,16384,8,8 32,8192,4,8 > $OUT/bench_injection.log 2>&1
           echo "rc=$?" >> $OUT/bench_injection.log; cat $OUT/bench_injection.log ;;
    # the injection kernel at its shipped blocks: its GPU tests, and timed alone against .devdata/base's
    injection_final) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_ssm_inner.py \
             tests/ops/test_ssm_inner_pair.py > $OUT/tests_injection_final.log 2>&1
           echo "tests rc=$?" >> $OUT/tests_injection_final.log; grep "passed\|failed\|rc=" $OUT/tests_injection_final.log
           timeout 60 python3 benchmarks/bench_injection.py --rows 64x196 64x4096 \
             --baseline .devdata/base/src/infomamba/ops/ssm_inner/triton.py > $OUT/bench_injection_final.log 2>&1
           echo "rc=$?" >> $OUT/bench_injection_final.log; cat $OUT/bench_injection_final.log ;;
    # the pooled readout's gradient inside the gate's backward kernel (r_pool, 699e16b): the GPU tests of the gate, the
    # concept filter and the InfoMamba mixer
    pools) timeout 200 python3 -m pytest -q -p no:cacheprovider tests/ops/test_silu_gate_triton.py tests/layers/test_gate.py \
             tests/layers/test_concepts.py tests/mixers/test_infomamba.py > $OUT/tests_pools.log 2>&1
           echo "tests rc=$?" >> $OUT/tests_pools.log; grep "passed\|failed\|rc=" $OUT/tests_pools.log ;;
    # the SSD form's 200-step curve, fused against reference (curve_glue's second half)
    curve_ssd) timeout 190 python3 benchmarks/curve_equality.py --mixers 'infomamba{ssm_heads: 4}' --steps 200 \
             --reference-ops ssm_inner silu_gate --out $OUT > $OUT/curve_ssd.log 2>&1
           echo "curve rc=$?" >> $OUT/curve_ssd.log; rm -f $OUT/*.csv; tail -2 $OUT/curve_ssd.log ;;
    # a change's before and after, one process after the other on one machine: the SSD form and mamba (AB_MIXERS in
    # its place: others, or none with AB_MIXERS=" ") on the code of an earlier commit (carry .devdata/base, made by
    # `c=<commit>; mkdir -p .devdata/base && git archive $c src configs | tar -x -C .devdata/base &&
    # echo $c > .devdata/base/COMMIT`; configs for the size-matched rows), then on this code; AB_FLAGS adds bench
    # options to both (AB_FLAGS=--aux-loss: a step that optimises Eq. 14, as a fit does; the base needs 30a3a42 or later);
    # AB_BASE=<another such folder> (e.g. this code with a commit reverted) is timed as the base instead
    ab_base|ab_new) base=${AB_BASE:-.devdata/base}; src=$([ $part = ab_base ] && echo $PWD/$base/src:)
           PYTHONPATH=$src$PYTHONPATH python3 -c "import infomamba; print(infomamba.__file__)"
           [ $part = ab_base ] && echo "base $base, commit $(cat $base/COMMIT)"
           PYTHONPATH=$src$PYTHONPATH timeout 290 python3 -m infomamba.bench --mixers 'infomamba{ssm_heads: 12}' \
             ${AB_MIXERS-mamba} --resolutions 224 1024 --batch 64 --dim 384 --depth 12 --dtype bf16 --warmup 2 --repeats 5 \
             --train --cuda-graphs ${AB_FLAGS:-} --out $OUT/bench_$part > $OUT/bench_$part.log 2>&1
           echo "bench rc=$?" >> $OUT/bench_$part.log
           rm -f $OUT/bench_$part/bench.md; grep -v Warning $OUT/bench_$part.log | grep "rc=\|^| " ;;
  esac
done
