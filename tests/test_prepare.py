import hashlib
import json
import os
import subprocess

import numpy as np
from numpy.testing import assert_allclose
import pytest
import soundfile

from music_classification import load_audio
from music_classification.prepare import prepare_collection

from conftest import cli, tone


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
    # the first folder under the source: Alice/Album/one.flac is Alice's
    assert sorted(os.listdir(out / 'music')) == ['Alice', 'Bob']
    (song,) = os.listdir(out / 'music' / 'Alice')
    info = soundfile.info(str(out / 'music' / 'Alice' / song))
    assert (info.samplerate, info.channels, info.subtype) == \
        (16000, 1, 'PCM_16')
    y, _ = load_audio(out / 'music' / 'Alice' / song)
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
    (song,) = os.listdir(out / 'music' / 'Carol')
    assert soundfile.info(str(out / 'music' / 'Carol' / song)).subtype == \
        'PCM_U8'
    others = tmp_path / 'others'
    prepare_collection([], str(others), bits=8,
                       other=[str(sources / 'Bob')], log=lambda line: None)
    assert len(os.listdir(others / 'other')) == 2  # two.ogg, tagged.flac


def test_script(sources, tmp_path):
    result = subprocess.run(
        [*cli('prepare'),
         str(sources), '--out', str(tmp_path / 'out')],
        capture_output=True, text=True, timeout=300)
    # the summary on stdout; the file skipped on stderr, and status 1
    assert result.stdout.strip() == \
        'converted 3, already there 0, removed 0, skipped 1'
    assert result.stderr.strip().startswith(
        'music-classification prepare: skipped {}: cannot decode'.format(
            sources / 'Bob' / 'broken.mp3'))
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.returncode == 1


@pytest.mark.parametrize('command, flag', [
    ('prepare', '--out'), ('train', '--out'), ('predict', '--artistgram')])
