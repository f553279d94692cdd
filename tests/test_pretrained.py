import hashlib
import json
import os
import shutil
import struct

import chainer
import numpy as np
from numpy.testing import assert_allclose
import pytest

from music_classification import errors, net, pretrained
from music_classification.features import MUSICNN_FEATURES

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope='module')
def wheel():
    """musicnn's wheel, from the user's cache or fetched into it (29 MB)."""
    return pretrained.fetch_musicnn_wheel()


@pytest.fixture(scope='module')
def reference():
    with open(os.path.join(HERE, 'data', 'musicnn_msd_reference.json')) as f:
        return json.load(f)


def reference_input():
    # The input the reference was computed on, (batch, frames, bands), as
    # MUSICNN reads it: (batch, 1, bands, frames)
    x = np.random.RandomState(0).rand(4, 187, 96).astype(np.float32) * 3
    return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None])


def varint(n):
    out = b''
    while True:
        out += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
        n >>= 7
        if not n:
            return out


def block(entries):
    # An uncompressed table block of full keys, one restart point
    out = b''.join(varint(0) + varint(len(k)) + varint(len(v)) + k + v
                   for k, v in entries)
    return out + struct.pack('<II', 0, 1)


def tiny_checkpoint(tensors):
    """The ``.index`` and ``.data`` bytes of a checkpoint of ``tensors``
    (name -> float32 array), in TensorFlow's layout."""
    data, entries = b'', [(b'', b'\x08\x01')]  # the header first
    for name, a in sorted(tensors.items()):
        a = np.asarray(a, '<f4')
        dims = b''.join(b'\x12' + varint(len(d)) + d for d in
                        (b'\x08' + varint(n) for n in a.shape))
        entry = (b'\x08\x01' + b'\x12' + varint(len(dims)) + dims
                 + b'\x20' + varint(len(data)) + b'\x28'
                 + varint(a.nbytes))
        entries.append((name.encode(), entry))
        data += a.tobytes()
    body = block(entries)
    index_block = block([(b'\xff', varint(0) + varint(len(body)))])
    index = body + b'\x00\x00\x00\x00\x00'
    at = len(index)
    index += index_block + b'\x00\x00\x00\x00\x00'
    footer = varint(0) + varint(0) + varint(at) + varint(len(index_block))
    footer = footer.ljust(40, b'\x00') + struct.pack('<Q', 0xdb4775248b80fb57)
    return index + footer, data


def test_read_checkpoint_reads_names_shapes_and_values():
    rng = np.random.default_rng(0)
    tensors = {'conv2d/kernel': rng.standard_normal((7, 38, 1, 3)),
               'conv2d/bias': rng.standard_normal(3),
               'dense/kernel': rng.standard_normal((200, 2))}
    read = pretrained.read_checkpoint(*tiny_checkpoint(tensors))
    assert sorted(read) == sorted(tensors)
    for name, a in tensors.items():
        assert read[name].shape == a.shape
        assert_allclose(read[name], a.astype(np.float32))


def test_read_checkpoint_refuses_other_files():
    with pytest.raises(ValueError, match='not a TensorFlow checkpoint'):
        pretrained.read_checkpoint(b'\x00' * 100, b'')


