"""The one feature pipeline: waveforms to the network's log-mel input.

Training, file prediction and the microphone recognizer all call
:func:`log_melspectrogram`. It reproduces, batched and on either NumPy or CuPy
arrays, what the original computed one clip at a time::

    S = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=2048, n_mels=256)
    x = np.log(S + 1.0)     # librosa 0.5.x: pad_mode='reflect'

that is: a centred STFT (``n_fft // 2`` samples of padding on both sides, a
periodic Hann window, hop 512), the power spectrum ``|X|**2``, librosa's own
Slaney mel filter bank, then ``log(1 + S)``. A 10.24 s window of 16 kHz audio
(163,840 samples) gives 321 frames, so the network input is
``(batch, 1, 256, 321)``.

The padding is ``pad_mode``: the original's librosa (0.5.x) reflected the
signal at its ends (``'reflect'``, the default here); librosa 0.10 and later
pad with zeros (``'constant'``). The two differ only in the first and last
few frames of a window.
"""

import dataclasses
import functools
import numbers

from chainer.backend import get_array_module
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
#: Ways to compress the mel power before the network: the article's
#: ``log(1 + S)``, its ``sqrt`` alternative, none, decibels (``10 log10
#: S``, floored at -100 dB: :data:`DB_FLOOR`) and musicnn's ``log10(1 +
#: 10000 S)``.
COMPRESSIONS = ('log1p', 'sqrt', 'none', 'db', 'musicnn')
#: Smallest power ``'db'`` compression takes the log of (-100 dB).
DB_FLOOR = 1e-10
#: Padding of the centred STFT at the window's ends, as librosa's
#: ``pad_mode``: the original's librosa 0.5 reflected, librosa >= 0.10 pads
#: zeros.
PAD_MODES = ('reflect', 'constant')
#: ``pad_mode`` of a ``labels.json`` written before it was recorded: those
#: models were trained on zero-padded edges.
LEGACY_PAD_MODE = 'constant'
#: Normalisations after the compression: none (the original), or each
#: window standardised to zero mean and unit variance over all its bands
#: and frames.
NORMALIZATIONS = ('none', 'window')
#: What the network sees: the mel spectrogram (the article) or the
#: waveform itself (the article's failed first try).
REPRESENTATIONS = ('mel', 'wave')


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
    pad_mode: str = 'reflect'
    normalize: str = 'none'
    representation: str = 'mel'

    def __post_init__(self):
        _check_params(self.sr, self.n_fft, self.hop_length, self.n_mels,
                      self.fmin, self.fmax, self.compression, self.pad_mode,
                      self.normalize)
        if self.representation not in REPRESENTATIONS:
            raise ParameterError(
                'representation must be one of {}, got {!r}'.format(
                    REPRESENTATIONS, self.representation))
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
        """``(n_mels, frames)`` of one window: the network's input shape.

        ``(1, window_samples)`` for ``representation='wave'``.
        """
        if self.representation == 'wave':
            return (1, self.window_samples)
        return (self.n_mels, n_frames(self.window_samples, self.hop_length))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config saved by :meth:`to_dict`.

        A dict without ``pad_mode`` (a ``labels.json`` written before it was
        saved) gives :data:`LEGACY_PAD_MODE`, the padding such a model was
        trained with.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError('unknown feature parameters: {}'.format(
                ', '.join(sorted(unknown))))
        d = dict(d)
        d.setdefault('pad_mode', LEGACY_PAD_MODE)
        return cls(**d)

    def __call__(self, y):
        """Features of ``y`` with these parameters.

        See :func:`log_melspectrogram`; for ``representation='wave'`` the
        waveforms themselves, ``(batch, 1, 1, n_samples)`` float32.
        """
        if self.representation == 'wave':
            return _waveform_input(y)
        return log_melspectrogram(
            y=y, sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length,
            n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
            compression=self.compression, pad_mode=self.pad_mode,
            normalize=self.normalize)