def test_an_unwritable_output_folder_is_one_line(sources, tmp_path, command,
                                                 flag):
    # A folder that cannot be made (under a file: even root cannot).
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    target = str(blocker / 'sub')
    args = {'prepare': [str(sources), '--out', target],
            'train': ['--music', str(sources), '--other', str(sources),
                      '--out', target],
            'predict': ['--model', str(tmp_path / 'nomodel'), str(sources),
                        '--artistgram', target]}[command]
    if command == 'predict':
        # a model folder to get past loading it
        from music_classification import MUSIC_NET, collection, save_model
        from music_classification.features import FeatureConfig
        save_model(MUSIC_NET(n_classes=2, input_shape=(64, 41)),
                   tmp_path / 'nomodel' / 'model.npz')
        collection.save_labels(tmp_path / 'nomodel' / 'labels.json',
                               ['Other', 'a'], FeatureConfig(
                                   n_mels=64, length=40, hop_length=1024))
    result = subprocess.run(
        cli(command) + args,
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip() == \
        'music-classification {}: {} {}: cannot write there (Not a ' \
        'directory)'.format(command, flag, target)


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
        [*cli('prepare'),
         str(tmp_path / 'src'), '--out', str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / 'music').exists() or not any(
            files for _, _, files in os.walk(out / 'music')):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    # ended by SIGINT, as an interrupted program is: a shell loop stops
    assert proc.returncode == -signal.SIGINT
    assert stderr.strip().splitlines()[-1] == (
        'music-classification prepare: interrupted; the files converted so '
        'far are complete, rerun to convert the rest')
    assert 'Traceback' not in stderr
    # nothing half-written: every WAV there reads whole
    for folder, _, files in os.walk(out / 'music'):
        for name in files:
            assert name.endswith('.wav'), name
            assert soundfile.info(os.path.join(folder, name)).duration == \
                pytest.approx(30.0, abs=0.01)


def quiet():
    lines = []
    return lines, lines.append


def test_an_output_folder_inside_the_sources_is_never_read(sources):
    out = sources / 'prepared'
    for _ in range(3):
        summary = prepare_collection([str(sources)], str(out),
                                     log=lambda line: None)
    assert summary['converted'] == 0 and summary['reused'] == 3
    wavs = [f for _, _, files in os.walk(out) for f in files
            if f.endswith('.wav')]
    assert len(wavs) == 3


def test_links_and_undecodable_names_are_skipped_one_line_each(sources,
                                                                tmp_path):
    bob = sources / 'Bob'
    os.symlink(tmp_path / 'nowhere.wav', bob / 'dangling.wav')
    os.symlink(bob / 'loop.wav', bob / 'loop.wav')
    soundfile.write(str(bob / 'cafe.flac'), tone(seconds=0.5), 16000)
    os.rename(os.fsencode(bob / 'cafe.flac'), os.path.join(
        os.fsencode(bob), 'caf\xe9.flac'.encode('latin-1')))
    lines, log = quiet()
    summary = prepare_collection([str(sources)], str(tmp_path / 'out'),
                                 log=log)
    skipped = summary['skipped']
    assert 'No such file' in skipped[str(bob / 'dangling.wav')]
    assert 'symbolic links' in skipped[str(bob / 'loop.wav')]
    assert summary['converted'] == 3  # the good files still convert
    latin1, = [p for p in skipped if p.startswith(str(bob / 'caf'))]
    assert latin1 == str(bob / 'caf\ufffd.flac')
    assert 'not valid UTF-8' in skipped[latin1]
    assert sum('dangling.wav' in line for line in lines) == 1
    json.dumps(summary)  # printable: no surrogates left


def test_rerun_mirrors_moved_and_deleted_songs(sources, tmp_path):
    out = tmp_path / 'out'
    prepare_collection([str(sources)], str(out), log=lambda line: None)
    # a corrected label: two.ogg belongs to Alice; one.flac is deleted
    os.rename(sources / 'Bob' / 'two.ogg', sources / 'Alice' / 'two.ogg')
    os.remove(sources / 'Alice' / 'Album' / 'one.flac')
    lines, log = quiet()
    summary = prepare_collection([str(sources)], str(out), log=log)
    assert (summary['converted'], summary['removed']) == (1, 2)
    music = {a: sorted(os.listdir(out / 'music' / a))
             for a in os.listdir(out / 'music')}
    assert [f.split('-')[0] for f in music['Alice']] == ['two']
    assert [f.split('-')[0] for f in music['Bob']] == ['tagged']
    assert sum(line.startswith('removed music/') for line in lines) == 2
    with open(out / 'prepared.json') as f:
        assert len(json.load(f)) == 2
    assert (sources / 'Alice' / 'two.ogg').exists()  # sources untouched


def test_artist_album_track_and_unsafe_names(tmp_path):
    src = tmp_path / 'src'
    for artist in ('AC:DC', 'AC?DC', 'Blur'):
        folder = src / artist / 'Greatest Hits'
        folder.mkdir(parents=True)
        soundfile.write(str(folder / 'track.flac'), tone(seconds=0.5), 16000)
    lines, log = quiet()
    prepare_collection([str(src)], str(tmp_path / 'out'), log=log)
    folders = sorted(os.listdir(tmp_path / 'out' / 'music'))
    assert len(folders) == 3 and folders[-1] == 'Blur'
    assert all(f.startswith('AC_DC-') for f in folders[:2])
    assert sum('makes the same folder name' in line for line in lines) == 2
    # --group parent: the old behaviour, albums merge
    prepare_collection([str(src)], str(tmp_path / 'by_parent'),
                       group='parent', log=lambda line: None)
    assert os.listdir(tmp_path / 'by_parent' / 'music') == ['Greatest Hits']


def test_truncated_wav_warns_and_missing_source_is_skipped(tmp_path):
    from conftest import write_wav_bytes
    src = tmp_path / 'src' / 'Artist'
    src.mkdir(parents=True)
    full = write_wav_bytes(src / 'full.wav', np.zeros(12 * 16000), 16000, 16)
    data = open(full, 'rb').read()
    (src / 'cut.wav').write_bytes(data[:44 + 2 * 960])  # 0.06 s of 12 s
    lines, log = quiet()
    summary = prepare_collection([str(tmp_path / 'src'),
                                  str(tmp_path / 'missing')],
                                 str(tmp_path / 'out'), log=log)
    assert summary['converted'] == 2
    warning, = [line for line in lines if line.startswith('warning: ')]
    assert 'cut.wav is truncated' in warning and '384000 bytes' in warning
    assert '(0.06 s)' in warning
    assert summary['skipped'] == {
        str(tmp_path / 'missing'): 'no such file or folder'}
