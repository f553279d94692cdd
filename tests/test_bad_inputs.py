"""Every module's bad-input errors: the right exception, naming the reason.

Each case matches the reason in the message, not only the file name, so a
different failure with the same file in its message does not pass.
"""

import json

import numpy as np
import pytest

from music_classification import collection, evaluation, prepare, realtime
from music_classification import (MUSIC_NET, READ_DATASET, READ_DATASET2,
                                  load_model, save_model)
from music_classification.errors import (DatasetError, ModelFileError,
                                         ParameterError)
from music_classification.features import FeatureConfig, StreamingLogMel

from conftest import tone, write_float_wav


def small_model_file(tmp_path, **arrays):
    # A complete model of (64, 41) inputs, with some arrays replaced.
    np.random.seed(0)
    net = MUSIC_NET(n_classes=3, input_shape=(64, 41))
    data = {n.lstrip('/'): p.array for n, p in net.namedparams()}
    data.update(arrays)
    for key in [k for k, v in data.items() if v is None]:
        del data[key]
    path = tmp_path / 'model.npz'
    np.savez(path, **data)
    return path


def make_song_folder(tmp_path, artists):
    music = tmp_path / 'music'
    for artist in artists:
        (music / artist).mkdir(parents=True)
        write_float_wav(music / artist / 'a.wav', tone(seconds=0.5))
    return str(music)


CASES = {
    # features
    'chunk 0': (ParameterError, 'chunk and length must be positive',
                lambda tmp: FeatureConfig(chunk=0)),
    'representation': (ParameterError, 'representation must be one of',
                       lambda tmp: FeatureConfig(representation='cqt')),
    'normalize': (ParameterError, 'normalize must be one of',
                  lambda tmp: FeatureConfig(normalize='global')),
    'pad_mode': (ParameterError, 'pad_mode must be one of',
                 lambda tmp: FeatureConfig(pad_mode='edge')),
    'fmax': (ParameterError, r'need fmin < fmax <= sr / 2',
             lambda tmp: FeatureConfig(fmin=4000.0, fmax=3000.0)),
    'odd n_fft stream': (ParameterError, 'need an even n_fft',
                         lambda tmp: StreamingLogMel(FeatureConfig(
                             n_fft=2047))),
    # dataset
    'dataset length 0': (DatasetError, 'chunk and length must be positive',
                         lambda tmp: READ_DATASET(
                             write_float_wav(tmp / 's.wav', tone()),
                             1024, 0)),
    'dataset2 no folder': (DatasetError, 'needs the folder of sounds',
                           lambda tmp: READ_DATASET2()),
    # serialization
    'missing parameter': (ModelFileError, r'missing parameters conv2/W',
                          lambda tmp: load_model(small_model_file(
                              tmp, **{'conv2/W': None}),
                              input_shape=(64, 41))),
    'integer weights': (ModelFileError, r'parameter conv1/W has dtype int',
                        lambda tmp: load_model(small_model_file(
                            tmp, **{'conv1/W': np.zeros((16, 1, 16, 9),
                                                        np.int32)}),
                            input_shape=(64, 41))),
    'unreadable hdf5': (ModelFileError, 'unreadable HDF5 file',
                        lambda tmp: load_model(_write(
                            tmp / 'm.h5', b'\x89HDF\r\n\x1a\n' + b'x' * 64))),
    # collection
    'no music folder': (DatasetError, 'no such music folder',
                        lambda tmp: collection.scan_collection(tmp / 'nope')),
    'one artist': (DatasetError, r'found 1 artist folder\(s\) \(solo\); '
                   'need at least 2',
                   lambda tmp: collection.scan_collection(
                       make_song_folder(tmp, ['solo']))),
    'nothing to train on': (DatasetError, 'leaves none to train on',
                            lambda tmp: collection.split_songs(
                                {1: ['a.wav']}, 1)),
    'labels missing': (ModelFileError, 'labels.json: no such file',
                       lambda tmp: collection.load_labels(
                           tmp / 'labels.json')),
    'labels not json': (ModelFileError, 'not a labels file',
                        lambda tmp: collection.load_labels(_write(
                            tmp / 'labels.json', b'{"classes": '))),
    'labels one class': (ModelFileError, 'must list at least two names',
                         lambda tmp: collection.load_labels(_write(
                             tmp / 'labels.json', json.dumps(
                                 {'classes': ['Other'], 'features': {}})
                             .encode()))),
    'labels and model differ': (ModelFileError, 'they come from different '
                                'runs', lambda tmp: _mismatched_run(tmp)),
    # evaluation
    'no artist folders': (DatasetError, 'no artist folders',
                          lambda tmp: evaluation.evaluate(
                              None, ['Other', 'a'], FeatureConfig(),
                              str(tmp))),
    # prepare
    'prepare bits': (ParameterError, 'bits must be 8 or 16, got 24',
                     lambda tmp: prepare.prepare_collection(
                         [str(tmp)], str(tmp / 'out'), bits=24)),
    'prepare group': (ParameterError,
                      "group must be 'folder', 'parent' or 'tag'",
                      lambda tmp: prepare.prepare_collection(
                          [str(tmp)], str(tmp / 'out'), group='album')),
    # realtime
    'recognizer every': (ParameterError, 'need every > 0',
                         lambda tmp: realtime.Recognizer(
                             MUSIC_NET(n_classes=2, input_shape=(64, 41)),
                             ['Other', 'a'], FeatureConfig(length=40),
                             every=0)),
    'pcm bits': (ParameterError, 'bits must be 8 or 16, got 24',
                 lambda tmp: realtime.pcm_to_float(b'\0\0\0', 24)),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _mismatched_run(tmp):
    np.random.seed(0)
    save_model(MUSIC_NET(n_classes=3, input_shape=(64, 41)),
               tmp / 'model.npz')
    collection.save_labels(tmp / 'labels.json', ['Other', 'a', 'b', 'c'],
                           FeatureConfig(n_mels=64, length=40,
                                         hop_length=1024))
    return collection.load_trained(tmp)


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_names_the_reason(tmp_path, case):
    error, reason, call = CASES[case]
    with pytest.raises(error, match=reason):
        call(tmp_path)
