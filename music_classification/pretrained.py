"""musicnn's trained weights, read from the package that publishes them.

Pons and Serra publish ``musicnn`` (ISC licence) on PyPI with its trained
TensorFlow checkpoints inside the wheel. :func:`musicnn_arrays` reads the
``MSD_musicnn`` checkpoint (a network trained to tag 3 s of music with the
50 commonest tags of the Million Song Dataset) straight from that wheel:
:func:`read_checkpoint` parses TensorFlow's checkpoint format (a table of
tensor names, shapes and offsets, and one file of their bytes) with NumPy
alone, so neither TensorFlow nor musicnn's own code is installed or run.
The weights are renamed and laid out as
:class:`~music_classification.net.MUSICNN`'s layers.

The wheel (29 MB) is fetched once with ``pip download`` into
:func:`cache_folder` and checked against :data:`MUSICNN_SHA256`; a wheel
put there by hand (for a machine without network) is used as it is.
"""

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from music_classification.errors import ModelFileError

#: The wheel that holds the weights, and its SHA-256.
MUSICNN_WHEEL = 'musicnn-0.1.0-py3-none-any.whl'
MUSICNN_SHA256 = ('f38a4890c648c1ddbb141c5d96d2b0a8'
                  'cfcd36746002d896989f7b88beb65cfa')
#: The checkpoint inside it (its files are ``.index`` and
#: ``.data-00000-of-00001``).
MUSICNN_CHECKPOINT = 'musicnn/MSD_musicnn/'
#: TensorFlow's checkpoint table ends with this number.
_TABLE_MAGIC = 0xdb4775248b80fb57
#: TensorFlow's dtype numbers and NumPy's little-endian dtypes.
_DTYPES = {1: '<f4', 2: '<f8', 3: '<i4', 9: '<i8', 10: '?'}


def cache_folder():
    """Where fetched weights are kept: ``$MUSIC_CLASSIFICATION_CACHE``, or
    ``~/.cache/music_classification``."""
    return os.environ.get('MUSIC_CLASSIFICATION_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'music_classification')


def _varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7f) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _block_entries(block):
    # A table block: prefix-compressed keys, then restart offsets
    # (uint32 each) and their count (uint32)
    restarts = struct.unpack('<I', block[-4:])[0]
    end, i, key = len(block) - 4 - 4 * restarts, 0, b''
    while i < end:
        shared, i = _varint(block, i)
        unshared, i = _varint(block, i)
        size, i = _varint(block, i)
        key = key[:shared] + block[i:i + unshared]
        i += unshared
        yield key, block[i:i + size]
        i += size


def _proto_fields(data):
    # (field number, value) of a protocol buffer message: varints as int,
    # length-delimited fields as bytes
    i, fields = 0, []
    while i < len(data):
        tag, i = _varint(data, i)
        wire = tag & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ValueError('wire type {}'.format(wire))
        fields.append((tag >> 3, value))
    return fields


def read_checkpoint(index, data):
    """The tensors of a TensorFlow checkpoint, as NumPy arrays.

    Args:
        index (bytes): the checkpoint's ``.index`` file: a table (LevelDB's
            format, uncompressed) from each tensor's name to its dtype,
            shape, and place in ``data``.
        data (bytes): its one ``.data-00000-of-00001`` file.

    Returns:
        dict: name -> read-only array.

    Raises:
        ValueError: not a checkpoint's table, or a compressed block.
    """
    footer = index[-48:]
    if len(index) < 48 or struct.unpack('<Q', footer[-8:])[0] != \
            _TABLE_MAGIC:
        raise ValueError('not a TensorFlow checkpoint index')
    _, i = _varint(footer, 0)  # the meta index block, unused
    _, i = _varint(footer, i)
    offset, i = _varint(footer, i)
    size, i = _varint(footer, i)
    arrays = {}
    for _, handle in _block_entries(index[offset:offset + size]):
        start, j = _varint(handle, 0)
        length, _ = _varint(handle, j)
        if index[start + length] != 0:
            raise ValueError('a compressed checkpoint block')
        for key, value in _block_entries(index[start:start + length]):
            if not key:
                continue  # the header
            entry = dict(_proto_fields(value))
            dtype = _DTYPES.get(entry.get(1, 1))
            if dtype is None:
                continue
            shape = [dict(_proto_fields(dim)).get(1, 0)
                     for number, dim in _proto_fields(entry.get(2, b''))
                     if number == 2]
            at = entry.get(4, 0)
            arrays[key.decode()] = np.frombuffer(
                data[at:at + entry.get(5, 0)], dtype).reshape(shape)
    return arrays


