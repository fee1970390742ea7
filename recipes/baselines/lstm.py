"""A bidirectional LSTM over code embeddings, for mortality (binary) or the next visit (multi-label).

    ehrdebug train recipes/configs/lstm_mortality_small.yaml
    ehrdebug train recipes/configs/lstm_nextvisit_small.yaml

Each position is a code embedding with the age at its visit appended; visits are separated by ``[VS]``.
The patient vector is the last forward and first backward states of the top layer beside the mean of
its outputs over the real (unpadded) positions; a linear layer maps it to one logit (mortality) or one
per next-visit code. Binary cross-entropy, AdamW, early stopping on validation AUROC (mortality) or
APS (next visit); the best weights are the checkpoint (safetensors + ``vocab.json``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from recipes.baselines import common
from recipes.baselines.data import code_vocab, load_splits
from recipes.baselines.tasks import get_task
from recipes.baselines.torch_fit import fit_keys
from recipes.train.schema import Fraction, Key, PosFloat, PosInt


def build_model(cfg: SimpleNamespace) -> Any:
    import torch
    from torch import nn

    class BiLSTM(nn.Module):
        def __init__(self, config: SimpleNamespace) -> None:
            super().__init__()
            self.config = config
            self.embed = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=0)
            self.lstm = nn.LSTM(config.embedding_size + 1, config.hidden_size, num_layers=config.num_layers,
                                batch_first=True, bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)  # fmt: skip
            self.dropout = nn.Dropout(config.dropout)
            self.head = nn.Linear(4 * config.hidden_size, config.num_outputs)

        def forward(self, input_ids: Any, ages: Any, lengths: Any) -> Any:
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

            x = torch.cat([self.embed(input_ids), ages.unsqueeze(-1)], dim=-1)
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, (h, _) = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
            mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1).float()
            mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            final = torch.cat([h[-2], h[-1]], dim=-1)  # top layer: forward's last state, backward's first
            return self.head(self.dropout(torch.cat([final, mean], dim=-1)))

    return BiLSTM(cfg)


def _model_config(config: dict[str, Any], vocab_size: int, outputs: list[str], task: str) -> SimpleNamespace:
    m = config["model"]
    return SimpleNamespace(model_type="ehrdebug_bilstm", vocab_size=vocab_size, embedding_size=int(m["embedding_size"]),
                           hidden_size=int(m["hidden_size"]), num_layers=int(m["num_layers"]), dropout=float(m["dropout"]),
                           num_outputs=len(outputs), task=task, outputs=outputs, max_length=int(config["max_length"]))  # fmt: skip


class LSTMBaseline:
    NAME = "lstm"
    ARCHITECTURE = "lstm"
    TASKS = ("mortality", "next_visit")
    DEFAULTS: dict[str, Any] = {"out": "runs/lstm_mortality_small"}  # of shared keys
    KEYS: dict[str, Key] = {
        "min_frequency": Key(PosInt, 1, "codes seen fewer times in training map to [UNK]"),
        "max_length": Key(PosInt, 128, "positions kept per record (the latest codes)"),
        "model.embedding_size": Key(PosInt, 32, "code embedding width"),
        "model.hidden_size": Key(PosInt, 32, "LSTM state width (each direction)"),
        "model.num_layers": Key(PosInt, 1, "stacked LSTM layers"),
        "model.dropout": Key(Fraction, 0.2, "dropout before the head (and between layers)"),
        **fit_keys(epochs=30, batch_size=32, lr=3e-3, weight_decay=1e-4, patience=5, max_minutes=5.0),
        "train.pos_weight": Key(PosFloat, 1.0, "weight of the positive class in the loss (mortality)"),
    }

    def planned_steps(self, config: dict[str, Any]) -> int:
        from math import ceil

        from recipes.baselines.data import data_root, read_split

        n = len(read_split(data_root(config), "train"))
        return int(config["train"]["epochs"]) * ceil(n / int(config["train"]["batch_size"]))

    def size(self, config: dict[str, Any]) -> dict[str, Any]:
        """Parameters of the model this config builds on its training split (``ehrdebug bench --dry-run``)."""
        from recipes.baselines.sequences import CodeIndex
        from recipes.baselines.torch_fit import count_parameters

        task = get_task(config["task"])
        train = load_splits(config, task.usable(config)).train
        vocab = len(CodeIndex(code_vocab(train, int(config["min_frequency"]))))
        total, trainable = count_parameters(
            build_model(_model_config(config, vocab, task.output_vocab(train), task.name))
        )
        return {"parameters": total, "trainable_parameters": trainable}

    def train(self, config: dict[str, Any], out_dir: str | Path | None = None) -> Path:
        import torch

        from recipes.baselines.sequences import CodeIndex, pad_batch
        from recipes.baselines.torch_fit import count_parameters, fit, seed_all

        task = get_task(config["task"])
        run_dir = Path(out_dir or config["out"])
        seed_all(int(config["seed"]), int(config["threads"]))
        splits = load_splits(config, task.usable(config))
        index = CodeIndex(code_vocab(splits.train, int(config["min_frequency"])))
        outputs = task.output_vocab(splits.train)
        enc = {
            name: [index.encode(r, int(config["max_length"])) for r in getattr(splits, name)]
            for name in ("train", "validation", "test")
        }
        ys = {name: torch.from_numpy(task.targets(getattr(splits, name), config, outputs)) for name in enc}
        if ys["train"].dim() == 1:
            ys = {k: v.unsqueeze(-1) for k, v in ys.items()}
        model = build_model(_model_config(config, len(index), outputs, task.name))
        pos_weight = torch.tensor([float(config["train"]["pos_weight"])]) if task.kind == "binary" else None
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

        def make_batch(split: str, idx: list[int]) -> dict[str, Any]:
            return {**pad_batch([enc[split][i] for i in idx]), "labels": ys[split][idx]}

        def loss_fn(mdl: Any, batch: dict[str, Any]) -> Any:
            return bce(mdl(batch["input_ids"], batch["ages"], batch["lengths"]), batch["labels"])

        def probabilities(mdl: Any, split: str) -> tuple[Any, float]:
            chunks, losses = [], []
            for start in range(0, len(enc[split]), 256):
                batch = make_batch(split, list(range(start, min(start + 256, len(enc[split])))))
                logits = mdl(batch["input_ids"], batch["ages"], batch["lengths"])
                losses.append(float(bce(logits, batch["labels"])) * len(batch["labels"]))
                chunks.append(logits.sigmoid())
            probs = torch.cat(chunks).numpy()
            return (probs[:, 0] if task.kind == "binary" else probs), sum(losses) / len(enc[split])

        def evaluate(mdl: Any) -> dict[str, float]:
            p, loss = probabilities(mdl, "validation")
            y = ys["validation"].numpy()
            return {"eval_loss": loss, **task.evaluate(y[:, 0] if task.kind == "binary" else y, p)}

        total, trainable = count_parameters(model)
        with common.open_logger(config, run_dir, self.ARCHITECTURE, task, splits.files()) as log:
            state = fit(model, len(enc["train"]), lambda idx: make_batch("train", idx), loss_fn, evaluate, config["train"], log,
                        metric=task.eval_metric, seed=int(config["seed"]))  # fmt: skip
            best = run_dir / "checkpoints" / f"step-{state['best_step']}"
            index.save(best)
            model.eval()
            with torch.no_grad():
                p_valid, _ = probabilities(model, "validation")
                p_test, _ = probabilities(model, "test")
            y_valid = task.targets(splits.validation, config, outputs)
            summary: dict[str, Any] = {
                "recipe": self.NAME, "size": config["size"], "task": task.name, "steps": state["step"],
                "epochs_done": state["epochs_done"], "train_seconds": round(state["seconds"], 3),
                "best_step": state["best_step"], "best_checkpoint": f"checkpoints/step-{state['best_step']}",
                "early_stopping_metric": task.eval_metric, "best_value": state["best"], "vocab_size": len(index),
                "parameters": common.parameter_info(total, trainable),
                "best_eval": next((e for e in state["history"]["eval"] if e["step"] == state["best_step"]), None),
            }  # fmt: skip
            test = (splits.test, task.targets(splits.test, config, outputs), p_test)
            summary.update(
                task.final_test(
                    run_dir, config, (y_valid, p_valid), test, outputs=outputs, train=splits.train
                )
            )
            common.finish_run(log, run_dir, summary, state["history"])
        return run_dir


BASELINE = LSTMBaseline()
