import os

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest
import soundfile

from music_classification import (READ_DATASET, READ_DATASET2,
                                  log_melspectrogram)
from music_classification.errors import (AudioFileError, DatasetError,
                                         SampleRateError)
from music_classification.features import WINDOW_SAMPLES

from conftest import SR, tone, write_float_wav, write_wav_bytes


@pytest.fixture
def song(tmp_path, rng):
    # 12 s: a tone plus a little noise, as the original's 8-bit WAV.
    y = tone(330.0, seconds=12.0) + 0.05 * rng.standard_normal(12 * SR)
    stored = np.clip(np.round(y * 128 + 128), 0, 255)
    return write_wav_bytes(tmp_path / 'song.wav', stored, SR, 8)


@pytest.fixture
def other_dir(tmp_path):
    folder = tmp_path / 'other'
    folder.mkdir()
    write_float_wav(folder / 'knock.wav', tone(200.0, seconds=1.0))
    write_float_wav(folder / 'washer.wav', tone(60.0, seconds=12.0, amp=0.3))
    return str(folder)


def test_windows_of_a_song(song):
    ds = READ_DATASET(song, 1024, 160, 16000, stride=1000, augment=False)
    n_expected = len(range(0, 12 * SR - WINDOW_SAMPLES + 1, 1000))
    assert ds.n_blocks == len(ds) == n_expected
    assert ds.window == 163840
    assert_array_equal(ds.indexes[:3], [0, 1000, 2000])
    wave = ds.get_one_wave(2)
    assert wave.shape == (163840,)
    assert_array_equal(wave, ds.all_data[2000:2000 + 163840])
    # The original's methods return the mel power (its loop took the log).
    power = log_melspectrogram(y=wave, compression='none')[0, 0]
    mel = ds.get_one_melspec(2)
    assert mel.shape == (256, 321)
    assert_allclose(mel, power, rtol=1e-6)
    batch = ds.get_batch_melspec([0, 1, 2])
    assert batch.shape == (3, 1, 256, 321) and batch.dtype == np.float32
    assert_allclose(batch[2, 0], mel)
    # The model-ready features: log(1 + mel power).
    assert_allclose(ds.get_one_features(2), np.log1p(power), rtol=1e-5,
                    atol=1e-6)
    features = ds.get_batch_features([0, 1, 2])
    assert features.shape == (3, 1, 256, 321)
    assert_allclose(features, np.log1p(batch), rtol=1e-5, atol=1e-6)


def test_default_stride_is_the_articles(song):
    ds = READ_DATASET(song, augment=False)
    assert ds.stride == 5
    assert ds.n_blocks == len(range(0, 12 * SR - WINDOW_SAMPLES + 1, 5))


def test_shuffle_permutes_the_offsets(song):
    # The original replaced the offsets by permutation(len(indexes)).
    ds = READ_DATASET(song, stride=7, rng=0, augment=False)
    before = ds.indexes.copy()
    ds.shuffle_indexes()
    assert not np.array_equal(ds.indexes, before)
    assert_array_equal(np.sort(ds.indexes), before)
    assert ds.indexes.max() == before.max()


def test_same_seed_same_batches(song):
    a = READ_DATASET(song, stride=50, rng=7)
    b = READ_DATASET(song, stride=50, rng=7)
    c = READ_DATASET(song, stride=50, rng=8)
    for ds in (a, b, c):
        ds.shuffle_indexes()
    xa, xb, xc = (ds.get_batch_melspec([0, 1]) for ds in (a, b, c))
    assert_array_equal(xa, xb)
    assert not np.allclose(xa, xc)


def test_augmentation_is_noise_then_volume(song):
    clean = READ_DATASET(song, stride=100, augment=False)
    silent = np.zeros(1000, np.float32)
    ds = READ_DATASET(song, stride=100, rng=1, noise=silent)
    ratios = []
    for i in range(40):
        wave = ds.get_one_wave(i)
        ref = clean.get_one_wave(i)
        ratio = float(np.dot(wave, ref) / np.dot(ref, ref))
        assert_allclose(wave, ratio * ref, rtol=1e-4, atol=1e-6)
        ratios.append(ratio)
    assert 0.1 <= min(ratios) and max(ratios) <= 1.0
    noisy = READ_DATASET(song, stride=100, rng=1, noise=np.ones(1000))
    diff = noisy.get_one_wave(0) - 0  # noise * U(0.001, 3), then volume
    assert not np.allclose(diff, clean.get_one_wave(0))


NOISE_LEVEL = 0.01  # a known constant "noise"