def test_musicnn_wheel_is_the_published_one(wheel):
    with open(wheel, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == \
            pretrained.MUSICNN_SHA256


def test_musicnn_arrays_fill_every_layer_but_the_output(wheel):
    arrays = pretrained.musicnn_arrays(os.path.dirname(wheel))
    model = net.build_model('musicnn', n_classes=6,
                            input_shape=MUSICNN_FEATURES.input_shape)
    own = {k: v for k, v in net._arrays(model).items()
           if not k.endswith('/N')}
    assert sorted(arrays) == sorted(k for k in own if
                                    not k.startswith('fc5/'))
    for name, a in arrays.items():
        assert a.shape == own[name].shape, name
        assert a.dtype == np.float32


def test_musicnn_equals_tensorflows_musicnn(wheel, reference):
    # MUSICNN with the checkpoint's weights gives what TensorFlow gave for
    # the same input, layer by layer; its tagger's own output layer on
    # the penultimate layer gives the tags' scores
    model = net.build_model('musicnn', n_classes=6,
                            input_shape=MUSICNN_FEATURES.input_shape)
    folder = os.path.dirname(wheel)
    assert model.load_pretrained(pretrained.musicnn_arrays(folder)) == 62
    with chainer.using_config('train', False):
        h = model.embed(reference_input()).array
    top, mean, penultimate = h[:, :753], h[:, 753:1506], h[:, 1506:]
    assert_allclose(top[:, ::19], reference['max_pool_every_19th'],
                    rtol=1e-4, atol=1e-3)
    assert_allclose(mean[:, ::19], reference['mean_pool_every_19th'],
                    rtol=1e-4, atol=1e-4)
    assert_allclose(penultimate, reference['penultimate'], rtol=1e-4,
                    atol=1e-4)
    tensors = pretrained.wheel_tensors(wheel)
    tags = penultimate @ tensors['dense_1/kernel'] + tensors['dense_1/bias']
    assert_allclose(tags, reference['logits'], rtol=1e-4, atol=1e-4)


def test_a_wheel_that_is_not_musicnns_is_refused(tmp_path):
    (tmp_path / pretrained.MUSICNN_WHEEL).write_bytes(b'not a wheel')
    with pytest.raises(errors.ModelFileError, match='not the published'):
        pretrained.musicnn_arrays(str(tmp_path))


def test_a_wheel_that_cannot_be_fetched_is_one_message(tmp_path,
                                                       monkeypatch):
    # pip cannot reach any index: one line naming the wheel and the folder
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)  # no other index
    monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')
    monkeypatch.setenv('PIP_EXTRA_INDEX_URL', '')
    monkeypatch.setenv('PIP_NO_INDEX', '')
    monkeypatch.setenv('PIP_FIND_LINKS', '')
    monkeypatch.setenv('PIP_RETRIES', '0')
    monkeypatch.setenv('PIP_TIMEOUT', '1')
    with pytest.raises(errors.ModelFileError) as e:
        pretrained.fetch_musicnn_wheel(str(tmp_path / 'cache'))
    assert 'could not fetch' in str(e.value)
    assert pretrained.MUSICNN_WHEEL in str(e.value)
    assert not os.listdir(tmp_path / 'cache')  # nothing half-written


def test_the_cache_folder_is_the_environments(monkeypatch, tmp_path):
    monkeypatch.setenv('MUSIC_CLASSIFICATION_CACHE', str(tmp_path))
    assert pretrained.cache_folder() == str(tmp_path)
    monkeypatch.delenv('MUSIC_CLASSIFICATION_CACHE')
    assert pretrained.cache_folder() == os.path.join(
        os.path.expanduser('~'), '.cache', 'music_classification')


def test_a_wheel_put_there_by_hand_is_used(wheel, tmp_path, monkeypatch):
    shutil.copy(wheel, tmp_path / pretrained.MUSICNN_WHEEL)
    monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')
    assert pretrained.fetch_musicnn_wheel(str(tmp_path)) == str(
        tmp_path / pretrained.MUSICNN_WHEEL)


def test_a_cache_that_cannot_be_written_is_one_message(tmp_path):
    (tmp_path / 'file').write_text('not a folder')
    with pytest.raises(errors.ModelFileError, match=r'cannot write '
                       r"musicnn's weights into .*file/cache \(Not a "
                       r'directory\); set MUSIC_CLASSIFICATION_CACHE'):
        pretrained.fetch_musicnn_wheel(str(tmp_path / 'file' / 'cache'))


def test_musicnn_takes_only_every_layer_but_its_output(wheel):
    model = net.build_model('musicnn', n_classes=3,
                            input_shape=MUSICNN_FEATURES.input_shape)
    arrays = pretrained.musicnn_arrays(os.path.dirname(wheel))
    del arrays['mid2/W']
    with pytest.raises(errors.ParameterError, match=r"\['mid2/W'\] missing"):
        model.load_pretrained(arrays)
