import dataclasses

import librosa

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from music_classification import features
from music_classification.errors import ParameterError
from music_classification.features import FeatureConfig, log_melspectrogram

from conftest import SR, tone


def librosa_log_mel(y, sr=SR, pad_mode='reflect', **kwargs):
    """The original's computation, one clip at a time, in float64.

    ``pad_mode='reflect'`` is what the original's librosa 0.5 did by
    default; it is passed explicitly, since librosa 0.10+ pads zeros.
    """
    S = librosa.feature.melspectrogram(y=np.asarray(y, dtype=np.float64),
                                       sr=sr, n_fft=2048, n_mels=256,
                                       pad_mode=pad_mode, **kwargs)
    return np.log(S + 1.0)


PAD_MODES = pytest.mark.parametrize('pad_mode', ['reflect', 'constant'])


def signals(rng):
    n = features.WINDOW_SAMPLES
    t = np.arange(n) / SR
    chirp = 0.5 * np.sin(2 * np.pi * (100 + 300 * t) * t)
    noise = 0.3 * rng.standard_normal(n)
    eight_bit = np.round(noise * 127) / 128  # what an 8-bit file holds
    return {'tone': tone(440.0, n / SR), 'chirp': chirp, 'noise': noise,
            'eight_bit': eight_bit, 'silence': np.zeros(n)}


@PAD_MODES
@pytest.mark.parametrize('name', ['tone', 'chirp', 'noise', 'eight_bit',
                                  'silence'])
def test_matches_librosa(rng, name, pad_mode):
    y = signals(rng)[name]
    ours = log_melspectrogram(y=y.astype(np.float32), pad_mode=pad_mode)
    assert ours.shape == (1, 1, 256, 321)
    assert ours.dtype == np.float32
    assert_allclose(ours[0, 0], librosa_log_mel(y, pad_mode=pad_mode),
                    rtol=1e-5, atol=2e-5)


def test_default_pad_mode_is_the_originals_reflect(rng):
    y = signals(rng)['chirp']
    ours = log_melspectrogram(y=y.astype(np.float32))[0, 0]
    assert_allclose(ours, librosa_log_mel(y, pad_mode='reflect'), rtol=1e-5,
                    atol=2e-5)
    zeros = librosa_log_mel(y, pad_mode='constant')
    # The modes differ only at the edges: the first and last 2 frames here.
    assert_allclose(ours[:, 2:-2], zeros[:, 2:-2], rtol=1e-5, atol=2e-5)
    assert np.abs(ours[:, 0] - zeros[:, 0]).max() > 0.1
    assert FeatureConfig().pad_mode == 'reflect'


def test_labels_without_pad_mode_load_as_zero_padding():
    # A labels.json written before pad_mode was saved: its model was trained
    # on librosa 0.10+'s zero padding.
    old = FeatureConfig().to_dict()
    del old['pad_mode']
    assert FeatureConfig.from_dict(old).pad_mode == 'constant'
    new = FeatureConfig(pad_mode='reflect').to_dict()
    assert FeatureConfig.from_dict(new).pad_mode == 'reflect'


def test_window_shape():
    assert features.WINDOW_SAMPLES == 163840
    assert features.n_frames(features.WINDOW_SAMPLES) == 321
    assert FeatureConfig().input_shape == (256, 321)
    assert FeatureConfig().window_samples == 1024 * 160


@PAD_MODES
@pytest.mark.parametrize('n_samples', [4096, 20000, 163839, 163841])
def test_other_lengths_match_librosa(rng, n_samples, pad_mode):
    y = (0.2 * rng.standard_normal(n_samples)).astype(np.float32)
    ours = log_melspectrogram(y=y, pad_mode=pad_mode)
    assert ours.shape == (1, 1, 256, features.n_frames(n_samples))
    assert_allclose(ours[0, 0], librosa_log_mel(y, pad_mode=pad_mode),
                    rtol=1e-5, atol=2e-5)


