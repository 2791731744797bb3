"""Template-based crystal structure prediction (``train-templates`` / ``predict-structure``)."""

import xtal_cli.xrd.labels  # noqa: F401 - silences spglib's C diagnostics before its first import
