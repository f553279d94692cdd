"""The atomic writers: WAV, PNG and JSON files and the out-folder check."""

import json
import os
import stat

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest
import soundfile

from music_classification import serialization
from music_classification.errors import ParameterError

from conftest import tone


def only(folder):
    """The files in ``folder``: no temporary file may be left behind."""
    return sorted(os.listdir(folder))


@pytest.mark.parametrize('subtype, atol', [('PCM_16', 1 / 32768),
                                           ('FLOAT', 0)])
def test_save_wav(tmp_path, subtype, atol):
    y = tone(440.0, seconds=0.5, sr=8000)
    path = tmp_path / 'clip.bin'  # WAV whatever the name
    options = {} if subtype == 'PCM_16' else {'subtype': subtype}
    assert serialization.save_wav(path, y, 8000, **options) == str(path)
    info = soundfile.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.frames) == (
        'WAV', subtype, 8000, len(y))
    assert_allclose(soundfile.read(str(path), dtype='float32')[0], y,
                    atol=atol)
    assert only(tmp_path) == ['clip.bin']


def test_save_png(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure = plt.figure(figsize=(2, 1))
    path = tmp_path / 'figure.dat'
    serialization.save_png(figure, path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    width, height = np.frombuffer(data[16:24], '>u4')
    assert (width, height) == (100, 50)
    serialization.save_png(figure, path)  # 100 dpi by default
    assert tuple(np.frombuffer(path.read_bytes()[16:24], '>u4')) == \
        (200, 100)
    plt.close(figure)
    assert only(tmp_path) == ['figure.dat']


def test_save_json(tmp_path):
    path = tmp_path / 'sub' / 'labels.json'
    serialization.save_json(path, {'classes': ['Other', 'é']})
    text = path.read_text(encoding='utf-8')
    assert json.loads(text) == {'classes': ['Other', 'é']}
    assert text.startswith('{\n "classes"')  # indented by one


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / 'model.npz'
    path.write_bytes(b'old')

    def fail(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'half')
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        serialization.atomic_write(path, fail)
    assert path.read_bytes() == b'old' and only(tmp_path) == ['model.npz']


@pytest.mark.parametrize('umask, mode, suffix', [
    (0o027, 0o640, ('.txt',)), (0o022, 0o644, ()), (0, 0o666, ('.txt',))])
def test_atomic_write_renames_into_place_with_umask_permissions(
        tmp_path, umask, mode, suffix):
    seen = []

    def write(tmp):
        seen.append(tmp)
        with open(tmp, 'wb') as f:
            f.write(b'new')
    old = os.umask(umask)
    try:
        path = serialization.atomic_write(tmp_path / 'new' / 'f.txt', write,
                                          *suffix)
    finally:
        os.umask(old)
    assert path == str(tmp_path / 'new' / 'f.txt')
    assert open(path, 'rb').read() == b'new'
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    tmp, = seen
    assert os.path.dirname(tmp) == str(tmp_path / 'new')
    assert os.path.basename(tmp).startswith('.f.txt.')
    assert tmp.endswith('.tmp' + ''.join(suffix))
    assert not os.path.exists(tmp)


def test_writable_folder_probes_the_folder_itself(tmp_path, monkeypatch):
    import tempfile
    probes = []
    mkstemp = tempfile.mkstemp

    def recording(*args, **kwargs):
        fd, path = mkstemp(*args, **kwargs)
        probes.append(path)
        return fd, path
    monkeypatch.setattr(tempfile, 'mkstemp', recording)
    assert serialization.writable_folder(tmp_path) == str(tmp_path)
    assert serialization.writable_folder(tmp_path) == str(tmp_path)  # again
    assert [os.path.dirname(p) for p in probes] == [str(tmp_path)] * 2
    assert os.listdir(tmp_path) == []  # the probes are gone


def test_writable_folder(tmp_path):
    assert serialization.writable_folder(tmp_path / 'a' / 'b') == \
        str(tmp_path / 'a' / 'b')
    assert os.path.isdir(tmp_path / 'a' / 'b')
    assert only(tmp_path / 'a' / 'b') == []  # the probe is removed
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ParameterError) as e:
        serialization.writable_folder(tmp_path / 'file', what='--model')
    assert str(e.value) == '--model {}: not a folder'.format(
        tmp_path / 'file')
    with pytest.raises(ParameterError) as e:
        serialization.writable_folder(tmp_path / 'file' / 'sub')
    assert str(e.value) == '--out {}: cannot write there (Not a ' \
        'directory)'.format(tmp_path / 'file' / 'sub')


def test_save_model_is_uncompressed_by_default(tmp_path):
    import zipfile
    from music_classification.net import SMALL_CNN
    model = SMALL_CNN(n_classes=3)
    serialization.save_model(model, tmp_path / 'm.npz')
    serialization.save_model(model, tmp_path / 'z.npz', compression=True)
    with zipfile.ZipFile(tmp_path / 'm.npz') as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    with zipfile.ZipFile(tmp_path / 'z.npz') as z:
        assert {i.compress_type for i in z.infolist()} == \
            {zipfile.ZIP_DEFLATED}
    again = serialization.load_model(tmp_path / 'z.npz',
                                     spec=model.spec())
    assert_array_equal(again.fc5.W.array, model.fc5.W.array)
    assert only(tmp_path) == ['m.npz', 'z.npz']


def hdf5_file(path):
    path.write_bytes(b'\x89HDF\r\n\x1a\n' + b'x' * 64)
    return path


def test_an_hdf5_model_without_h5py_says_what_to_install(tmp_path,
                                                          monkeypatch):
    from music_classification.errors import ModelFileError
    path = hdf5_file(tmp_path / 'm.h5')
    monkeypatch.setitem(__import__('sys').modules, 'h5py', None)
    with pytest.raises(ModelFileError) as e:
        serialization.load_model(path)
    assert str(e.value) == ("{}: an HDF5 model (the original's format); "
                            "reading it needs h5py: pip install h5py"
                            .format(path))


def test_an_unreadable_hdf5_file_names_h5pys_reason(tmp_path):
    import h5py
    from music_classification.errors import ModelFileError
    path = hdf5_file(tmp_path / 'm.h5')
    with pytest.raises(OSError) as reason:
        h5py.File(path, 'r')
    with pytest.raises(ModelFileError) as e:
        serialization.load_model(path)
    assert str(e.value) == '{}: unreadable HDF5 file ({})'.format(
        path, reason.value)


def _small_model():
    from music_classification.net import SMALL_CNN
    return SMALL_CNN(n_classes=3, input_shape=(16, 16), width=2)


def _model_arrays(model, **changes):
    arrays = {name.lstrip('/'): p.array for name, p in model.namedparams()}
    for prefix, link in model.namedlinks():
        for key in ('avg_mean', 'avg_var'):
            if hasattr(link, key):
                arrays['{}/{}'.format(prefix, key).lstrip('/')] = \
                    getattr(link, key)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return arrays


def _npy_bytes(array):
    import io
    f = io.BytesIO()
    np.lib.format.write_array(f, np.asarray(array), allow_pickle=True)
    return f.getvalue()


def _write_zip(path, members):
    import zipfile
    with zipfile.ZipFile(path, 'w') as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize('case, message', [
    ('missing', '{}: no such model file'),
    ('text', '{}: not a .npz model file (no zip archive)'),
    ('npy', '{}: not a .npz model file (no zip archive)'),
    ('broken zip', '{}: not a .npz model file (File is not a zip file)'),
    ('pickle', '{}: holds a pickled Python object; refusing to load it '
               '(model files must contain plain arrays only)'),
    ('bad header', '{}: not a model file: Header is not a dictionary: '
                   '[1, 2]'),
    ('two missing', '{}: missing parameters conv1/W, fc5/b'),
    ('shape', '{}: parameter conv1/W has shape (2, 1, 3) in the file but '
              '(2, 1, 3, 3) in the network (different class count or '
              'input shape?)'),
    ('dtype', '{}: parameter conv1/W has dtype int32'),
])
def test_load_model_names_the_file_and_the_problem(tmp_path, case,
                                                   message):
    from music_classification.errors import ModelFileError
    model = _small_model()
    path = str(tmp_path / 'model.npz')
    w = model.conv1.W.array
    if case == 'text':
        with open(path, 'w') as f:
            f.write('not a model\n')
    elif case == 'npy':
        with open(path, 'wb') as f:
            f.write(_npy_bytes(w))
    elif case == 'broken zip':
        with open(path, 'wb') as f:
            f.write(b'PK\x03\x04' + b'\0' * 40)
    elif case == 'pickle':
        _write_zip(path, {'fc5/b.npy': _npy_bytes(np.array([{}, {}],
                                                           dtype=object))})
    elif case == 'bad header':  # NumPy's reason is passed on
        _write_zip(path, {'fc5/b.npy': b'\x93NUMPY\x01\x00\x10\x00'
                                       b'[1, 2]         \n'})
    elif case != 'missing':
        arrays = _model_arrays(model, **{
            'two missing': {'conv1/W': None, 'fc5/b': None},
            'shape': {'conv1/W': w[..., 0]},
            'dtype': {'conv1/W': w.astype(np.int32)}}[case])
        np.savez(path, **arrays)
    with pytest.raises(ModelFileError) as e:
        serialization.load_model(path, model)
    assert str(e.value) == message.format(path)


def test_load_model_without_fc5_is_no_music_net(tmp_path):
    from music_classification.errors import ModelFileError
    path = str(tmp_path / 'model.npz')
    np.savez(path, **_model_arrays(_small_model(), **{'fc5/b': None}))
    with pytest.raises(ModelFileError) as e:
        serialization.load_model(path)
    assert str(e.value) == '{}: not a MUSIC_NET model (no fc5/b)'.format(
        path)


def test_load_model_reads_every_parameter_and_statistic(tmp_path):
    # Every parameter and batch-norm statistic comes from the file (not
    # from the new network's random initialisation), as float32.
    source = _small_model()
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(v.shape) for k, v in
              _model_arrays(source).items()}  # float64 in the file
    path = str(tmp_path / 'model.npz')
    np.savez(path, **arrays)
    loaded = serialization.load_model(path, spec=source.spec(),
                                      input_shape=(16, 16))
    again = _model_arrays(loaded)
    assert again.keys() == arrays.keys()
    for name, value in again.items():
        assert value.dtype == np.float32, name
        assert_allclose(value, arrays[name], rtol=1e-6, err_msg=name)