def _waveform_input(y):
    _check_waveforms(y)
    if y.ndim == 1:
        y = y[None]  # (1, n_samples)
    return y.astype(np.float32, copy=False)[:, None, None]


def _check_params(sr, n_fft, hop_length, n_mels, fmin, fmax, compression,
                  pad_mode, normalize):
    if compression not in COMPRESSIONS:
        raise ParameterError('compression must be one of {}, got {!r}'.format(
            COMPRESSIONS, compression))
    if pad_mode not in PAD_MODES:
        raise ParameterError('pad_mode must be one of {}, got {!r}'.format(
            PAD_MODES, pad_mode))
    if normalize not in NORMALIZATIONS:
        raise ParameterError('normalize must be one of {}, got {!r}'.format(
            NORMALIZATIONS, normalize))
    for name, value in (('sr', sr), ('n_fft', n_fft),
                        ('hop_length', hop_length), ('n_mels', n_mels)):
        if not isinstance(value, numbers.Real) or not value > 0:
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


@functools.lru_cache(maxsize=16)
def _mel_blocks(sr, n_fft, n_mels, fmin, fmax, width=64):
    # librosa's bank is over 99 % zeros (each band touches a few FFT bins):
    # the bins are split into blocks of ``width``, and in each block the
    # bands with a non-zero weight there form one small dense matrix,
    # ``(f0, f1, m0, m1, weights)`` with weights ``(f1 - f0, m1 - m0)``.
    # 256 bands over 1025 bins: 18 k weights instead of 262 k.
    basis = _mel_basis(sr, n_fft, n_mels, fmin, fmax)
    blocks = []
    for f0 in range(0, basis.shape[1], width):
        part = basis[:, f0:f0 + width]
        bands = np.flatnonzero(part.any(axis=1))
        if bands.size:
            m0, m1 = int(bands[0]), int(bands[-1]) + 1
            weights = np.ascontiguousarray(part[m0:m1].T)
            weights.flags.writeable = False
            blocks.append((f0, f0 + part.shape[1], m0, m1, weights))
    return tuple(blocks)


def mel_filterbank(*, sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                   fmax=None):
    """librosa's mel filter bank as a read-only matrix.

    Returns:
        numpy.ndarray: ``(n_mels, 1 + n_fft // 2)`` float32.
    """
    return _mel_basis(sr, n_fft, n_mels, float(fmin),
                      None if fmax is None else float(fmax))


def _rfft(frames, xp, workers=None):
    if xp is np:
        import scipy.fft
        # scipy.fft keeps float32 in single precision (numpy.fft does not),
        # and splits a batch of frames over ``workers`` threads.
        return scipy.fft.rfft(frames, axis=-1, workers=workers)
    return xp.fft.rfft(frames, axis=-1)


def power_spectrogram(*, y, n_fft=N_FFT, hop_length=HOP_LENGTH, frames=None,
                      pad_mode='reflect'):
    """Power ``|STFT|**2`` of a batch, centred and padded like librosa.

    Args:
        y (numpy.ndarray or cupy.ndarray): ``(batch, n_samples)`` float32.
        n_fft (int): FFT size (periodic Hann window of that length).
        hop_length (int): samples between frames.
        frames (array-like of int or None): compute only these frames
            (``None``: all of them).
        pad_mode (str): ``'reflect'`` or ``'constant'`` (zeros), as
            librosa's ``stft(center=True, pad_mode=...)``.

    Returns:
        ndarray: ``(batch, frames, 1 + n_fft // 2)`` float32, on ``y``'s
        device, with ``frames = 1 + n_samples // hop_length`` (or
        ``len(frames)``).
    """
    xp = get_array_module(y)
    batch, n_samples = y.shape
    pad = n_fft // 2
    padded = xp.pad(y, ((0, 0), (pad, pad)), mode=pad_mode)
    item = padded.itemsize
    # A strided view: frame t of clip b is padded[b, t*hop : t*hop + n_fft].
    view = xp.lib.stride_tricks.as_strided(
        padded, shape=(batch, n_frames(n_samples, hop_length), n_fft),
        strides=(padded.strides[0], hop_length * item, item))
    if frames is not None:
        view = view[:, xp.asarray(frames)]
    return _frame_power(view, xp, workers=-1)


