"""Model files: HDF5 holding only numeric and string arrays plus one JSON metadata attribute.

Users share models between labs, so opening a model file must not be able to run code: no
pickle, joblib or torch-zip payload is ever loaded. A model file carries the root attributes
``xtal_layout`` = ``"<kind>/<version>"`` (``symmetry-model/2``), ``xtal_version``, ``created`` and
``metadata`` (a JSON object: library versions, settings, class labels, training information,
metrics, hyper-parameters) and datasets of plain numbers or strings, which the stage rebuilds its
model from. Readers check magic bytes before anything else (an old pickle bundle is refused
without being unpickled), then the layout, then that every dataset has a plain dtype.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np

from xtal_cli import __version__
from xtal_cli.errors import XtalError

# Model kinds this code writes and reads, their layout versions, and the stage that writes each.
MODEL_LAYOUTS: dict[str, int] = {"symmetry-model": 2, "pair-classifier": 1}
MODEL_WRITERS: dict[str, str] = {
    "symmetry-model": "xtal train-symmetry",
    "pair-classifier": "xtal train-templates",
}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# What pickles and joblib's compressors start with (a joblib bundle is a possibly compressed
# pickle): pickle protocol 2+, zlib, gzip, bz2, xz, lzma.
_PICKLE_MAGIC = (b"\x80", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x1f\x8b",
                 b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00")  # fmt: skip
_ZIP_MAGIC = b"PK\x03\x04"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that made a model (for provenance; loading needs none pinned)."""
    import h5py

    versions = {
        "xtal": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
    }
    try:
        import sklearn

        versions["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        pass
    import sys

    if "torch" in sys.modules:  # a network's weights: record torch only when it made them
        versions["torch"] = sys.modules["torch"].__version__
    return versions


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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks: what folder manifests record."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def layout_of(kind: str) -> str:
    return f"{kind}/{MODEL_LAYOUTS[kind]}"


def write_model_file(
    path: str | os.PathLike,
    kind: str,
    metadata: dict,
    arrays: dict[str, np.ndarray],
    compress: int = 0,
) -> int:
    """Write a ``kind`` model file atomically; returns its size in bytes.

    *arrays* maps dataset paths (``"group/name"``) to numeric or string arrays; *metadata* must
    be JSON-serialisable. ``compress`` is the gzip level of the datasets: 0 (default) stores them
    contiguously, so readers map them from the file instead of reading them whole.
    """
    import h5py

    from xtal_cli.io.h5 import atomic_path
    from xtal_cli.io.jsonable import json_default

    if not 0 <= int(compress) <= 9:
        raise XtalError(f"compress {compress}: use a gzip level 0-9")
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "layout": layout_of(kind),
        "xtal_version": __version__,
        "created": created,
        "versions": library_versions(),
        **metadata,
    }
    text = json.dumps(meta, default=json_default, allow_nan=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["xtal_layout"] = layout_of(kind)
            h5.attrs["xtal_version"] = __version__
            h5.attrs["created"] = created
            h5.attrs["metadata"] = text
            for name, values in arrays.items():
                arr = np.asarray(values)
                kw = {}
                if compress and arr.size > 64:
                    kw = {"compression": "gzip", "compression_opts": int(compress)}
                if arr.dtype.kind in "OUS":
                    data = np.array([str(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
                    h5.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"), **kw)
                else:
                    if not _plain_dtype(arr.dtype):
                        raise TypeError(f"{name}: dtype {arr.dtype} is not plain numeric")
                    h5.create_dataset(name, data=arr, **kw)
    return Path(path).stat().st_size


def read_model_file(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(metadata, arrays)`` of a ``kind`` model file, after every check; never unpickles.

    Uncompressed contiguous numeric datasets come back memory-mapped (read-only): a large forest
    opens at once and a prediction reads only the pages it touches.
    """
    import h5py

    from xtal_cli.io.h5 import short_reason

    path = Path(path)
    writer = MODEL_WRITERS[kind]
    expected = layout_of(kind)
    if not path.exists():
        raise XtalError(f"{path}: no such file")
    if path.is_dir():
        raise XtalError(f"{path}: is a folder, expected a model file written by {writer}")
    size = path.stat().st_size
    if size == 0:
        raise XtalError(f"{path}: empty file; write the model again with {writer}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_PICKLE_MAGIC):
        raise XtalError(
            f"{path}: a {kind}/1 pickle bundle from an older xtal; pickles can run code, so this "
            f"xtal does not open them; retrain with `{writer}` (same features file gives the same "
            "model)"
        )
    if head.startswith(_ZIP_MAGIC):
        raise XtalError(
            f"{path}: a zip archive (pickle-based files such as torch checkpoints are zips); "
            f"pickles can run code, so this xtal does not open them; {kind} files are HDF5 "
            f"written by `{writer}`"
        )
    if not head.startswith(_HDF5_MAGIC):
        raise XtalError(f"{path}: not a model file (not HDF5); write it with {writer}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise XtalError(
            f"{path}: cannot be read as HDF5 (truncated or corrupted: {short_reason(exc)}); "
            f"write it again with {writer}"
        ) from None
    with h5:
        layout = _text_attr(h5, "xtal_layout")
        if layout is None:
            raise XtalError(
                f"{path}: not an xtal model file (no 'xtal_layout' attribute); expected "
                f"{expected} from {writer}"
            )
        found_kind, _, _ = layout.partition("/")
        if found_kind != kind:
            from xtal_cli.io.h5 import WRITERS

            other = MODEL_WRITERS.get(found_kind) or WRITERS.get(found_kind, "another program")
            raise XtalError(f"{path}: holds {found_kind} (written by {other}), not {expected}")
        if layout != expected:
            made_by = _text_attr(h5, "xtal_version") or "?"
            raise XtalError(
                f"{path}: model layout {layout} (xtal {made_by}) is not the {expected} this xtal "
                f"{__version__} reads; retrain it with {writer}"
            )
        text = _text_attr(h5, "metadata")
        try:
            metadata = json.loads(text) if text is not None else None
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            raise XtalError(
                f"{path}: model metadata is missing or not JSON; retrain it with {writer}"
            )
        try:
            arrays = _read_arrays(h5, path, size)
        except (OSError, KeyError, ValueError) as exc:
            raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    return metadata, arrays


def _read_arrays(h5, path: Path, size: int) -> dict[str, np.ndarray]:
    import h5py

    datasets: dict[str, h5py.Dataset] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            datasets[name] = obj
        elif not isinstance(obj, h5py.Group):  # pragma: no cover - named datatypes and the like
            raise XtalError(f"{path}: holds a {type(obj).__name__} at {name!r}; not a model file")

    h5.visititems(visit)
    for name, ds in datasets.items():  # refuse before reading anything
        if h5py.check_string_dtype(ds.dtype) is None and not _plain_dtype(ds.dtype):
            raise XtalError(
                f"{path}: dataset {name!r} has dtype {ds.dtype}, not plain numbers or strings "
                "(object, opaque or reference data may hide a pickle); this xtal does not open it"
            )
    for name, attr in h5.attrs.items():
        if not isinstance(attr, (str, bytes)):
            raise XtalError(f"{path}: root attribute {name!r} is not text; not a model file")
    out = {}
    for name, ds in datasets.items():
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = ds.asstr()[()].astype(str) if ds.size else np.zeros(ds.shape, dtype=str)
            continue
        offset = ds.id.get_offset()
        if ds.chunks is None and offset is not None and ds.size:
            if offset + ds.size * ds.dtype.itemsize > size:
                raise ValueError(f"dataset {name!r} runs past the end of the file")
            out[name] = np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
        else:
            out[name] = ds[()]
    return out


def _plain_dtype(dtype: np.dtype) -> bool:
    """Numbers, or a struct of numbers (the forest's node records); nothing that holds objects."""
    if dtype.fields:
        return all(_plain_dtype(f[0]) for f in dtype.fields.values()) and not dtype.hasobject
    return dtype.kind in "biuf" and dtype.subdtype is None


def _text_attr(h5, name: str) -> str | None:
    value = h5.attrs.get(name)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None
