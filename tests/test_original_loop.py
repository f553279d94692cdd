"""The original train.py's loop, run on this package's public API.

A user porting the original keeps its loop body: per-song READ_DATASETs
read 10 windows each per step in the order of their shuffled offsets, the
"Other" READ_DATASET2 gives every sound plus the silent clip with
``get_batch_melspec()``, the script concatenates the mel power and takes
``np.log(xs + 1.0)`` itself, then ``model(x, t)``, ``loss.backward()``,
``optimizer.update()``. Only the Chainer v1 spellings change
(``model.zerograds()`` is ``cleargrads()``, ``Variable(xs)`` is implicit).
Here on generated WAVs, 2 windows per song to keep it quick.
"""

import chainer
from chainer import optimizers
import numpy as np
from numpy.testing import assert_allclose
import pytest

from music_classification import MUSIC_NET, READ_DATASET, READ_DATASET2

from conftest import SR, tone, write_float_wav

CHUNK, LENGTH = 1024, 160
WINDOWS_PER_SONG = 2  # the original: 10


@pytest.fixture
def collection(tmp_path, rng):
    songs = []  # (path, label) as the original's list of 4 songs x 6
    for label, base in ((1, 220.0), (2, 660.0)):
        for k in range(2):
            y = tone(base * (1 + 0.1 * k), seconds=11.0, amp=0.4) \
                + 0.02 * rng.standard_normal(11 * SR).astype(np.float32)
            songs.append((write_float_wav(
                tmp_path / 'song_{}_{}.wav'.format(label, k), y), label))
    sounds = tmp_path / 'wav_16000'
    sounds.mkdir()
    write_float_wav(sounds / 'knock.wav', tone(150.0, seconds=0.5))
    write_float_wav(sounds / 'washer.wav',
                    0.2 * rng.standard_normal(12 * SR).astype(np.float32))
    noise = (0.005 * rng.standard_normal(2 * SR)).astype(np.float32)
    return songs, str(sounds), noise


def test_the_originals_training_loop_runs(collection):
    songs, wavdir, noise = collection
    np.random.seed(0)
    model = MUSIC_NET()
    optimizer = optimizers.Adam(alpha=1e-4)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(1e-4))
    before = {n: p.array.copy() for n, p in model.namedparams()}

    readers = [(READ_DATASET(path, CHUNK, LENGTH, SR, noise=noise, rng=label,
                             stride=3), label)
               for path, label in songs]
    others = READ_DATASET2(wavdir=wavdir, chunk=CHUNK, length=LENGTH,
                           expected_fs=SR, noise=noise, rng=0)
    for reader, _ in readers:
        reader.shuffle_indexes()
    n_batches = min(r.n_blocks for r, _ in readers) // WINDOWS_PER_SONG
    losses = []
    for i in range(2):  # two steps of the first epoch
        xs, ts = [], []
        for reader, label in readers:
            index = np.arange(i * WINDOWS_PER_SONG,
                              (i + 1) * WINDOWS_PER_SONG)
            xs.append(reader.get_batch_melspec(index))
            ts.append(np.full(WINDOWS_PER_SONG, label, dtype=np.int32))
        others.shuffle_indexes()
        x_other = others.get_batch_melspec()
        xs.append(x_other)
        ts.append(np.zeros(others.n_data, dtype=np.int32))
        xs = np.concatenate(xs).astype(np.float32)
        ts = np.concatenate(ts)
        # The mel power, as the original's readers returned it: the loop
        # compresses it itself, once.
        assert xs.min() >= 0 and xs.max() > 100
        xs = np.log(xs + 1.0)
        assert xs.shape == (4 * WINDOWS_PER_SONG + 3, 1, 256, 321)
        # the silent clip holds only the (scaled) noise
        assert x_other[others.names.index('<silence>')].max() < 1.0

        model.cleargrads()
        loss, accuracy = model(xs, ts)
        loss.backward()
        optimizer.update()
        losses.append(float(loss.array))
        assert 0.0 <= float(accuracy.array) <= 1.0

    assert n_batches > 100  # windows every 3 samples: many per epoch
    assert np.isfinite(losses).all()
    assert optimizer.t == 2
    for name, p in model.namedparams():
        assert not np.array_equal(p.array, before[name]), name


def test_the_loops_log_equals_the_model_ready_features(collection):
    # What the loop computes by hand is what the training converter feeds
    # the network: one compression, not two.
    songs, wavdir, _ = collection
    reader = READ_DATASET(songs[0][0], CHUNK, LENGTH, SR, augment=False)
    by_hand = np.log(reader.get_batch_melspec([0, 7]) + 1.0)
    assert_allclose(by_hand, reader.get_batch_features([0, 7]), rtol=1e-5,
                    atol=1e-6)
    others = READ_DATASET2(wavdir=wavdir, augment=False)
    assert_allclose(np.log(others.get_batch_melspec() + 1.0),
                    others.get_batch_features(), rtol=1e-5, atol=1e-6)