def test_batch_equals_single_clips(rng):
    batch = (0.3 * rng.standard_normal((5, 30000))).astype(np.float32)
    together = log_melspectrogram(y=batch, max_batch=2)
    for i in range(5):
        alone = log_melspectrogram(y=batch[i])
        assert_allclose(together[i], alone[0], rtol=1e-6, atol=1e-6)


def test_other_sample_rate_matches_librosa(rng):
    y = (0.3 * rng.standard_normal(22050)).astype(np.float32)
    ours = log_melspectrogram(y=y, sr=22050)
    assert_allclose(ours[0, 0], librosa_log_mel(y, sr=22050), rtol=1e-5,
                    atol=2e-5)


@pytest.mark.parametrize('compression', ['none', 'sqrt', 'db'])
def test_compression_switch(rng, compression):
    y = (0.3 * rng.standard_normal(40000)).astype(np.float32)
    y[20000:] *= 1e-4  # quiet frames: power far below 1
    S = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=SR,
                                       n_fft=2048, n_mels=256,
                                       pad_mode='reflect')
    if compression == 'db':
        expected = librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)
        ours = log_melspectrogram(y=y, compression='db')[0, 0]
        assert_allclose(ours, expected, rtol=1e-5, atol=1e-3)
        # the quiet half keeps its detail: log(1 + S) flattens it to ~S
        assert np.ptp(ours[:, -10:]) > 20
        return
    expected = S if compression == 'none' else np.sqrt(S)
    ours = log_melspectrogram(y=y, compression=compression)[0, 0]
    assert_allclose(ours, expected, rtol=2e-5, atol=2e-5 * expected.max())


@pytest.mark.parametrize('pad_mode', ['reflect', 'constant'])
def test_musicnn_features_are_librosas_log10_of_1_plus_10000_mel(rng,
                                                                 pad_mode):
    # musicnn's input: librosa's melspectrogram of 512-sample frames every
    # 256 samples, 96 bands, then log10(1 + 10000 S); 187 frames a window
    config = dataclasses.replace(features.MUSICNN_FEATURES,
                                 pad_mode=pad_mode)
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(config.window_samples)
                      / SR) + 0.05 * rng.standard_normal(
                          config.window_samples)).astype(np.float32)
    y[:8000] *= 1e-3  # a quiet start
    S = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=SR,
                                       n_fft=512, hop_length=256, n_mels=96,
                                       pad_mode=pad_mode)
    ours = config(y)
    assert ours.shape == (1, 1, 96, 187) == (1, 1) + config.input_shape
    assert_allclose(ours[0, 0], np.log10(1 + 10000 * S), rtol=1e-5,
                    atol=1e-5)


def test_hand_computed_bin_centred_tone():
    # A sinusoid of amplitude A exactly on FFT bin k: an interior frame of a
    # periodic Hann window of length N has |X[k]| = A N / 4 and
    # |X[k +- 1]| = A N / 8, and nothing elsewhere.
    N, k, A = 2048, 100, 0.5
    n = 16 * N
    y = (A * np.cos(2 * np.pi * k * np.arange(n) / N)).astype(np.float32)
    power = features.power_spectrogram(y=y[None], n_fft=N, hop_length=512)
    frame = power[0, 10]
    assert_allclose(frame[k], (A * N / 4) ** 2, rtol=1e-4)
    assert_allclose(frame[[k - 1, k + 1]], (A * N / 8) ** 2, rtol=1e-4)
    assert frame[:k - 1].max() < 1e-6 * frame[k]
    fb = features.mel_filterbank()
    expected_mel = (fb[:, k] * (A * N / 4) ** 2
                    + (fb[:, k - 1] + fb[:, k + 1]) * (A * N / 8) ** 2)
    ours = log_melspectrogram(y=y, compression='none')[0, 0, :, 10]
    assert_allclose(ours, expected_mel, rtol=1e-4, atol=1e-3)


def test_silence_is_zero():
    out = log_melspectrogram(y=np.zeros(features.WINDOW_SAMPLES, np.float32))
    assert not out.any()


def test_filterbank_is_librosas():
    expected = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=256)
    got = features.mel_filterbank()
    assert got.shape == (256, 1025)
    assert_allclose(got, expected, rtol=1e-7)
    assert not got.flags.writeable


