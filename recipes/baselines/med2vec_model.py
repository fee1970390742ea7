"""Med2Vec (Choi et al., KDD 2016): code and visit representations learned from two objectives.

A visit is the multi-hot vector x_t of its codes. Code level: u_t = ReLU(W_c x_t + b_c); visit level:
v_t = ReLU(W_v [u_t, d_t] + b_v), with d_t the age at the visit (the paper's demographics).

- Visit objective: from v_t, predict the codes of the neighbouring visits x_{t±i}, 1 ≤ i ≤ w, through
  ŷ_t = softmax(W_s v_t + b_s) and the cross-entropy −[x log ŷ + (1 − x) log(1 − ŷ)] summed over codes.
- Code objective (skip-gram within a visit): for every pair of codes (i, j) of one visit, i ≠ j,
  −log softmax(w_i · Wᵀ)_j with W = ReLU(W_c) the non-negative code representations (rows w_i).

The loss is the sum of the two (mean over neighbour pairs and over code pairs). A patient's vector is
the mean of its visit vectors beside its last one; a linear or small MLP head on it predicts the
outcome. Written from the paper's formulation; the reference Theano code (mp2893/med2vec) was read
for the objectives' normalisation.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def build_encoder(cfg: SimpleNamespace) -> Any:
    import torch
    from torch import nn

    class Med2Vec(nn.Module):
        def __init__(self, config: SimpleNamespace) -> None:
            super().__init__()
            self.config = config
            self.code = nn.Linear(config.vocab_size, config.embedding_size)  # W_c, b_c
            self.visit = nn.Linear(config.embedding_size + 1, config.hidden_size)  # W_v, b_v (+ age)
            self.output = nn.Linear(config.hidden_size, config.vocab_size)  # W_s, b_s

        def visits(self, x: Any, age: Any) -> Any:
            """v_t for each visit row of the multi-hot ``x`` (visits × vocabulary)."""
            u = torch.relu(self.code(x))
            return torch.relu(self.visit(torch.cat([u, age.unsqueeze(-1)], dim=-1)))

        def code_embeddings(self) -> Any:
            """ReLU(W_c): one non-negative row per code (what is saved for reuse)."""
            return torch.relu(self.code.weight.t())

        def loss(self, batch: dict[str, Any]) -> Any:
            v = self.visits(batch["x"], batch["age"])
            total = v.new_zeros(())
            src, dst = batch["neighbours"]
            if src.numel():
                prob = torch.softmax(self.output(v[src]), dim=-1)
                target = batch["x"][dst]
                eps = 1e-8
                ce = -(target * torch.log(prob + eps) + (1 - target) * torch.log(1 - prob + eps)).sum(-1)
                total = total + ce.mean()
            ci, cj = batch["code_pairs"]
            if ci.numel():
                w = self.code_embeddings()
                logits = w[ci] @ w.t()
                total = total + nn.functional.cross_entropy(logits, cj)
            return total

    return Med2Vec(cfg)


def build_head(cfg: SimpleNamespace, encoder: Any) -> Any:
    """The encoder (frozen) with a head on [mean of visit vectors, last visit vector]."""
    import torch
    from torch import nn

    class Med2VecPredictor(nn.Module):
        def __init__(self, config: SimpleNamespace, med2vec: Any) -> None:
            super().__init__()
            self.config = config
            self.encoder = med2vec
            width = 2 * config.hidden_size
            if config.head_hidden:
                self.head = nn.Sequential(nn.Linear(width, config.head_hidden), nn.ReLU(), nn.Dropout(config.head_dropout),
                                          nn.Linear(config.head_hidden, config.num_outputs))  # fmt: skip
            else:
                self.head = nn.Linear(width, config.num_outputs)  # logistic regression on the patient vector

        def patient_vectors(self, batch: dict[str, Any]) -> Any:
            v = self.encoder.visits(batch["x"], batch["age"])
            owner = batch["owner"]
            n = int(batch["n_patients"])
            sums = torch.zeros(n, v.shape[1]).index_add_(0, owner, v)
            counts = (
                torch.zeros(n).index_add_(0, owner, torch.ones_like(owner, dtype=torch.float)).clamp(min=1)
            )
            return torch.cat([sums / counts[:, None], v[batch["last"]]], dim=-1)

        def forward(self, features: Any) -> Any:
            return self.head(features)

    return Med2VecPredictor(cfg, encoder)


def visit_batch(patients: list[list[tuple[list[int], float]]], vocab_size: int, window: int, max_code_pairs: int,
                generator: Any = None) -> dict[str, Any]:  # fmt: skip
    """Flatten patients' visits into a multi-hot matrix with neighbour pairs and within-visit code pairs.

    ``patients``: for each patient, its visits as (code ids, age). Code pairs beyond ``max_code_pairs``
    are subsampled (seeded by ``generator``) so a long visit does not dominate a batch's cost.
    """
    import torch

    rows, ages, owner, last, src, dst, ci, cj = [], [], [], [], [], [], [], []
    for p, visits in enumerate(patients):
        start = len(rows)
        for codes, age in visits:
            rows.append(sorted(set(codes)))
            ages.append(age / 100.0)
            owner.append(p)
        count = len(visits)
        last.append(start + count - 1)
        for t in range(count):
            for s in range(max(0, t - window), min(count, t + window + 1)):
                if s != t:
                    src.append(start + t)
                    dst.append(start + s)
    x = torch.zeros(len(rows), vocab_size)
    for r, codes in enumerate(rows):
        if codes:
            x[r, codes] = 1.0
        for i in codes:
            for j in codes:
                if i != j:
                    ci.append(i)
                    cj.append(j)
    pairs_i, pairs_j = torch.tensor(ci, dtype=torch.long), torch.tensor(cj, dtype=torch.long)
    if pairs_i.numel() > max_code_pairs:
        keep = torch.randperm(pairs_i.numel(), generator=generator)[:max_code_pairs]
        pairs_i, pairs_j = pairs_i[keep], pairs_j[keep]
    return {"x": x, "age": torch.tensor(ages, dtype=torch.float), "owner": torch.tensor(owner, dtype=torch.long),
            "last": torch.tensor(last, dtype=torch.long), "n_patients": len(patients),
            "neighbours": (torch.tensor(src, dtype=torch.long), torch.tensor(dst, dtype=torch.long)),
            "code_pairs": (pairs_i, pairs_j)}  # fmt: skip
