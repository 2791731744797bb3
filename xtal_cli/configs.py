"""Network configurations as dataclasses that round-trip through JSON (model files, checkpoints)."""

from __future__ import annotations

from dataclasses import asdict, fields


class JSONConfig:
    """Mixin for a dataclass of plain values: ``to_dict`` and a ``from_dict`` that ignores keys
    it does not know (a file from a newer xtal) and turns JSON lists back into tuples."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        kw = {}
        for f in fields(cls):
            if f.name in d:
                value = d[f.name]
                kw[f.name] = tuple(value) if isinstance(f.default, tuple) else value
        return cls(**kw)
