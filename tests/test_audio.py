import os

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest
import soundfile

from music_classification import load_audio, load_noise
from music_classification.audio import list_audio_files
from music_classification.augment import default_noise
from music_classification.errors import AudioFileError, SampleRateError

from conftest import SR, tone, write_float_wav, write_wav_bytes

# (bits, float?, stored values, what they mean in [-1, 1])
FORMATS = {
    'u8': (8, False, [0, 64, 128, 192, 255],
           [-1.0, -0.5, 0.0, 0.5, 127 / 128]),
    's16': (16, False, [-32768, -16384, 0, 16384, 32767],
            [-1.0, -0.5, 0.0, 0.5, 32767 / 32768]),
    's24': (24, False, [-2 ** 23, -2 ** 22, 0, 2 ** 22, 2 ** 23 - 1],
            [-1.0, -0.5, 0.0, 0.5, (2 ** 23 - 1) / 2 ** 23]),
    's32': (32, False, [-2 ** 31, -2 ** 30, 0, 2 ** 30, 2 ** 31 - 1],
            [-1.0, -0.5, 0.0, 0.5, (2 ** 31 - 1) / 2 ** 31]),
    'f32': (32, True, [-1.0, -0.5, 0.0, 0.25, 1.0],
            [-1.0, -0.5, 0.0, 0.25, 1.0]),
    'f64': (64, True, [-1.0, -0.5, 0.0, 0.125, 1.0],
            [-1.0, -0.5, 0.0, 0.125, 1.0]),
}


@pytest.mark.parametrize('fmt', sorted(FORMATS))
def test_wav_formats_decode_to_unit_range(tmp_path, fmt):
    bits, is_float, stored, expected = FORMATS[fmt]
    path = write_wav_bytes(tmp_path / (fmt + '.wav'), stored, SR, bits,
                           float_format=is_float)
    y, sr = load_audio(path, dtype=np.float64)
    assert sr == SR
    assert y.dtype == np.float64
    assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_original_8bit_scaling(tmp_path):
    # The original read unsigned 8-bit WAV and computed (x - 128) / 128.
    stored = np.arange(256)
    path = write_wav_bytes(tmp_path / 'u8.wav', stored, SR, 8)
    y, _ = load_audio(path)
    assert_allclose(y, (stored - 128.0) / 128.0, atol=1e-7)


def test_stereo_is_averaged(tmp_path):
    # The original kept the left channel only; we average the channels.
    left = np.full(100, 16384)
    right = np.full(100, -8192)
    path = write_wav_bytes(tmp_path / 'st.wav', np.stack([left, right], 1),
                           SR, 16)
    y, _ = load_audio(path)
    assert y.shape == (100,)
    assert_allclose(y, (0.5 - 0.25) / 2)
    both, _ = load_audio(path, mono=False)
    assert both.shape == (100, 2)
    assert_allclose(both[:, 0], 0.5)


def test_wrong_rate_names_file_and_rates(tmp_path):
    path = write_float_wav(tmp_path / 'cd.wav', tone(seconds=0.5, sr=44100),
                           sr=44100)
    with pytest.raises(SampleRateError) as e:
        load_audio(path)
    assert 'cd.wav' in str(e.value)
    assert '44100' in str(e.value) and '16000' in str(e.value)


def test_resample_keeps_pitch(tmp_path):
    path = write_float_wav(tmp_path / 'cd.wav',
                           tone(1000.0, seconds=2.0, sr=44100), sr=44100)
    y, sr = load_audio(path, resample=True)
    assert sr == SR
    assert abs(len(y) - 2 * SR) <= 1
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 1000.0) < 1.0
    y_native, native = load_audio(path, sr=None)
    assert native == 44100 and len(y_native) == 88200


@pytest.mark.parametrize('fmt, subtype, ext, rate', [
    ('FLAC', 'PCM_16', 'flac', SR), ('OGG', 'VORBIS', 'ogg', SR),
    ('OGG', 'OPUS', 'opus', 48000), ('MP3', 'MPEG_LAYER_III', 'mp3', SR)])
def test_compressed_formats(tmp_path, fmt, subtype, ext, rate):
    if subtype not in soundfile.available_subtypes(fmt):
        pytest.skip('libsndfile here cannot write {} {}'.format(fmt, subtype))
    y0 = tone(440.0, seconds=1.0, sr=rate)
    path = str(tmp_path / ('x.' + ext))
    soundfile.write(path, np.stack([y0, y0], 1), rate, format=fmt,
                    subtype=subtype)
    y, sr = load_audio(path, resample=True)  # Opus is always 48 kHz
    y0 = tone(440.0, seconds=1.0)
    assert sr == SR
    n = min(len(y), len(y0))
    # Lossy codecs: compare the loudness and the pitch, not the samples.
    assert abs(np.sqrt(np.mean(y ** 2)) - np.sqrt(np.mean(y0 ** 2))) < 0.05
    peak = np.argmax(np.abs(np.fft.rfft(y[:n]))) * SR / n
    assert abs(peak - 440.0) < 2.0


def test_empty_file(tmp_path):
    path = tmp_path / 'empty.wav'
    path.write_bytes(b'')
    with pytest.raises(AudioFileError, match='empty.wav: the file is empty'):
        load_audio(path)


def test_corrupt_header(tmp_path):
    path = tmp_path / 'broken.wav'
    path.write_bytes(b'RIFF\x10\x00\x00\x00WAVEfmt garbage garbage garbage')
    with pytest.raises(AudioFileError, match='broken.wav: cannot decode'):
        load_audio(path)


