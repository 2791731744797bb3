"""Learning-rate schedules shared by the torch trainers (detector, profile symmetry CNN)."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "constant")


def warmup_cosine(lr: float, schedule: str, step: int, total: int) -> float:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 1 % (or constant)."""
    warm = min(1.0, (step + 1) / max(1, total // 20))
    if schedule == "constant":
        return lr * warm
    progress = min(step / max(total, 1), 1.0)
    return lr * warm * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))
