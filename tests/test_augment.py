import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from music_classification import augment
from music_classification.errors import ParameterError


def test_add_noise_fixed_scale_is_a_slice(rng):
    y = np.linspace(-0.5, 0.5, 100).astype(np.float32)
    noise = np.arange(1000, dtype=np.float32) / 1000
    out = augment.add_noise(y, noise, rng=rng, scale=2.0)
    start = int(round((out[0] - y[0]) / 2.0 * 1000))
    assert_allclose(out, y + 2.0 * noise[start:start + 100], atol=1e-6)


def test_add_noise_draws_scale_in_range(rng):
    y = np.zeros(50, np.float32)
    noise = np.ones(80, np.float32)
    scales = [augment.add_noise(y, noise, rng=rng)[0] for _ in range(500)]
    assert 0.001 <= min(scales) and max(scales) <= 3.0
    assert max(scales) - min(scales) > 2.5  # spans the range


def test_short_noise_is_repeated(rng):
    out = augment.add_noise(np.zeros(10, np.float32),
                            np.array([1, 2, 3], np.float32), rng=rng,
                            scale=1.0)
    assert_array_equal(out, [1, 2, 3, 1, 2, 3, 1, 2, 3, 1])


def test_change_volume(rng):
    y = np.ones(5, np.float32)
    assert_allclose(augment.change_volume(y, rng=rng, volume=0.3), 0.3)
    vols = [augment.change_volume(y, rng=rng, low=0.05, high=1.0)[0]
            for _ in range(300)]
    assert 0.05 <= min(vols) < 0.1 and 0.95 < max(vols) <= 1.0


def test_fit_to_length(rng):
    y = np.arange(1, 6, dtype=np.float32)
    assert_array_equal(augment.fit_to_length(y, 8), [1, 2, 3, 4, 5, 0, 0, 0])
    assert_array_equal(augment.fit_to_length(y, 3), [1, 2, 3])
    assert augment.fit_to_length(y, 5) is y
    padded = augment.fit_to_length(y, 9, rng=rng)
    start = int(np.flatnonzero(padded)[0])
    assert_array_equal(padded[start:start + 5], y)
    assert padded.sum() == y.sum()
    starts = {int(augment.fit_to_length(y, 2, rng=rng)[0]) for _ in range(50)}
    assert starts == {1, 2, 3, 4}
    # the padding's place: every offset from 0 to 4, and only those
    offsets = {int(np.flatnonzero(augment.fit_to_length(y, 9, rng=rng))[0])
               for _ in range(100)}
    assert offsets == {0, 1, 2, 3, 4}
    for dtype in (np.float32, np.float64):  # padded in the clip's own type
        assert augment.fit_to_length(y.astype(dtype), 9).dtype == dtype
        assert augment.fit_to_length(y.astype(dtype), 9,
                                     rng=rng).dtype == dtype


def test_default_noise_is_deterministic_at_the_originals_level():
    a = augment.default_noise()
    b = augment.default_noise()
    assert a is b and not a.flags.writeable
    assert a.dtype == np.float32 and a.shape == (20 * 16000,)
    # The original's recorded noise: -44.5 dBFS with a DC offset of +0.004,
    # -47.4 dBFS without it.
    assert augment.dbfs(a) == pytest.approx(-44.5, abs=0.05)
    assert float(a.mean(dtype=np.float64)) == pytest.approx(0.004, abs=3e-4)
    assert augment.dbfs(a - a.mean(dtype=np.float64)) == pytest.approx(
        -47.4, abs=0.05)
    spectrum = np.abs(np.fft.rfft(a))
    freqs = np.fft.rfftfreq(len(a), 1 / 16000)
    hum = spectrum[np.argmin(abs(freqs - 50))]
    assert hum > 10 * np.median(spectrum[(freqs > 40) & (freqs < 60)])
    assert not np.array_equal(augment.default_noise(seed=1)[:100], a[:100])
    with pytest.raises(ParameterError):
        augment.default_noise(seconds=0)


@pytest.mark.parametrize('n', [4000, 4001])
def test_pink_noise_is_one_over_f(n):
    a = augment.pink_noise(n, rng=np.random.default_rng(5))
    assert a.shape == (n,)
    assert abs(a.mean()) < 1e-12  # no DC at all
    assert np.sqrt(np.mean(a ** 2)) == pytest.approx(1.0, rel=1e-12)
    assert_array_equal(a, augment.pink_noise(n, rng=np.random.default_rng(5)))
    # power per octave is flat: power density falls as 1/f
    power = np.abs(np.fft.rfft(a)) ** 2
    octaves = [power[2 ** k:2 ** (k + 1)].sum() for k in range(2, 11)]
    slope = np.polyfit(np.arange(len(octaves)), np.log2(octaves), 1)[0]
    assert abs(slope) < 0.2


