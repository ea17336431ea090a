# Offline speech (train-synth; WER on test-synth and test-asterisk separately): InfoMamba vs attention.
# AG-News (official test split carved with the fixed seed): every mixer, size-matched, identical recipe.
# All jobs share one GPU, so wall times include the sharing. Data: .devdata/speech, .devdata/ag_news.
# ASR_EPOCHS=0 runs AG-News only.
source benchmarks/gpu/setup.sh
L=$OUT/logs_text; mkdir -p $L
R="python3 benchmarks/recipe_run.py --out runs/results"
Q="--trainer.enable_progress_bar=false"
declare -A OPT=([infomamba]='{}' [attention]='{"inner_dim":576}' [linformer]='{"inner_dim":512,"proj_len":128,"max_len":256}'
  [mamba]='{"expand":3}' [vmamba]='{"expand":2.75}' [localmamba]='{"expand":2.25}'
  [mambavision]='{"expand":5.5,"attn_inner_dim":576}' [vmisa]='{"expand":3.75}')
for m in $([ "${ASR_EPOCHS:-20}" = 0 ] || echo infomamba attention); do
  $R --name asr_$m -- --task asr --config configs/speech_offline.yaml --data.root .devdata/speech --data.num_workers 3 \
     --model.encoder.mixer=$m --model.encoder.mixer_options=${OPT[$m]} --trainer.max_epochs ${ASR_EPOCHS:-20} \
     --trainer.max_time 00:00:06:30 $Q > $L/asr_$m.log 2>&1 &
done
for m in infomamba attention linformer mamba vmamba localmamba mambavision vmisa; do
  $R --name agnews_$m -- --task text --config configs/agnews.yaml --data.root .devdata/ag_news --data.num_workers 1 \
     --model.encoder.mixer=$m --model.encoder.mixer_options=${OPT[$m]} --trainer.max_epochs 6 \
     --trainer.max_time 00:00:06:30 $Q > $L/agnews_$m.log 2>&1 &
done
wait
grep -h SUMMARY $L/*.log > $OUT/summaries_text.jsonl; cat $OUT/summaries_text.jsonl
for f in $L/*.log; do grep -q SUMMARY $f || { echo "== $f"; tail -5 $f; }; done
tar czf $OUT/logs_text.tar.gz -C $OUT logs_text && rm -r $L
