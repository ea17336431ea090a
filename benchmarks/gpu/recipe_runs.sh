# Recipe candidates of the recipes issue on the lent GPU, rows of one table side by side (--jobs).
# Carry .whl and the data the part needs, copied into the ignored .devdata/ first:
#   fmnist: cp ../shared/data/fashion-mnist/*.gz .devdata/fashion-mnist/
#   speech: cp -r ../shared/data/speech .devdata/speech     (49 MB; with .whl under the 64 MiB carry limit)
#   imdb:   cp -r ../shared/data/imdb .devdata/imdb         (27 MB)
# Usage: bash benchmarks/gpu/recipe_runs.sh fmnist|speech|imdb ; results under $OUT/<table>/ (table.md,
# runs.csv, results.json; copy results.json back and run reproduce.py --report-only --docs docs/results.md).
source benchmarks/gpu/setup.sh
for part in "$@"; do
  case $part in
    fmnist) timeout 560 python3 benchmarks/reproduce.py --table recipe_fashion_mnist --jobs 3 --drop-checkpoints \
              --out $OUT/recipe_fashion_mnist -- --data.root .devdata/fashion-mnist > $OUT/recipe_fmnist.log 2>&1
            echo "fmnist rc=$?"; cat $OUT/recipe_fashion_mnist/table.md ;;
    speech) timeout 560 python3 benchmarks/reproduce.py --table recipe_speech_offline --jobs 3 --drop-checkpoints \
              --out $OUT/recipe_speech_offline -- --data.root .devdata/speech > $OUT/recipe_speech.log 2>&1
            echo "speech rc=$?"; cat $OUT/recipe_speech_offline/table.md ;;
    imdb) timeout 560 python3 benchmarks/reproduce.py --table recipe_imdb --jobs 6 --drop-checkpoints \
              --out $OUT/recipe_imdb -- --data.root .devdata/imdb --data.num_workers=2 > $OUT/recipe_imdb.log 2>&1
            echo "imdb rc=$?"; cat $OUT/recipe_imdb/table.md ;;
  esac
done