@pytest.mark.parametrize('name, content, reason', [
    # libsndfile tries its MP3 decoder, which writes notes to descriptor 2
    ('text.mp3', b'hello, this is text\n' * 100,
     'not an audio format libsndfile can read (not audio, or damaged)'),
    ('noise.ogg', bytes(range(256)) * 20, 'Format not recognised'),
    # a FLAC file cut short: libsndfile's "Error : flac decoder lost sync"
    ('cut.flac', None, 'flac decoder lost sync')])
def test_undecodable_files_are_one_line(tmp_path, capfd, name, content,
                                        reason):
    path = tmp_path / name
    if content is None:
        soundfile.write(str(path), np.random.default_rng(0).standard_normal(
            SR * 10) * 0.1, SR)
        content = path.read_bytes()[:path.stat().st_size // 3]
    path.write_bytes(content)
    capfd.readouterr()
    with pytest.raises(AudioFileError) as e:
        load_audio(path)
    assert str(e.value) == (
        '{}: cannot decode audio: {}. Supported: WAV (8/16/24/32-bit PCM, '
        'float), FLAC, OGG, Opus, MP3'.format(path, reason))
    assert capfd.readouterr() == ('', '')  # nothing from the decoder


def test_reading_needs_no_stderr_and_restores_it_across_threads(
        tmp_path, monkeypatch):
    # a closed stderr (sys.stderr None): files still read; threads reading
    # at once leave descriptor 2 where it was
    import sys
    import threading
    good = write_float_wav(tmp_path / 'good.wav', tone(seconds=0.1))
    bad = tmp_path / 'bad.mp3'
    bad.write_bytes(b'hello, this is text\n' * 100)
    before = os.fstat(2)
    errors = []

    def read(n):
        for _ in range(n):
            load_audio(good)
            try:
                load_audio(bad)
            except AudioFileError as e:
                errors.append(e)
    threads = [threading.Thread(target=read, args=(20,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 80
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    monkeypatch.setattr(sys, 'stderr', None)
    assert load_audio(good)[0].shape == (SR // 10,)


def test_header_without_samples(tmp_path):
    path = write_wav_bytes(tmp_path / 'nothing.wav', np.zeros(0), SR, 16)
    with pytest.raises(AudioFileError, match='nothing.wav: .*no audio'):
        load_audio(path)


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, value):
    y = tone(seconds=0.1)
    y[10] = value
    path = write_float_wav(tmp_path / 'nan.wav', y)
    with pytest.raises(AudioFileError, match='nan.wav: 1 of its .* NaN'):
        load_audio(path)


def test_missing_and_folder(tmp_path):
    with pytest.raises(AudioFileError, match='no such file'):
        load_audio(tmp_path / 'missing.wav')
    with pytest.raises(AudioFileError, match='is a folder'):
        load_audio(tmp_path)


def test_list_audio_files(tmp_path):
    with pytest.raises(AudioFileError, match=r'holds no audio files '
                       r'\(looked for [^)]*\)$'):
        list_audio_files(tmp_path)
    # songs one level down (an album folder): the message says what to do
    os.makedirs(tmp_path / 'nested' / 'album')
    with pytest.raises(AudioFileError, match='; for songs in sub-folders, '
                       'music-classification prepare lays a collection out '
                       'flat$'):
        list_audio_files(tmp_path / 'nested')
    (tmp_path / 'notes.txt').write_text('not audio')
    write_float_wav(tmp_path / 'b.wav', tone(seconds=0.1))
    soundfile.write(str(tmp_path / 'a.flac'), tone(seconds=0.1), SR)
    os.mkdir(tmp_path / 'c.wav')  # a folder with an audio-like name
    assert [os.path.basename(p) for p in list_audio_files(tmp_path)] == \
        ['a.flac', 'b.wav']
    with pytest.raises(AudioFileError, match='no such folder'):
        list_audio_files(tmp_path / 'nope')


@pytest.mark.parametrize('dtype, stored, expected', [
    (np.int8, [-128, -64, 0, 64, 127], [-1, -0.5, 0, 0.5, 127 / 128]),
    (np.uint8, [0, 64, 128, 192, 255], [-1, -0.5, 0, 0.5, 127 / 128]),
    (np.int16, [-32768, 0, 16384], [-1, 0, 0.5]),
    (np.float32, [-0.25, 0.0, 0.5], [-0.25, 0.0, 0.5]),
])
def test_noise_npy_formats(tmp_path, dtype, stored, expected):
    path = tmp_path / 'noise.npy'
    np.save(path, np.array(stored, dtype=dtype))
    got = load_noise(str(path))
    assert got.dtype == np.float32
    assert_allclose(got, expected, atol=1e-7)
    assert_allclose(load_noise(np.array(stored, dtype=dtype)), expected,
                    atol=1e-7)


def test_noise_from_wav_and_default(tmp_path):
    path = write_float_wav(tmp_path / 'room.wav', tone(seconds=0.2))
    assert_allclose(load_noise(path), tone(seconds=0.2), atol=1e-7)
    assert_array_equal(load_noise(None), default_noise())


@pytest.mark.parametrize('bad, message', [
    (np.zeros((3, 4)), '1-D'),
    (np.zeros(0), '1-D'),
    (np.array(['a', 'b']), 'not audio'),
    (np.array([0.0, np.nan]), 'NaN'),
])
def test_bad_noise(bad, message):
    with pytest.raises(AudioFileError, match=message):
        load_noise(bad)


def test_pickled_noise_npy_is_refused(tmp_path):
    path = tmp_path / 'noise.npy'
    np.save(path, np.array([{'x': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AudioFileError, match='noise.npy: not a readable'):
        load_noise(str(path))
