# The fused conv + SiLU kernel on the GPU: its tests (bf16 + fp32) and the concept-assignment tests,
# its benchmark beside the PyTorch reference, the encoder benchmark with all three kernels on, and a
# short Fashion-MNIST fit through the CLI (training end to end on the kernels). Carry .whl, .devdata.
source benchmarks/gpu/setup.sh
timeout 150 python3 -m pytest tests/kernels/test_causal_conv.py tests/kernels/test_concept_assign.py -q -x -p no:cacheprovider > $OUT/kernel_tests.log 2>&1; echo "tests rc=$?" >> $OUT/kernel_tests.log
timeout 100 python3 benchmarks/bench_conv.py > $OUT/bench_conv.log 2>&1; echo "bench_conv rc=$?" >> $OUT/bench_conv.log
timeout 120 infomamba bench --mixers infomamba mamba attention vmamba --resolutions 224 512 1024 --batch 64 --dim 384 \
  --depth 12 --dtype bf16 --warmup 3 --repeats 10 --out $OUT/bench > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
timeout 150 infomamba fit --task image --config configs/fashion_mnist.yaml --data.root .devdata/fm --data.num_workers 6 \
  --trainer.max_epochs 2 --trainer.enable_progress_bar=false --trainer.default_root_dir runs/conv_fit > $OUT/fit.log 2>&1; echo "fit rc=$?" >> $OUT/fit.log
tail -4 $OUT/kernel_tests.log; grep "^|\|rc=" $OUT/bench_conv.log; grep "^|\|rc=" $OUT/bench.log; grep "path\|epoch\|rc=\|Error" $OUT/fit.log | cut -c1-400
