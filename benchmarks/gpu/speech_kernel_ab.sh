# The shipped offline speech recipe in variants side by side on one GPU (same seed, data and config otherwise),
# to find where a training failure comes from. A variant is one of
#   kernels=MODE   INFOMAMBA_KERNELS=MODE: "triton" (every op on its kernel), "reference" (every op on its PyTorch
#                  reference) or "reference:op,..." (the named op folders only)
#   code=SHA       the code and config of commit SHA, unpacked by `benchmarks/gpu/code_snapshot.sh SHA`
#                  into .devdata/code/SHA (PYTHONPATH puts it before the installed package)
#   mixer=NAME     --model.encoder.mixer=NAME
#   config=PATH    a second --config stacked on the recipe (e.g. configs/ablations/no_filter.yaml)
#   opt=ARG        one more command-line argument (e.g. opt=--model.lr=0.001; no spaces)
# Carry .whl, .devdata/speech/{train-synth,test-synth,meta} and, for code= variants, .devdata/code.
# Usage: [EPOCHS=6] [VARIANTS="kernels=triton kernels=reference:ssm_inner ..."] bash benchmarks/gpu/speech_kernel_ab.sh
source benchmarks/gpu/setup.sh
RUNS=${RUNS:-/tmp/speech_ab}
DEFAULT_VARIANTS="kernels=triton kernels=reference:ssm_inner kernels=reference:concept_assign kernels=reference"
for variant in ${VARIANTS:-$DEFAULT_VARIANTS}; do
  name=$(echo "$variant" | tr -c 'A-Za-z0-9._\n-' _)
  kernels= path=$PYTHONPATH config=configs/speech_offline.yaml extra=
  case $variant in
    kernels=*) kernels=${variant#kernels=}; [ $kernels = triton ] && kernels= ;;
    code=*) snapshot=.devdata/code/${variant#code=}
            path=$snapshot/pkg:$PYTHONPATH config=$snapshot/configs/speech_offline.yaml ;;
    mixer=*) extra=--model.encoder.mixer=${variant#mixer=} ;;
    config=*) extra="--config ${variant#config=}" ;;
    opt=*) extra=${variant#opt=} ;;
  esac
  INFOMAMBA_KERNELS=$kernels PYTHONPATH=$path timeout ${FIT_TIMEOUT:-420} python3 -m infomamba.cli fit --task asr \
    --config $config --data.root .devdata/speech --data.num_workers ${WORKERS:-3} $extra \
    --trainer.max_epochs ${EPOCHS:-6} --trainer.enable_progress_bar false --trainer.default_root_dir $RUNS/$name \
    > $OUT/speech_ab_$name.log 2>&1 &
done
wait
for log in $OUT/speech_ab_*.log; do
  echo "== $log"; grep "using\|^\[infomamba\] epoch\|Error" $log | sed 's/ val\/heldout[^ ]*//g' | cut -c1-200
done
