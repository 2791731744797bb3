"""Reading the resumable training checkpoints of the torch trainers (detector, profile CNN).

A checkpoint is a ``torch.save`` dict with a ``kind``, the run's ``identity`` (JSON of what a
resumed run must share with it), weights, optimiser state, epoch and history; it is loaded with
``weights_only=True``, so a checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

import json

from xtal_cli.errors import XtalError


def read_checkpoint(path, kind: str, identity: dict, *, what: str, restart: str,
                    same: str) -> dict:  # fmt: skip
    """The checkpoint at *path*, checked to be of *kind* and made with *identity*.

    Errors name the file: *what* is the trainer ("train-detector"), *restart* how to start
    again when the file is unreadable or foreign, *same* what a resume must keep.
    """
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip/pickle errors of all kinds
        raise XtalError(
            f"{path}: cannot be read as a checkpoint ({type(exc).__name__}); {restart}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        raise XtalError(f"{path}: not a {what} checkpoint; {restart}")
    theirs = json.loads(ckpt["identity"])
    diff = [k for k in identity if json.dumps(identity[k]) != json.dumps(theirs.get(k))]
    if diff:
        raise XtalError(
            f"{path}: was trained with other {', '.join(diff)}; resume with the same {same}"
        )
    return ckpt
