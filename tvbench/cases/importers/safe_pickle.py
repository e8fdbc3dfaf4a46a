"""Load an untrusted pickle that may hold numpy arrays, and nothing else.

``pickle.load`` runs whatever callables a pickle names, so a downloaded ``meta_data.pkl`` could run any code.
:class:`ArrayOnlyUnpickler` resolves only the few globals numpy itself writes when pickling an array (checked
with ``python -m pickletools`` on the DragBench pickles: ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``
and ``numpy.dtype``; numpy 2 writes ``numpy._core.multiarray`` instead, and ``scalar`` for numpy numbers). Every
other global is refused before anything is called. The allowed callables are wrapped so that they accept only the
arguments numpy's own ``__reduce__`` produces, and only numeric dtypes, so no object array (which could hold
anything) can be built. Opcodes that do not name globals (lists, dicts, strings, numbers) are harmless.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

MAX_PICKLE_BYTES = 64 * 1024 * 1024
"""A DragBench pickle is well under 1 MiB (one uint8 mask); a larger file is refused unread."""

_NUMERIC_KINDS = frozenset("biuf")  # bool, signed, unsigned, float: never object, string or void


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (or misuses an allowed one); nothing was run."""


def _multiarray_function(name: str) -> Any:
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, name)


class _Frozen:
    """What the unpickler gets instead of a real global: a pickle's BUILD opcode would otherwise set attributes
    on it (shared by every later load), so both ways BUILD changes an object are refused."""

    __slots__ = ("_call", "_name")

    def __init__(self, name: str, call: Any = None):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_call", call)

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            raise UnsafePickleError(f"refused a direct call of {self._name}")
        return self._call(*args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise UnsafePickleError(f"refused setting attributes on {self._name}")

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"refused setting the state of {self._name}")

    def __repr__(self) -> str:
        return self._name


_NDARRAY = _Frozen("numpy.ndarray")
"""Stands for ``numpy.ndarray``: usable as ``_reconstruct``'s first argument only, so a pickle cannot call the
ndarray constructor directly (e.g. to map an arbitrary buffer)."""


def _checked_dtype(obj: Any, *args: Any) -> np.dtype:
    dtype = np.dtype(obj, *args)
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafePickleError(f"refused dtype {dtype.str!r}: only plain numeric arrays are allowed")
    return dtype


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """numpy's ``ndarray.__reduce__`` always writes ``_reconstruct(ndarray, (0,), b'b')``; the real data come
    afterwards through ``__setstate__`` (BUILD), whose dtype is itself checked by :func:`_checked_dtype`."""
    if subtype is not _NDARRAY or tuple(shape) != (0,) or typecode not in (b"b", "b"):
        raise UnsafePickleError("refused an ndarray reconstruction numpy would not write")
    return _multiarray_function("_reconstruct")(np.ndarray, (0,), b"b")


def _scalar(dtype: Any, *args: Any) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError("refused a numpy scalar of a non-numeric dtype")
    return _multiarray_function("scalar")(dtype, *args)


_ALLOWED: dict[tuple[str, str], _Frozen] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Frozen("numpy.dtype", _checked_dtype),
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _Frozen(f"{_module}._reconstruct", _reconstruct)
    _ALLOWED[(_module, "scalar")] = _Frozen(f"{_module}.scalar", _scalar)


class ArrayOnlyUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose only globals are numpy's array-rebuilding functions (see module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global {module}.{name} (only numpy array reconstruction is "
                                    "allowed)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id")


def load_untrusted(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`ArrayOnlyUnpickler`.

    Raises :class:`UnsafePickleError` for a forbidden global and ``pickle.UnpicklingError`` (with the reason) for
    a truncated or malformed pickle, whatever exception the unpickler itself raised.
    """
    if len(data) > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(f"{len(data)} bytes; refusing pickles over {MAX_PICKLE_BYTES} bytes")
    try:
        return ArrayOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # untrusted bytes can make the unpickler raise nearly anything (EOFError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise pickle.UnpicklingError(f"malformed pickle ({type(exc).__name__}{': ' + reason if reason else ''})") \
            from None


def load_untrusted_file(path: Path) -> Any:
    path = Path(path)
    if path.stat().st_size > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(f"{path.stat().st_size} bytes; refusing pickles over {MAX_PICKLE_BYTES} bytes")
    return load_untrusted(path.read_bytes())
