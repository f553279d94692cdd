"""READ_DATASET and READ_DATASET2: the original's data readers, fixed.

``READ_DATASET`` cuts one song into overlapping windows of ``chunk * length``
samples (1024 * 160 = 163,840, about 10.24 s at 16 kHz); ``READ_DATASET2``
serves a folder of short non-music sounds plus one silent clip, the "Other"
class. Both add the original's augmentation (a random slice of background
noise times U(0.001, 3.0), then a volume of U(0.1, 1.0) for songs or
U(0.05, 1.0) for "Other" sounds) and keep the original's method names.

They are :class:`chainer.dataset.DatasetMixin` datasets: ``get_example(i)``
returns the augmented waveform of window ``i`` (with its label when one is
given), so that a converter can compute the features of a whole batch at once
on the training device.

The original's methods return what they returned there, so that its training
loop runs unchanged: ``get_one_melspec`` and ``get_batch_melspec`` give the
mel *power* (the original's script applied ``np.log(xs + 1.0)`` to the
concatenated batch itself), and ``READ_DATASET2.get_batch_melspec()`` with
no argument gives every sound plus the silent clip. The model-ready features
(compressed as ``compression`` says, ``log(1 + mel)`` by default) come from
``get_one_features`` and ``get_batch_features``, through the package's one
feature function.

Differences from the original, on purpose:

* ``shuffle_indexes`` permutes the window offsets. The original replaced them
  with ``permutation(len(indexes))``, i.e. the numbers ``0..n-1``, so after
  the first shuffle every window started within the first ``n`` samples of
  the song.
* Randomness comes from a ``numpy.random.Generator`` (``rng=``, or a seed),
  never from NumPy's global state, so a seed reproduces a run.
* The noise is an argument (array, ``.npy`` or audio file), with a built-in
  default, instead of ``noise/noise.npy`` relative to the working directory.
* Any sample format and any number of channels are read correctly (see
  :mod:`music_classification.audio`), a wrong sample rate raises an error
  naming the file and both rates, and ``expected_fs`` defaults to 16000.
* ``shuffle_indexes`` of ``READ_DATASET2`` keeps ``files``, ``sounds`` and
  ``names`` aligned.
"""

import dataclasses
import os
import warnings

import chainer
import numpy as np

from music_classification import audio
from music_classification.augment import (
    OTHER_VOLUME, SONG_VOLUME, add_noise, change_volume, fit_to_length)
from music_classification.features import (
    CHUNK, LENGTH, SAMPLE_RATE, FeatureConfig)
from music_classification.errors import DatasetError

#: A song none of whose samples reaches this (-80 dBFS) is silent: a
#: warning says so.
SILENT_PEAK = 1e-4


