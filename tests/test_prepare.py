import hashlib
import os
import subprocess
import sys

import numpy as np
from numpy.testing import assert_allclose
import pytest
import soundfile

from music_classification import load_audio
from music_classification.prepare import prepare_collection

from conftest import tone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_digest(root):
    h = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            h.update(path.encode())
            h.update(open(path, 'rb').read())
            h.update(str(os.stat(path).st_mtime).encode())
    return h.hexdigest()


@pytest.fixture
def sources(tmp_path):
    src = tmp_path / 'src'
    (src / 'Alice' / 'Album').mkdir(parents=True)
    (src / 'Bob').mkdir()
    y = tone(440.0, seconds=1.0, sr=44100)
    soundfile.write(str(src / 'Alice' / 'Album' / 'one.flac'),
                    np.stack([y, y], 1), 44100)
    soundfile.write(str(src / 'Bob' / 'two.ogg'), tone(seconds=1.0, sr=22050),
                    22050, format='OGG', subtype='VORBIS')
    with soundfile.SoundFile(str(src / 'Bob' / 'tagged.flac'), 'w', 16000, 1,
                             format='FLAC') as f:
        f.artist = 'Carol'
        f.write(tone(seconds=1.0))
    (src / 'Bob' / 'broken.mp3').write_bytes(b'ID3 not really an mp3')
    (src / 'Bob' / 'notes.txt').write_text('not audio')
    return src


def test_groups_by_folder_and_converts(sources, tmp_path):
    before = tree_digest(sources)
    out = tmp_path / 'out'
    lines = []
    summary = prepare_collection([str(sources)], str(out), log=lines.append)
    assert tree_digest(sources) == before  # sources untouched
    assert summary['converted'] == 3
    assert list(summary['skipped']) == [str(sources / 'Bob' / 'broken.mp3')]
    assert any('broken.mp3' in line for line in lines)
    assert sorted(os.listdir(out / 'music')) == ['Album', 'Bob']
    (song,) = os.listdir(out / 'music' / 'Album')
    info = soundfile.info(str(out / 'music' / 'Album' / song))
    assert (info.samplerate, info.channels, info.subtype) == \
        (16000, 1, 'PCM_16')
    y, _ = load_audio(out / 'music' / 'Album' / song)
    assert_allclose(np.sqrt(np.mean(y ** 2)), 0.5 / np.sqrt(2), rtol=0.02)


def test_rerun_resumes_without_duplicates(sources, tmp_path):
    out = tmp_path / 'out'
    prepare_collection([str(sources)], str(out), log=lambda line: None)
    first = tree_digest(out / 'music')
    again = prepare_collection([str(sources)], str(out), log=lambda l: None)
    assert again['converted'] == 0 and again['reused'] == 3
    assert tree_digest(out / 'music') == first


def test_group_by_tag_and_eight_bit(sources, tmp_path):
    out = tmp_path / 'out'
    summary = prepare_collection([str(sources)], str(out), group='tag',
                                 bits=8, log=lambda line: None)
    assert os.listdir(out / 'music') == ['Carol']
    reasons = summary['skipped']
    assert [reasons[str(sources / f)] for f in ('Alice/Album/one.flac',
                                                'Bob/two.ogg')] == \
        ['no ARTIST tag'] * 2
    assert 'cannot decode' in reasons[str(sources / 'Bob' / 'broken.mp3')]
    prepare_collection([], str(out), bits=8, other=[str(sources / 'Bob')],
                       log=lambda line: None)
    (song,) = os.listdir(out / 'music' / 'Carol')
    assert soundfile.info(str(out / 'music' / 'Carol' / song)).subtype == \
        'PCM_U8'
    assert len(os.listdir(out / 'other')) == 2  # two.ogg and tagged.flac


def test_script(sources, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'scripts', 'prepare_data.py'),
         str(sources), '--out', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        'converted 3, already there 0, skipped 1')


@pytest.mark.parametrize('script, flag', [
    ('prepare_data.py', '--out'), ('train.py', '--out'),
    ('predict_file.py', '--artistgram')])
def test_an_unwritable_output_folder_is_one_line(sources, tmp_path, script,
                                                 flag):
    # A folder that cannot be made (under a file: even root cannot).
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    target = str(blocker / 'sub')
    args = {'prepare_data.py': [str(sources), '--out', target],
            'train.py': ['--music', str(sources), '--other', str(sources),
                         '--out', target],
            'predict_file.py': ['--model', str(tmp_path / 'nomodel'),
                                str(sources), '--artistgram', target]}[script]
    if script == 'predict_file.py':
        # a model folder to get past loading it
        from music_classification import MUSIC_NET, collection, save_model
        from music_classification.features import FeatureConfig
        save_model(MUSIC_NET(n_classes=2, input_shape=(64, 41)),
                   tmp_path / 'nomodel' / 'model.npz')
        collection.save_labels(tmp_path / 'nomodel' / 'labels.json',
                               ['Other', 'a'], FeatureConfig(
                                   n_mels=64, length=40, hop_length=1024))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'scripts', script)] + args,
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip() == \
        '{}: {} {}: cannot write there (Not a directory)'.format(
            script, flag, target)


def test_ctrl_c_in_prepare_data_is_one_line(tmp_path):
    import signal
    import time
    # Many songs (links to one 30 s file), so that the run is interrupted
    # while converting.
    song = tmp_path / 'song.flac'
    soundfile.write(str(song), np.tile(tone(seconds=1.0, sr=44100), 30),
                    44100)
    for k in range(60):
        folder = tmp_path / 'src' / 'Artist{}'.format(k % 3)
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(song, folder / 'song{:02d}.flac'.format(k))
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'scripts', 'prepare_data.py'),
         str(tmp_path / 'src'), '--out', str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / 'music').exists() or not any(
            files for _, _, files in os.walk(out / 'music')):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert stderr.strip().splitlines()[-1] == (
        'prepare_data.py: interrupted; the files converted so far are '
        'complete, rerun to convert the rest')
    assert 'Traceback' not in stderr
    # nothing half-written: every WAV there reads whole
    for folder, _, files in os.walk(out / 'music'):
        for name in files:
            assert name.endswith('.wav'), name
            assert soundfile.info(os.path.join(folder, name)).duration == \
                pytest.approx(30.0, abs=0.01)
