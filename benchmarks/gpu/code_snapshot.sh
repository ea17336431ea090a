# Unpack the package and configs of commit SHA into .devdata/code/SHA/{pkg/infomamba,configs}, importable with
# PYTHONPATH=.devdata/code/SHA/pkg (before commit 9c3e31e the tasks and kernels packages lived at the top level).
# Usage: bash benchmarks/gpu/code_snapshot.sh SHA...
for sha in "$@"; do
  dir=.devdata/code/$sha; rm -rf $dir; mkdir -p $dir/tree $dir/pkg
  paths=$(git ls-tree --name-only $sha src tasks kernels configs)
  git archive $sha $paths | tar x -C $dir/tree
  mv $dir/tree/src/infomamba $dir/pkg/infomamba && mv $dir/tree/configs $dir/configs
  for sub in tasks kernels; do [ -d $dir/tree/$sub ] && mv $dir/tree/$sub $dir/pkg/infomamba/$sub; done
  rm -rf $dir/tree
done
