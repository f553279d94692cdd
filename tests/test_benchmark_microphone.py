"""benchmarks/microphone.py's bad input: one line naming the file, before
any PulseAudio server is started or a song is played."""

import os
import subprocess
import sys

import numpy as np
from numpy.testing import assert_allclose
import pytest

from conftest import tone, write_float_wav

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    return subprocess.run(
        [sys.executable, '-m', 'benchmarks.microphone', *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize('make, reason', [
    (lambda tmp: str(tmp / 'missing.wav'), 'no such file'),
    (lambda tmp: (tmp / 'text.wav').write_text('not audio') and
     str(tmp / 'text.wav'), 'cannot decode audio'),
], ids=['missing', 'not audio'])
def test_a_bad_noise_file_is_one_line(tmp_path, make, reason):
    noise = make(tmp_path)
    result = run('--models', str(tmp_path), '--noise', noise)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert noise in lines[0] and reason in lines[0]


def test_a_folder_without_a_run_is_one_line(tmp_path):
    result = run('--models', str(tmp_path / 'no-run'))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(
        os.path.join(str(tmp_path / 'no-run'), 'labels.json') +
        ': no such file')


def test_a_good_noise_file_is_read_before_the_run(tmp_path):
    # A readable --noise passes its check and the run's is next.
    noise = tmp_path / 'room.wav'
    write_float_wav(noise, tone(seconds=1.0))
    result = run('--models', str(tmp_path), '--noise', str(noise))
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: {}: no such file'.format(
        os.path.join(str(tmp_path), 'labels.json'))


@pytest.mark.parametrize('snr', [20, 10, 0])
def test_conditions_mix_the_given_noise_at_the_snr(snr):
    from benchmarks.microphone import conditions
    rng = np.random.default_rng(0)
    recording = (0.3 * tone(seconds=1.0)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal(40000).astype(
        np.float32)
    start = np.random.default_rng(0).integers(0, len(noise) -
                                              len(recording))
    waves = conditions(recording, recording, noise, rng)
    added = waves['snr{}'.format(snr)].astype(np.float64) - recording
    stretch = noise[start:start + len(recording)].astype(np.float64)
    # the added part is that stretch of the given noise, scaled
    assert_allclose(added, stretch * (added @ stretch) / (stretch @ stretch),
                    atol=1e-6)
    ratio = np.sqrt(np.mean(recording.astype(np.float64) ** 2) /
                    np.mean(added ** 2))
    assert_allclose(20 * np.log10(ratio), snr, atol=0.01)
    assert_allclose(waves['quiet'], recording * 10 ** (-12 / 20), rtol=1e-6)
