"""Deep learning music recognition: which artist is playing?

A Chainer reimplementation of the "Deep Learningで楽曲認識" system: 10.24 s
windows of 16 kHz audio, a 256-band log-mel spectrogram, and MUSIC_NET, a
convolutional network without pooling, over "Other" (non-music) plus the
artists. The original's names are kept:

* :class:`MUSIC_NET` (``train.py``): the network.
* :class:`READ_DATASET` (``music2melspec.py``): windows of one song.
* :class:`READ_DATASET2` (``sounds2melspec.py``): the "Other" sounds.
* :func:`log_melspectrogram`: the one feature function shared by training,
  files and the microphone.
* :mod:`plotting`: figures from arrays (the article's mel spectrogram, the
  network input, augmentation, training curves, confusion, timelines).

Importing the package reads no data file and changes no global state; where
the ``[gpu]`` extra is installed it loads the CUDA libraries of NVIDIA's pip
wheels first, so that Chainer finds CuPy (see :mod:`.cuda_libs`).
"""

from music_classification import cuda_libs as _cuda_libs

_cuda_libs.preload()


from music_classification import plotting
from music_classification.audio import load_audio, load_noise
from music_classification.dataset import READ_DATASET, READ_DATASET2
from music_classification.errors import (
    AudioFileError, DatasetError, ModelFileError, MusicClassificationError,
    ParameterError, SampleRateError)
from music_classification.features import FeatureConfig, log_melspectrogram
from music_classification.net import MUSIC_NET
from music_classification.serialization import load_model, save_model

__version__ = '0.1.0'

__all__ = [
    'MUSIC_NET', 'READ_DATASET', 'READ_DATASET2', 'FeatureConfig',
    'log_melspectrogram', 'load_audio', 'load_noise', 'load_model',
    'save_model', 'MusicClassificationError', 'AudioFileError',
    'SampleRateError', 'DatasetError', 'ModelFileError', 'ParameterError',
    'plotting',
]
