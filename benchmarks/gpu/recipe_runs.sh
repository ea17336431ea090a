# Recipe candidates of the recipes issue and the diagnostics of their attention checkpoints, on the lent GPU.
# Carry .whl and the data the parts need, copied into the ignored .devdata/ first:
#   fmnist: cp ../shared/data/fashion-mnist/*.gz .devdata/fashion-mnist/
#   speech: cp -r ../shared/data/speech .devdata/speech     (49 MB; with .whl under the 64 MiB carry limit)
#           and for the `more_data` rows `python benchmarks/build_speech_extra.py --out .devdata/speech --hours 1.1 5.6`
#           (+11 MB train-synth-extra1, +55 MB train-synth-extra2): too large for one call's carry (the limit counts
#           disk blocks: extra2 alone takes 63 MB). What worked: pack and split the whole set (gzip packs its 8,000
#           small files' blocks away: 84 MB), `(cd .devdata/speech && tar czf - meta train-synth test-synth
#           train-synth-extra1 test-asterisk train-synth-extra2) | split -b 53000000 -d - .devdata/pack/part` with
#           part00 in .devdata/pack/p1 and part01 in .devdata/pack/p2; carry p1 with .whl in one call and p2 in the
#           next on the same warm machine (call again within its 30 s: an ignored path carried earlier stays there),
#           then begin the command with
#           `cat .devdata/pack/p1/part00 .devdata/pack/p2/part01 | tar xz -C .devdata/speech`
#   imdb:   cp -r ../shared/data/imdb .devdata/imdb         (27 MB)
# The device's copy of the tree has no current git history: put INFOMAMBA_COMMIT=<the commit here> in the command
# so that the records name it.
# Usage: [ROWS_fmnist="a b"] [SEEDS_fmnist="0 1 2"] [EPOCHS_fmnist=N] bash benchmarks/gpu/recipe_runs.sh PART...
# fmnist / imdb run the shipped recipe's mixer table, *_candidates the recipe candidates; EPOCHS_x=N gives every
# row of the part --max-epochs N (default: each row's own). JOBS_imdb: IMDb fits at once (default 3; 9 runs
# 3 seeds x 3 mixers in one call, each fit then slower); JOBS_imdb_candidates and SEEDS_imdb_candidates likewise.
# table5: Table 5's ablations on IMDb (ROWS_table5, SEEDS_table5, JOBS_table5; default every row, seed 0, 4 at once).
# pretrain_imdb: the masked-LM self-pretraining of the three mixers (ROWS_pretrain_imdb, JOBS_pretrain_imdb), whose
# last.ckpt recipe_imdb's *_mlm rows start from (run imdb_candidates with them in a later call on the same warm
# machine).
# speech: the offline speech recipe candidates (ROWS_speech, JOBS_speech, SEEDS_speech; default every row, 3 at once,
# the table's seeds);
# speech_mixers: the offline speech mixer table (ROWS_speech_mixers, SEEDS_speech); WORKERS_speech / WORKERS_fmnist:
# loader workers per fit (default 3).
# tests_<part>: that part of fused_ssm_runs.sh (e.g. tests_inner), beside the fits.
# Training and test parts run side by side; then the diagnose parts.
# Runs and checkpoints stay on the machine under $RUNS; $OUT/<table>/ gets results.json, runs.csv, table.md,
# curves.png and the last lines of each run's logs (copy results.json back and run reproduce.py --report-only
# --docs docs/results.md); at the end all of $OUT is packed into $OUT/recipes.tar.gz (the device returns at most
# 8 files).
# FIT_GUARD (Lightning's max_time) ends a fit at a step boundary, so its best checkpoint is still tested.
# FIT_GUARD=none passes no max_time: a fit longer than one call is then stopped by TABLE_GUARD's SIGTERM (the runner
# writes last.ckpt) and continues when the same command runs again on the same warm machine (call again within its
# 30 s: $RUNS stays, and reproduce.py resumes an unfinished fit from last.ckpt; a fit that reaches its max_time
# ends as finished instead, and Lightning's timer, restored with the checkpoint, would stop a resumed one at once).
source benchmarks/gpu/setup.sh
RUNS=${RUNS:-/tmp/recipes}
FIT_GUARD=${FIT_GUARD:-00:00:06:40}
table() {  # table name, data root, data workers, then reproduce.py options
  local name=$1 root=$2 workers=$3; shift 3
  timeout ${TABLE_GUARD:-540} python3 benchmarks/reproduce.py --table $name --out $RUNS/$name "$@" -- \
    --data.root $root --data.num_workers=$workers $(max_time) > $OUT/$name.log 2>&1
  echo "$name rc=$?" >> $OUT/$name.log
  mkdir -p $OUT/$name && cp $RUNS/$name/{results.json,runs.csv,table.md,curves.png} $OUT/$name/ 2>/dev/null
  for log in $RUNS/$name/runs/*/seed*/*.log; do  # the last lines of every run's log: how far an unfinished run got
    [ -e "$log" ] && tail -40 "$log" > $OUT/$name/$(echo ${log#$RUNS/$name/runs/} | tr / _)
  done
  cat $OUT/$name/table.md
}
epochs() { [ "$1" = row ] || echo --max-epochs $1; }
max_time() { [ "$FIT_GUARD" = none ] || echo --trainer.max_time=$FIT_GUARD; }
best() { ls $RUNS/$1/runs/$2/seed0/fit/checkpoints/best-*.ckpt | head -1; }
diagnose() {  # name, task, checkpoint, options
  local name=$1 task=$2 ckpt=$3; shift 3
  timeout ${DIAGNOSE_GUARD:-240} python3 -m infomamba.cli diagnose --task $task --ckpt_path $ckpt --orders 1,2,4,8 \
    --out $OUT/diagnose/$name "$@" > $OUT/diagnose_$name.log 2>&1
  echo "diagnose $name rc=$?" >> $OUT/diagnose_$name.log; tail -2 $OUT/diagnose_$name.log
}
for part in "$@"; do
  case $part in
    fmnist) table mixers_fashion_mnist .devdata/fashion-mnist ${WORKERS_fmnist:-3} --jobs 4 --seeds ${SEEDS_fmnist:-0} \
              $(epochs ${EPOCHS_fmnist:-row}) --rows ${ROWS_fmnist:-infomamba attention} & ;;
    fmnist_candidates) table recipe_fashion_mnist .devdata/fashion-mnist ${WORKERS_fmnist:-3} --jobs 4 $(epochs ${EPOCHS_fmnist:-row}) \
              ${ROWS_fmnist_candidates:+--rows $ROWS_fmnist_candidates} & ;;
    imdb) table mixers_imdb .devdata/imdb 1 --jobs ${JOBS_imdb:-3} --seeds ${SEEDS_imdb:-0} \
              $(epochs ${EPOCHS_imdb:-row}) --rows ${ROWS_imdb:-infomamba attention mamba} & ;;
    imdb_candidates) table recipe_imdb .devdata/imdb 1 --jobs ${JOBS_imdb_candidates:-3} \
              ${SEEDS_imdb_candidates:+--seeds $SEEDS_imdb_candidates} \
              $(epochs ${EPOCHS_imdb:-row}) ${ROWS_imdb_candidates:+--rows $ROWS_imdb_candidates} & ;;
    pretrain_imdb) table pretrain_imdb .devdata/imdb 1 --jobs ${JOBS_pretrain_imdb:-3} --seeds 0 \
              ${ROWS_pretrain_imdb:+--rows $ROWS_pretrain_imdb} & ;;
    table5) table table5_imdb .devdata/imdb 1 --jobs ${JOBS_table5:-4} --seeds ${SEEDS_table5:-0} \
              ${ROWS_table5:+--rows $ROWS_table5} & ;;
    speech) table recipe_speech_offline .devdata/speech ${WORKERS_speech:-3} --jobs ${JOBS_speech:-3} \
              ${SEEDS_speech:+--seeds $SEEDS_speech} ${ROWS_speech:+--rows $ROWS_speech} & ;;
    speech_mixers) table mixers_speech_offline .devdata/speech ${WORKERS_speech:-3} --jobs 3 \
              --seeds ${SEEDS_speech:-0} \
              ${ROWS_speech_mixers:+--rows $ROWS_speech_mixers} & ;;
    tests_*) bash benchmarks/gpu/fused_ssm_runs.sh $part & ;;
  esac
done
wait
for part in "$@"; do
  case $part in
    diagnose_fmnist) diagnose fmnist_attention image "$(best mixers_fashion_mnist attention)" \
              --root .devdata/fashion-mnist --horizon 24 --future --batches 8 --max_kernels 2048 \
              --other_ckpt "$(best mixers_fashion_mnist infomamba)" & ;;
    diagnose_imdb) diagnose imdb_attention text "$(best mixers_imdb attention)" --root .devdata/imdb \
              --horizon 32 --batches 8 --max_kernels 2048 --other_ckpt "$(best mixers_imdb infomamba)" & ;;
    diagnose_imdb_long) diagnose imdb_attention_k128 text "$(best mixers_imdb attention)" \
              --root .devdata/imdb --horizon 128 --batches 4 --max_kernels 1024 & ;;
  esac
done
wait
cd $OUT && tar czf /tmp/recipes.tar.gz --exclude recipes.tar.gz . && find . -mindepth 1 -delete
mv /tmp/recipes.tar.gz $OUT/
