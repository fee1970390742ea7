"""Held-out diagnosis accuracy of a T5 run, side by side with its baselines and decoding variants.

Trains the shipped fixed small config (or reads a finished run), then scores the 71 held-out vignettes
(validation + test) of its best checkpoint under each decoding, with and without the task prefix, next
to the majority answer and a TF-IDF + logistic-regression baseline (scikit-learn) on the same split.

    python benchmarks/t5_accuracy.py [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "constrained greedy (shipped)": [],
    "constrained, 4 beams": ["generation.num_beams=4"],
    "free greedy": ["constrain_to_labels=false"],
    "free, 4 beams, repetition penalty 2.0": ["constrain_to_labels=false", "generation.num_beams=4",
                                              "generation.repetition_penalty=2.0", "generation.no_repeat_ngram_size=2"],
    "constrained greedy, asked WITHOUT the prefix": ["inference_prefix=''"],
}


def tfidf_baseline(train: list[dict], held: list[dict]) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer()
    clf = LogisticRegression(C=20, max_iter=2000).fit(vec.fit_transform([r["input"] for r in train]), [r["output"] for r in train])
    return float(clf.score(vec.transform([r["input"] for r in held]), [r["output"] for r in held]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", help="a finished t5_diagnosis run (default: train the shipped small config)")
    args = parser.parse_args()
    import torch

    from ehrdebug.loading import final_checkpoint, load_model
    from recipes.train import data as D
    from recipes.train import load_recipe_config, run_training
    from recipes.train.config import apply_overrides
    from recipes.train.t5_diagnosis import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else Path(run_training(
            load_recipe_config(str(REPO / "recipes/configs/t5_diagnosis_small.yaml"), ["final_test=false"]), Path(tmp) / "run"))
        config = json.loads((run / "run.json").read_text(encoding="utf-8"))["config"]
        ckpt = final_checkpoint(run)
        model, tokenizer = load_model(ckpt, ckpt)
        train = D.load_records(config, "train")
        held = D.load_records(config, "validation") + D.load_records(config, "test")
        top = Counter(r["output"] for r in train).most_common(1)[0][0]
        print(f"run {run} ({ckpt.name}); {len(held)} held-out vignettes, {len({r['output'] for r in train})} diagnoses")
        print(f"{'always ' + repr(top):48} {sum(r['output'] == top for r in held) / len(held):7.1%}")
        print(f"{'TF-IDF + logistic regression (words)':48} {tfidf_baseline(train, held):7.1%}")
        for name, overrides in VARIANTS.items():
            cfg = apply_overrides(copy.deepcopy(config), ["num_test_generations=null", "constrain_to_labels=true",
                                                          "generation.num_beams=1", *overrides])  # fmt: skip
            torch.manual_seed(0)
            metrics, _ = evaluate(model, tokenizer, held, cfg, torch.device("cpu"), prefix="test")
            print(f"{'T5, ' + name:48} {metrics['test_accuracy']:7.1%}")


if __name__ == "__main__":
    main()
