# The shipped offline speech recipe trained with each op on its Triton kernel or on its PyTorch reference, side
# by side on one GPU (same seed, data, config; only INFOMAMBA_KERNELS differs), to find which op a training
# failure comes from. Carry .whl and .devdata/speech (train-synth, test-synth, meta).
# Usage: [EPOCHS=6] [VARIANTS="triton reference:ssm_inner reference:concept_assign reference"] \
#        bash benchmarks/gpu/speech_kernel_ab.sh
source benchmarks/gpu/setup.sh
RUNS=${RUNS:-/tmp/speech_ab}
for variant in ${VARIANTS:-triton reference:ssm_inner reference:concept_assign reference}; do
  name=${variant//[:,]/_}
  [ $variant = triton ] && kernels= || kernels=$variant
  INFOMAMBA_KERNELS=$kernels timeout ${FIT_TIMEOUT:-420} python3 -m infomamba.cli fit --task asr \
    --config configs/speech_offline.yaml --data.root .devdata/speech --data.num_workers 3 \
    --trainer.max_epochs ${EPOCHS:-6} --trainer.enable_progress_bar false --trainer.default_root_dir $RUNS/$name \
    > $OUT/speech_ab_$name.log 2>&1 &
done
wait
for log in $OUT/speech_ab_*.log; do
  echo "== $log"; grep "using\|^\[infomamba\] epoch\|Error" $log | sed 's/ val\/heldout[^ ]*//g' | cut -c1-200
done