def recover_song_augmentation(ds, clean, n):
    # With constant noise c: wave = volume * (clean + scale * c), so a least
    # squares fit of wave on [clean, 1] gives volume and volume * scale * c.
    volumes, scales = [], []
    for i in range(n):
        ref = clean.get_one_wave(i % clean.n_blocks).astype(np.float64)
        wave = ds.get_one_wave(i % ds.n_blocks)
        (a, b), *_ = np.linalg.lstsq(np.stack([ref, np.ones_like(ref)], 1),
                                     wave, rcond=None)
        assert_allclose(wave, a * ref + b, rtol=1e-4, atol=1e-6)
        volumes.append(a)
        scales.append(b / (a * NOISE_LEVEL))
    return np.array(volumes), np.array(scales)


def test_song_augmentation_ranges_are_the_originals(song):
    # noise * U(0.001, 3.0) first, then volume U(0.1, 1.0): both ranges are
    # spanned, and the order shows (volume first would give noise scales
    # up to 30 relative to the volume).
    clean = READ_DATASET(song, stride=16000, augment=False)
    ds = READ_DATASET(song, stride=16000, rng=4,
                      noise=np.full(50000, NOISE_LEVEL, np.float32))
    volumes, scales = recover_song_augmentation(ds, clean, 400)
    assert 0.1 <= volumes.min() < 0.13 and 0.97 < volumes.max() <= 1.0
    assert 0.001 <= scales.min() < 0.05 and 2.9 < scales.max() <= 3.0 + 1e-3
    # uniform, not clustered: each half of each range is drawn
    assert 0.35 < np.mean(volumes < 0.55) < 0.65
    assert 0.35 < np.mean(scales < 1.5) < 0.65


def test_no_noise_keeps_the_volume(song):
    clean = READ_DATASET(song, stride=16000, augment=False)
    ds = READ_DATASET(song, stride=16000, rng=4, noise_augment=False,
                      noise=np.full(50000, NOISE_LEVEL, np.float32))
    volumes, scales = recover_song_augmentation(ds, clean, 50)
    assert np.abs(scales).max() < 1e-3
    assert volumes.min() < 0.3 and volumes.max() > 0.8


def test_other_augmentation_ranges_are_the_originals(tmp_path):
    # A 1 s sound of constant 0.5 padded into the window at a random place:
    # outside it the window holds volume * scale * c, inside volume *
    # (0.5 + scale * c).
    folder = tmp_path / 'other'
    folder.mkdir()
    write_float_wav(folder / 'beep.wav', np.full(SR, 0.5, np.float32))
    ds = READ_DATASET2(folder, rng=5, include_silence=False,
                       noise=np.full(50000, NOISE_LEVEL, np.float32))
    volumes, scales = [], []
    for _ in range(300):
        wave = ds.get_one_wave(0).astype(np.float64)
        low, high = np.min(wave), np.max(wave)
        volume = (high - low) / 0.5
        volumes.append(volume)
        scales.append(low / (volume * NOISE_LEVEL))
    volumes, scales = np.array(volumes), np.array(scales)
    assert 0.05 <= volumes.min() < 0.08 and 0.97 < volumes.max() <= 1.0
    assert 0.001 - 1e-4 <= scales.min() < 0.05
    assert 2.9 < scales.max() <= 3.0 + 1e-3


def test_augmentation_constants_are_the_originals():
    from music_classification import augment
    assert augment.NOISE_SCALE == (0.001, 3.0)
    assert augment.SONG_VOLUME == (0.1, 1.0)
    assert augment.OTHER_VOLUME == (0.05, 1.0)


def test_noise_argument_forms(song, tmp_path):
    np.save(tmp_path / 'noise.npy', np.full(5000, 64, dtype=np.int8))
    wav = write_float_wav(tmp_path / 'noise.wav', np.full(5000, 0.5))
    for noise in (str(tmp_path / 'noise.npy'), wav, np.full(5000, 0.5)):
        ds = READ_DATASET(song, stride=1000, noise=noise)
        assert_allclose(ds.noise, 0.5)
    with pytest.raises(AudioFileError, match='missing.npy: no such file'):
        READ_DATASET(song, noise=str(tmp_path / 'missing.npy'))


def test_get_example_carries_the_label(song):
    ds = READ_DATASET(song, stride=1000, rng=0, label=3)
    wave, label = ds.get_example(1)
    assert wave.shape == (163840,) and wave.dtype == np.float32
    assert label == 3 and label.dtype == np.int32
    assert READ_DATASET(song, stride=1000).get_example(0).shape == (163840,)


def test_song_errors(tmp_path, song):
    path = write_float_wav(tmp_path / 'cd.wav', tone(seconds=11, sr=22050),
                           sr=22050)
    with pytest.raises(SampleRateError, match='cd.wav: .*22050.*16000'):
        READ_DATASET(path)
    assert READ_DATASET(path, resample=True, augment=False).n_blocks > 0
    with pytest.raises(DatasetError, match='stride'):
        READ_DATASET(song, stride=0)


