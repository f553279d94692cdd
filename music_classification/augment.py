"""The original's augmentation: recorded noise and random volume.

Pure functions on 1-D float arrays; every random draw comes from the
``numpy.random.Generator`` passed in, never from global state.
"""

import functools

import numpy as np

from music_classification.errors import ParameterError

#: Noise scale range of the original: ``noise * U(0.001, 3.0)``.
NOISE_SCALE = (0.001, 3.0)
#: Volume range for songs: ``y * U(0.1, 1.0)``.
SONG_VOLUME = (0.1, 1.0)
#: Volume range for the "Other" sounds: ``y * U(0.05, 1.0)``.
OTHER_VOLUME = (0.05, 1.0)


def add_noise(y, noise, *, rng, scale=None, low=NOISE_SCALE[0],
              high=NOISE_SCALE[1]):
    """``y + scale * noise[start:start + len(y)]`` with a random start.

    Args:
        y (numpy.ndarray): ``(n_samples,)`` waveform.
        noise (numpy.ndarray): ``(n_noise,)`` noise; repeated end to end if
            shorter than ``y``.
        rng (numpy.random.Generator): source of ``scale`` and the start.
        scale (float or None): fixed noise gain; ``None`` draws U(low, high).

    Returns:
        numpy.ndarray: a new float32 array of ``y``'s shape.
    """
    if scale is None:
        scale = rng.uniform(low, high)
    segment = _noise_stretch(noise, len(y), rng=rng)
    return (y + segment * np.float32(scale)).astype(np.float32, copy=False)


def _noise_stretch(noise, n, *, rng):
    # n samples of the noise from a random start, the noise repeated end
    # to end if shorter
    if len(noise) < n:
        noise = np.resize(noise, n)
    start = rng.integers(0, len(noise) - n + 1)
    return noise[start:start + n]


def add_noise_at_snr(y, noise, *, rng, snr_db, level=None):
    """``y`` plus ``noise`` at a signal-to-noise ratio of ``snr_db``.

    A stretch of ``noise`` from a random start (repeated end to end if
    shorter than ``y``) is scaled to an RMS of ``level * 10**(-snr_db /
    20)`` and added; the sum is clipped to [-1, 1], as a recording would
    be. As a room's noise does not follow the music, ``level`` is the RMS
    of the whole song a window comes from, not of the window.

    Args:
        y (numpy.ndarray): ``(n_samples,)`` waveform.
        noise (numpy.ndarray): ``(n_noise,)`` noise, not silent.
        rng (numpy.random.Generator): source of the start.
        snr_db (float): signal-to-noise ratio in dB.
        level (float or None): the signal's RMS; None: ``y``'s own.

    Returns:
        numpy.ndarray: a new float32 array of ``y``'s shape.
    """
    if level is None:
        level = rms(y)
    segment = _noise_stretch(noise, len(y), rng=rng).astype(np.float64)
    noise_rms = rms(segment)
    if noise_rms > 0:
        segment *= level * 10.0 ** (-snr_db / 20.0) / noise_rms
    return np.clip(y + segment, -1.0, 1.0).astype(np.float32)


def change_volume(y, *, rng, volume=None, low=SONG_VOLUME[0],
                  high=SONG_VOLUME[1]):
    """``y * volume`` with ``volume`` drawn from U(low, high) if not given."""
    if volume is None:
        volume = rng.uniform(low, high)
    return (y * np.float32(volume)).astype(np.float32, copy=False)


def fit_to_length(y, length, *, rng=None):
    """Cut or zero-pad a clip to exactly ``length`` samples.

    As the original did for its "Other" sounds: a longer clip is cut at a
    random place, a shorter one is zero-padded at a random place. Without
    ``rng`` the cut starts at 0 and the padding goes at the end.
    """
    n = len(y)
    if n == length:
        return y
    if n > length:
        start = 0 if rng is None else int(rng.integers(0, n - length + 1))
        return y[start:start + length]
    out = np.zeros(length, dtype=y.dtype)
    start = 0 if rng is None else int(rng.integers(0, length - n + 1))
    out[start:start + n] = y
    return out


def pink_noise(n_samples, *, rng):
    """Pink (1/f power) Gaussian noise, zero mean and unit RMS."""
    white = rng.standard_normal(n_samples)
    spectrum = np.fft.rfft(white)
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    spectrum /= np.sqrt(freqs)
    spectrum[0] = 0.0
    pink = np.fft.irfft(spectrum, n=n_samples)
    return pink / rms(pink)


#: RMS of the original's recorded room noise (``noise/noise.npy``: signed
#: 8-bit values in -9..7 divided by 128), in dBFS: with its DC offset, and of
#: the fluctuation alone.
ORIGINAL_NOISE_DBFS = -44.5
ORIGINAL_NOISE_AC_DBFS = -47.4


def rms(y):
    """Root mean square of ``y`` (float64 sums), as a float."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def dbfs(y):
    """RMS level of ``y`` in dB relative to full scale (1.0)."""
    return 20.0 * np.log10(max(rms(y), 1e-12))


@functools.lru_cache(maxsize=4)
def _default_noise(sr, seconds, seed, mains_hz):
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    noise = pink_noise(n, rng=rng)
    # Mains hum and its harmonics (relative to the pink noise's unit RMS),
    # slowly wandering in level.
    wobble = 1.0 + 0.3 * np.sin(2 * np.pi * 0.13 * t + rng.uniform(0, 6.3))
    for k, amp in ((1, 0.4), (2, 0.2), (3, 0.15), (5, 0.07)):
        if k * mains_hz < sr / 2:
            noise += amp * wobble * np.sin(2 * np.pi * k * mains_hz * t
                                           + rng.uniform(0, 2 * np.pi))
    noise -= noise.mean()
    # The original's levels: the fluctuation at -47.4 dBFS, plus the DC
    # offset (about +0.004) that brings the whole to -44.5 dBFS.
    ac = 10.0 ** (ORIGINAL_NOISE_AC_DBFS / 20.0)
    total = 10.0 ** (ORIGINAL_NOISE_DBFS / 20.0)
    noise *= ac / rms(noise)
    noise += np.sqrt(total ** 2 - ac ** 2)
    noise = noise.astype(np.float32)
    noise.flags.writeable = False
    return noise


def default_noise(*, sr=16000, seconds=20.0, seed=0, mains_hz=50.0):
    """Built-in room noise at the original's level: pink noise, mains hum.

    The original recorded 12.5 s of its room with PyAudio
    (``noise/noise.npy``, signed 8-bit values in -9..7, divided by 128) and
    loaded it from a path relative to the working directory. When no noise
    is given, this stands in for it at the same level: an RMS of -44.5 dBFS,
    of which a DC offset of about +0.004 is part, the fluctuation alone
    -47.4 dBFS, as the original's recording. The fluctuation is pink noise
    plus a 50 Hz hum with harmonics. Since the augmentation scales the noise
    by U(0.001, 3.0), this level sets every signal-to-noise ratio of the
    training windows. The same arguments always give the same, read-only,
    array.

    Returns:
        numpy.ndarray: ``(seconds * sr,)`` float32.
    """
    if sr <= 0 or seconds <= 0:
        raise ParameterError('sr and seconds must be positive, got {} and {}'
                             .format(sr, seconds))
    return _default_noise(int(sr), float(seconds), int(seed), float(mains_hz))
