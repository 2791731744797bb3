"""A joint composition/structure space: the second ranker, beyond CSPML's pair classifier.

Two small encoders map a composition (standardised Magpie descriptors) and a structure (the
composition-free fingerprint of :mod:`xtal_cli.templates.analysis`) to unit vectors of one
space. They are trained together with a supervised contrastive loss (Khosla et al. 2020) across
the two modalities: a composition's positives are the structures of its own prototype in the
batch, everything else in the batch is a negative. A query composition then ranks templates by
cosine similarity, and a structure, also one outside the library, ranks compositions (the
reverse query), which a classifier over composition pairs cannot do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xtal_cli.errors import ParameterError

MODEL_FORMAT = 1


@dataclass(frozen=True)
class EmbeddingSettings:
    """Size and training of the joint space; checked on construction."""

    dim: int = 64
    hidden: int = 256
    epochs: int = 40
    batch_size: int = 512
    lr: float = 2e-3
    temperature: float = 0.1

    def __post_init__(self):
        for name in ("dim", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "must be at least 1")
        if not self.lr > 0:
            raise ParameterError("lr", self.lr, "must be positive")
        if not self.temperature > 0:
            raise ParameterError("temperature", self.temperature, "must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def _encoder(n_in: int, hidden: int, dim: int):
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(0.1),
        nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim),
    )  # fmt: skip


def build_model(n_composition: int, n_structure: int, settings: EmbeddingSettings):
    """``{"composition": encoder, "structure": encoder}`` as one torch ModuleDict."""
    import torch.nn as nn

    return nn.ModuleDict(
        {
            "composition": _encoder(n_composition, settings.hidden, settings.dim),
            "structure": _encoder(n_structure, settings.hidden, settings.dim),
        }
    )


def encode(model, side: str, X: np.ndarray) -> np.ndarray:
    """Unit vectors of rows of *X* through the *side* encoder (inference, CPU)."""
    import torch

    model.eval()
    with torch.no_grad():
        out = model[side](torch.as_tensor(np.asarray(X, np.float32)))
        out = torch.nn.functional.normalize(out, dim=1)
    return out.numpy()


def _loss(zc, zs, labels, temperature: float):
    import torch

    logits = zc @ zs.T / temperature
    positive = (labels[:, None] == labels[None, :]).float()
    loss = 0.0
    for lg, pos in ((logits, positive), (logits.T, positive.T)):
        logp = lg - torch.logsumexp(lg, dim=1, keepdim=True)
        loss = loss + (-(logp * pos).sum(1) / pos.sum(1)).mean()
    return loss / 2


def train_embedding(Zc, Zs, prototypes, settings: EmbeddingSettings, seed: int = 0,
                    progress=None):  # fmt: skip
    """Train the two encoders on aligned rows (composition, its structure, its prototype)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(Zc.shape[1], Zs.shape[1], settings)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs)
    Xc = torch.as_tensor(np.asarray(Zc, np.float32))
    Xs = torch.as_tensor(np.asarray(Zs, np.float32))
    y = torch.as_tensor(np.asarray(prototypes, np.int64))
    losses = []
    for _ in range(settings.epochs):
        model.train()
        order = rng.permutation(len(Xc))
        total = 0.0
        for b in range(0, len(order), settings.batch_size):
            idx = torch.as_tensor(order[b : b + settings.batch_size])
            if len(idx) < 2:
                continue
            zc = torch.nn.functional.normalize(model["composition"](Xc[idx]), dim=1)
            zs = torch.nn.functional.normalize(model["structure"](Xs[idx]), dim=1)
            loss = _loss(zc, zs, y[idx], settings.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        losses.append(total / len(order))
        if progress is not None:
            progress(1)
    return model, losses


__all__ = ["EmbeddingSettings", "MODEL_FORMAT", "build_model", "encode", "train_embedding"]
