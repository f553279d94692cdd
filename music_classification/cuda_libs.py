"""Make CuPy 13 find the CUDA libraries of NVIDIA's pip wheels.

The ``[gpu]`` extra installs ``cupy-cuda12x`` 13 with the CUDA 12 runtime
libraries as pip wheels (``nvidia-cublas-cu12`` and friends, under
``site-packages/nvidia/*/lib``). CuPy 13 looks for these libraries only on
the system's library path, and when it cannot load them ``import cupy``
fails and Chainer silently reports ``cuda.available == False``.

:func:`preload` loads them into the process (``RTLD_GLOBAL``) before
Chainer imports CuPy, so that only an NVIDIA driver is needed. Importing
the package loads nothing: it calls :func:`preload_before_cupy`, an import
hook that runs :func:`preload` at the first ``import cupy`` (Chainer's,
when Chainer is first imported). It does nothing where the wheels are not
installed, where CuPy is already imported, or where
``MUSIC_CLASSIFICATION_PRELOAD_CUDA=0``.
"""

import ctypes
import glob
import importlib.util
import os
import sys


def wheel_library_dirs():
    """``lib`` folders of the installed ``nvidia-*-cu12`` wheels."""
    spec = importlib.util.find_spec('nvidia')
    if spec is None or not spec.submodule_search_locations:
        return []
    dirs = []
    for root in spec.submodule_search_locations:
        dirs.extend(sorted(glob.glob(os.path.join(root, '*', 'lib'))))
    return dirs


def preload():
    """Load the wheels' CUDA libraries; return the paths that loaded."""
    if os.environ.get('MUSIC_CLASSIFICATION_PRELOAD_CUDA', '1') == '0':
        return []
    if 'cupy' in sys.modules:
        return []
    pending = [path for d in wheel_library_dirs()
               for path in sorted(glob.glob(os.path.join(d, 'lib*.so*')))]
    loaded = []
    # Libraries depend on each other (cuBLAS on cuBLASLt, cuSPARSE on
    # nvJitLink, ...): retry what failed until a pass loads nothing new.
    while pending:
        failed = []
        for path in pending:
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                loaded.append(path)
            except OSError:
                failed.append(path)
        if len(failed) == len(pending):
            break
        pending = failed
    return loaded


class _PreloadBeforeCupy(object):
    """A ``sys.meta_path`` finder that preloads once, at ``import cupy``."""

    def find_spec(self, name, path=None, target=None):
        if name == 'cupy':
            remove_hook()
            preload()
        return None  # the ordinary finders import the module


def preload_before_cupy():
    """Install the hook that calls :func:`preload` at the first ``import
    cupy``; nothing is loaded now. Returns whether a hook was installed."""
    if 'cupy' in sys.modules or any(isinstance(f, _PreloadBeforeCupy)
                                    for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _PreloadBeforeCupy())
    return True


def remove_hook():
    """Remove :func:`preload_before_cupy`'s hook, if installed."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, _PreloadBeforeCupy)]
