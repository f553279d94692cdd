"""Saving and loading MUSIC_NET weights safely.

* :func:`save_model` writes a Chainer ``.npz`` under a temporary name in the
  target folder and renames it into place, so an interrupted save never
  leaves a half-written model behind.
* :func:`load_model` reads ``.npz`` files with ``allow_pickle=False``:
  Chainer's own ``serializers.load_npz`` allows pickles, which lets a crafted
  model file run code. It also reads the original's HDF5 files
  (``serializers.save_hdf5``, keys ``conv1/W`` ... ``fc5/b``) when ``h5py``
  is installed.
"""

import json
import os
import tempfile
import zipfile

import chainer
import numpy as np

from music_classification.errors import ModelFileError, ParameterError
from music_classification.net import MUSIC_NET, build_model

_HDF5_MAGIC = b'\x89HDF\r\n\x1a\n'
_ZIP_MAGIC = b'PK\x03\x04'


def writable_folder(path, what='--out'):
    """Create ``path`` if needed and check that files can be written in it.

    Raises:
        ParameterError: ``path`` is a file, cannot be created or is not
            writable; the message names ``what`` and the path.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ParameterError('{} {}: not a folder'.format(what, path))
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write-test-', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ParameterError('{} {}: cannot write there ({})'.format(
            what, path, e.strerror or e)) from None
    return path


def atomic_write(path, write, suffix=''):
    """Call ``write(tmp_path)``, then rename ``tmp_path`` to ``path``.

    The temporary file lives in ``path``'s folder (so the rename is atomic)
    and is removed if ``write`` fails.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp' + suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def save_wav(path, y, sr, subtype='PCM_16'):
    """Write ``y`` as a WAV file (soundfile ``subtype``) atomically."""
    import soundfile

    def write(tmp):
        soundfile.write(tmp, y, sr, subtype=subtype, format='WAV')
    return atomic_write(path, write)


def save_png(figure, path, dpi=100):
    """Save a matplotlib figure as a PNG atomically."""
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format='png',
                                                         dpi=dpi))


def save_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=1)
    return atomic_write(path, write)


def save_model(model, path, compression=False):
    """Save ``model``'s parameters to ``path`` (Chainer ``.npz``) atomically.

    Uncompressed by default: trained float32 weights shrink by only a few
    per cent under zlib, while compressing MUSIC_NET's 280 MB takes seconds.
    """
    def write(tmp):
        with open(tmp, 'wb') as f:
            chainer.serializers.save_npz(f, model, compression=compression)
    return atomic_write(path, write)


def _fc5_classes(path, arrays):
    try:  # an ensemble's members are 0/, 1/, ...
        return int(arrays['fc5/b' if 'fc5/b' in arrays else '0/fc5/b']
                   .shape[0])
    except KeyError:
        raise ModelFileError('{}: not a MUSIC_NET model (no fc5/b)'.format(
            path)) from None


def load_model(path, model=None, spec=None, **kwargs):
    """Load network weights from a ``.npz`` (or the original's HDF5) file.

    Args:
        path (str): the model file.
        model (chainer.Chain or None): the network to fill. ``None`` builds
            the variant ``spec`` names (see :func:`~music_classification.net.
            build_model`; ``None``: :class:`MUSIC_NET`) with the file's class
            count and ``kwargs`` (for example ``input_shape=``).
        spec (dict or None): a network's ``spec()``, as ``labels.json``
            saves it.

    Returns:
        MUSIC_NET: the loaded network (on the CPU).

    Raises:
        ModelFileError: the file is missing, not a model, holds a pickled
            object, or does not fit the network (names the parameter).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError('{}: no such model file'.format(path))
    with open(path, 'rb') as f:
        magic = f.read(8)
    if magic == _HDF5_MAGIC:
        arrays = _read_hdf5(path)
    elif magic.startswith(_ZIP_MAGIC):
        arrays = _read_npz(path)
    else:  # np.load would read a .npy or call any other file a pickle
        raise ModelFileError('{}: not a .npz model file (no zip archive)'
                             .format(path))
    if model is None:
        if spec is None:
            model = MUSIC_NET(n_classes=_fc5_classes(path, arrays), **kwargs)
        else:
            model = build_model(n_classes=_fc5_classes(path, arrays),
                                **dict(spec, **kwargs))
    _fill(path, model, arrays)
    return model


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as e:
        if 'allow_pickle' in str(e):
            raise ModelFileError(
                '{}: holds a pickled Python object; refusing to load it '
                '(model files must contain plain arrays only)'.format(
                    path)) from None
        raise ModelFileError('{}: not a model file: {}'.format(path, e)) \
            from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError('{}: not a .npz model file ({})'.format(
            path, e)) from None


def _read_hdf5(path):
    # The original's serializers.save_hdf5: one dataset per parameter.
    try:
        import h5py
    except ImportError:
        raise ModelFileError(
            '{}: an HDF5 model (the original\'s format); reading it needs '
            'h5py: pip install h5py'.format(path)) from None
    arrays = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            arrays[name] = np.asarray(obj)
    try:
        with h5py.File(path, 'r') as f:
            f.visititems(visit)
    except OSError as e:
        raise ModelFileError('{}: unreadable HDF5 file ({})'.format(
            path, e)) from None
    return arrays


def _fill(path, model, arrays):
    expected = {name.lstrip('/'): param.array for name, param in
                model.namedparams()}
    # Batch normalisation's running statistics are persistent values.
    for prefix, link in model.namedlinks():
        for key in link._persistent:
            value = getattr(link, key)
            if hasattr(value, 'shape') and value.shape:
                expected['{}/{}'.format(prefix, key).lstrip('/')] = value
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise ModelFileError('{}: missing parameters {}'.format(
            path, ', '.join(missing)))
    for name, param in expected.items():
        value = arrays[name]
        if value.shape != param.shape:
            raise ModelFileError(
                '{}: parameter {} has shape {} in the file but {} in the '
                'network (different class count or input shape?)'.format(
                    path, name, value.shape, param.shape))
        if value.dtype.kind != 'f':
            raise ModelFileError('{}: parameter {} has dtype {}'.format(
                path, name, value.dtype))
    for name, array in expected.items():
        array[...] = model.xp.asarray(arrays[name], dtype=array.dtype)