def test_other_sounds(other_dir):
    ds = READ_DATASET2(other_dir, rng=0, augment=False)
    assert ds.n_data == len(ds) == 3  # two sounds and the silent clip
    assert ds.names[-1] == '<silence>'
    knock, washer, silence = (ds.get_one_wave(i) for i in range(3))
    assert knock.shape == washer.shape == silence.shape == (163840,)
    assert_allclose(knock[:SR], tone(200.0, seconds=1.0), atol=1e-7)
    assert not knock[SR:].any()
    assert_allclose(washer, tone(60.0, seconds=12.0, amp=0.3)[:163840],
                    atol=1e-7)
    assert not silence.any() and silence.dtype == np.float32
    x, t = ds.get_example(0)
    assert t == 0
    assert ds.get_batch_melspec([0, 1, 2]).shape == (3, 1, 256, 321)
    # As the original: no argument means every sound and the silence.
    everything = ds.get_batch_melspec()
    assert everything.shape == (3, 1, 256, 321)
    assert_allclose(everything[1, 0], log_melspectrogram(
        y=washer, compression='none')[0, 0], rtol=1e-6)
    assert not everything[2].any()
    assert_allclose(ds.get_batch_features(), np.log1p(everything),
                    rtol=1e-5, atol=1e-6)


def test_other_sounds_take_the_originals_keywords(other_dir):
    ds = READ_DATASET2(wavdir=other_dir, chunk=1024, length=160,
                       expected_fs=16000, augment=False)
    assert ds.wavdir == other_dir and ds.n_data == 3
    with pytest.raises(DatasetError, match='wavdir'):
        READ_DATASET2()
    with pytest.raises(DatasetError, match='wavdir'):
        READ_DATASET2(other_dir, folder=other_dir)


def test_other_sounds_are_placed_and_cut_at_random(other_dir):
    ds = READ_DATASET2(other_dir, rng=0, noise=np.zeros(10))
    starts = set()
    for _ in range(10):
        knock = ds.get_one_wave(0)
        starts.add(int(np.flatnonzero(knock)[0]))
    assert len(starts) > 5
    vols = [np.abs(ds.get_one_wave(1)).max() / 0.3 for _ in range(200)]
    assert 0.05 <= min(vols) < 0.1 and max(vols) <= 1.0 + 1e-6


def test_other_shuffle_keeps_files_and_names_with_sounds(other_dir):
    ds = READ_DATASET2(other_dir, rng=3, augment=False)
    assert ds.files[-1] is None and ds.names[-1] == '<silence>'
    triples = {n: (f, len(s)) for f, n, s in zip(ds.files, ds.names,
                                                 ds.sounds)}
    orders = set()
    for _ in range(6):
        ds.shuffle_indexes()
        assert len(ds.files) == len(ds.names) == len(ds.sounds) == 3
        assert {n: (f, len(s)) for f, n, s in zip(ds.files, ds.names,
                                                  ds.sounds)} == triples
        orders.add(tuple(ds.names))
        for f, s in zip(ds.files, ds.sounds):
            if f is not None:  # the sound is the file's
                assert_allclose(s, soundfile.read(f, dtype='float32')[0])
    assert len(orders) > 1


def test_other_errors(tmp_path):
    with pytest.raises(AudioFileError, match='holds no audio files'):
        READ_DATASET2(tmp_path)
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'broken.wav').write_bytes(b'RIFFxxxxWAVE')
    with pytest.raises(AudioFileError, match='broken.wav'):
        READ_DATASET2(bad)
    no_silence = tmp_path / 'one'
    no_silence.mkdir()
    soundfile.write(str(no_silence / 'a.flac'), tone(seconds=0.5), SR)
    assert READ_DATASET2(no_silence, include_silence=False).n_data == 1


def test_demo_data_through_the_readers(demo_data):
    ds = READ_DATASET(demo_data.songs[demo_data.artists[0]][0],
                      noise=demo_data.noise_path, rng=0, label=1)
    other = READ_DATASET2(demo_data.other_dir, noise=demo_data.noise_path,
                          rng=0)
    assert other.n_data == len(os.listdir(demo_data.other_dir)) + 1
    assert ds.get_batch_melspec([0, 5]).shape == (2, 1, 256, 321)


def test_expected_fs_none_accepts_the_files_rate(tmp_path):
    # The original's default: no check, the file's own rate is used.
    path = write_float_wav(tmp_path / 'a.wav', tone(seconds=8.0, sr=22050),
                           sr=22050)
    ds = READ_DATASET(path, expected_fs=None, stride=5000)
    assert ds.sampling_rate == 22050
    assert ds.features.sr == 22050
    folder = tmp_path / 'other'
    folder.mkdir()
    write_float_wav(folder / 'a.wav', tone(seconds=1.0, sr=22050), sr=22050)
    write_float_wav(folder / 'b.wav', tone(seconds=1.0), sr=16000)
    with pytest.raises(SampleRateError, match='b.wav: .*16000.*22050'):
        READ_DATASET2(folder, expected_fs=None)


