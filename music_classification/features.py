"""The one feature pipeline: waveforms to the network's log-mel input.

Training, file prediction and the microphone recognizer all call
:func:`log_melspectrogram`. It reproduces, batched and on either NumPy or CuPy
arrays, what the original computed one clip at a time::

    S = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=2048, n_mels=256)
    x = np.log(S + 1.0)

that is: a centred STFT (zero padding of ``n_fft // 2`` on both sides, a
periodic Hann window, hop 512), the power spectrum ``|X|**2``, librosa's own
Slaney mel filter bank, then ``log(1 + S)``. A 10.24 s window of 16 kHz audio
(163,840 samples) gives 321 frames, so the network input is
``(batch, 1, 256, 321)``.
"""

import dataclasses
import functools

import numpy as np

from music_classification.errors import ParameterError

#: Sample rate of the original system, in Hz.
SAMPLE_RATE = 16000
#: Samples per PyAudio chunk in the original.
CHUNK = 1024
#: Chunks per analysis window in the original.
LENGTH = 160
#: Samples per analysis window (about 10.24 s at 16 kHz).
WINDOW_SAMPLES = CHUNK * LENGTH
#: FFT size of the mel spectrogram.
N_FFT = 2048
#: Hop between STFT frames (librosa's default, ``n_fft // 4``).
HOP_LENGTH = 512
#: Number of mel bands.
N_MELS = 256
#: Ways to compress the mel power before the network (the article's ablation).
COMPRESSIONS = ('log1p', 'sqrt', 'none')


def n_frames(n_samples, hop_length=HOP_LENGTH):
    """Number of centred STFT frames for ``n_samples`` samples.

    >>> n_frames(WINDOW_SAMPLES)
    321
    """
    return 1 + int(n_samples) // int(hop_length)


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that turns audio into the network's input.

    Saved next to a trained model so that prediction uses exactly the
    features the model was trained on. The defaults are the original's.
    """

    sr: int = SAMPLE_RATE
    chunk: int = CHUNK
    length: int = LENGTH
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    fmin: float = 0.0
    fmax: float = None
    compression: str = 'log1p'

    def __post_init__(self):
        _check_params(self.sr, self.n_fft, self.hop_length, self.n_mels,
                      self.fmin, self.fmax, self.compression)
        if int(self.chunk) < 1 or int(self.length) < 1:
            raise ParameterError(
                'chunk and length must be positive, got chunk={} length={}'
                .format(self.chunk, self.length))

    @property
    def window_samples(self):
        """Samples in one analysis window (``chunk * length``)."""
        return self.chunk * self.length

    @property
    def input_shape(self):
        """``(n_mels, frames)`` of one window: the network's input shape."""
        return (self.n_mels, n_frames(self.window_samples, self.hop_length))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError('unknown feature parameters: {}'.format(
                ', '.join(sorted(unknown))))
        return cls(**d)

    def __call__(self, y):
        """Features of ``y`` with these parameters; see :func:`log_melspectrogram`."""
        return log_melspectrogram(
            y=y, sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length,
            n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
            compression=self.compression)


def _check_params(sr, n_fft, hop_length, n_mels, fmin, fmax, compression):
    if compression not in COMPRESSIONS:
        raise ParameterError('compression must be one of {}, got {!r}'.format(
            COMPRESSIONS, compression))
    for name, value in (('sr', sr), ('n_fft', n_fft),
                        ('hop_length', hop_length), ('n_mels', n_mels)):
        if not value or value <= 0:
            raise ParameterError('{} must be positive, got {!r}'.format(
                name, value))
    if fmax is not None and not (fmin < fmax <= sr / 2.0):
        raise ParameterError(
            'need fmin < fmax <= sr / 2, got fmin={} fmax={} sr={}'.format(
                fmin, fmax, sr))


@functools.lru_cache(maxsize=16)
def _mel_basis(sr, n_fft, n_mels, fmin, fmax):
    # librosa's own Slaney-normalised filter bank, as librosa.feature.
    # melspectrogram builds it (float32).
    import librosa
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                fmax=fmax, dtype=np.float32)
    basis.flags.writeable = False
    return basis


@functools.lru_cache(maxsize=16)
def _hann(n_fft):
    # Periodic Hann window, as librosa's get_window('hann', n_fft,
    # fftbins=True).
    import scipy.signal
    window = scipy.signal.get_window('hann', n_fft, fftbins=True)
    window = window.astype(np.float32)
    window.flags.writeable = False
    return window


def mel_filterbank(*, sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                   fmax=None):
    """librosa's mel filter bank as a read-only matrix.

    Returns:
        numpy.ndarray: ``(n_mels, 1 + n_fft // 2)`` float32.
    """
    return _mel_basis(sr, n_fft, n_mels, float(fmin),
                      None if fmax is None else float(fmax))


def _get_xp(y):
    # NumPy or CuPy, as chainer.backend.get_array_module does, without
    # importing Chainer here.
    module = type(y).__module__
    if module.startswith('cupy'):
        import cupy
        return cupy
    return np


