"""benchmarks/microphone.py's bad input: one line naming the file, before
any PulseAudio server is started or a song is played."""

import os
import subprocess
import sys

import pytest

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
