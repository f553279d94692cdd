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

Importing the package is light: it reads no data file, changes no global
state and imports neither Chainer, CuPy, librosa nor matplotlib. The names
below are loaded on first use (PEP 562). Where the ``[gpu]`` extra is
installed, the CUDA libraries of NVIDIA's pip wheels are loaded just before
CuPy is first imported (by Chainer, on its first import), so that Chainer
finds CuPy (see :mod:`.cuda_libs`); on Python 3.12, which has no
``numpy.distutils``, a stand-in lets Chainer 7.8.1 import (see
:mod:`.stand_in`). Import the package before Chainer.
"""

import importlib
import importlib.util

from music_classification import cuda_libs as _cuda_libs
from music_classification import stand_in as _stand_in

_cuda_libs.preload_before_cupy()
_stand_in.install()

__version__ = '0.1.0'

#: public name -> the module that defines it.
_PUBLIC = {
    'MUSIC_NET': 'net', 'READ_DATASET': 'dataset', 'READ_DATASET2': 'dataset',
    'FeatureConfig': 'features', 'log_melspectrogram': 'features',
    'load_audio': 'audio', 'load_noise': 'audio',
    'load_model': 'serialization', 'save_model': 'serialization',
    'MusicClassificationError': 'errors', 'AudioFileError': 'errors',
    'SampleRateError': 'errors', 'DatasetError': 'errors',
    'ModelFileError': 'errors', 'ParameterError': 'errors',
}

__all__ = list(_PUBLIC) + ['plotting']


def __getattr__(name):
    # The public names and the submodules, imported on first use.
    if name in _PUBLIC:
        module = importlib.import_module(__name__ + '.' + _PUBLIC[name])
        value = getattr(module, name)
    elif not name.startswith('_') and importlib.util.find_spec(
            __name__ + '.' + name) is not None:
        value = importlib.import_module(__name__ + '.' + name)
    else:
        raise AttributeError('module {!r} has no attribute {!r}'.format(
            __name__, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