class _WindowDataset(chainer.dataset.DatasetMixin):
    """What READ_DATASET and READ_DATASET2 share: noise, features, batches."""

    #: (low, high) of the random volume.
    volume_range = SONG_VOLUME

    def __init__(self, chunk, length, expected_fs, noise, rng, augment,
                 label, compression, noise_augment):
        self.CHUNK = int(chunk)
        self.length = int(length)
        self.window = self.CHUNK * self.length
        if self.window <= 0:
            raise DatasetError('chunk and length must be positive, got {} '
                               'and {}'.format(chunk, length))
        self.rng = rng  # the setter makes a Generator of it
        self.augment = bool(augment)
        self.noise_augment = bool(noise_augment)
        self.label = label
        self.compression = compression
        self.sampling_rate = expected_fs
        self._noise_arg = noise
        self.noise = None

    @property
    def rng(self):
        """The generator of the augmentation (one stream per process).

        A worker of a ``MultiprocessIterator`` starts with a copy of the
        parent's generator; it gets a stream of its own, spawned from the
        run's seed (the generator's ``SeedSequence``) and the worker's
        number in its pool, not from its process id, so that the same seed
        gives the same streams in every run. (Which worker reads which
        window is still up to the pool.)
        """
        if os.getpid() != self._rng_pid:
            import multiprocessing
            worker = tuple(multiprocessing.current_process()._identity) \
                or (os.getpid(),)
            seed = self._rng.bit_generator.seed_seq
            self._rng = np.random.default_rng(np.random.SeedSequence(
                seed.entropy, spawn_key=tuple(seed.spawn_key) + worker))
            self._rng_pid = os.getpid()
        return self._rng

    @rng.setter
    def rng(self, value):
        self._rng = np.random.default_rng(value)  # a Generator passes through
        self._rng_pid = os.getpid()

    def _load(self, path, resample):
        # With expected_fs=None (the original's default) the first file read
        # fixes the rate; every later file (and the noise) must match it.
        y, sr = audio.load_audio(path, sr=self.sampling_rate,
                                 resample=resample)
        self.sampling_rate = sr
        return y

    def _load_noise(self):
        if self.augment and self.noise_augment:
            self.noise = audio.load_noise(self._noise_arg,
                                          sr=self.sampling_rate)
        del self._noise_arg

    @property
    def features(self):
        """The :class:`~music_classification.features.FeatureConfig` used."""
        return FeatureConfig(
            sr=self.sampling_rate, chunk=self.CHUNK, length=self.length,
            compression=self.compression)

    def _augment(self, data):
        if self.noise_augment:
            data = add_noise(data, self.noise, rng=self.rng)
        low, high = self.volume_range
        return change_volume(data, rng=self.rng, low=low, high=high)

    def get_one_wave(self, index):
        """The (augmented) waveform of one window, ``(chunk * length,)``."""
        raise NotImplementedError  # defined by each dataset

    def get_example(self, i):
        wave = self.get_one_wave(i)
        if self.label is None:
            return wave
        return wave, np.int32(self.label)

    def get_one_melspec(self, index):
        """Mel power of one window, ``(n_mels, frames)`` float32.

        As the original: not compressed (its training script took
        ``np.log(xs + 1.0)`` of the batch). See :meth:`get_one_features`.
        """
        return self.get_batch_melspec([index])[0, 0]

    def get_batch_melspec(self, indexes):
        """Mel power of windows, ``(len(indexes), 1, n_mels, frames)``.

        As the original: not compressed. See :meth:`get_batch_features`.
        """
        return self._batch(indexes, dataclasses.replace(
            self.features, compression='none'))

    def get_one_features(self, index):
        """Model-ready features of one window, ``(n_mels, frames)``."""
        return self.get_batch_features([index])[0, 0]

    def get_batch_features(self, indexes):
        """Model-ready features ``(len(indexes), 1, n_mels, frames)``.

        The mel power compressed as ``compression`` says (by default
        ``log(1 + mel)``), what the network takes.
        """
        return self._batch(indexes, self.features)

    def _batch(self, indexes, config):
        waves = np.stack([self.get_one_wave(i) for i in indexes])
        return config(waves)


class READ_DATASET(_WindowDataset):
    """Windows of one song, with noise and volume augmentation.

    Args:
        wavfile (str): the song: any file :func:`~music_classification.audio.
            load_audio` reads.
        chunk (int): samples per chunk (the original: 1024).
        length (int): chunks per window (the original: 160).
        expected_fs (int or None): the song's sample rate in Hz (default
            16000); ``None`` accepts the file's rate, as the original did.
        noise: background noise: an array, a ``.npy`` or an audio file, or
            ``None`` for :func:`~music_classification.augment.default_noise`.
        stride (int): samples between window starts. The article's listing
            started a window every 5 samples (``linspace(0, n, n / 5)``), its
            training script every 3.
        rng: ``numpy.random.Generator`` or seed for the augmentation and
            :meth:`shuffle_indexes`.
        augment (bool): add noise and change the volume (the original always
            did); ``False`` gives the clean windows.
        noise_augment (bool): with ``augment``, add the noise (``False``:
            change the volume only, the "no noise" ablation).
        label (int or None): returned with each example by ``get_example``.
        compression (str): see :func:`~music_classification.features.
            log_melspectrogram`.
        resample (bool): resample a song of another rate instead of raising
            :class:`~music_classification.errors.SampleRateError`.

    A song shorter than one window is zero-padded at its end to one window
    (with a warning), so it yields exactly one window.
    """

    def __init__(self, wavfile, chunk=CHUNK, length=LENGTH,
                 expected_fs=SAMPLE_RATE, *, noise=None, stride=5,
                 rng=None, augment=True, label=None, compression='log1p',
                 resample=False, noise_augment=True):
        super(READ_DATASET, self).__init__(
            chunk, length, expected_fs, noise, rng, augment, label,
            compression, noise_augment)
        if int(stride) < 1:
            raise DatasetError('stride must be at least 1, got {}'.format(
                stride))
        self.wavfile = str(wavfile)
        all_data = self._load(wavfile, resample)
        self._load_noise()
        fs = self.sampling_rate
        if not np.any(np.abs(all_data) >= SILENT_PEAK):
            warnings.warn(
                '{}: silent (no sample reaches {:g} dBFS): it teaches '
                'nothing of its artist, and as a held-out song it is named '
                'by chance'.format(wavfile, 20 * np.log10(SILENT_PEAK)),
                stacklevel=2)
        if len(all_data) < self.window:
            warnings.warn(
                '{}: {:.2f} s long, shorter than one window ({:.2f} s); '
                'zero-padded at the end to one window'.format(
                    wavfile, len(all_data) / fs, self.window / fs),
                stacklevel=2)
            all_data = fit_to_length(all_data, self.window)
        self.all_data = all_data
        self.stride = int(stride)
        # Window start offsets, in ascending order until shuffled.
        self.indexes = np.arange(0, len(all_data) - self.window + 1,
                                 self.stride, dtype=np.int64)

    @property
    def n_blocks(self):
        """Number of windows."""
        return len(self.indexes)

    def __len__(self):
        return len(self.indexes)

    def shuffle_indexes(self):
        """Shuffle the window offsets in place (fixed: permutes them)."""
        self.indexes = self.rng.permutation(self.indexes)

    def get_one_wave(self, index):
        start = self.indexes[index]
        data = self.all_data[start:start + self.window]
        return self._augment(data) if self.augment else data.copy()


