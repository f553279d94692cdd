"""Reading audio and noise files: the package's one file loader.

Every sample comes back as floating point in [-1, 1] whatever the file held:

=====================  ==========================================
file                   conversion
=====================  ==========================================
unsigned 8-bit PCM     ``(x - 128) / 128`` (the original's format)
signed 16-bit PCM      ``x / 32768``
signed 24-bit PCM      ``x / 2**23``
signed 32-bit PCM      ``x / 2**31``
32/64-bit float        as stored (not clipped)
FLAC, OGG, MP3, ...    decoded by libsndfile through soundfile
=====================  ==========================================

Several channels are averaged to mono. The original kept only the left
channel (``data[:, 0]``), which loses anything panned right; averaging keeps
both. A file whose sample rate is not the expected one is an error that names
both rates, or is resampled (soxr, high quality) with ``resample=True``.
"""

import contextlib
import os
import re
import sys
import threading

import numpy as np

from music_classification import augment
from music_classification.errors import AudioFileError, SampleRateError

#: File name endings read as audio when a folder is listed.
AUDIO_EXTENSIONS = ('.wav', '.wave', '.flac', '.ogg', '.oga', '.opus',
                    '.mp3', '.aif', '.aiff', '.au')


def _check_file(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioFileError('{}: is a folder, not an audio file'.format(path))
    if not os.path.exists(path):
        raise AudioFileError('{}: no such file'.format(path))
    if os.path.getsize(path) == 0:
        raise AudioFileError('{}: the file is empty (0 bytes)'.format(path))
    return path


#: Held while descriptor 2 is swapped, so that two threads reading files
#: at once cannot leave it pointing at os.devnull.
_DESCRIPTOR_2 = threading.Lock()


@contextlib.contextmanager
def _decoder_notes_discarded():
    # libsndfile's MP3 decoder (mpg123) writes notes such as "Note: Trying
    # to resync..." straight to file descriptor 2 while it reads a damaged
    # or non-MP3 file; the one line of AudioFileError says what went wrong.
    # (What another thread writes to stderr meanwhile is lost too.)
    with _DESCRIPTOR_2:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no descriptor 2
            yield
            return
        try:
            with open(os.devnull, 'w') as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _decode_error(path, error):
    # libsndfile says "Error opening '<path>': <reason>."; the path is
    # named once, and a file that exists is not "possibly a pipe"
    reason = re.sub(r"^Error opening '.*?': ", '', str(error),
                    flags=re.S).rstrip('.')
    reason = re.sub(r'^Error ?: ', '', reason)  # "Error : flac decoder ..."
    if reason.startswith('File does not exist or is not a regular file'):
        reason = 'not an audio format libsndfile can read (not audio, or ' \
                 'damaged)'
    return AudioFileError('{}: cannot decode audio: {}. Supported: WAV '
                          '(8/16/24/32-bit PCM, float), FLAC, OGG, Opus, '
                          'MP3'.format(path, reason))


def load_audio(path, *, sr=16000, resample=False, mono=True,
               dtype=np.float32):
    """Read an audio file as floating-point samples in [-1, 1].

    Args:
        path (str or os.PathLike): a WAV (8-bit unsigned, 16/24/32-bit
            signed or float PCM), FLAC, OGG/Vorbis, Opus or MP3 file.
        sr (int or None): the sample rate expected, in Hz; ``None`` accepts
            the file's own rate.
        resample (bool): resample a file of another rate to ``sr`` instead of
            raising :class:`SampleRateError`.
        mono (bool): average the channels (the original kept the left one).
        dtype: floating-point type of the result.

    Returns:
        tuple: ``(y, sr)``: ``y`` of shape ``(n_samples,)`` (or
        ``(n_samples, channels)`` with ``mono=False``) and the rate in Hz.

    Raises:
        AudioFileError: the file is missing, a folder, empty, undecodable,
            holds no samples, or holds NaN or infinite samples.
        SampleRateError: its rate is not ``sr`` and ``resample`` is false.
    """
    import soundfile

    path = _check_file(path)
    try:
        with _decoder_notes_discarded():
            y, file_sr = soundfile.read(path, dtype='float64',
                                        always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError,
            ValueError) as e:
        raise _decode_error(path, e) from None
    if y.shape[0] == 0:
        raise AudioFileError('{}: the file holds no audio samples'.format(
            path))
    bad = int(np.count_nonzero(~np.isfinite(y)))
    if bad:
        raise AudioFileError(
            '{}: {} of its {} samples are NaN or infinite'.format(
                path, bad, y.size))
    if mono:
        y = y.mean(axis=1)
    if sr is not None and file_sr != sr:
        if not resample:
            raise SampleRateError(
                '{}: sample rate is {} Hz, expected {} Hz (convert the file, '
                'or resample it: --resample on the command line, '
                'resample=True in Python)'.format(path, file_sr, sr))
        y = _resample(y, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(y, dtype=dtype), int(file_sr)


def _resample(y, orig_sr, target_sr):
    import librosa
    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr,
                            res_type='soxr_hq', axis=0)


def list_audio_files(folder):
    """Audio files directly inside ``folder``, sorted by name.

    Raises:
        AudioFileError: ``folder`` is missing, not a folder, or holds no file
            with one of :data:`AUDIO_EXTENSIONS`.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise AudioFileError('{}: no such folder'.format(folder))
    files = sorted(
        os.path.join(folder, name) for name in os.listdir(folder)
        if name.lower().endswith(AUDIO_EXTENSIONS)
        and not name.startswith('.')
        and os.path.isfile(os.path.join(folder, name)))
    if not files:
        nested = any(os.path.isdir(os.path.join(folder, name))
                     for name in os.listdir(folder))
        raise AudioFileError(
            '{}: the folder holds no audio files (looked for {}){}'.format(
                folder, ', '.join(AUDIO_EXTENSIONS),
                '; for songs in sub-folders, music-classification prepare '
                'lays a collection out flat' if nested else ''))
    return files


def _integer_to_float(x, what):
    # The original's noise.npy held signed 8-bit samples from PyAudio's
    # paInt8 and was scaled by 1/128.
    if x.dtype == np.uint8:
        return (x.astype(np.float32) - 128.0) / 128.0
    if x.dtype.kind == 'i':
        return x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
    if x.dtype.kind == 'f':
        return x.astype(np.float32)
    raise AudioFileError('{}: samples of dtype {} are not audio'.format(
        what, x.dtype))


def load_noise(noise=None, *, sr=16000):
    """Background noise for augmentation, as 1-D float32 in [-1, 1].

    Args:
        noise: ``None`` for the built-in deterministic room noise
            (:func:`music_classification.augment.default_noise`); a 1-D
            array (integer arrays are scaled as PCM: int8 by 1/128 as the
            original's ``noise.npy``, uint8 as unsigned 8-bit, int16 by
            1/32768); a ``.npy`` file holding such an array; or any audio
            file :func:`load_audio` reads (resampled to ``sr`` if needed).
        sr (int): sample rate of the audio the noise is added to.

    Raises:
        AudioFileError: the file or array is unusable (named in the message).
    """
    if noise is None:
        return augment.default_noise(sr=sr)
    if isinstance(noise, (str, os.PathLike)):
        path = _check_file(noise)
        if path.lower().endswith('.npy'):
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise AudioFileError('{}: not a readable .npy array: {}'
                                     .format(path, e)) from None
            return _checked_noise(array, path)
        y, _ = load_audio(path, sr=sr, resample=True)
        return y
    return _checked_noise(np.asarray(noise), 'noise array')


def _checked_noise(array, what):
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1 or array.size == 0:
        raise AudioFileError(
            '{}: noise must be a non-empty 1-D array of samples, got shape {}'
            .format(what, array.shape))
    array = _integer_to_float(array, what)
    if not np.all(np.isfinite(array)):
        raise AudioFileError('{}: noise holds NaN or infinite samples'.format(
            what))
    return array
