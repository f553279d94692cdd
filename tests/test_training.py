import json
import os
import subprocess
import sys

import chainer
import numpy as np
from numpy.testing import assert_array_equal
import pytest

from music_classification import READ_DATASET, READ_DATASET2, load_model
from music_classification import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def classes(demo_data):
    rng = np.random.default_rng(0)
    other = [READ_DATASET2(demo_data.other_dir, rng=rng, label=0)]
    artists = [[READ_DATASET(p, rng=rng, label=k, stride=400)
                for p in demo_data.songs[a]]
               for k, a in enumerate(demo_data.artists, start=1)]
    return [other] + artists


def test_balanced_batches(classes):
    it = training.balanced_iterator(classes, batch_per_class=[1, 3, 2],
                                    batches_per_epoch=4, seed=0)
    for _ in range(10):  # across epoch boundaries too
        labels = [int(t) for _, t in next(it)]
        assert labels == [0, 1, 1, 1, 2, 2]
    assert it.epoch == 2 and it.epoch_detail == 2.5


def test_draws_from_every_dataset_of_a_class():
    # Windows are drawn uniformly over all windows of a class, whichever
    # song they belong to.
    songs = [[('a', i) for i in range(3)], [('b', i) for i in range(5)]]
    other = [[('o', 0)]]
    it = training.balanced_iterator([other, songs], batch_per_class=[1, 4],
                                    seed=0)
    seen = set()
    for _ in range(50):
        batch = next(it)
        assert batch[0] == ('o', 0) and len(batch) == 5
        seen.update(batch[1:])
    assert seen == set(songs[0]) | set(songs[1])


def test_multiprocess_iterator_is_balanced_too(classes):
    it = training.balanced_iterator(classes, batch_per_class=[1, 2, 2],
                                    seed=0, n_processes=2)
    try:
        for _ in range(2):
            batch = next(it)
            assert [int(t) for _, t in batch] == [0, 1, 1, 2, 2]
            assert all(w.shape == (163840,) for w, _ in batch)
    finally:
        it.finalize()


def toy_classes():
    return [[[('other', i) for i in range(3)]],
            [[('a', i) for i in range(50)], [('b', i) for i in range(70)]]]


def test_iterator_resumes_its_own_order(tmp_path):
    def make(seed):
        return training.balanced_iterator(toy_classes(), batch_per_class=2,
                                          batches_per_epoch=5, seed=seed)
    a = make(3)
    for _ in range(7):  # into the second epoch
        next(a)
    chainer.serializers.save_npz(str(tmp_path / 'it.npz'), a)
    b = make(3)
    chainer.serializers.load_npz(str(tmp_path / 'it.npz'), b)
    assert (b.epoch, b.current_position) == (a.epoch, a.current_position)
    for _ in range(12):  # the rest of this epoch and the next ones
        assert next(a) == next(b)
    # Another rank loading the same snapshot keeps its own windows.
    c, d = make((3, 1)), make((3, 1))
    chainer.serializers.load_npz(str(tmp_path / 'it.npz'), c)
    for _ in range(7):
        next(d)
    assert next(c) == next(d)
    assert next(c) != next(make(3))


def test_empty_class_is_refused():
    with pytest.raises(training.DatasetError, match='class 1'):
        training.balanced_iterator([[[(0, 0)]], []])
    with pytest.raises(training.DatasetError, match='class 0'):
        training.balanced_iterator([[[]], [[(0, 1)]]])


def test_converter_makes_model_input(classes):
    batch = next(training.balanced_iterator(classes, batch_per_class=1,
                                            seed=0))
    x, t = training.FeatureConverter()(batch)
    assert x.shape == (3, 1, 256, 321) and x.dtype == np.float32
    assert_array_equal(t, [0, 1, 2])


def test_demo_script_trains_and_predicts(tmp_path):
    out = tmp_path / 'run'
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'scripts', 'demo.py'),
         '--data', str(tmp_path / 'data'), '--out', str(out),
         '--iterations', '5', '--artists', '2', '--batch-per-class', '2'],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert 'held-out songs' in result.stdout
    assert 'song accuracy: ' in result.stdout
    assert result.stdout.count(' -> ') == 3  # two held-out songs, one sound
    assert sorted(os.listdir(out)) == ['accuracy.png', 'labels.json', 'log',
                                       'loss.png', 'model.npz']
    with open(out / 'labels.json') as f:
        labels = json.load(f)
    assert labels['classes'][0] == 'Other' and len(labels['classes']) == 3
    model = load_model(out / 'model.npz')
    assert model.n_classes == 3
