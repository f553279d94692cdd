"""Every module's bad-input errors: the right exception, naming the reason.

Each case matches the reason in the message, not only the file name, so a
different failure with the same file in its message does not pass.
"""

import json
import re

import numpy as np
from numpy.testing import assert_allclose
import pytest

from music_classification import (collection, evaluation, features, net,
                                  prepare, realtime, training)
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
    'nothing to train on': (DatasetError, r'^solo: 1 song\(s\); holding out '
                            '1 leaves none to train on: add songs, move the '
                            r'folder out, or hold out fewer \(--val-songs\)$',
                            lambda tmp: collection.split_songs(
                                {1: ['solo/a.wav']}, 1)),
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


def _small_cnn():
    return net.build_model('small_cnn', n_classes=3, input_shape=(16, 16))


@pytest.mark.parametrize('call, error, message', [
    (lambda: net.build_model('nope'),
     ParameterError, "model must be one of music_net, music_net_pool, "
     "musicnn, small_cnn, wave, got 'nope'"),
    (lambda: net.build_model(
        'small_cnn', n_classes=3, bogus=1), ParameterError,
     # (Python's own words; mutation testing renames __init__)
     re.compile(r"small_cnn: \S*__init__\S*\(\) got an unexpected keyword "
                r"argument 'bogus'")),
    (lambda: MUSIC_NET(n_classes=3, input_shape=(32, 20)), ParameterError,
     "input shape (32, 20) is too small for music_net's convolutions (need "
     "at least 48 x 33)"),
    (lambda: MUSIC_NET(n_classes=3, input_shape=(8, 8), pooling=True),
     ParameterError,
     "input shape (8, 8) is too small for music_net's convolutions (need "
     "at least 112 x 89)"),
    (lambda: MUSIC_NET(n_classes=3, input_shape=(64, 41), init='v2'),
     ParameterError, "init must be one of ('v1.9', 'v1.8'), got 'v2'"),
    (lambda: features.compress(
        np.ones(3, np.float32), compression='cube'), ParameterError,
     "compression must be one of ('log1p', 'sqrt', 'none', 'db', "
     "'musicnn'), got 'cube'"),
    (lambda: _small_cnn().predict(np.zeros((1, 1, 16, 15), np.float32)),
     ParameterError, 'SMALL_CNN expects input of shape (batch, 1, 16, 16), '
     'got (1, 1, 16, 15)'),
    (lambda: training.balanced_iterator(
        [[1], []]), DatasetError, 'class 1 has no examples'),
    (lambda: READ_DATASET2(), DatasetError, "READ_DATASET2 needs the folder "
     "of sounds, as wavdir= (the original's name) or folder="),
    (lambda: READ_DATASET('x.wav', stride=0), DatasetError,
     'stride must be at least 1, got 0'),
    (lambda: READ_DATASET('x.wav', chunk=0), DatasetError,
     'chunk and length must be positive, got 0 and 160'),
    (lambda: READ_DATASET('x.wav', length=-2), DatasetError,
     'chunk and length must be positive, got 1024 and -2'),
])
def test_exact_messages(call, error, message):
    with pytest.raises(error) as e:
        call()
    if isinstance(message, str):
        assert str(e.value) == message
    else:
        assert message.fullmatch(str(e.value)), str(e.value)


def test_a_short_song_is_padded_with_a_warning_naming_it(tmp_path):
    path = str(tmp_path / 'short.wav')
    write_float_wav(path, tone(440.0, seconds=1.0))
    with pytest.warns(UserWarning) as w:
        data = READ_DATASET(path, augment=False)
    assert [str(x.message) for x in w] == [
        '{}: 1.00 s long, shorter than one window (10.24 s); zero-padded '
        'at the end to one window'.format(path)]
    assert data.wavfile == path and len(data) == 1
    wave = data.get_example(0)  # no label given: the wave alone
    assert wave.shape == (163840,) and not wave[16000:].any()
    assert_allclose(wave[:16000], tone(440.0, seconds=1.0))


@pytest.mark.parametrize('peak, warned', [
    (0.0, True), (0.9e-4, True),   # digital silence, and below -80 dBFS
    (1.1e-4, False), (0.5, False)])
def test_a_silent_song_is_named_in_a_warning(tmp_path, peak, warned):
    import warnings
    path = str(tmp_path / 'quiet.wav')
    write_float_wav(path, tone(440.0, seconds=11.0, amp=peak))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        READ_DATASET(path, augment=False)
    assert [str(x.message) for x in w] == ([
        '{}: silent (no sample reaches -80 dBFS): it teaches nothing of its '
        'artist, and as a held-out song it is named by chance'.format(path)]
        if warned else [])


@pytest.mark.parametrize('extra, stride, windows', [
    (0, 1, 1),          # exactly one window: no padding, no warning
    (10, 1, 11),        # every sample a start
    (10, 4, 3),         # starts 0, 4, 8
    (1000, 333, 4),     # 0, 333, 666, 999
])
def test_song_windows_and_the_short_song_warning_place(tmp_path, extra,
                                                       stride, windows):
    import warnings
    window = 1024 * 160
    path = str(tmp_path / 'song.wav')
    rng = np.random.default_rng(0)
    write_float_wav(path, 0.1 * rng.standard_normal(window + extra))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "shorter than one window"
        data = READ_DATASET(path, stride=stride, augment=False)
    assert len(data) == windows
    assert data.indexes.tolist() == list(range(0, extra + 1, stride))
    with pytest.warns(UserWarning) as w:  # the warning names the caller,
        READ_DATASET(path, length=170, augment=False)  # not the package
    assert not w[0].filename.endswith('dataset.py')
