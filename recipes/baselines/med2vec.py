"""Med2Vec baseline: pretrain code and visit representations, then a head for mortality or the next visit.

    ehrdebug train recipes/configs/med2vec_mortality_small.yaml
    ehrdebug train recipes/configs/med2vec_nextvisit_small.yaml

Phase 1 (``phase: med2vec`` events) trains the Med2Vec objectives (``recipes.baselines.med2vec_model``)
on the training split's input visits, early-stopping on the validation Med2Vec loss. Phase 2
(``phase: head``) freezes it and trains a logistic-regression head (``head.hidden: 0``) or a small MLP
on each patient's vector. The code embeddings are saved for reuse as
``artifacts/med2vec/code_embeddings.safetensors`` (``code_embeddings``: vocabulary × embedding) with
``artifacts/med2vec/vocab.json``; the checkpoint holds encoder and head (safetensors + ``vocab.json``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from recipes.baselines import common
from recipes.baselines.data import code_vocab, load_splits, visits_of
from recipes.baselines.tasks import get_task
from recipes.baselines.torch_fit import fit_keys
from recipes.train.schema import Fraction, Key, NonNegInt, PosInt


def _model_config(config: dict[str, Any], vocab_size: int, outputs: list[str], task: str) -> SimpleNamespace:
    m = config["model"]
    return SimpleNamespace(model_type="ehrdebug_med2vec", vocab_size=vocab_size, embedding_size=int(m["embedding_size"]),
                           hidden_size=int(m["hidden_size"]), window=int(m["window"]), head_hidden=int(config["head"]["hidden"]),
                           head_dropout=float(config["head"]["dropout"]), num_outputs=len(outputs), task=task,
                           outputs=outputs)  # fmt: skip


class Med2VecBaseline:
    NAME = "med2vec"
    ARCHITECTURE = "med2vec"
    TASKS = ("mortality", "next_visit")
    DEFAULTS: dict[str, Any] = {"out": "runs/med2vec_mortality_small"}  # of shared keys
    KEYS: dict[str, Key] = {
        "min_frequency": Key(PosInt, 1, "codes seen fewer times in training map to [UNK]"),
        "model.embedding_size": Key(PosInt, 64, "code representation width (non-negative, ReLU)"),
        "model.hidden_size": Key(PosInt, 64, "visit representation width"),
        "model.window": Key(PosInt, 2, "neighbouring visits whose codes each visit predicts"),
        "model.max_code_pairs": Key(PosInt, 4096, "co-occurring code pairs sampled per batch"),
        **fit_keys(
            "pretrain", epochs=20, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=3, max_minutes=3.0
        ),
        "head.hidden": Key(
            NonNegInt, 0, "0: logistic regression on the patient vector; else an MLP of this width"
        ),
        "head.dropout": Key(Fraction, 0.1, "dropout of the MLP head"),
        **fit_keys(epochs=60, batch_size=64, lr=1e-2, weight_decay=1e-3, patience=8, max_minutes=2.0),
    }

    def planned_steps(self, config: dict[str, Any]) -> int:
        from math import ceil

        from recipes.baselines.data import data_root, read_split

        n = len(read_split(data_root(config), "train"))
        return sum(
            int(config[p]["epochs"]) * ceil(n / int(config[p]["batch_size"])) for p in ("pretrain", "train")
        )

    def size(self, config: dict[str, Any]) -> dict[str, Any]:
        """Parameters of the encoder and head this config builds on its training split (``bench --dry-run``)."""
        from recipes.baselines.med2vec_model import build_encoder, build_head
        from recipes.baselines.sequences import CodeIndex
        from recipes.baselines.torch_fit import count_parameters

        task = get_task(config["task"])
        train = load_splits(config, task.usable(config)).train
        vocab = len(CodeIndex(code_vocab(train, int(config["min_frequency"]))))
        cfg = _model_config(config, vocab, task.output_vocab(train), task.name)
        total, _ = count_parameters(build_head(cfg, build_encoder(cfg)))
        return {"parameters": total, "trainable_parameters": total}

    def train(self, config: dict[str, Any], out_dir: str | Path | None = None) -> Path:
        import torch
        from safetensors.torch import save_file

        from recipes.baselines.med2vec_model import build_encoder, build_head, visit_batch
        from recipes.baselines.sequences import CodeIndex
        from recipes.baselines.torch_fit import count_parameters, fit, seed_all

        task = get_task(config["task"])
        run_dir = Path(out_dir or config["out"])
        seed_all(int(config["seed"]), int(config["threads"]))
        splits = load_splits(config, task.usable(config))
        index = CodeIndex(code_vocab(splits.train, int(config["min_frequency"])))
        outputs = task.output_vocab(splits.train)
        m = config["model"]
        window, max_pairs = int(m["window"]), int(m["max_code_pairs"])
        patients = {name: [[([index.ids.get(c, 1) for c in codes], age) for codes, age in visits_of(r)] for r in getattr(splits, name)]
                    for name in ("train", "validation", "test")}  # fmt: skip
        generator = torch.Generator().manual_seed(int(config["seed"]))

        def pretrain_batch(split: str, idx: list[int]) -> dict[str, Any]:
            return visit_batch([patients[split][i] for i in idx], len(index), window, max_pairs, generator)

        cfg = _model_config(config, len(index), outputs, task.name)
        encoder = build_encoder(cfg)
        history: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
        with common.open_logger(config, run_dir, self.ARCHITECTURE, task, splits.files()) as log:
            # -- phase 1: the two Med2Vec objectives ------------------------------------------------------
            valid_batch = visit_batch(
                patients["validation"], len(index), window, max_pairs, torch.Generator().manual_seed(0)
            )
            pre = fit(encoder, len(patients["train"]), lambda idx: pretrain_batch("train", idx), lambda mdl, b: mdl.loss(b),
                      lambda mdl: {"eval_loss": float(mdl.loss(valid_batch))}, config["pretrain"], log, metric="eval_loss",
                      seed=int(config["seed"]), phase="med2vec", history=history)  # fmt: skip
            embeddings_dir = run_dir / "artifacts" / "med2vec"
            embeddings_dir.mkdir(parents=True, exist_ok=True)
            save_file(
                {"code_embeddings": encoder.code_embeddings().detach().contiguous()},
                str(embeddings_dir / "code_embeddings.safetensors"),
            )
            index.save(embeddings_dir)

            # -- phase 2: a head on frozen patient vectors ------------------------------------------------
            for p in encoder.parameters():
                p.requires_grad_(False)
            model = build_head(cfg, encoder)
            with torch.no_grad():
                feats = {
                    s: model.patient_vectors(visit_batch(patients[s], len(index), window, 0))
                    for s in patients
                }
            ys = {s: torch.from_numpy(task.targets(getattr(splits, s), config, outputs)) for s in patients}
            if ys["train"].dim() == 1:
                ys = {k: v.unsqueeze(-1) for k, v in ys.items()}
            bce = torch.nn.BCEWithLogitsLoss()

            def head_loss(mdl: Any, batch: dict[str, Any]) -> Any:
                return bce(mdl(batch["x"]), batch["y"])

            def probabilities(mdl: Any, split: str) -> Any:
                probs = mdl(feats[split]).sigmoid().numpy()
                return probs[:, 0] if task.kind == "binary" else probs

            def evaluate(mdl: Any) -> dict[str, float]:
                y = ys["validation"].numpy()
                return {"eval_loss": float(bce(mdl(feats["validation"]), ys["validation"])),
                        **task.evaluate(y[:, 0] if task.kind == "binary" else y, probabilities(mdl, "validation"))}  # fmt: skip

            head = fit(model, len(feats["train"]), lambda idx: {"x": feats["train"][idx], "y": ys["train"][idx]}, head_loss, evaluate,
                       config["train"], log, metric=task.eval_metric, seed=int(config["seed"]), phase="head",
                       first_step=pre["step"], history=history)  # fmt: skip
            index.save(run_dir / "checkpoints" / f"step-{head['best_step']}")
            model.eval()
            with torch.no_grad():
                p_valid, p_test = probabilities(model, "validation"), probabilities(model, "test")
            total, _ = count_parameters(model)
            summary: dict[str, Any] = {
                "recipe": self.NAME, "size": config["size"], "task": task.name, "steps": head["step"],
                "epochs_done": pre["epochs_done"] + head["epochs_done"], "pretrain_epochs": pre["epochs_done"],
                "train_seconds": round(pre["seconds"] + head["seconds"], 3), "best_step": head["best_step"],
                "best_checkpoint": f"checkpoints/step-{head['best_step']}", "early_stopping_metric": task.eval_metric,
                "best_value": head["best"], "pretrain_best_eval_loss": pre["best"], "vocab_size": len(index),
                "parameters": common.parameter_info(total), "embeddings": "artifacts/med2vec/code_embeddings.safetensors",
                "best_eval": next((e for e in history["eval"] if e["step"] == head["best_step"]), None),
            }  # fmt: skip
            test = (splits.test, task.targets(splits.test, config, outputs), p_test)
            y_valid = task.targets(splits.validation, config, outputs)
            summary.update(
                task.final_test(
                    run_dir, config, (y_valid, p_valid), test, outputs=outputs, train=splits.train
                )
            )
            common.finish_run(log, run_dir, summary, history)
        return run_dir


BASELINE = Med2VecBaseline()
