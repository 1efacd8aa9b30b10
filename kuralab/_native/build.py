"""Lazy build, on-disk cache and `jax.ffi` registration of the native kernels.

`target(name)` returns the registered FFI target of a kernel of `kernels.cc`
(`PHASOR_MEAN`, `MEANFIELD_RK4`), building the shared library first if no cached build
exists, or `None` when the kernels are unavailable:

- `KURALAB_NATIVE` is `0` (or `off`, `false`, `no`): off, nothing is built;
- no C++ compiler (`$CXX`, else `g++`, `c++`, `clang++` on `PATH`) or no
  `jax.ffi.include_dir()`: unavailable;
- the build fails or times out (120 s): unavailable for this process (logged at INFO).

The library is compiled with `-O3 -march=native` (so AVX-512 where the CPU has it;
`KURALAB_NATIVE_MARCH=x86-64-v3` targets another instruction set, e.g. AVX2 only, to
measure what a CPU without AVX-512 gets) into
`$KURALAB_NATIVE_CACHE`, else `$XDG_CACHE_HOME/kuralab/native`, else
`~/.cache/kuralab/native`. Its file name is a hash of the source, the compiler command,
the jaxlib version, the machine and the CPU's flags, so a changed source or a
different CPU gets its own build. It is written atomically (compiled to a temporary
name, then `os.replace`), so concurrent processes see no library or a whole one. The
result of the first call is kept for the process.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

__all__ = [
    "MEANFIELD_RK4",
    "NATIVE_ENV",
    "NATIVE_TARGETS",
    "PHASOR_MEAN",
    "native_enabled",
    "target",
]

logger = logging.getLogger(__name__)

NATIVE_ENV = "KURALAB_NATIVE"
CACHE_ENV = "KURALAB_NATIVE_CACHE"
MARCH_ENV = "KURALAB_NATIVE_MARCH"
PHASOR_MEAN = "kuralab_phasor_mean"
MEANFIELD_RK4 = "kuralab_meanfield_rk4"
#: FFI target name -> the handler symbol in `kernels.cc`.
_SYMBOLS = {PHASOR_MEAN: "KuralabPhasorMean", MEANFIELD_RK4: "KuralabMeanFieldRK4"}
NATIVE_TARGETS = tuple(_SYMBOLS)
_SOURCE = Path(__file__).with_name("kernels.cc")
_FLAGS = (
    "-O3", "-mprefer-vector-width=512", "-fopenmp-simd",
    "-fno-math-errno", "-std=c++17", "-shared", "-fPIC", "-w",
)
_BUILD_TIMEOUT_S = 120

_lock = threading.Lock()
_state: dict[str, bool] = {}


def native_enabled(environ=os.environ) -> bool:
    """False when `KURALAB_NATIVE` switches the native kernels off."""
    value = environ.get(NATIVE_ENV, "1").strip().lower()
    return value not in ("0", "off", "false", "no", "")


def _cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "kuralab" / "native"


def _compiler() -> str | None:
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"])
    for name in ("g++", "c++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _build(cxx: str, include: str) -> Path:
    """Compile `_SOURCE` (if no cached build exists) and return the library's path."""
    import jaxlib

    source = _SOURCE.read_bytes()
    march = os.environ.get(MARCH_ENV, "").strip() or "native"
    command = [cxx, f"-march={march}", *_FLAGS, "-I", include]
    digest = hashlib.sha256(
        b"\0".join(
            [source, " ".join(command).encode(), jaxlib.__version__.encode(),
             platform.machine().encode(), _cpu_flags().encode()]
        )
    ).hexdigest()[:24]
    directory = _cache_dir()
    target = directory / f"kernels-{digest}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kernels-", suffix=".so", dir=directory)
    os.close(fd)
    try:
        subprocess.run(
            [*command, str(_SOURCE), "-o", tmp],
            check=True, capture_output=True, timeout=_BUILD_TIMEOUT_S,
        )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> bool:
    cxx = _compiler()
    if cxx is None:
        logger.info("kuralab native kernels: no C++ compiler found; using pure JAX")
        return False
    try:
        import jax

        include = jax.ffi.include_dir()
        path = _build(cxx, include)
        lib = ctypes.CDLL(str(path))
        for name, symbol in _SYMBOLS.items():
            jax.ffi.register_ffi_target(
                name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu"
            )
    except Exception as e:  # noqa: BLE001 -- any failure means: the pure-JAX path
        detail = getattr(e, "stderr", b"") or b""
        logger.info(
            "kuralab native kernels: unavailable (%s: %s %s); using pure JAX",
            type(e).__name__, e, detail.decode(errors="replace")[-500:],
        )
        return False
    return True


def target(name: str) -> str | None:
    """`name` (a key of `_SYMBOLS`) once the kernels are built and registered, or
    None when they are off or unavailable (module docstring)."""
    if not native_enabled():
        return None
    if "loaded" not in _state:
        with _lock:
            if "loaded" not in _state:
                _state["loaded"] = _load()
    return name if _state["loaded"] else None