def test_config_round_trip_and_call(rng):
    config = FeatureConfig(compression='sqrt')
    assert FeatureConfig.from_dict(config.to_dict()) == config
    y = (0.1 * rng.standard_normal(9000)).astype(np.float32)
    assert_allclose(config(y), log_melspectrogram(y=y, compression='sqrt'))


@pytest.mark.parametrize('bad, message', [
    (dict(y=np.zeros(10, dtype=np.int16)), 'floating-point'),
    (dict(y=np.zeros((2, 2, 10), dtype=np.float32)), '1-D'),
    (dict(y=np.zeros(0, dtype=np.float32)), 'empty'),
    (dict(y=[0.0, 0.1]), '1-D'),
    (dict(y=np.zeros(10, np.float32), compression='log'), 'compression'),
    (dict(y=np.zeros(10, np.float32), n_mels=0), 'n_mels'),
    (dict(y=np.zeros(10, np.float32), fmax=9000), 'fmax'),
    (dict(y=np.zeros(10, np.float32), pad_mode='edge'), 'pad_mode'),
])
def test_bad_input(bad, message):
    with pytest.raises(ParameterError, match=message):
        log_melspectrogram(**bad)


def test_config_rejects_unknown_keys():
    with pytest.raises(ParameterError, match='unknown'):
        FeatureConfig.from_dict({'sr': 16000, 'n_bands': 3})


def check_features_on_device(xp, rng, pad_mode):
    """The function on an array module equals librosa's float64 result."""
    batch = (0.3 * rng.standard_normal((3, features.WINDOW_SAMPLES))
             ).astype(np.float32)
    expected = np.stack([librosa_log_mel(clip, pad_mode=pad_mode)[None]
                         for clip in batch])
    got = log_melspectrogram(y=xp.asarray(batch), pad_mode=pad_mode)
    assert type(got) is type(xp.asarray(batch))
    assert_allclose(xp.asnumpy(got) if xp is not np else got, expected,
                    rtol=1e-4, atol=1e-4)


@PAD_MODES
def test_features_numpy(rng, pad_mode):
    check_features_on_device(np, rng, pad_mode)


@pytest.mark.gpu
@PAD_MODES
def test_features_cupy(cupy, rng, pad_mode):
    check_features_on_device(cupy, rng, pad_mode)


@PAD_MODES
@pytest.mark.parametrize('chunk', [512, 1024, 1536, 4096])
def test_streaming_equals_full_recomputation(rng, chunk, pad_mode):
    # Every chunk, including the first ones (silence on the left edge) and
    # a window full of new audio; the edges of the window are padded
    # exactly as in the full computation. 1536 samples do not divide the
    # window: some chunks wrap around the end of the sample ring.
    # 2.56 s windows keep the test fast
    config = FeatureConfig(length=40, pad_mode=pad_mode)
    stream = features.StreamingLogMel(config)
    window = np.zeros(config.window_samples, np.float32)
    y = (0.3 * rng.standard_normal(config.window_samples * 2 + 8 * chunk)
         ).astype(np.float32)
    y[:chunk * 3] = 0.0  # a silent start
    for start in range(0, len(y), chunk):
        piece = y[start:start + chunk]
        stream.push(piece)
        window = np.concatenate([window[len(piece):], piece])
        assert_allclose(stream.features(), config(window), rtol=1e-5,
                        atol=2e-6)
    assert_allclose(stream.window, window)
    # and the full computation is librosa's with the same padding
    assert_allclose(config(window)[0, 0],
                    librosa_log_mel(window, pad_mode=pad_mode)[:, :],
                    rtol=1e-5, atol=2e-5)


@PAD_MODES
@pytest.mark.parametrize('compression, normalize', [
    ('db', 'none'), ('db', 'window'), ('sqrt', 'none')])
