"""Model bundles: one joblib file holding fitted models with the metadata needed to trust them.

A bundle is a plain dict with ``xtal_layout`` = ``"<kind>/<version>"`` (e.g. ``symmetry-model/1``),
``xtal_version``, ``created``, the library versions that made it, and whatever the stage stores
(estimators, label encoders, feature settings, metrics, training-data fingerprint). Readers check
the layout before touching anything else, so a bundle from another stage or layout version is
refused with a clear message rather than failing deep inside scikit-learn.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import pickle
import platform
import warnings
import zipfile
from pathlib import Path

import numpy as np

from xtal_cli import __version__
from xtal_cli.errors import XtalError
from xtal_cli.io.h5 import atomic_path

# Bundle kinds this code writes and reads, and the stage that writes each (for messages).
BUNDLE_LAYOUTS: dict[str, int] = {"symmetry-model": 1}
BUNDLE_WRITERS: dict[str, str] = {"symmetry-model": "xtal train-symmetry"}


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose pickles a bundle holds (unpickling needs compatible ones)."""
    import joblib
    import sklearn

    return {
        "xtal": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def fingerprint(*arrays) -> str:
    """A short SHA-256 of arrays' shapes, dtypes and bytes: which data a model was trained on."""
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(np.asarray(arr))
        if arr.dtype.kind in "OU":
            arr = np.asarray([str(v) for v in arr.ravel()], dtype="U")
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


def write_bundle(path: str | os.PathLike, kind: str, content: dict, compress: int = 0) -> int:
    """Write *content* as a ``kind`` bundle atomically; returns the file size in bytes.

    ``compress`` is joblib's zlib level: 0 loads fastest, 3 makes tree ensembles about 3x smaller.
    """
    import joblib

    bundle = {
        "xtal_layout": f"{kind}/{BUNDLE_LAYOUTS[kind]}",
        "xtal_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **content,
    }
    with atomic_path(path) as tmp:
        joblib.dump(bundle, tmp, compress=compress)
    return Path(path).stat().st_size


def read_bundle(path: str | os.PathLike, kind: str) -> dict:
    """Load a bundle; check it is a ``kind`` bundle of the layout version this code reads."""
    import joblib

    path = Path(path)
    writer = BUNDLE_WRITERS[kind]
    expected = f"{kind}/{BUNDLE_LAYOUTS[kind]}"
    if not path.exists():
        raise XtalError(f"{path}: no such file")
    if path.is_dir():
        raise XtalError(f"{path}: is a folder, expected a model bundle written by {writer}")
    if path.stat().st_size == 0:
        raise XtalError(f"{path}: empty file; write the model again with {writer}")
    try:
        # Uncompressed bundles are memory-mapped: large tree arrays load instantly and only the
        # pages a prediction touches are read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bundle = joblib.load(path, mmap_mode="r")
    except (
        EOFError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as exc:
        raise XtalError(
            f"{path}: not a readable model bundle ({type(exc).__name__}); "
            f"write it again with {writer}"
        ) from None
    except (ModuleNotFoundError, AttributeError, ImportError) as exc:
        raise XtalError(
            f"{path}: made with other library versions ({exc}); retrain it with {writer}"
        ) from None
    if not isinstance(bundle, dict) or "xtal_layout" not in bundle:
        raise XtalError(f"{path}: not an xtal model bundle; expected {expected} from {writer}")
    found = str(bundle["xtal_layout"])
    found_kind, _, _ = found.partition("/")
    if found_kind != kind:
        other = BUNDLE_WRITERS.get(found_kind, "another stage")
        raise XtalError(f"{path}: holds a {found_kind} bundle (from {other}), not {expected}")
    if found != expected:
        made_by = bundle.get("xtal_version", "?")
        raise XtalError(
            f"{path}: bundle layout {found} (xtal {made_by}) is not the {expected} this xtal "
            f"{__version__} reads; retrain it with {writer}"
        )
    return bundle