def fetch_musicnn_wheel(folder=None):
    """The path of musicnn's wheel in ``folder`` (default
    :func:`cache_folder`), fetched with ``pip download`` if it is not there.

    Raises:
        ModelFileError: it could not be fetched, or its SHA-256 is not
            :data:`MUSICNN_SHA256`.
    """
    folder = folder or cache_folder()
    path = os.path.join(folder, MUSICNN_WHEEL)
    if not os.path.exists(path):
        print('fetching musicnn\'s weights (pip download musicnn==0.1.0, '
              '29 MB) into {}'.format(folder), flush=True)
        try:  # into a folder of its own, then renamed: never half a wheel
            os.makedirs(folder, exist_ok=True)
            fetching = tempfile.mkdtemp(prefix='.fetching-', dir=folder)
        except OSError as e:
            raise ModelFileError('cannot write musicnn\'s weights into {} '
                                 '({}); set MUSIC_CLASSIFICATION_CACHE to a '
                                 'writable folder'.format(
                                     folder, e.strerror or e)) from None
        try:
            done = subprocess.run(
                [sys.executable, '-m', 'pip', 'download', '--no-deps',
                 '--only-binary', ':all:', '--disable-pip-version-check',
                 '-q', '-d', fetching, 'musicnn==0.1.0'],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            fetched = os.path.join(fetching, MUSICNN_WHEEL)
            if done.returncode or not os.path.exists(fetched):
                last = (done.stdout.strip().splitlines() or
                        ['no output'])[-1]
                raise ModelFileError(
                    'could not fetch musicnn\'s weights with pip download '
                    '({}); put {} in {}'.format(last.strip(), MUSICNN_WHEEL,
                                                folder))
            check_wheel(fetched)  # before it takes the cache's name
            os.replace(fetched, path)
        finally:
            shutil.rmtree(fetching, ignore_errors=True)
    check_wheel(path)
    return path


def check_wheel(path):
    """Raise :class:`ModelFileError` unless ``path``'s SHA-256 is
    :data:`MUSICNN_SHA256`."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    if digest.hexdigest() != MUSICNN_SHA256:
        raise ModelFileError('{}: not the published musicnn 0.1.0 wheel '
                             '(SHA-256 {})'.format(path, digest.hexdigest()))


#: Each MUSICNN layer and the checkpoint's layer it takes, in musicnn's
#: order of building them.
_LAYERS = (('bn_in', 'batch_normalization'),
           ('timbral74', 'conv2d'), ('bn_timbral74', 'batch_normalization_1'),
           ('timbral77', 'conv2d_1'),
           ('bn_timbral77', 'batch_normalization_2'),
           ('temporal128', 'conv2d_2'),
           ('bn_temporal128', 'batch_normalization_3'),
           ('temporal64', 'conv2d_3'),
           ('bn_temporal64', 'batch_normalization_4'),
           ('temporal32', 'conv2d_4'),
           ('bn_temporal32', 'batch_normalization_5'),
           ('mid1', 'conv2d_5'), ('bn_mid1', 'batch_normalization_6'),
           ('mid2', 'conv2d_6'), ('bn_mid2', 'batch_normalization_7'),
           ('mid3', 'conv2d_7'), ('bn_mid3', 'batch_normalization_8'),
           ('bn_pool', 'batch_normalization_9'),
           ('dense', 'dense'), ('bn_dense', 'batch_normalization_10'))


def musicnn_layout(tensors):
    """MUSICNN's npz arrays from the checkpoint's ``tensors``.

    TensorFlow's layers read ``(batch, time, bands, channels)``: a 2-D
    kernel ``(time, bands, in, out)`` becomes Chainer's ``(out, in, bands,
    time)`` on ``(batch, channels, bands, time)``; a mid-end kernel ``(7,
    in, 1, out)``, a 1-D ``(out, in, 7)``; a dense kernel ``(in, out)``,
    ``(out, in)``. Batch norm's ``moving_mean`` and ``moving_variance`` are
    Chainer's ``avg_mean`` and ``avg_var``.
    """
    arrays = {}
    for ours, theirs in _LAYERS:
        if ours.startswith('bn_'):
            for a, b in (('gamma', 'gamma'), ('beta', 'beta'),
                         ('avg_mean', 'moving_mean'),
                         ('avg_var', 'moving_variance')):
                arrays[ours + '/' + a] = tensors[theirs + '/' + b]
            continue
        kernel = tensors[theirs + '/kernel']
        if ours == 'dense':
            W = kernel.T
        elif ours.startswith('mid'):
            W = kernel[:, :, 0, :].transpose(2, 1, 0)
        else:
            W = kernel.transpose(3, 2, 1, 0)
        arrays[ours + '/W'] = W
        arrays[ours + '/b'] = tensors[theirs + '/bias']
    return {name: np.ascontiguousarray(value, np.float32)
            for name, value in arrays.items()}


def musicnn_arrays(folder=None):
    """MSD_musicnn's trained weights as
    :class:`~music_classification.net.MUSICNN`'s npz arrays (every layer
    but ``fc5``), from the wheel of :func:`fetch_musicnn_wheel`.

    Raises:
        ModelFileError: the wheel could not be fetched or read.
    """
    return musicnn_layout(wheel_tensors(fetch_musicnn_wheel(folder)))


def wheel_tensors(path):
    """Every tensor of the ``MSD_musicnn`` checkpoint in the wheel at
    ``path``, by TensorFlow's names (the tagger's own output layer
    ``dense_1`` too).

    Raises:
        ModelFileError: the wheel or its checkpoint cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as wheel:
            index = wheel.read(MUSICNN_CHECKPOINT + '.index')
            data = wheel.read(MUSICNN_CHECKPOINT + '.data-00000-of-00001')
        return read_checkpoint(index, data)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ModelFileError('{}: cannot read musicnn\'s checkpoint ({})'
                             .format(path, e)) from None
