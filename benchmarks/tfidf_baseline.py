"""TF-IDF + logistic regression on the text task's own splits: the non-neural baseline that the IMDb recipe's
goal is set against. The data module is built from the recipe's own `data:` settings (`--config`, default
`configs/imdb.yaml`), so validation is carved from the training split exactly as `infomamba fit` carves it (seed,
val_fraction, the same skipped texts); the regularisation C is picked on that validation split, and the official
test split is scored once, with the picked C.

    pip install scikit-learn
    python benchmarks/tfidf_baseline.py                # configs/imdb.yaml's data, word 1-2 grams
    python benchmarks/tfidf_baseline.py --ngrams 1
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from infomamba.tasks.text.datamodule import TextDataModule


def splits(config: str, root: str | None) -> dict[str, tuple[list[str], list[int]]]:
    """(texts, label ids) of train / val / test as the data module of `config` yields them (`root` replaces
    its data.root when given)."""
    data = yaml.safe_load(Path(config).read_text())["data"]
    dm = TextDataModule(**{**data, **({"root": root} if root else {})})
    dm.setup("fit")
    dm.setup("test")
    return {name: (list(ds.texts), list(ds.labels))
            for name, ds in (("train", dm.train_dataset), ("val", dm.val_dataset), ("test", dm.test_dataset))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/imdb.yaml", help="the recipe whose data: settings are used")
    p.add_argument("--root", help="replaces the config's data.root")
    p.add_argument("--ngrams", type=int, default=2, help="word n-grams from 1 to this")
    p.add_argument("--C", type=float, nargs="+", default=[1.0, 4.0, 16.0, 64.0, 256.0],
                   help="candidates, picked on val")
    args = p.parse_args(argv)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    data = splits(args.config, args.root)
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, args.ngrams), sublinear_tf=True, min_df=2)
    features = {"train": vectorizer.fit_transform(data["train"][0])}
    features.update({name: vectorizer.transform(data[name][0]) for name in ("val", "test")})
    print("| C | val acc (%) |\n|---|---|")
    fitted = {}
    for C in args.C:
        model = LogisticRegression(C=C, max_iter=2000).fit(features["train"], data["train"][1])
        fitted[C] = model.score(features["val"], data["val"][1])
        print(f"| {C:g} | {fitted[C] * 100:.2f} |", flush=True)
    best = max(fitted, key=fitted.get)
    model = LogisticRegression(C=best, max_iter=2000).fit(features["train"], data["train"][1])
    test = model.score(features["test"], data["test"][1])
    sizes = ", ".join(f"{name} {len(texts):,}" for name, (texts, _) in data.items())
    print(f"\nword 1-{args.ngrams} grams, {len(vectorizer.vocabulary_):,} features ({sizes}); C = {best:g} picked on "
          f"val: test accuracy {test * 100:.2f}% ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