def _rfft(frames, xp):
    if xp is np:
        import scipy.fft
        # scipy.fft keeps float32 in single precision (numpy.fft does not).
        return scipy.fft.rfft(frames, axis=-1)
    return xp.fft.rfft(frames, axis=-1)


def power_spectrogram(*, y, n_fft=N_FFT, hop_length=HOP_LENGTH):
    """Power ``|STFT|**2`` of a batch, centred and zero padded like librosa.

    Args:
        y (numpy.ndarray or cupy.ndarray): ``(batch, n_samples)`` float32.
        n_fft (int): FFT size (periodic Hann window of that length).
        hop_length (int): samples between frames.

    Returns:
        ndarray: ``(batch, frames, 1 + n_fft // 2)`` float32, on ``y``'s
        device, with ``frames = 1 + n_samples // hop_length``.
    """
    xp = _get_xp(y)
    batch, n_samples = y.shape
    pad = n_fft // 2
    padded = xp.zeros((batch, n_samples + 2 * pad), dtype=np.float32)
    padded[:, pad:pad + n_samples] = y
    frames = n_frames(n_samples, hop_length)
    item = padded.itemsize
    # A strided view: frame t of clip b is padded[b, t*hop : t*hop + n_fft].
    view = xp.lib.stride_tricks.as_strided(
        padded, shape=(batch, frames, n_fft),
        strides=(padded.strides[0], hop_length * item, item))
    windowed = view * xp.asarray(_hann(n_fft))  # (batch, frames, n_fft)
    spec = _rfft(windowed, xp)  # (batch, frames, 1 + n_fft // 2) complex64
    return spec.real ** 2 + spec.imag ** 2


def log_melspectrogram(*, y, sr=SAMPLE_RATE, n_fft=N_FFT,
                       hop_length=HOP_LENGTH, n_mels=N_MELS, fmin=0.0,
                       fmax=None, compression='log1p', max_batch=16):
    """Waveforms to the network input: ``log(1 + mel power)``.

    This is the one feature function of the package. It equals, clip by clip,
    ``np.log(librosa.feature.melspectrogram(y=clip, sr=sr, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels) + 1)`` (computed here in float32),
    but works on a whole batch at once and on NumPy or CuPy arrays alike: the
    result lives on the same device as ``y``.

    Args:
        y (numpy.ndarray or cupy.ndarray): waveforms in [-1, 1], shape
            ``(n_samples,)`` for one clip or ``(batch, n_samples)``.
        sr (int): sample rate of ``y`` in Hz.
        n_fft (int): FFT size in samples.
        hop_length (int): samples between STFT frames.
        n_mels (int): number of mel bands.
        fmin (float): lowest mel band edge in Hz.
        fmax (float or None): highest band edge in Hz (``None``: ``sr / 2``).
        compression (str): ``'log1p'`` (the original's ``log(x + 1)``),
            ``'sqrt'`` (the article's alternative) or ``'none'`` (the raw mel
            power, as in the article's ablation).
        max_batch (int): clips transformed at once; bounds the temporary
            memory to about ``max_batch * frames * n_fft * 12`` bytes.

    Returns:
        ndarray: ``(batch, 1, n_mels, frames)`` float32 with
        ``frames = 1 + n_samples // hop_length`` (321 for a 10.24 s window at
        16 kHz); ``batch`` is 1 for a 1-D ``y``.

    Raises:
        ParameterError: ``y`` is not a 1-D or 2-D floating-point array, is
            empty, or a parameter is out of range.
    """
    _check_params(sr, n_fft, hop_length, n_mels, fmin, fmax, compression)
    xp = _get_xp(y)
    if not hasattr(y, 'ndim') or y.ndim not in (1, 2):
        raise ParameterError(
            'y must be a 1-D (n_samples,) or 2-D (batch, n_samples) array, '
            'got shape {}'.format(getattr(y, 'shape', type(y).__name__)))
    if y.dtype.kind != 'f':
        raise ParameterError(
            'y must hold floating-point samples in [-1, 1], got dtype {}; '
            'read audio with music_classification.audio.load_audio'.format(
                y.dtype))
    if y.ndim == 1:
        y = y[None]  # (1, n_samples)
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise ParameterError('y is empty: shape {}'.format(y.shape))
    y = y.astype(np.float32, copy=False)
    basis = xp.asarray(mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels,
                                      fmin=fmin, fmax=fmax))
    batch, n_samples = y.shape
    frames = n_frames(n_samples, hop_length)
    out = xp.empty((batch, n_mels, frames), dtype=np.float32)
    for start in range(0, batch, max_batch):
        power = power_spectrogram(y=y[start:start + max_batch], n_fft=n_fft,
                                  hop_length=hop_length)
        # (b, frames, n_freq) @ (n_freq, n_mels) -> (b, frames, n_mels)
        mel = xp.matmul(power, basis.T)
        out[start:start + max_batch] = mel.transpose(0, 2, 1)
    if compression == 'log1p':
        xp.log1p(out, out=out)
    elif compression == 'sqrt':
        xp.sqrt(out, out=out)
    return out[:, None]  # (batch, 1, n_mels, frames)