def _frame_power(framed, xp, workers=None):
    # (..., n_fft) samples -> (..., 1 + n_fft // 2) power, periodic Hann.
    windowed = framed * xp.asarray(_hann(framed.shape[-1]))
    spec = _rfft(windowed, xp, workers)  # complex64
    power = xp.square(spec.real)
    power += xp.square(spec.imag)
    return power


def _mel(power, blocks, n_mels, xp):
    # (b, frames, n_freq) -> (b, n_mels, frames): the bank's product, block
    # by block (see _mel_blocks), on NumPy and CuPy alike.
    out = xp.zeros(power.shape[:-1] + (n_mels,), dtype=np.float32)
    for f0, f1, m0, m1, weights in blocks:
        out[..., m0:m1] += xp.matmul(power[..., f0:f1], xp.asarray(weights))
    return out.transpose(0, 2, 1)


#: The features :class:`~music_classification.net.MUSICNN` was trained on:
#: 96 mel bands (librosa's filters, as the original's) of 512-sample frames
#: every 256 samples at 16 kHz, ``log10(1 + 10000 S)``, 187 frames (2.98
#: s) a window. musicnn's librosa reflected the STFT's edges.
MUSICNN_FEATURES = FeatureConfig(chunk=256, length=186, n_fft=512,
                                 hop_length=256, n_mels=96,
                                 compression='musicnn', pad_mode='reflect')


def compress(S, compression='log1p'):
    """The compression step of the features, in place; returns ``S``.

    ``'log1p'``: ``log(1 + S)`` (the original); ``'sqrt'``; ``'none'``;
    ``'db'``: ``10 log10(max(S, 1e-10))``, librosa's ``power_to_db(S,
    ref=1.0, amin=1e-10, top_db=None)``. Unlike ``log(1 + S)``, which is
    nearly linear for the mel power of quiet bands (``S << 1``), decibels
    keep their detail. ``'musicnn'``: ``log10(1 + 10000 S)``, the input of
    :class:`~music_classification.net.MUSICNN`.
    """
    xp = get_array_module(S)
    if compression == 'log1p':
        xp.log1p(S, out=S)
    elif compression == 'sqrt':
        xp.sqrt(S, out=S)
    elif compression == 'db':
        xp.maximum(S, xp.float32(DB_FLOOR), out=S)
        xp.log10(S, out=S)
        S *= xp.float32(10.0)
    elif compression == 'musicnn':
        S *= xp.float32(10000.0)
        xp.log1p(S, out=S)
        S *= xp.float32(1 / np.log(10.0))
    elif compression != 'none':
        raise ParameterError('compression must be one of {}, got {!r}'.format(
            COMPRESSIONS, compression))
    return S


def standardize(x, eps=1e-5):
    """Each window to zero mean and unit variance, in place; returns ``x``.

    Args:
        x: ``(batch, 1, n_mels, frames)`` features (NumPy or CuPy).
        eps (float): added to the standard deviation (a silent window
            stays 0).
    """
    xp = get_array_module(x)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    x -= mean
    x /= std + xp.float32(eps)
    return x


