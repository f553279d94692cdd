"""The CUDA wheel preloading, exercised with ordinary shared libraries."""

import glob
import importlib
import os
import shutil
import sys

import pytest

from music_classification import cuda_libs


@pytest.fixture
def fake_wheels(tmp_path, monkeypatch):
    # site-packages/nvidia/<name>/lib/lib*.so* as NVIDIA's wheels lay out.
    candidates = sorted(glob.glob('/lib/x86_64-linux-gnu/libz.so.1*')
                        + glob.glob('/usr/lib/x86_64-linux-gnu/libz.so.1*'))
    if not candidates:
        pytest.skip('no libz shared library to stand in for a CUDA library')
    root = tmp_path / 'site' / 'nvidia'
    (root / 'cublas' / 'lib').mkdir(parents=True)
    (root / 'cufft' / 'lib').mkdir(parents=True)
    shutil.copy(candidates[0], root / 'cublas' / 'lib' / 'libfakeblas.so.12')
    (root / 'cufft' / 'lib' / 'libbroken.so.11').write_text('not a library')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    monkeypatch.delitem(sys.modules, 'nvidia', raising=False)
    importlib.invalidate_caches()
    return root


def test_preloads_the_wheels_libraries(fake_wheels, monkeypatch):
    monkeypatch.delitem(sys.modules, 'cupy', raising=False)
    dirs = cuda_libs.wheel_library_dirs()
    assert str(fake_wheels / 'cublas' / 'lib') in dirs
    loaded = cuda_libs.preload()
    assert [os.path.basename(p) for p in loaded] == ['libfakeblas.so.12']


def test_preload_can_be_turned_off(fake_wheels, monkeypatch):
    monkeypatch.setenv('MUSIC_CLASSIFICATION_PRELOAD_CUDA', '0')
    assert cuda_libs.preload() == []


def test_nothing_to_do_after_cupy_is_imported(fake_wheels, monkeypatch):
    monkeypatch.setitem(sys.modules, 'cupy', object())
    assert cuda_libs.preload() == []


def test_the_wheels_load_at_the_first_import_of_cupy(fake_wheels, tmp_path):
    # A stand-in "cupy" that reports which libraries the process has
    # loaded when it is imported: the hook must have run before it.
    import subprocess
    site = fake_wheels.parent
    (site / 'cupy').mkdir()
    (site / 'cupy' / '__init__.py').write_text(
        'LOADED = "libfakeblas.so.12" in open("/proc/self/maps").read()\n')
    code = ('import music_classification, sys\n'
            'before = "libfakeblas.so.12" in open("/proc/self/maps").read()\n'
            'import cupy\n'
            'print(before, cupy.LOADED)')
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, '-c', code], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['False', 'True']
    env['MUSIC_CLASSIFICATION_PRELOAD_CUDA'] = '0'
    result = subprocess.run([sys.executable, '-c', code], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['False', 'False']