def test_other_sounds_folder_rate_seed_and_resampling(tmp_path):
    folder = tmp_path / 'other'
    folder.mkdir()
    write_float_wav(folder / 'cd.wav', tone(seconds=1.0, sr=22050),
                    sr=22050)
    with pytest.raises(SampleRateError, match='cd.wav: .*22050.*16000'):
        READ_DATASET2(folder=folder)  # expected_fs: 16000 by default
    ds = READ_DATASET2(folder=str(folder), resample=True, rng=7)
    assert ds.folder == ds.wavdir == str(folder)
    assert ds.sampling_rate == 16000 and len(ds.sounds[0]) == SR
    again = READ_DATASET2(folder=str(folder), resample=True, rng=7)
    for i in (0, 1, 0):  # the same seed, the same augmented examples
        assert_array_equal(ds.get_one_wave(i), again.get_one_wave(i))


def test_no_noise_is_read_without_augmentation(song, tmp_path):
    missing = str(tmp_path / 'missing.wav')
    for ds in (READ_DATASET(song, augment=False, noise=missing),
               READ_DATASET(song, noise_augment=False, noise=missing)):
        assert ds.noise is None
    with pytest.raises(AudioFileError, match='missing.wav'):
        READ_DATASET(song, noise=missing)


def test_noise_file_is_read_at_the_songs_rate(tmp_path):
    song = write_float_wav(tmp_path / 'song.wav',
                           tone(seconds=3.0, sr=8000), sr=8000)
    noise = write_float_wav(tmp_path / 'noise.wav', tone(seconds=1.0))
    ds = READ_DATASET(song, chunk=1024, length=20, expected_fs=8000,
                      noise=noise)
    assert ds.sampling_rate == 8000 and len(ds.noise) == 8000


def test_volume_range_is_the_datasets(song):
    ds = READ_DATASET(song, stride=16000, rng=2, noise_augment=False)
    clean = READ_DATASET(song, stride=16000, augment=False)
    ds.volume_range = (0.4, 0.5)
    volumes, _ = recover_song_augmentation(ds, clean, 100)
    assert 0.4 <= volumes.min() < 0.42 and 0.48 < volumes.max() <= 0.5


def test_the_smallest_window_is_one_sample(tmp_path):
    path = write_float_wav(tmp_path / 'a.wav', tone(seconds=0.01))
    ds = READ_DATASET(path, chunk=1, length=1, stride=1, augment=False)
    assert ds.window == 1 and len(ds) == 160
    assert ds.get_one_wave(3).tolist() == [ds.all_data[3]]
    with pytest.raises(DatasetError) as e:
        READ_DATASET(path, chunk=1, length=0)
    assert str(e.value) == 'chunk and length must be positive, got 1 and 0'


def _draw(ds, queue):
    queue.put(int(ds.rng.integers(2 ** 62)))


def test_forked_workers_get_their_own_random_stream(other_dir):
    # MultiprocessIterator forks workers holding copies of the dataset; each
    # must augment with a stream of its own, not replay the parent's.
    import multiprocessing
    ds = READ_DATASET2(other_dir, rng=0)
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    workers = [ctx.Process(target=_draw, args=(ds, queue)) for _ in range(3)]
    for w in workers:
        w.start()
    draws = [queue.get(timeout=30) for _ in workers]
    for w in workers:
        w.join()
    draws.append(int(ds.rng.integers(2 ** 62)))
    assert len(set(draws)) == 4


WORKER_DRAWS = '''
import multiprocessing, sys, time
import numpy as np
from music_classification import READ_DATASET2
ds = READ_DATASET2(sys.argv[1], rng=int(sys.argv[2]))
def draw(_):
    ident = multiprocessing.current_process()._identity
    value = int(ds.rng.integers(2 ** 62))  # this worker's first draw
    time.sleep(0.5)  # so that the other worker takes the other task
    return ident, value
with multiprocessing.get_context('fork').Pool(2) as pool:
    pairs = pool.map(draw, range(2), chunksize=1)
print(sorted({ident: d for ident, d in pairs}.items()))
'''


def test_worker_streams_come_from_the_seed_not_the_process_id(other_dir):
    # The same seed gives every pool worker the same stream in every run
    # (the process ids differ between runs); another seed, other streams.
    import subprocess
    import sys

    def run(seed):
        result = subprocess.run([sys.executable, '-c', WORKER_DRAWS,
                                 other_dir, str(seed)], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout
    first, again, other = run(3), run(3), run(4)
    assert first == again
    assert first != other