def test_streaming_equals_full_recomputation_compressed(
        rng, pad_mode, compression, normalize):
    # The ring keeps compressed frames: silence must start as the
    # compression of zero power (-100 dB), not 0.
    config = FeatureConfig(length=40, pad_mode=pad_mode,
                           compression=compression, normalize=normalize)
    stream = features.StreamingLogMel(config)
    window = np.zeros(config.window_samples, np.float32)
    y = (0.3 * rng.standard_normal(config.window_samples + 4096)
         ).astype(np.float32)
    for start in range(0, len(y), 1024):
        stream.push(y[start:start + 1024])
        window = np.concatenate([window[1024:], y[start:start + 1024]])
        assert_allclose(stream.features(), config(window), rtol=1e-5,
                        atol=1e-4)


def test_streaming_work_per_chunk(rng):
    stream = features.StreamingLogMel()
    stream.push(np.zeros(1024, np.float32))
    before = stream.frames_computed
    stream.push((0.1 * rng.standard_normal(1024)).astype(np.float32))
    # 2 frames completed by the new chunk, 2 touching each padded edge.
    assert stream.frames_computed - before == 6
    with pytest.raises(ParameterError, match='multiple of 512'):
        stream.push(np.zeros(100, np.float32))
    stream.push(np.full(512 * 400, 0.1, np.float32))  # over a window
    assert_allclose(stream.features(),
                    log_melspectrogram(y=np.full(163840, 0.1, np.float32)),
                    rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize('options, message', [
    ({'compression': 'log'}, "compression must be one of ('log1p', 'sqrt', "
     "'none', 'db', 'musicnn'), got 'log'"),
    ({'pad_mode': 'edge'}, "pad_mode must be one of ('reflect', "
     "'constant'), got 'edge'"),
    ({'normalize': 'global'}, "normalize must be one of ('none', "
     "'window'), got 'global'"),
    ({'sr': 0}, 'sr must be positive, got 0'),
    ({'n_fft': -2}, 'n_fft must be positive, got -2'),
    ({'hop_length': None}, 'hop_length must be positive, got None'),
    ({'n_mels': 0}, 'n_mels must be positive, got 0'),
    ({'n_mels': ''}, "n_mels must be positive, got ''"),
    ({'sr': float('nan')}, 'sr must be positive, got nan'),
    ({'fmin': 100.0, 'fmax': 100.0},
     'need fmin < fmax <= sr / 2, got fmin=100.0 fmax=100.0 sr=16000'),
    ({'fmax': 8000.5}, 'need fmin < fmax <= sr / 2, got fmin=0.0 '
     'fmax=8000.5 sr=16000'),
    ({'representation': 'cqt'}, "representation must be one of ('mel', "
     "'wave'), got 'cqt'"),
    ({'chunk': 0}, 'chunk and length must be positive, got chunk=0 '
     'length=160'),
    ({'length': 0}, 'chunk and length must be positive, got chunk=1024 '
     'length=0'),
])
def test_bad_feature_parameters_name_the_parameter(options, message):
    with pytest.raises(ParameterError) as e:
        FeatureConfig(**options)
    assert str(e.value) == message


@pytest.mark.parametrize('options', [
    {'fmax': 8000.0}, {'fmin': 7999.0, 'fmax': 8000.0}, {'chunk': 1},
    {'length': 1}, {'fmax': None}, {'hop_length': 1}])
def test_limits_of_the_feature_parameters_are_allowed(options):
    FeatureConfig(**options)


@pytest.mark.parametrize('y, message', [
    ([0.0, 0.1], 'y must be a 1-D (n_samples,) or 2-D (batch, n_samples) '
     'array, got shape list'),
    (np.zeros((1, 1, 4), np.float32), 'y must be a 1-D (n_samples,) or 2-D '
     '(batch, n_samples) array, got shape (1, 1, 4)'),
    (np.zeros(4, np.int16), 'y must hold floating-point samples in [-1, 1], '
     'got dtype int16; read audio with music_classification.audio.'
     'load_audio'),
    (np.zeros((2, 0), np.float32), 'y is empty: shape (2, 0)'),
])
def test_bad_waveforms_are_named(y, message):
    with pytest.raises(ParameterError) as e:
        log_melspectrogram(y=y)
    assert str(e.value) == message


def test_standardize_each_window_in_place():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 1, 8, 10)).astype(np.float32)
    x *= np.array([1.0, 5.0, 0.01], np.float32)[:, None, None, None]
    x += np.array([2.0, -3.0, 0.5], np.float32)[:, None, None, None]
    x[2] = 7.0  # a constant window
    original = x.copy()
    out = features.standardize(x)
    assert out is x
    expected = (original - original.mean(axis=(1, 2, 3), keepdims=True)) / (
        original.std(axis=(1, 2, 3), keepdims=True) + 1e-5)
    assert_allclose(x, expected, rtol=1e-5, atol=1e-6)
    assert_allclose(x[:2].mean(axis=(1, 2, 3)), 0.0, atol=1e-6)
    assert_allclose(x[:2].std(axis=(1, 2, 3)), 1.0, rtol=1e-4)
    assert not x[2].any()  # a silent or constant window stays 0
    y = original[:1].copy()
    features.standardize(y, eps=1.0)
    assert_allclose(y[0].std(), original[0].std() / (original[0].std() + 1),
                    rtol=1e-5)