def log_melspectrogram(*, y, sr=SAMPLE_RATE, n_fft=N_FFT,
                       hop_length=HOP_LENGTH, n_mels=N_MELS, fmin=0.0,
                       fmax=None, compression='log1p', pad_mode='reflect',
                       normalize='none', max_batch=None):
    """Waveforms to the network input: ``log(1 + mel power)``.

    This is the one feature function of the package. It equals, clip by clip,
    ``np.log(librosa.feature.melspectrogram(y=clip, sr=sr, n_fft=n_fft,
    hop_length=hop_length, n_mels=n_mels, pad_mode=pad_mode) + 1)``
    (computed here in float32),
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
            ``'sqrt'`` (the article's alternative), ``'none'`` (the raw mel
            power, as in the article's ablation) or ``'db'`` (decibels, see
            :func:`compress`).
        pad_mode (str): padding of the centred STFT at the clip's ends:
            ``'reflect'`` (the original's librosa 0.5, the default) or
            ``'constant'`` (zeros, librosa 0.10 and later).
        normalize (str): ``'none'`` (the original) or ``'window'``: each
            window standardised to zero mean, unit variance
            (:func:`standardize`), after the compression.
        max_batch (int or None): clips transformed at once; bounds the
            temporary memory to about ``max_batch * frames * n_fft * 12``
            bytes. ``None``: 2 on the CPU, where two clips' frames (5 MB)
            stay in the cache (1.8x faster than 16 on a 2-core machine),
            16 on a GPU.

    Returns:
        ndarray: ``(batch, 1, n_mels, frames)`` float32 with
        ``frames = 1 + n_samples // hop_length`` (321 for a 10.24 s window at
        16 kHz); ``batch`` is 1 for a 1-D ``y``.

    Raises:
        ParameterError: ``y`` is not a 1-D or 2-D floating-point array, is
            empty, or a parameter is out of range.
    """
    _check_params(sr, n_fft, hop_length, n_mels, fmin, fmax, compression,
                  pad_mode, normalize)
    xp = get_array_module(y)
    _check_waveforms(y)
    if y.ndim == 1:
        y = y[None]  # (1, n_samples)
    y = y.astype(np.float32, copy=False)
    blocks = _mel_blocks(sr, n_fft, n_mels, float(fmin),
                         None if fmax is None else float(fmax))
    batch, n_samples = y.shape
    frames = n_frames(n_samples, hop_length)
    out = xp.empty((batch, n_mels, frames), dtype=np.float32)
    if max_batch is None:
        max_batch = 2 if xp is np else 16
    for start in range(0, batch, max_batch):
        power = power_spectrogram(y=y[start:start + max_batch], n_fft=n_fft,
                                  hop_length=hop_length, pad_mode=pad_mode)
        out[start:start + max_batch] = _mel(power, blocks, n_mels, xp)
    out = compress(out, compression)[:, None]  # (batch, 1, n_mels, frames)
    return standardize(out) if normalize == 'window' else out


def _check_waveforms(y):
    if not hasattr(y, 'ndim') or y.ndim not in (1, 2):
        raise ParameterError(
            'y must be a 1-D (n_samples,) or 2-D (batch, n_samples) array, '
            'got shape {}'.format(getattr(y, 'shape', type(y).__name__)))
    if y.dtype.kind != 'f':
        raise ParameterError(
            'y must hold floating-point samples in [-1, 1], got dtype {}; '
            'read audio with music_classification.audio.load_audio'.format(
                y.dtype))
    if y.size == 0:
        raise ParameterError('y is empty: shape {}'.format(y.shape))