@pytest.mark.parametrize('sr, seconds, mains_hz', [(8000, 4.5, 60.0),
                                                   (16000, 4.0, 50.0)])
def test_default_noise_follows_its_arguments(sr, seconds, mains_hz):
    a = augment.default_noise(sr=sr, seconds=seconds, mains_hz=mains_hz)
    assert a.shape == (int(sr * seconds),)
    assert augment.dbfs(a) == pytest.approx(-44.5, abs=0.05)
    spectrum = np.abs(np.fft.rfft(a - a.mean()))
    freqs = np.fft.rfftfreq(len(a), 1 / sr)

    def level(f):  # the bin at f against the pink noise around it
        near = (abs(freqs - f) < 15) & (abs(freqs - f) > 2)
        return spectrum[np.argmin(abs(freqs - f))] / np.median(
            spectrum[near])
    for k in (1, 2, 3, 5):  # the hum and its harmonics
        assert level(k * mains_hz) > 5
    assert level(4 * mains_hz) < 3  # no 4th harmonic
    other = augment.default_noise(sr=sr, seconds=seconds, mains_hz=mains_hz,
                                  seed=1)
    assert not np.array_equal(other, a)


@pytest.mark.parametrize('sr, seconds', [(0, 1.0), (16000, 0), (-1, 1.0),
                                         (16000, -2.0)])
def test_default_noise_refuses_no_samples(sr, seconds):
    with pytest.raises(ParameterError) as e:
        augment.default_noise(sr=sr, seconds=seconds)
    assert str(e.value) == \
        'sr and seconds must be positive, got {} and {}'.format(sr, seconds)


def test_dbfs():
    assert augment.dbfs(np.ones(10, np.float32)) == pytest.approx(0.0)
    sine = 0.5 * np.sin(np.linspace(0, 200 * np.pi, 100000, endpoint=False))
    assert augment.dbfs(sine) == pytest.approx(
        20 * np.log10(0.5 / np.sqrt(2)), abs=1e-6)
    assert augment.dbfs(np.zeros(4)) == pytest.approx(-240.0)
    # float16 input is measured in float64: no overflow
    assert augment.dbfs(np.full(4, 300.0, np.float16)) == pytest.approx(
        20 * np.log10(300.0))


def test_default_noise_at_the_smallest_sizes():
    assert augment.default_noise(sr=1, seconds=2.0).shape == (2,)
    assert augment.default_noise(sr=16000, seconds=1.0).shape == (16000,)


def test_noise_and_volume_give_float32_and_honour_their_range(rng):
    y = np.linspace(-0.5, 0.5, 100)  # float64 in, float32 out
    noisy = augment.add_noise(y, np.ones(100, np.float32), rng=rng)
    assert noisy.dtype == np.float32
    quieter = augment.change_volume(y, rng=rng)
    assert quieter.dtype == np.float32
    vols = [augment.change_volume(np.ones(1, np.float32), rng=rng, low=0.2,
                                  high=0.4)[0] for _ in range(200)]
    assert 0.2 <= min(vols) < 0.22 and 0.38 < max(vols) <= 0.4


@pytest.mark.parametrize('snr_db', [0.0, 10.0, 20.0])
@pytest.mark.parametrize('level', [None, 0.05])
def test_add_noise_at_snr_sets_the_ratio(snr_db, level):
    sr = 16000
    t = np.arange(sr) / sr
    y = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = augment.default_noise(sr=sr, seconds=3.0)
    out = augment.add_noise_at_snr(y, noise, rng=np.random.default_rng(5),
                                   snr_db=snr_db, level=level)
    assert out.dtype == np.float32 and out.shape == y.shape
    added = out.astype(np.float64) - y
    signal = augment.dbfs(y) if level is None else 20 * np.log10(level)
    assert_allclose(signal - augment.dbfs(added), snr_db, atol=1e-3)
    # a stretch of the noise itself from the drawn start, scaled
    start = np.random.default_rng(5).integers(0, len(noise) - sr + 1)
    stretch = noise[start:start + sr].astype(np.float64)
    assert_allclose(added, stretch * (added @ stretch) / (stretch @ stretch),
                    rtol=1e-4, atol=1e-6)


def test_add_noise_at_snr_clips_and_repeats_short_noise(rng):
    y = np.full(1000, 0.9, np.float32)
    noise = np.array([1.0, -1.0, 1.0], np.float32)
    out = augment.add_noise_at_snr(y, noise, rng=rng, snr_db=0.0)
    assert out.max() == 1.0  # 0.9 + 0.9 clipped, as a recording
    assert_allclose(np.unique(out), [0.0, 1.0], atol=1e-6)