@pytest.mark.parametrize('options', [
    dict(sr=8000, n_fft=1024, hop_length=256, n_mels=64, fmin=50.0,
         fmax=3000.0, length=20, chunk=512),
    dict(length=20, representation='wave'),
    # musicnn's: frames of 512 every 256 samples, so the one frame that
    # reads the left padding holds no more samples than the padding
    features.MUSICNN_FEATURES.to_dict(),
    dict(features.MUSICNN_FEATURES.to_dict(), pad_mode='constant'),
])
def test_streaming_with_other_parameters_equals_the_full_features(rng,
                                                                  options):
    config = FeatureConfig(**options)
    stream = features.StreamingLogMel(config)
    assert stream.frames_computed == 0
    window = np.zeros(config.window_samples, np.float32)
    y = (0.3 * rng.standard_normal(3 * config.window_samples)).astype(
        np.float64)  # pushed as float64, kept as float32
    for start in range(0, len(y), 1024):
        piece = y[start:start + 1024]
        stream.push(piece)
        window = np.concatenate([window[len(piece):],
                                 piece.astype(np.float32)])
        assert_allclose(stream.features(), config(window), rtol=1e-5,
                        atol=2e-6)
    # the waveform needs no mel frames
    assert (stream.frames_computed == 0) == (config.representation == 'wave')


def test_streaming_errors_are_named():
    with pytest.raises(ParameterError) as e:
        features.StreamingLogMel(FeatureConfig(n_fft=2047))
    assert str(e.value) == \
        'need an even n_fft and a window that is a whole number of hops'
    stream = features.StreamingLogMel(FeatureConfig(length=20))
    with pytest.raises(ParameterError) as e:
        stream.push(np.zeros(700, np.float32))
    assert str(e.value) == 'push a multiple of 512 samples, got 700'


def test_mel_filterbank_follows_its_band_limits():
    full = features.mel_filterbank(n_mels=32)
    low = features.mel_filterbank(n_mels=32, fmin=100.0, fmax=4000.0)
    assert full.shape == low.shape == (32, 1025) and not low.flags.writeable
    freqs = np.arange(1025) * 16000 / 2048
    assert not low[:, freqs > 4000].any() and full[:, freqs > 4000].any()
    assert not low[:, freqs < 100].any()


def test_from_dict_names_every_unknown_parameter():
    with pytest.raises(ParameterError) as e:
        FeatureConfig.from_dict(dict(FeatureConfig().to_dict(), zeta=1,
                                     alpha=2))
    assert str(e.value) == 'unknown feature parameters: alpha, zeta'


@pytest.mark.parametrize('shape', [(1000,), (2, 1000)])
def test_waveform_input_of_one_or_several_float64_waves(shape):
    y = np.random.default_rng(0).standard_normal(shape)  # float64
    x = FeatureConfig(representation='wave', length=2)(y)
    assert x.dtype == np.float32
    assert x.shape == (len(y) if y.ndim == 2 else 1, 1, 1, 1000)
    assert_allclose(x.reshape(-1, 1000), np.atleast_2d(y), rtol=1e-6)


