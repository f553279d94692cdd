import json
import os
import struct
import sys

import numpy as np
import pytest

# Before any test module imports Chainer: on Python 3.12 the package puts
# its stand-in numpy.distutils in place for it.
import music_classification  # NOQA: F401

SR = 16000


#: Under mutation testing, the tests of each mutated module: its own test
#: files and the bad-input tests (benchmarks/mutation.py).
OWN_TESTS = {
    'features': ('test_features.py', 'test_realtime.py'),
    'augment': ('test_augment.py', 'test_dataset.py'),
    'dataset': ('test_dataset.py',),
    'predict': ('test_evaluation.py', 'test_realtime.py'),
    'evaluation': ('test_evaluation.py',),
    'serialization': ('test_serialization.py', 'test_net.py'),
    'net': ('test_net.py', 'test_variants.py'),
    'fast_cpu': ('test_fast_cpu.py', 'test_net.py'),
    'training': ('test_training.py',),
}


def pytest_collection_modifyitems(config, items):
    """Under mutation testing (benchmarks/mutation.py): each mutant meets
    its own module's tests, fastest first.

    mutmut runs the tests that reach a mutant with ``-x`` from its
    ``mutants/`` folder, naming the mutant in ``MUTANT_UNDER_TEST``. Of
    those, only the mutated module's :data:`OWN_TESTS` run (a mutant of
    ``features`` is not trained through), in the order of mutmut's own
    timings, so the first test that kills the mutant comes early.
    """
    stats = os.path.join(os.getcwd(), 'mutmut-stats.json')
    if os.path.basename(os.getcwd()) != 'mutants' or \
            not os.path.exists(stats):
        return
    mutant = os.environ.get('MUTANT_UNDER_TEST', '')
    if '__mutmut_' in mutant:
        own = OWN_TESTS.get(mutant.split('.')[1], ()) + (
            'test_bad_inputs.py',)
        keep = [i for i in items if i.path.name in own]
        config.hook.pytest_deselected(
            items=[i for i in items if i.path.name not in own])
        items[:] = keep
    with open(stats) as f:
        seconds = json.load(f).get('duration_by_test', {})
    items.sort(key=lambda item: seconds.get(item.nodeid, 0.0))


def train_argv(demo_data, out, *extra):
    """``music-classification train`` flags for a quick run on the demo
    data: 2.56 s windows (--length 40) keep MUSIC_NET's fc4 small."""
    return ['--music', demo_data.music_dir, '--other', demo_data.other_dir,
            '--noise', demo_data.noise_path, '--out', str(out),
            '--length', '40', '--batch-per-class', '2',
            '--other-per-batch', '2', '--log-every', '1', '--no-progress',
            *extra]


def cli(command):
    """The argv start of ``music-classification <command>``: the console
    entry point that the package installs next to this Python."""
    entry = os.path.join(os.path.dirname(sys.executable),
                         'music-classification')
    assert os.path.exists(entry), 'the package is not installed (pip ' \
        'install -e .): no {}'.format(entry)
    return [entry, command]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def cupy():
    """CuPy, where a CUDA device answers; else the test is skipped."""
    cupy = pytest.importorskip('cupy')
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver or no device
        pytest.skip('no CUDA device: {}'.format(e))
    return cupy


def tone(freq=440.0, seconds=1.0, sr=SR, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav_bytes(path, samples, sr, bits, float_format=False):
    """A WAV file written byte by byte, independent of the reader under test.

    ``samples`` is ``(n,)`` or ``(n, channels)`` of the raw stored values
    (unsigned for 8 bits, signed integers for 16/24/32, floats for float).
    """
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    channels = samples.shape[1]
    width = bits // 8
    if float_format:
        data = samples.astype('<f4' if bits == 32 else '<f8').tobytes()
    elif bits == 8:
        data = samples.astype(np.uint8).tobytes()
    elif bits == 24:
        ints = samples.astype('<i4').reshape(-1)
        data = b''.join(struct.pack('<i', int(v))[:3] for v in ints)
    else:
        data = samples.astype('<i{}'.format(width)).tobytes()
    fmt = struct.pack('<HHIIHH', 3 if float_format else 1, channels, sr,
                      sr * channels * width, channels * width, bits)
    body = b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt
    if float_format:  # float WAVs carry a fact chunk
        body += b'fact' + struct.pack('<II', 4, samples.shape[0])
    body += b'data' + struct.pack('<I', len(data)) + data
    with open(path, 'wb') as f:
        f.write(b'RIFF' + struct.pack('<I', len(body)) + body)
    return str(path)


def write_float_wav(path, y, sr=SR):
    return write_wav_bytes(path, np.asarray(y, dtype=np.float32), sr, 32,
                           float_format=True)


def read_log(out):
    """The entries of a training run's LogReport file."""
    with open(os.path.join(out, 'log')) as f:
        return json.load(f)


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    from music_classification import synthetic
    return synthetic.make_demo_dataset(tmp_path_factory.mktemp('demo'), seed=3,
                                  n_artists=2, songs_per_artist=2,
                                  song_seconds=14.0)