class StreamingLogMel(object):
    """The features of a rolling window, updated frame by frame.

    The realtime recognizer keeps the last ``config.window_samples`` samples
    (the original's 160 chunks of 1024) and needs the features of that
    window after every chunk. The original recomputed all 321 STFT frames
    each time. Here the samples and the compressed mel frames live in ring
    buffers: when ``m`` new samples arrive (a multiple of the hop), the
    frame ring advances by ``m / hop`` and only the frames that read the
    new samples, plus the few frames that touch the window's padded left
    edge, are computed: 6 of 321 for a chunk of 1024, and nothing is
    shifted. The sample ring is stored twice over (``2 L`` samples), so
    that the window, and every run of frames in it, is one contiguous
    slice: the frames are strided views, padded (reflect or zeros) only at
    the window's edges. The result equals :func:`log_melspectrogram` of the
    current window (tested to float32 tolerance), edges included, with
    either ``pad_mode``.

    Args:
        config (FeatureConfig): feature parameters.
    """

    def __init__(self, config=None):
        self.config = config or FeatureConfig()
        c = self.config
        if c.n_fft % 2 or c.window_samples % c.hop_length:
            raise ParameterError('need an even n_fft and a window that is a '
                                 'whole number of hops')
        self.n_frames = n_frames(c.window_samples, c.hop_length)
        self.half = c.n_fft // 2
        # Frames whose support reaches into the left padding.
        self.edge = -(-self.half // c.hop_length)
        import scipy.sparse
        # The same filter bank, stored sparse: each FFT bin feeds at most two
        # mel bands, so a few frames cost microseconds on one thread.
        self.basis = scipy.sparse.csr_matrix(mel_filterbank(
            sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin,
            fmax=c.fmax))
        self._frame_numbers = {}  # runs of frames -> their numbers
        self.reset()

    def reset(self):
        """Start again from a silent window."""
        c = self.config
        L = c.window_samples
        self._ring = np.zeros(2 * L, np.float32)  # the samples, twice over
        self._start = 0  # ring index of the window's first sample
        # ring of compressed mel frames (those of silence to begin with)
        self._mel = compress(np.zeros((c.n_mels, self.n_frames), np.float32),
                             c.compression)
        self._first = 0  # ring index of frame 0
        self.frames_computed = 0

    @property
    def window(self):
        """The current window's samples, oldest first (a copy)."""
        L = self.config.window_samples
        return self._ring[self._start:self._start + L].copy()

    def _framed(self, lo, hi):
        # Frames lo..hi-1 as (hi - lo, n_fft) samples: a strided view of
        # the window, padded where the frames reach past its ends.
        c, L = self.config, self.config.window_samples
        a, b = lo * c.hop_length - self.half, (hi - 1) * c.hop_length + \
            self.half
        segment = self._ring[self._start + max(a, 0):
                             self._start + min(b, L)]
        if a < 0 or b > L:  # np.pad's reflect or zeros, without its cost
            left, right = max(0, -a), max(0, b - L)
            if c.pad_mode == 'reflect':  # sample -i is sample i, read
                # from the whole window (frames may hold less than a pad)
                w = self._ring[self._start:self._start + L]
                parts = [w[left:0:-1], segment, w[L - 2:L - 2 - right:-1]]
            else:
                parts = [np.zeros(left, np.float32), segment,
                         np.zeros(right, np.float32)]
            segment = np.concatenate(parts)
        # a strided view (np.ndarray: as_strided's work without its cost)
        return np.ndarray((hi - lo, c.n_fft), np.float32, segment, 0,
                          (c.hop_length * 4, 4))

    def _compute(self, runs):
        # runs: (lo, hi) ranges of frames to compute.
        if self.config.representation == 'wave':
            return  # the network takes the samples themselves
        framed = np.concatenate([self._framed(lo, hi) for lo, hi in runs])
        power = _frame_power(framed, np)  # (frames, n_freq)
        frames = self._frame_numbers.get(runs)
        if frames is None:
            frames = self._frame_numbers[runs] = np.concatenate(
                [np.arange(lo, hi) for lo, hi in runs])
        ring = (self._first + frames) % self.n_frames
        # (n_mels, frames), compressed once per frame, not per window
        self._mel[:, ring] = compress(self.basis @ power.T,
                                      self.config.compression)
        self.frames_computed += len(frames)

    def push(self, samples):
        """Append ``samples`` (float, a multiple of ``hop_length`` long)."""
        c = self.config
        samples = np.asarray(samples, dtype=np.float32)
        m = len(samples)
        L = c.window_samples
        if m % c.hop_length:
            raise ParameterError('push a multiple of {} samples, got {}'
                                 .format(c.hop_length, m))
        if m >= L:
            self._ring[:L] = self._ring[L:] = samples[-L:]
            self._start = self._first = 0
            self._compute(((0, self.n_frames),))
            return
        # The oldest m samples make room, in both copies of the ring.
        end = self._start + m
        if end <= L:
            self._ring[self._start:end] = samples
            self._ring[self._start + L:end + L] = samples
        else:
            k = L - self._start
            self._ring[self._start:L] = self._ring[2 * L - k:] = samples[:k]
            self._ring[:m - k] = self._ring[L:L + m - k] = samples[k:]
        self._start = end % L
        shift = m // c.hop_length
        self._first = (self._first + shift) % self.n_frames
        # Frames that read the new samples or the right padding, and those
        # that read the left padding.
        first_new = max(self.edge, (L - m - self.half) // c.hop_length + 1)
        self._compute(((0, self.edge), (first_new, self.n_frames)))

    def features(self):
        """The network input of the window: ``(1, 1, n_mels, frames)``.

        ``(1, 1, 1, n_samples)`` for ``representation='wave'``.
        """
        if self.config.representation == 'wave':
            return self.config(self.window)
        x = np.roll(self._mel, -self._first, axis=1)[None, None]
        return standardize(x) if self.config.normalize == 'window' else x


#: Cepstral coefficients :func:`window_statistics` keeps (librosa's MFCC
#: default).
N_STATS_COEFFICIENTS = 20
#: Frames each side of a delta's centre (librosa's ``delta(width=9)``).
DELTA_HALF_WIDTH = 4


@functools.lru_cache(maxsize=16)
def _dct_rows(n_mels, n_coefficients):
    # The first rows of the orthonormal DCT-II over n_mels bands (librosa's
    # mfcc: scipy.fft.dct(S, type=2, norm='ortho', axis=-2)), float32.
    import scipy.fft
    dct = scipy.fft.dct(np.eye(n_mels), type=2, norm='ortho', axis=0)
    return dct[:n_coefficients].astype(np.float32)


def window_statistics(*, x, n_coefficients=N_STATS_COEFFICIENTS):
    """MFCC-like statistics of each window of log-mel features.

    The cepstrum of each frame (an orthonormal DCT-II over the mel bands,
    its first ``n_coefficients``, as :func:`librosa.feature.mfcc` on
    decibels), its delta (librosa's 9-frame ``delta``, on the frames it
    covers whole), then the mean and standard deviation over time of each:
    the statistics of the MFCC baseline, on the network's own features.

    Args:
        x: ``(batch, n_mels, frames)`` or ``(batch, 1, n_mels, frames)``
            features (NumPy or CuPy), at least 9 frames.
        n_coefficients (int): cepstral coefficients kept.

    Returns:
        ``(batch, 4 * n_coefficients)`` float32: the coefficients' means,
        their standard deviations, the deltas' means and standard
        deviations.
    """
    xp = get_array_module(x)
    if x.ndim == 4:
        x = x[:, 0]  # (batch, n_mels, frames)
    n_mels, frames = x.shape[1:]
    half = DELTA_HALF_WIDTH
    if frames < 2 * half + 1 or not 1 <= n_coefficients <= n_mels:
        raise ParameterError(
            'window_statistics needs at least {} frames and 1 to n_mels '
            'coefficients, got {} frames, {} mel bands and {}'.format(
                2 * half + 1, frames, n_mels, n_coefficients))
    c = xp.matmul(xp.asarray(_dct_rows(n_mels, n_coefficients)),
                  x.astype(np.float32, copy=False))
    # c: (batch, n_coefficients, frames)
    # Savitzky-Golay first derivative of order 1: sum_k k c[t + k] / 60
    weights = np.arange(-half, half + 1, dtype=np.float32)
    weights /= (weights ** 2).sum()
    d = sum(float(w) * c[:, :, half + k:frames - half + k]
            for k, w in zip(range(-half, half + 1), weights))
    return xp.concatenate([c.mean(axis=2), c.std(axis=2), d.mean(axis=2),
                           d.std(axis=2)], axis=1).astype(np.float32)