def test_float64_waves_are_computed_in_float32(rng):
    # the same features, bit for bit, as the float32 cast of the input
    y = 0.3 * rng.standard_normal((2, 20000))
    expected = log_melspectrogram(y=y.astype(np.float32))
    got = log_melspectrogram(y=y)
    assert got.dtype == np.float32
    assert_array_equal(got, expected)


def test_compress_defaults_to_the_originals_log1p():
    S = np.array([[0.0, 1.0, np.e - 1.0]], np.float32)
    assert_allclose(features.compress(S.copy()), [[0.0, np.log(2.0), 1.0]],
                    rtol=1e-6)


@PAD_MODES
def test_power_spectrogram_of_some_frames(rng, pad_mode):
    y = (0.3 * rng.standard_normal((2, 8000))).astype(np.float32)
    full = features.power_spectrogram(y=y, n_fft=512, hop_length=128,
                                      pad_mode=pad_mode)
    assert full.shape == (2, 1 + 8000 // 128, 257)
    some = features.power_spectrogram(y=y, n_fft=512, hop_length=128,
                                      frames=[0, 7, 62], pad_mode=pad_mode)
    assert_array_equal(some, full[:, [0, 7, 62]])


def test_the_features_stay_float32(rng):
    y = (0.3 * rng.standard_normal((2, 4096))).astype(np.float32)
    assert features.power_spectrogram(y=y).dtype == np.float32
    stream = features.StreamingLogMel(FeatureConfig(length=20))
    assert stream.features().dtype == np.float32  # silence, before a push
    stream.push(y[0])
    assert stream.features().dtype == np.float32


def test_decibels_floor_silence_at_minus_100():
    # log10 of zero power would be -inf: the floor of 1e-10 comes first
    S = np.array([[0.0, 1e-12, 1e-10, 1.0]], np.float32)
    assert_allclose(features.compress(S, 'db'),
                    [[-100.0, -100.0, -100.0, 0.0]], atol=1e-4)
    silent = log_melspectrogram(y=np.zeros(4096, np.float32),
                                compression='db')
    assert_allclose(silent, -100.0, atol=1e-4)


@pytest.mark.parametrize('freq, n_coefficients', [(220.0, 20), (880.0, 13),
                                                  (3000.0, 1)])
def test_window_statistics_are_librosa_mfcc_and_delta_statistics(
        freq, n_coefficients):
    rng = np.random.default_rng(int(freq))
    y = tone(freq, seconds=3.0) + 0.05 * rng.normal(
        size=3 * SR).astype(np.float32)
    S = librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=SR, n_mels=64))
    mfcc = librosa.feature.mfcc(S=S, n_mfcc=n_coefficients)
    delta = librosa.feature.delta(mfcc)[:, 4:-4]  # the frames it covers
    expected = np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1),
                               delta.std(1)])
    x = np.stack([S, S[:, ::-1]]).astype(np.float32)  # (2, 64, frames)
    got = features.window_statistics(x=x, n_coefficients=n_coefficients)
    assert got.shape == (2, 4 * n_coefficients) and got.dtype == np.float32
    assert_allclose(got[0], expected, rtol=1e-4, atol=1e-3)
    # (batch, 1, n_mels, frames) gives the same; time reversed: the same
    # cepstral statistics, the deltas' mean negated
    assert_allclose(features.window_statistics(
        x=x[:, None], n_coefficients=n_coefficients), got)
    k = n_coefficients
    assert_allclose(got[1, :2 * k], got[0, :2 * k], rtol=1e-5, atol=1e-3)
    assert_allclose(got[1, 2 * k:3 * k], -got[0, 2 * k:3 * k], atol=1e-3)


@pytest.mark.parametrize('shape, n_coefficients', [
    ((1, 64, 8), 20), ((1, 16, 40), 17), ((1, 16, 40), 0)])
def test_window_statistics_refuses_too_little(shape, n_coefficients):
    with pytest.raises(ParameterError) as e:
        features.window_statistics(x=np.zeros(shape, np.float32),
                                   n_coefficients=n_coefficients)
    assert 'needs at least 9 frames and 1 to n_mels coefficients' in str(
        e.value)