#: Name of the silent clip among ``READ_DATASET2.names``.
SILENCE = '<silence>'


class READ_DATASET2(_WindowDataset):
    """The "Other" class: a folder of short non-music sounds plus silence.

    Each example is one whole sound fitted to a window as the original did:
    a longer sound is cut at a random place, a shorter one zero-padded at a
    random place (both at 0 with ``augment=False``). Then noise, and a volume
    of U(0.05, 1.0).

    Args:
        wavdir (str): folder of audio files (door knocks, footsteps, ...);
            also accepted as ``folder=``.
        chunk, length, expected_fs, noise, rng, augment, compression,
        resample, noise_augment: as for :class:`READ_DATASET`.
        label (int or None): label of every example (the original: 0).
        include_silence (bool): add one all-silent clip, as the original.

    Attributes:
        sounds (list of numpy.ndarray): the waveforms, silence last until
            :meth:`shuffle_indexes`.
        files (list): ``files[i]`` is the path of ``sounds[i]`` (``None``
            for the silent clip).
        names (list of str): ``files[i]``, or ``'<silence>'``.
    """

    volume_range = OTHER_VOLUME

    def __init__(self, wavdir=None, chunk=CHUNK,
                 length=LENGTH, expected_fs=SAMPLE_RATE, *,
                 noise=None, rng=None, augment=True, label=0,
                 include_silence=True, compression='log1p', resample=False,
                 folder=None, noise_augment=True):
        if (wavdir is None) == (folder is None):
            raise DatasetError('READ_DATASET2 needs the folder of sounds, as '
                               'wavdir= (the original\'s name) or folder=')
        folder = wavdir if folder is None else folder
        super(READ_DATASET2, self).__init__(
            chunk, length, expected_fs, noise, rng, augment, label,
            compression, noise_augment)
        self.folder = self.wavdir = str(folder)
        self.files = audio.list_audio_files(folder)
        self.sounds = [self._load(path, resample) for path in self.files]
        self._load_noise()
        # files[i], names[i] and sounds[i] belong together; the silent clip
        # has no file.
        self.files = [str(path) for path in self.files]
        self.names = list(self.files)
        if include_silence:
            self.sounds.append(np.zeros(self.window, dtype=np.float32))
            self.files.append(None)
            self.names.append(SILENCE)

    @property
    def n_data(self):
        """Number of sounds, the silent clip included."""
        return len(self.sounds)

    def __len__(self):
        return len(self.sounds)

    def shuffle_indexes(self):
        """Shuffle the sounds in place, their files and names with them."""
        order = self.rng.permutation(len(self.sounds))
        self.sounds = [self.sounds[i] for i in order]
        self.names = [self.names[i] for i in order]
        self.files = [self.files[i] for i in order]

    def get_batch_melspec(self, indexes=None):
        """Mel power of sounds, ``(n, 1, n_mels, frames)``.

        As the original: with no argument, every sound and the silent clip.
        """
        if indexes is None:
            indexes = range(len(self.sounds))
        return super(READ_DATASET2, self).get_batch_melspec(indexes)

    def get_batch_features(self, indexes=None):
        """Model-ready features of sounds (all of them with no argument)."""
        if indexes is None:
            indexes = range(len(self.sounds))
        return super(READ_DATASET2, self).get_batch_features(indexes)

    def get_one_wave(self, index):
        rng = self.rng if self.augment else None
        data = fit_to_length(self.sounds[index], self.window, rng=rng)
        return self._augment(data) if self.augment else data.copy()
