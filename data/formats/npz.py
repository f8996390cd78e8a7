""".npz archives of plain arrays: :func:`read_npz` (also used for saved models) and .npz datasets
holding arrays ``X`` and ``y``."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from softreg.data.dataset import Dataset, DataError, class_labels, real_features


class NpzError(DataError):
    """An .npz file that cannot be read as plain arrays; ``reason`` says why, without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def check_members(path: Path, names, max_member_bytes: int | None = None) -> None:
    """Before anything is allocated or inflated: each member ``NAME.npy`` among ``names`` must
    hold exactly the bytes its header's shape and dtype declare (a crafted 1e12-row header over
    a few bytes is a corrupt file, not a reason to run out of memory), and with
    ``max_member_bytes`` none may declare more (a zip member that inflates 16 MB to 10 GiB)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        for name in names:
            info = members.get(f"{name}.npy")
            if info is None:
                continue
            if max_member_bytes is not None and info.file_size > max_member_bytes:
                raise NpzError(path, f"member {name} declares {info.file_size:,} bytes, more than the "
                                     f"{max_member_bytes:,} a file of this kind may hold")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = reader(member, max_header_size=10_000)
                header_bytes = member.tell()
            if dtype.hasobject:
                continue  # np.load refuses it without allocating, with its own message
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared != info.file_size - header_bytes:
                raise NpzError(path, f"member {name} declares shape {tuple(shape)} of {dtype} ({declared:,} bytes) "
                                     f"but holds {info.file_size - header_bytes:,}; the file is corrupt")


def read_npz(path: Path, names, *, max_member_bytes: int | None = None) -> tuple[dict, list[str]]:
    """The arrays ``names`` that an .npz archive holds, and the names of all its arrays.

    Read with ``allow_pickle=False``: an object array is refused, never unpickled. Only a
    regular file is read (a FIFO would block for ever), and each member's declared size is
    checked before it is read (:func:`check_members`).
    """
    from softreg.data.files import not_regular

    kind = not_regular(path)
    if kind is not None:
        raise NpzError(path, f"it is {kind}, not a regular file")
    try:
        if zipfile.is_zipfile(path):
            check_members(path, names, max_member_bytes)
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise NpzError(path, "a single .npy array, not an .npz archive of named arrays")
        with loaded as archive:
            return {name: archive[name] for name in names if name in archive.files}, list(archive.files)
    except NpzError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            with open(path, "rb") as handle:
                is_zip = handle.read(2) == b"PK"
            if not is_zip:  # numpy takes any other file for a pickle
                raise NpzError(path, "not an .npz archive (its first bytes are not a zip file's)") from None
            raise NpzError(path, "it holds Python objects, not plain arrays: reading them would need unpickling, "
                                 "which softreg never does") from None
        raise NpzError(path, f"not a valid .npz archive ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as error:
        # NotImplementedError: an unknown compression method; RuntimeError: an encrypted member.
        raise NpzError(path, f"not a readable .npz archive ({error}); it may be truncated or corrupt") from None


def _load_npz(path: Path, dtype: str) -> Dataset:
    arrays, present = read_npz(path, ("X", "y"))
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: no array {' or '.join(missing)}; arrays present: {present}. "
                        "An .npz dataset needs X (N, D) and y (N,).")
    X, y = arrays["X"], arrays["y"]
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (N, D) and y (N,) with the same N; got X {X.shape} and y {y.shape}.")
    X = real_features(path, X, dtype)
    y = class_labels(path, y)
    if y.dtype.kind not in "iubUSf":
        raise DataError(f"{path}: y has dtype {y.dtype}; class labels must be integers or strings.")
    return Dataset(
        X=X,
        y=y,
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        description=f"{path.name} (arrays X and y)",
        spec={"path": str(path.resolve()), "format": "npz"},
    )
