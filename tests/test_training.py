import json
import os
import re
import subprocess
import sys
import time

import chainer
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
import pytest

from conftest import cli, read_log, train_argv

from music_classification import READ_DATASET, READ_DATASET2, load_model
from music_classification import training
from music_classification.collection import load_trained


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


@pytest.mark.parametrize('balance_songs, share_of_a', [
    (False, 10 / 100),  # windows drawn uniformly: the long song wins
    (True, 1 / 2),      # songs drawn uniformly
])
def test_balance_songs_draws_songs_uniformly(balance_songs, share_of_a):
    songs = [[('a', i) for i in range(10)], [('b', i) for i in range(90)]]
    other = [[('o', 0), ('o', 1)]]
    it = training.balanced_iterator([other, songs], batch_per_class=[1, 8],
                                    seed=1, balance_songs=balance_songs)
    drawn = [next(it) for _ in range(400)]
    assert all(len(b) == 9 and b[0][0] == 'o' for b in drawn)
    music = [x for b in drawn for x in b[1:]]
    assert np.mean([song == 'a' for song, _ in music]) == pytest.approx(
        share_of_a, abs=0.03)
    for name, n in (('a', 10), ('b', 90)):  # every window of a song
        windows = [i for song, i in music if song == name]
        assert set(windows) == set(range(n))
        assert np.std(np.bincount(windows)) < 0.5 * np.mean(
            np.bincount(windows))


def test_balanced_sampler_song_sizes_must_make_up_the_classes():
    s = training.BalancedOrderSampler([2, 30], [1, 4], seed=0,
                                      song_sizes=[[2], [10, 20]])
    order = s.order_for(0).reshape(-1, 5)
    assert ((order[:, 0] >= 0) & (order[:, 0] < 2)).all()
    assert ((order[:, 1:] >= 2) & (order[:, 1:] < 32)).all()
    assert_array_equal(order.ravel(), s.order_for(0))
    for sizes in ([[2], [10, 19]], [[2], [30, 0]]):
        with pytest.raises(training.DatasetError) as e:
            training.BalancedOrderSampler([2, 30], 1, song_sizes=sizes)
        assert str(e.value) == 'song sizes {} do not make up the class ' \
            'sizes [2, 30]'.format(sizes)


def test_balance_songs_needs_batches_per_class():
    with pytest.raises(SystemExit) as exit:
        parsed('--balance-songs')
    assert exit.value.code == 'music-classification train: --balance-songs '\
        'needs --batch-per-class (or --recipe improved)'
    assert parsed('--recipe', 'improved', '--balance-songs').balance_songs


def test_balance_songs_flag_reaches_the_iterator(classes):
    for flags, expected in [((), False), (('--balance-songs',), True),
                            (('--recipe', 'improved'), False)]:
        args = parsed('--batch-per-class', '2', *flags)
        assert args.balance_songs is expected
        sampler = training.make_iterator(args, classes).order_sampler
        assert (sampler.song_sizes is not None) is expected
        if expected:
            assert [list(x) for x in sampler.song_sizes] == [
                [len(d) for d in datasets] for datasets in classes]


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


def song_classes():
    # "Other": 4 sounds; artist 1: songs of 23 and 40 windows; artist 2: 31.
    return [[[('other', i) for i in range(4)]],
            [[('a', i) for i in range(23)], [('b', i) for i in range(40)]],
            [[('c', i) for i in range(31)]]]


def test_song_batches_are_the_originals():
    # Every step: every "Other" example once, in a new order, then per_song
    # windows of every song.
    it = training.song_iterator(song_classes(), per_song=5,
                                batches_per_epoch=3, seed=0)
    assert it.batch_size == 4 + 3 * 5
    orders = set()
    for _ in range(8):  # across Chainer's epochs
        batch = next(it)
        assert len(batch) == 19
        others = batch[:4]
        assert sorted(others) == [('other', i) for i in range(4)]
        orders.add(tuple(others))
        assert [b[0] for b in batch[4:]] == ['a'] * 5 + ['b'] * 5 + ['c'] * 5
    assert len(orders) > 1


def test_song_windows_without_replacement_until_the_shortest_runs_out():
    # The shortest song has 23 windows: 4 steps of 5 make a cycle; within a
    # cycle no song repeats a window, and each song's windows follow its
    # shuffled offsets (not their order in the file).
    it = training.song_iterator(song_classes(), per_song=5,
                                batches_per_epoch=3, seed=1)
    cycles = [[next(it) for _ in range(4)] for _ in range(2)]
    for cycle in cycles:
        for song in 'abc':
            taken = [b for batch in cycle for b in batch[4:]
                     if b[0] == song]
            assert len(taken) == 20 and len(set(taken)) == 20
    first = [b for b in cycles[0][0][4:] if b[0] == 'b']
    assert first != sorted(first)
    # A new cycle reshuffles: its order differs from the first one's.
    assert [b for b in cycles[1][0][4:] if b[0] == 'b'] != first


def test_song_iterator_with_fewer_windows_than_per_song_and_other_draws():
    classes = [[[('other', i) for i in range(3)]],
               [[('short', 0), ('short', 1)]], [[('long', i)
                                                 for i in range(9)]]]
    it = training.song_iterator(classes, per_song=4, other_per_batch=5,
                                seed=0)
    batch = next(it)
    assert len(batch) == 5 + 4 + 4
    assert all(b[0] == 'other' for b in batch[:5])
    assert sorted(set(batch[5:9])) == [('short', 0), ('short', 1)]
    with pytest.raises(training.DatasetError, match='positive'):
        training.song_iterator(classes, per_song=0)


def test_song_iterator_resumes_its_own_order(tmp_path):
    def make(seed):
        return training.song_iterator(song_classes(), per_song=3,
                                      batches_per_epoch=5, seed=seed)
    a = make(3)
    for _ in range(7):
        next(a)
    chainer.serializers.save_npz(str(tmp_path / 'it.npz'), a)
    b = make(3)
    chainer.serializers.load_npz(str(tmp_path / 'it.npz'), b)
    for _ in range(12):
        assert next(a) == next(b)


def test_song_multiprocess_iterator(classes):
    it = training.song_iterator(classes, per_song=2, seed=0, n_processes=2)
    try:
        batch = next(it)
        n_other = len(classes[0][0])
        assert [int(t) for _, t in batch] == [0] * n_other + [1] * 4 + [2] * 4
    finally:
        it.finalize()


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
        [*cli('demo'),
         '--data', str(tmp_path / 'data'), '--out', str(out),
         '--iterations', '5', '--artists', '2', '--batch-per-song', '1'],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('held-out songs (mean') == 3  # each recipe
    # two held-out songs and one sound, for each recipe
    assert result.stdout.count(' -> ') == 9
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith('song accuracy: article ') and \
        ', improved ' in last and ', musicnn ' in last
    assert sorted(os.listdir(out / 'musicnn')) == ['labels.json',
                                                   'model.npz']
    for recipe, model_name in (('article', 'music_net'),
                               ('improved', 'small_cnn')):
        assert sorted(os.listdir(out / recipe)) == [
            'accuracy.png', 'labels.json', 'log', 'loss.png', 'model.npz']
        with open(out / recipe / 'labels.json') as f:
            labels = json.load(f)
        assert labels['classes'][0] == 'Other' and \
            len(labels['classes']) == 3
        assert labels['model']['model'] == model_name
        assert labels['recipe']['recipe'] == recipe
    model = load_model(out / 'article' / 'model.npz')
    assert model.n_classes == 3


@pytest.mark.parametrize('recipe, alpha', [('article', 1e-4),
                                           ('improved', 1e-3)])
def test_optimizer_is_the_recipes_adam_with_weight_decay(recipe, alpha):
    from music_classification.cli import train
    args = train.parse_args(['--music', '.', '--other', '.', '--recipe',
                             recipe])
    assert (args.lr, args.weight_decay) == (alpha, 1e-4)
    model = chainer.links.Linear(3, 2)
    optimizer = training.make_optimizer(model, alpha=args.lr,
                                        weight_decay=args.weight_decay)
    assert isinstance(optimizer, chainer.optimizers.Adam)
    assert optimizer.alpha == alpha
    hooks = list(optimizer._hookable._pre_update_hooks.values())
    assert [type(h) for h in hooks] == [chainer.optimizer_hooks.WeightDecay]
    assert hooks[0].rate == 1e-4
    # the original's defaults
    default = training.make_optimizer(chainer.links.Linear(3, 2))
    assert default.alpha == 1e-4
    assert list(default._hookable._pre_update_hooks.values())[0].rate == 1e-4


def test_explicit_flags_override_the_recipe():
    from music_classification.cli import train
    args = train.parse_args(['--music', '.', '--other', '.', '--recipe',
                             'improved', '--lr', '5e-4', '--batch-per-song',
                             '3', '--compression', 'log1p'])
    assert (args.lr, args.compression, args.model) == (5e-4, 'log1p',
                                                       'small_cnn')
    assert (args.batch_per_song, args.batch_per_class) == (3, None)
    assert args.other_per_batch is None  # every sound once, as per song
    assert args.spec_augment is True
    off = train.parse_args(['--music', '.', '--other', '.', '--recipe',
                            'improved', '--no-spec-augment'])
    assert off.spec_augment is False
    article = train.parse_args(['--music', '.', '--other', '.'])
    assert (article.model, article.batch_per_song, article.n_mels,
            article.length, article.compression) == ('music_net', 10, 256,
                                                     160, 'log1p')


def test_the_log_table_goes_to_the_stdout_of_now(demo_data, tmp_path,
                                                  capsys):
    # Chainer's PrintReport and ProgressBar default to the sys.stdout of
    # when Chainer was imported; a caller (a notebook, a test) that
    # redirects sys.stdout later must still see the table and the bar.
    from music_classification.cli import train
    train.main(['--music', demo_data.music_dir, '--other',
                demo_data.other_dir, '--noise', demo_data.noise_path,
                '--out', str(tmp_path / 'run'), '--recipe', 'improved',
                '--iterations', '2', '--log-every', '1', '--eval-every',
                '2', '--snapshot-every', '0'])
    out = capsys.readouterr().out
    header = [line for line in out.splitlines()
              if line.startswith('iteration')]
    assert len(header) == 1 and 'main/loss' in header[0]
    assert 'iters/sec' in out  # the progress bar


@pytest.mark.parametrize('other, songs, options, message', [
    ([3], [], {}, 'every song needs at least one window'),
    ([3], [5, 0], {}, 'every song needs at least one window'),
    ([0, 0], [5], {}, 'class 0 ("Other") has no examples'),
    ([3], [5], {'per_song': 0},
     'windows per song must be a positive integer, got 0'),
    ([3], [5], {'per_song': 2.5},
     'windows per song must be a positive integer, got 2.5'),
    ([3], [5], {'other_per_batch': -1},
     '"Other" clips per batch must be a positive integer, got -1'),
])
def test_song_sampler_refuses(other, songs, options, message):
    with pytest.raises(training.DatasetError) as e:
        training.SongOrderSampler(other, songs, **options)
    assert str(e.value) == message


def test_song_sampler_layout():
    s = training.SongOrderSampler([3, 2], [23, 40, 31], per_song=5,
                                  batches_per_epoch=7, seed=(4, 1))
    assert (s.n_other, s.batch_size, s.steps_per_cycle) == (5, 5 + 15, 4)
    assert s.song_offsets.tolist() == [5, 28, 68]
    assert (s.batches_per_epoch, s.seed, s.epoch) == (7, (4, 1), 0)
    order = s(None, 0)
    assert s.epoch == 1 and len(order) == 7 * 20
    assert order.dtype == np.intp
    # one song of fewer windows than per_song: a cycle is one step
    s = training.SongOrderSampler([3], [2, 9], per_song=4,
                                  other_per_batch=1, batches_per_epoch=2)
    assert (s.batch_size, s.steps_per_cycle, s.per_song) == (9, 1, 4)
    assert s.other_per_batch == 1
    batch = s.order_for(0)[:9]
    assert sorted(set(batch[1:5].tolist())) == [3, 4]


@pytest.mark.parametrize('make', ['balanced', 'song'])
def test_multiprocess_iterator_resumes_its_own_order(tmp_path, make):
    def iterator(seed):
        if make == 'balanced':
            return training.balanced_iterator(
                toy_classes(), batch_per_class=2, batches_per_epoch=5,
                seed=seed, n_processes=2)
        return training.song_iterator(song_classes(), per_song=3,
                                      batches_per_epoch=5, seed=seed,
                                      n_processes=2)
    # b resumes a's snapshot; c, another rank, resumes it with its own
    # windows: those of d, which ran without stopping
    a, b, c, d = iterator(3), iterator(3), iterator((3, 1)), iterator((3, 1))
    try:
        for _ in range(7):  # into the second epoch
            next(a)
            next(d)
        chainer.serializers.save_npz(str(tmp_path / 'it.npz'), a)
        chainer.serializers.load_npz(str(tmp_path / 'it.npz'), b)
        chainer.serializers.load_npz(str(tmp_path / 'it.npz'), c)
        assert (b.epoch, b.current_position, b.is_new_epoch) == (
            a.epoch, a.current_position, a.is_new_epoch)
        for _ in range(6):
            assert next(a) == next(b)
            assert next(c) == next(d)
    finally:
        for it in (a, b, c, d):
            it.finalize()


class _Trainer(object):
    """What a stop trigger reads of a trainer: the updater's iteration."""

    def __init__(self, iteration):
        self.updater = type('Updater', (), {'iteration': iteration})()


def test_time_budget_trigger():
    trigger = training.TimeBudgetTrigger(0.001)  # 60 ms
    assert trigger.get_training_length() == (None, 'iteration')
    assert trigger(_Trainer(0)) is False  # the clock starts here
    assert trigger(_Trainer(10 ** 9)) is False
    time.sleep(0.07)
    assert trigger(_Trainer(1)) is True
    trigger = training.TimeBudgetTrigger(10, max_iterations=5)
    assert trigger.get_training_length() == (5, 'iteration')
    assert trigger(_Trainer(4)) is False
    assert trigger(_Trainer(5)) is True
    assert trigger.seconds == 600.0


def test_time_budget_trigger_saves_the_time_spent():
    trigger = training.TimeBudgetTrigger(0.05)  # 3 s
    assert trigger.fraction() == 0.0
    trigger(_Trainer(0))
    time.sleep(1.0)
    start = trigger.start
    saved = chainer.serializers.DictionarySerializer()
    trigger.serialize(saved)
    spent = float(saved.target['spent_seconds'])
    assert 1.0 <= spent < 3.0
    assert (trigger.start, trigger.spent) == (start, 0.0)  # saving: as it was
    resumed = training.TimeBudgetTrigger(0.05)
    resumed.serialize(chainer.serializers.NpzDeserializer(saved.target))
    assert resumed.fraction() == pytest.approx(spent / 3.0)
    fresh = training.TimeBudgetTrigger(0.05)
    assert resumed(_Trainer(1)) is False and fresh(_Trainer(1)) is False
    # the resumed run's budget ends here, a second or so before a fresh one's
    time.sleep(3.0 - spent + 0.05)
    assert resumed(_Trainer(2)) is True and fresh(_Trainer(2)) is False
    assert resumed.elapsed() >= 3.0
    # a snapshot without the time spent (an older version's) starts anew
    for strict in (True, False):
        old = training.TimeBudgetTrigger(0.05)
        old.spent = 5.0
        old.serialize(chainer.serializers.NpzDeserializer({}, strict=strict))
        assert old.elapsed() == 0.0


def test_a_resumed_run_trains_only_what_is_left_of_its_budget(
        demo_data, tmp_path):
    from music_classification.cli import train
    argv = train_argv(demo_data, tmp_path, '--time-budget', '0.1',
                      '--model', 'small_cnn', '--n-mels', '64',
                      '--snapshot-every', '1', '--eval-every', '1000',
                      '--no-augment')
    first = train.main(argv)
    assert first >= 3  # 6 s of steps
    with np.load(tmp_path / 'snapshot_iter_{}'.format(first)) as f:
        spent = float(f['stop_trigger/spent_seconds'])
    assert spent >= 6.0 * (first - 1) / first
    os.remove(tmp_path / 'model.npz')
    # resumed from its last snapshot, at most one step is left to do
    assert first <= train.main(argv + ['--resume']) <= first + 1


def test_parameter_checksum():
    from music_classification.net import SMALL_CNN
    a = SMALL_CNN(n_classes=3)
    b = a.copy(mode='copy')
    checksum = training.parameter_checksum(a)
    assert len(checksum) == 16 and int(checksum, 16) >= 0
    assert training.parameter_checksum(b) == checksum
    b.fc5.W.array[0, 0] += 1e-3
    assert training.parameter_checksum(b) != checksum


def test_short():
    assert training._short('x' * 199) == 'x' * 199
    assert training._short('x' * 200) == 'x' * 197 + '...'
    assert training._short([1, 2]) == '[1, 2]'


def out_args(out, resume=False, force=False):
    import argparse
    return argparse.Namespace(out=str(out), resume=resume, force=force,
                              snapshot_every=500)


NOW = {'classes': ['Other', 'alpha', 'beta'],
       'features': training.FeatureConfig().to_dict(),
       'model': dict(training.MUSIC_NET_SPEC),
       'train_songs': {'alpha': ['a1.wav'], 'beta': ['b1.wav']},
       'val_songs': {'alpha': ['a2.wav'], 'beta': ['b2.wav']}}


def write_labels(out, **changes):
    info = dict(NOW, **changes)
    info['model'] = dict(info['model'], init='v1', dropout_ratio=0.5)
    (out / 'labels.json').write_text(json.dumps(info))


def test_a_new_folder_is_fine(tmp_path, capsys):
    training.check_out_folder(out_args(tmp_path), 0, NOW)
    training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    assert capsys.readouterr().out == (
        '--resume: no snapshot in {}; starting from scratch\n'.format(
            tmp_path))


def test_another_run_is_refused_and_named(tmp_path):
    write_labels(tmp_path)
    (tmp_path / 'snapshot_iter_3').write_bytes(b'x')
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(out_args(tmp_path), 1, NOW)
    assert str(e.value) == (
        '{} holds another run (labels.json, snapshot_iter_3); continue it '
        'with --resume, start over with --force, or choose another --out'
        .format(tmp_path))
    (tmp_path / 'labels.json').unlink()
    with pytest.raises(training.ParameterError, match=r'run \(snapshot_iter'
                       r'_3\); continue'):
        training.check_out_folder(out_args(tmp_path), 0, NOW)


def test_labels_alone_are_refused_a_run_may_be_going_on(tmp_path):
    # a probe's fit, or a run before its first snapshot, holds only
    # labels.json: a second run must not take the folder over
    write_labels(tmp_path)
    args = out_args(tmp_path)
    args.linear_probe, args.fine_tune = 0.1, False
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(args, 0, NOW)
    assert str(e.value) == (
        '{} holds another run (labels.json); start over with --force, or '
        'choose another --out'.format(tmp_path))


@pytest.mark.parametrize('probe, fine_tune, resume', [
    (None, False, True), (0.1, False, False), (0.1, True, True)])
def test_a_saved_model_is_refused_and_resume_offered_where_it_trains(
        tmp_path, probe, fine_tune, resume):
    # a linear probe trains nothing, so it has nothing to --resume
    write_labels(tmp_path)
    (tmp_path / 'model.npz').write_bytes(b'x')
    args = out_args(tmp_path)
    args.linear_probe, args.fine_tune = probe, fine_tune
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(args, 0, NOW)
    assert str(e.value) == (
        '{} holds another run (labels.json, model.npz); {}start over with '
        '--force, or choose another --out'.format(
            tmp_path, 'continue it with --resume, ' if resume else ''))


@pytest.mark.parametrize('rank', [0, 1])
def test_force_removes_the_old_model_on_rank_0(tmp_path, rank, capsys):
    # the new run's labels.json must never sit beside the old run's model,
    # even if the new run is interrupted before saving its own
    write_labels(tmp_path)
    (tmp_path / 'model.npz').write_bytes(b'x')
    (tmp_path / 'snapshot_iter_3').write_bytes(b'x')
    training.check_out_folder(out_args(tmp_path, force=True), rank, NOW)
    left = sorted(os.listdir(tmp_path))
    if rank:
        assert left == ['labels.json', 'model.npz', 'snapshot_iter_3']
        assert capsys.readouterr().out == ''
    else:
        assert left == ['labels.json']
        assert capsys.readouterr().out == (
            "--force: removed the old run's model.npz, snapshot_iter_3\n")


@pytest.mark.parametrize('rank', [0, 1])
def test_force_removes_the_old_snapshots_on_rank_0(tmp_path, rank):
    write_labels(tmp_path)
    for name in ('snapshot_iter_3', 'snapshot_iter_6'):
        (tmp_path / name).write_bytes(b'x')
    training.check_out_folder(out_args(tmp_path, force=True), rank, NOW)
    left = ['labels.json'] + (['snapshot_iter_3', 'snapshot_iter_6']
                              if rank else [])
    assert sorted(os.listdir(tmp_path)) == left


@pytest.mark.parametrize('rank', [0, 1])
def test_an_interrupted_snapshot_write_is_cleaned_on_rank_0(tmp_path, rank,
                                                            capsys):
    (tmp_path / 'tmpsnapshot_iter_9').mkdir()
    (tmp_path / 'tmpsnapshot_iter_9' / 'part').write_bytes(b'x')
    (tmp_path / 'tmpsnapshot_iter_note').write_text('a file, kept')
    training.check_out_folder(out_args(tmp_path), rank, NOW)
    left = sorted(os.listdir(tmp_path))
    if rank:
        assert left == ['tmpsnapshot_iter_9', 'tmpsnapshot_iter_note']
        assert capsys.readouterr().out == ''
    else:
        assert left == ['tmpsnapshot_iter_note']
        assert capsys.readouterr().out == (
            'removed {}, left by an interrupted snapshot\n'.format(
                tmp_path / 'tmpsnapshot_iter_9'))


def test_a_linked_snapshot_folder_is_left_alone(tmp_path, capsys):
    # a link in its place: neither the link nor what it points to is
    # removed, and the message says so
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (elsewhere / 'keep').write_bytes(b'x')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'tmpsnapshot_iter_9').symlink_to(elsewhere)
    training.check_out_folder(out_args(out), 0, NOW)
    assert os.path.islink(out / 'tmpsnapshot_iter_9')
    assert os.listdir(elsewhere) == ['keep']
    assert capsys.readouterr().out == (
        "could not remove all of {} (an interrupted snapshot's folder); the "
        "rest is left as it is\n".format(out / 'tmpsnapshot_iter_9'))


def test_out_folder_messages_are_flushed_at_once(tmp_path, monkeypatch):
    # under a pipe (tee, mpiexec) they come before the long run, not after
    import io
    import sys
    raw = io.BytesIO()
    monkeypatch.setattr(sys, 'stdout', io.TextIOWrapper(raw))
    (tmp_path / 'tmpsnapshot_iter_9').mkdir()
    training.check_out_folder(out_args(tmp_path), 0, NOW)
    assert raw.getvalue().decode() == (
        'removed {}, left by an interrupted snapshot\n'.format(
            tmp_path / 'tmpsnapshot_iter_9'))
    training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    assert raw.getvalue().decode().endswith(
        '--resume: no snapshot in {}; starting from scratch\n'.format(
            tmp_path))


def test_resume_accepts_the_same_run(tmp_path, capsys):
    write_labels(tmp_path)  # another init and dropout: the same architecture
    (tmp_path / 'snapshot_iter_3').write_bytes(b'x')
    training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    assert sorted(os.listdir(tmp_path)) == ['labels.json', 'snapshot_iter_3']
    assert capsys.readouterr().out == ''
    # a labels.json without the split or the model (an older run): MUSIC_NET
    info = {k: v for k, v in NOW.items()
            if k in ('classes', 'features')}
    (tmp_path / 'labels.json').write_text(json.dumps(info))
    training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)


def test_resume_tells_an_ensemble_of_snapshots_from_one_of_members(
        tmp_path):
    # Both save {'members': 2}; their trainer snapshots differ
    ensemble = {'members': 1, 'ensemble_snapshots': 2, 'ensemble_from': 0.5}
    now = dict(NOW, model=dict(NOW['model'], members=2), ensemble=ensemble)
    recipe = {'members': 2, 'ensemble_snapshots': 1, 'ensemble_from': 0.5}
    write_labels(tmp_path, model=now['model'], recipe=recipe)
    (tmp_path / 'snapshot_iter_3').write_bytes(b'x')
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(out_args(tmp_path, resume=True), 0, now)
    assert str(e.value) == (
        '--resume: {} was written for another run: ensemble {} there, {} '
        'now'.format(tmp_path / 'labels.json', recipe, ensemble))
    # another start of the snapshots: refused too
    write_labels(tmp_path, model=now['model'],
                 recipe=dict(ensemble, ensemble_from=0.25))
    with pytest.raises(training.ParameterError, match='ensemble_from'):
        training.check_out_folder(out_args(tmp_path, resume=True), 0, now)
    write_labels(tmp_path, model=now['model'], recipe=ensemble)
    training.check_out_folder(out_args(tmp_path, resume=True), 0, now)
    # a labels.json from before snapshot ensembles: not compared
    write_labels(tmp_path, model=now['model'], recipe={'members': 2})
    training.check_out_folder(out_args(tmp_path, resume=True), 0, now)


def test_resume_names_every_difference(tmp_path):
    long_songs = {'alpha': ['x' * 300]}
    write_labels(tmp_path, classes=['Other', 'alpha', 'gamma'],
                 val_songs=long_songs)
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    assert str(e.value) == (
        "--resume: {} was written for another run: classes ['Other', "
        "'alpha', 'gamma'] there, ['Other', 'alpha', 'beta'] now; "
        "val_songs {} there, {} now".format(
            tmp_path / 'labels.json', str(long_songs)[:197] + '...',
            NOW['val_songs']))
    write_labels(tmp_path, features=dict(NOW['features'], n_mels=128))
    with pytest.raises(training.ParameterError, match=r"features \{.*"
                       r"'n_mels': 128.* there, \{.*'n_mels': 256"):
        training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    write_labels(tmp_path, model=dict(NOW['model'], pooling=True))
    with pytest.raises(training.ParameterError,
                       match=r"model \{.*'pooling': True.* there"):
        training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)


def stretches(flags):
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()


@pytest.mark.parametrize('n_bands, n_spans, max_band, max_span', [
    (1, 1, None, None), (2, 2, None, None), (1, 1, 3, 5)])
def test_spec_augment_masks(n_bands, n_spans, max_band, max_span):
    x = np.full((300, 1, 64, 80), 2.0, np.float32)
    out = training.spec_augment(x, rng=np.random.default_rng(0),
                                n_bands=n_bands, n_spans=n_spans,
                                max_band=max_band, max_span=max_span)
    assert out is x  # in place
    widest_band = 64 // 8 if max_band is None else max_band
    widest_span = 80 // 8 if max_span is None else max_span
    assert set(np.unique(x)) <= {0.0, 2.0}
    bands, spans, firsts, lasts = [], [], set(), set()
    for window in x[:, 0]:
        rows = (window == 0).all(axis=1)  # masked mel bins: every frame
        cols = (window == 0).all(axis=0)  # masked frames: every bin
        # what is zero is exactly the masked rows and columns
        assert_array_equal(window == 0, rows[:, None] | cols[None, :])
        assert len(stretches(rows)) <= n_bands
        assert len(stretches(cols)) <= n_spans
        if n_bands == 1:
            bands.append(int(rows.sum()))
            spans.append(int(cols.sum()))
        firsts.add(bool(rows[0]))
        lasts.add(bool(rows[-1]) or bool(cols[-1]))
    if n_bands == 1:  # widths from 0 to the widest, all of them seen
        assert set(bands) == set(range(widest_band + 1))
        assert set(spans) == set(range(widest_span + 1))
    else:  # two stretches may join, never more than twice the widest
        assert max(int((w == 0).all(axis=1).sum()) for w in x[:, 0]) <= \
            2 * widest_band
    assert firsts == {True, False} and lasts == {True, False}
    again = np.full((300, 1, 64, 80), 2.0, np.float32)
    training.spec_augment(again, rng=np.random.default_rng(0),
                          n_bands=n_bands, n_spans=n_spans,
                          max_band=max_band, max_span=max_span)
    assert_array_equal(again, x)


def test_spec_augment_defaults_two_bands_and_two_spans_of_an_eighth():
    x = np.ones((300, 1, 256, 321), np.float32)
    training.spec_augment(x, rng=np.random.default_rng(1))
    rows = (x[:, 0] == 0).all(axis=2)
    cols = (x[:, 0] == 0).all(axis=1)
    assert max(len(stretches(r)) for r in rows) == 2
    assert max(len(stretches(c)) for c in cols) == 2
    assert max(max(stretches(r) or [0]) for r in rows) <= 2 * 32
    # two bands of up to 32 bins (not 28), two spans of up to 40 frames
    assert 56 < max(int(r.sum()) for r in rows) <= 2 * 32
    assert 70 < max(int(c.sum()) for c in cols) <= 2 * 40


@pytest.fixture(scope='module')
def run_here(demo_data, tmp_path_factory):
    """A run of ``train.main`` in this process: 6 iterations, evaluated and
    snapshotted every 3."""
    import contextlib
    import io
    from music_classification.cli import train
    out = tmp_path_factory.mktemp('here')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        steps = train.main(train_argv(demo_data, out, '--iterations', '6',
                                      '--eval-every', '3', '--snapshot-every',
                                      '3', '--seed', '4'))
    return out, steps, printed.getvalue()


def test_a_run_writes_its_files_and_log(run_here, demo_data):
    import zipfile
    out, steps, printed = run_here
    assert steps == 6
    assert sorted(os.listdir(out)) == [
        'accuracy.png', 'labels.json', 'log', 'loss.png', 'model.npz',
        'snapshot_iter_6']  # one snapshot kept
    with zipfile.ZipFile(out / 'snapshot_iter_6') as z:  # uncompressed
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    log = read_log(out)
    assert [e['iteration'] for e in log] == [1, 2, 3, 4, 5, 6]
    assert [('validation/main/accuracy' in e) for e in log] == [
        False, False, True, False, False, True]
    assert all({'main/loss', 'main/accuracy', 'elapsed_time'} <= set(e)
               for e in log)
    _, names, config = load_trained(out)
    assert names == demo_data.class_names and config.length == 40


def test_a_run_labels_its_recipe_and_split(run_here, demo_data):
    out, _, _ = run_here
    with open(out / 'labels.json') as f:
        labels = json.load(f)
    assert labels['classes'] == demo_data.class_names
    assert labels['features'] == dict(
        training.FeatureConfig(length=40).to_dict())
    assert labels['model']['model'] == 'music_net'
    assert labels['recipe'] == {
        'recipe': 'article', 'lr': 1e-4, 'weight_decay': 1e-4,
        'lr_schedule': 'constant', 'mixup': 0.0, 'label_smoothing': 0.0,
        'same_class_mix': 0.0, 'freq_shift': 0, 'random_eq': 0.0,
        'time_stretch': 0.0, 'stats_weight': 0.0, 'members': 1,
        'ensemble_snapshots': 1,
        'ensemble_from': 0.5, 'balance_songs': False,
        'spec_augment': False, 'noise': True, 'batch_per_song': None,
        'batch_per_class': 2, 'seed': 4, 'init_from': None,
        'linear_probe': None, 'fine_tune': False, 'fit_weights': 'windows',
        'fit_shifts': 0, 'fit_noise': False,
        'fit_volume': False}
    for artist in demo_data.artists:  # one held-out song each
        assert len(labels['val_songs'][artist]) == 1
        assert sorted(labels['val_songs'][artist] +
                      labels['train_songs'][artist]) == sorted(
            demo_data.songs[artist])


def test_a_run_prints_its_setup_table_and_model(run_here, demo_data):
    out, _, printed = run_here
    # PrintReport starts each line with a clear-to-end-of-screen code
    lines = printed.replace('\x1b[J', '').splitlines()
    assert lines[0] == ('classes: {}; training songs: 2; held-out songs: 2; '
                        '6 windows per step'.format(', '.join(
                            demo_data.class_names)))
    header = lines[1].split()
    assert header == ['iteration', 'main/loss', 'main/accuracy',
                      'validation/main/loss', 'validation/main/accuracy',
                      'elapsed_time']
    assert [line.split()[0] for line in lines[2:8]] == [
        '1', '2', '3', '4', '5', '6']
    assert lines[-1] == 'saved {}'.format(out / 'model.npz')


def snapshot_arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files
                if k.startswith(('updater/model:main/',
                                 'updater/optimizer:main/'))}


def test_resumed_run_equals_an_uninterrupted_one(demo_data, tmp_path):
    # Without augmentation, a run stopped after its snapshot at iteration 4
    # and resumed ends with the weights and Adam's state of a run that was
    # never interrupted; the resumed run starts at iteration 5.
    from music_classification.cli import train
    argv = train_argv(demo_data, tmp_path / 'whole', '--iterations', '8',
                      '--snapshot-every', '4', '--eval-every', '100',
                      '--no-augment')
    assert train.main(argv) == 8
    out = tmp_path / 'split'
    argv[argv.index('--out') + 1] = str(out)
    assert train.main([a if a != '8' else '4' for a in argv]) == 4
    os.remove(out / 'model.npz')  # as if stopped right after the snapshot
    before = read_log(out)
    assert train.main(argv + ['--resume']) == 8
    after = read_log(out)
    # Iterations 1-4 come from the snapshot (their timings unchanged), not
    # from training again; 5-8 were done by the resumed run.
    assert [e['iteration'] for e in after] == list(range(1, 9))
    assert after[:4] == before
    assert after[4]['elapsed_time'] > before[-1]['elapsed_time']
    whole = snapshot_arrays(tmp_path / 'whole' / 'snapshot_iter_8')
    split = snapshot_arrays(out / 'snapshot_iter_8')
    assert any('optimizer:main/conv1/W/m' in k for k in whole)
    assert whole.keys() == split.keys()
    for key in whole:
        np.testing.assert_allclose(split[key], whole[key], rtol=1e-5,
                                   atol=1e-7, err_msg=key)


def test_a_resumed_cosine_schedule_goes_on_where_it_was(demo_data,
                                                        tmp_path):
    # Stopped after its snapshot at iteration 4 and resumed for 8, the run's
    # updates 5-8 use the alphas of 5-8 of 8, the first one included.
    from music_classification.cli import train
    argv = train_argv(demo_data, tmp_path, '--iterations', '4',
                      '--snapshot-every', '4', '--eval-every', '100',
                      '--lr-schedule', 'cosine', '--lr', '1e-3')
    assert train.main(argv) == 4
    os.remove(tmp_path / 'model.npz')
    argv[argv.index('--iterations') + 1] = '8'
    assert train.main(argv + ['--resume']) == 8
    alphas = [e['alpha'] for e in read_log(tmp_path)]
    expected = [1e-3 * (1 + np.cos(np.pi * i / 8)) / 2 for i in range(4, 8)]
    assert_allclose(alphas[4:], expected, rtol=1e-6)


def test_the_recipes():
    assert training.RECIPES == {
        'article': dict(model='music_net', n_mels=256, length=160,
                        compression='log1p', normalize='none',
                        spec_augment=False, lr=1e-4, weight_decay=1e-4,
                        lr_schedule='constant', mixup=0.0,
                        label_smoothing=0.0, same_class_mix=0.0,
                        freq_shift=0, random_eq=0.0, time_stretch=0.0,
                        stats_weight=0.0, members=1,
                        ensemble_snapshots=1, ensemble_from=0.5,
                        batch_per_song=10, batch_per_class=None,
                        balance_songs=False, other_per_batch=None),
        'improved': dict(model='small_cnn', n_mels=128, length=48,
                         compression='db', normalize='window',
                         spec_augment=True, lr=1e-3, weight_decay=1e-4,
                         lr_schedule='constant', mixup=0.0,
                         label_smoothing=0.0, same_class_mix=0.0,
                         freq_shift=4, random_eq=0.0, time_stretch=0.2,
                         stats_weight=0.3, members=1,
                         ensemble_snapshots=7, ensemble_from=0.5,
                         batch_per_song=None, batch_per_class=8,
                         balance_songs=False, other_per_batch=8),
        'musicnn': dict(model='musicnn', head='pool_layers', n_mels=96,
                        length=186,
                        compression='musicnn', normalize='none',
                        spec_augment=False, lr=1e-4, weight_decay=1e-4,
                        lr_schedule='constant', mixup=0.0,
                        label_smoothing=0.0, same_class_mix=0.0,
                        freq_shift=0, random_eq=0.0, time_stretch=0.0,
                        stats_weight=0.0, members=1,
                        ensemble_snapshots=1, ensemble_from=0.5,
                        batch_per_song=None, batch_per_class=8,
                        balance_songs=False, other_per_batch=8,
                        linear_probe=0.1, fit_weights='songs')}


def parsed(*flags):
    from music_classification.cli import train
    return train.parse_args(['--music', '.', '--other', '.', *flags])


@pytest.mark.parametrize('flags, expected', [
    ((), training.FeatureConfig()),
    (('--model', 'wave', '--length', '40'),
     training.FeatureConfig(length=40, representation='wave')),
    (('--recipe', 'improved', '--pad-mode', 'constant'),
     training.FeatureConfig(length=48, n_mels=128, compression='db',
                            normalize='window', pad_mode='constant')),
    (('--n-mels', '64', '--compression', 'sqrt', '--normalize', 'window'),
     training.FeatureConfig(n_mels=64, compression='sqrt',
                            normalize='window')),
    # musicnn's own, whatever the recipe: 256-sample chunks and hops
    (('--recipe', 'musicnn'), training.MUSICNN_FEATURES),
    (('--recipe', 'improved', '--model', 'musicnn'),
     training.FeatureConfig(chunk=256, length=186, n_fft=512,
                            hop_length=256, n_mels=96,
                            compression='musicnn')),
])
def test_feature_config_of_the_flags(flags, expected):
    assert training.feature_config(parsed(*flags)) == expected


@pytest.mark.parametrize('flags, options', [
    ((), {'init': 'v1.9'}),
    (('--init', 'v1.8', '--pooling', '--no-batchnorm', '--head', 'pool'),
     {'init': 'v1.8', 'pooling': True, 'batchnorm': False, 'head': 'pool'}),
    (('--model', 'wave', '--batchnorm'), {'init': 'v1.9', 'batchnorm': True}),
    (('--recipe', 'improved'), {'stats_weight': 0.3}),
    (('--recipe', 'musicnn'), {'head': 'pool_layers'}),
    (('--recipe', 'musicnn', '--head', 'pool'), {'head': 'pool'}),
    (('--recipe', 'musicnn', '--signed-sqrt'), {'head': 'pool_layers',
                                                'signed_sqrt': True}),
    (('--recipe', 'musicnn', '--no-signed-sqrt'), {'head': 'pool_layers'}),
    (('--model', 'musicnn', '--signed-sqrt'), {'signed_sqrt': True}),
    (('--model', 'musicnn'), {}),
    (('--model', 'musicnn', '--head', 'pool_layers'),
     {'head': 'pool_layers'}),
    # the recipe's head is musicnn's, not another network's
    (('--recipe', 'musicnn', '--model', 'small_cnn', '--init-from', 'run'),
     {}),
    (('--recipe', 'musicnn', '--model', 'music_net', '--init-from', 'run'),
     {'init': 'v1.9'}),
    (('--recipe', 'musicnn', '--stats-weight', '0.3', '--dropout', '0'),
     {'head': 'pool_layers', 'stats_weight': 0.3, 'dropout_ratio': 0.0}),
    (('--recipe', 'improved', '--width', '8'), {'width': 8,
                                                'stats_weight': 0.3}),
    (('--dropout', '0.2'), {'init': 'v1.9', 'dropout_ratio': 0.2}),
    (('--recipe', 'improved', '--dropout', '0'), {'dropout_ratio': 0.0,
                                                  'stats_weight': 0.3}),
    (('--recipe', 'improved', '--stats-weight', '0.5'),
     {'stats_weight': 0.5}),
    (('--recipe', 'improved', '--stats-weight', '0'), {}),
    (('--recipe', 'improved', '--members', '3'), {'stats_weight': 0.3,
                                                  'members': 3}),
    (('--members', '2',), {'init': 'v1.9', 'members': 2}),
    (('--members', '1',), {'init': 'v1.9'}),
])
def test_model_options_of_the_flags(flags, options):
    assert training.model_options(parsed(*flags)) == options


@pytest.mark.parametrize('flags, snapshots, start', [
    ((), 1, 0.5),
    (('--recipe', 'improved'), 7, 0.5),
    (('--recipe', 'improved', '--ensemble-snapshots', '3',
      '--ensemble-from', '0.25'), 3, 0.25),
    (('--recipe', 'improved', '--ensemble-snapshots', '1'), 1, 0.5),
    # --members replaces the recipe's snapshot ensemble
    (('--recipe', 'improved', '--members', '2'), 1, 0.5),
    (('--ensemble-snapshots', '4'), 4, 0.5),
])
def test_snapshot_ensemble_of_the_flags(flags, snapshots, start):
    args = parsed(*flags)
    assert (args.ensemble_snapshots, args.ensemble_from) == (snapshots,
                                                             start)


def test_datasets_of_a_run(demo_data):
    args = parsed('--seed', '2', '--stride', '7', '--length', '40')
    args.music, args.other, args.noise = (demo_data.music_dir,
                                          demo_data.other_dir,
                                          demo_data.noise_path)
    config = training.feature_config(args)
    songs, train_songs, val_songs, classes, val = training.build_datasets(
        args, config)
    assert songs.class_names == demo_data.class_names
    assert len(classes) == 3 and len(classes[0]) == 1
    other, = classes[0]
    assert (other.label, other.augment, other.noise_augment) == (0, True,
                                                                  True)
    assert other.folder == demo_data.other_dir and other.length == 40
    assert other.noise is not None and other.compression == 'log1p'
    for label in (1, 2):
        assert sorted(d.wavfile for d in classes[label]) == sorted(
            train_songs[label])
        for d in classes[label]:
            assert (d.label, d.stride, d.augment, d.length) == (label, 7,
                                                                True, 40)
    assert sorted(d.wavfile for d in val) == sorted(
        p for paths in val_songs.values() for p in paths)
    for d in val:
        assert not d.augment and d.stride == 5 * 16000 and d.noise is None
        assert d.label == 1 + (d.wavfile in val_songs[2])
    # each class draws from its own stream, and another rank from others
    draws = [c[0].rng.random() for c in classes]
    assert len(set(draws)) == 3
    again = training.build_datasets(args, config)[3]
    assert [c[0].rng.random() for c in again] == draws
    rank1 = training.build_datasets(args, config, rank=1)[3]
    assert [c[0].rng.random() for c in rank1] != draws
    # --no-noise keeps the volume change; --no-augment drops both
    args.no_noise = True
    quiet = training.build_datasets(args, config)[3]
    assert quiet[0][0].augment and not quiet[0][0].noise_augment
    args.no_augment = True
    clean = training.build_datasets(args, config)[3]
    assert not clean[1][0].augment


@pytest.mark.parametrize('representation', ['mel', 'wave'])
def test_converter_masks_mel_features_only(representation):
    config = training.FeatureConfig(length=40, representation=representation)
    waves = np.random.default_rng(0).uniform(
        -0.5, 0.5, (4, config.window_samples)).astype(np.float32)
    batch = [(w, np.int32(k)) for k, w in enumerate(waves)]
    x, t = training.FeatureConverter(config)(batch)
    assert_array_equal(t, [0, 1, 2, 3])
    masked, _ = training.FeatureConverter(config, spec_augment=True,
                                          rng=5)(batch)
    again, _ = training.FeatureConverter(config, spec_augment=True,
                                         rng=5)(batch)
    assert_array_equal(masked, again)
    if representation == 'wave':
        assert_array_equal(masked, x)
    else:
        assert (masked == 0).sum() > (x == 0).sum()
        assert_array_equal(masked[masked != 0], x[masked != 0])


def test_loss_with_report_reports_loss_and_accuracy():
    from music_classification.net import SMALL_CNN
    model = SMALL_CNN(n_classes=3, input_shape=(32, 24))
    x = np.random.default_rng(0).standard_normal(
        (4, 1, 32, 24)).astype(np.float32)
    t = np.array([0, 1, 2, 1], np.int32)
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observation = {}
    with chainer.using_config('train', False):
        with reporter.scope(observation):
            loss = training.loss_with_report(model)(x, t)
        expected_loss, expected_accuracy = model(x, t)
    assert set(observation) == {'main/loss', 'main/accuracy'}
    assert float(observation['main/loss'].array) == pytest.approx(
        float(loss.array)) == pytest.approx(float(expected_loss.array))
    assert float(observation['main/accuracy'].array) == pytest.approx(
        float(expected_accuracy.array))


def test_song_sampler_defaults_and_smallest_sizes():
    s = training.SongOrderSampler([1], [1, 30])
    assert (s.per_song, s.batches_per_epoch, s.seed) == (10, 100, (0,))
    assert (s.n_other, s.batch_size) == (1, 1 + 20)
    # "Other" clips drawn with replacement come from all of them
    s = training.SongOrderSampler([4], [30], per_song=1, other_per_batch=2,
                                  batches_per_epoch=50)
    drawn = s.order_for(0).reshape(50, 3)[:, :2]
    assert set(drawn.ravel().tolist()) == {0, 1, 2, 3}


def test_song_iterator_passes_its_options_on(tmp_path):
    it = training.song_iterator(song_classes())
    sampler = it.order_sampler
    assert (sampler.per_song, sampler.batches_per_epoch, sampler.seed,
            sampler.other_per_batch) == (10, 100, (0,), None)
    assert isinstance(it, chainer.iterators.SerialIterator)
    it = training.song_iterator(song_classes(), per_song=2,
                                other_per_batch=3, batches_per_epoch=4,
                                seed=(5, 1), n_processes=2)
    try:
        sampler = it.order_sampler
        assert (sampler.per_song, sampler.batches_per_epoch, sampler.seed,
                sampler.other_per_batch) == (2, 4, (5, 1), 3)
        assert isinstance(it, chainer.iterators.MultiprocessIterator)
    finally:
        it.finalize()


def test_spec_augment_draws_widths_then_places_bands_then_spans():
    # The masks follow the generator: for each window a band width and
    # place, then the same for the spans; n_mels and frames not multiples
    # of 8 give the widest 100 // 8 = 12 bands and 90 // 8 = 11 frames.
    x = np.ones((50, 1, 100, 90), np.float32)
    training.spec_augment(x, rng=np.random.default_rng(9), n_bands=1,
                          n_spans=1)
    rng = np.random.default_rng(9)
    expected = np.ones_like(x)
    for size, widest, axis in ((100, 12, 2), (90, 11, 3)):
        for i in range(len(x)):
            width = int(rng.integers(0, widest + 1))
            start = int(rng.integers(0, size - width + 1))
            index = [i, 0, slice(None), slice(None)]
            index[axis] = slice(start, start + width)
            expected[tuple(index)] = 0
    assert_array_equal(x, expected)


def _mixup_case():
    from music_classification.net import SMALL_CNN
    model = SMALL_CNN(n_classes=3, input_shape=(32, 24), dropout_ratio=0.0)
    x = np.random.default_rng(0).standard_normal(
        (6, 1, 32, 24)).astype(np.float32)
    t = np.array([0, 1, 2, 1, 0, 2], np.int32)
    return model, x, t


def _mixed(model, x, seed=3):
    """What loss_with_report(model, mixup=0.4) draws after np.random.seed
    (seed), and the model's output on the mixed batch."""
    np.random.seed(seed)  # the draws: lam, then the permutation
    lam = np.random.beta(0.4, 0.4)
    perm = np.random.permutation(len(x))
    return lam, perm, model.forward(lam * x + (1 - lam) * x[perm])


def test_mixup_mixes_the_batch_and_its_loss():
    import chainer.functions as F
    model, x, t = _mixup_case()
    np.random.seed(3)
    loss = training.loss_with_report(model, mixup=0.4)(x, t)
    lam, perm, y = _mixed(model, x)
    assert 0 < lam < 1 and (perm != np.arange(6)).any()
    expected = lam * F.softmax_cross_entropy(y, t) + \
        (1 - lam) * F.softmax_cross_entropy(y, t[perm])
    assert float(loss.array) == pytest.approx(float(expected.array),
                                              rel=1e-5)
    plain = float(model(x, t)[0].array)
    assert abs(float(loss.array) - plain) > 1e-3


@pytest.mark.parametrize('mixup, train', [(0.0, True), (0.4, False)])
def test_no_mixup_off_or_outside_training(mixup, train):
    model, x, t = _mixup_case()
    with chainer.using_config('train', train):
        np.random.seed(3)
        loss = training.loss_with_report(model, mixup=mixup)(x, t)
        expected = model(x, t)[0]
    assert float(loss.array) == pytest.approx(float(expected.array),
                                              rel=1e-6)


def _adam_trainer():
    """An Adam optimiser and a stand-in trainer at a given iteration."""
    optimizer = chainer.optimizers.Adam(alpha=0.5)
    optimizer.setup(chainer.links.Linear(2, 2))

    def trainer(iteration):
        t = _Trainer(iteration)
        t.updater.get_optimizer = lambda name: optimizer
        return t
    return optimizer, trainer


def test_cosine_annealing_follows_iterations_and_time():
    optimizer, trainer = _adam_trainer()
    anneal = training.CosineAnnealing(1e-3, 10)
    anneal.initialize(trainer(0))
    assert optimizer.alpha == pytest.approx(1e-3)
    for iteration, alpha in [(5, 0.5e-3), (10, 0.0), (12, 0.0),
                             (2, 1e-3 * (1 + np.cos(0.2 * np.pi)) / 2)]:
        anneal(trainer(iteration))
        assert optimizer.alpha == pytest.approx(alpha, abs=1e-12)
    # Under a time budget: the further of the time and the iterations.
    budget = training.TimeBudgetTrigger(10, max_iterations=100)
    assert budget.fraction() == 0.0
    budget.start = time.perf_counter() - 150  # a quarter of 600 s
    assert budget.fraction() == pytest.approx(0.25, abs=0.01)
    anneal = training.CosineAnnealing(1e-3, 100, budget)
    anneal(trainer(10))
    assert optimizer.alpha == pytest.approx(
        1e-3 * (1 + np.cos(0.25 * np.pi)) / 2, rel=0.02)
    anneal(trainer(50))
    assert optimizer.alpha == pytest.approx(0.5e-3, rel=1e-9)


WAVE_REFUSED = (
    '--model wave reads waveforms: --freq-shift, --time-stretch, --random-eq, '
    '--stats-weight and --fit-shifts need mel features (give --freq-shift 0 '
    '--time-stretch 0 --stats-weight 0 with --recipe improved)')


@pytest.mark.parametrize('flags, message', [
    (('--mixup', '-0.1'), '--mixup must be 0 or more, got -0.1'),
    (('--freq-shift', '-2'), '--freq-shift must be 0 or more, got -2'),
    (('--random-eq', '-0.5'), '--random-eq must be 0 or more, got -0.5'),
    (('--time-stretch', '1'), '--time-stretch must be in [0, 1), got 1.0'),
    (('--time-stretch', '-0.1'),
     '--time-stretch must be in [0, 1), got -0.1'),
    (('--stats-weight', '1.5'), '--stats-weight must be in [0, 1], got 1.5'),
    (('--stats-weight', '-1'), '--stats-weight must be in [0, 1], got -1.0'),
    (('--recipe', 'improved', '--freq-shift', '128'),
     '--freq-shift must be less than --n-mels (128), got 128'),
    (('--recipe', 'improved', '--model', 'wave'), WAVE_REFUSED),
    (('--recipe', 'improved', '--model', 'wave', '--freq-shift', '0',
      '--stats-weight', '0'), WAVE_REFUSED),  # its time stretch
    (('--model', 'wave', '--stats-weight', '0.5'), WAVE_REFUSED),
    (('--model', 'wave', '--random-eq', '0.5'), WAVE_REFUSED),
    # band shifts of a waveform would be rows of zeros
    (('--model', 'wave', '--linear-probe', '--init-from', 'run',
      '--fit-shifts', '2'), WAVE_REFUSED),
    (('--recipe', 'improved', '--linear-probe', '--init-from', 'run',
      '--fit-shifts', '128'),
     '--fit-shifts must be less than --n-mels (128), got 128'),
    (('--recipe', 'improved', '--head', 'flatten'),
     "--head flatten is music_net's and wave's; small_cnn takes pool or "
     "pool_layers"),
    (('--ensemble-snapshots', '0'),
     '--ensemble-snapshots must be a positive integer, got 0'),
    (('--ensemble-from', '1'), '--ensemble-from must be in [0, 1), got 1.0'),
    (('--ensemble-from', '-0.1'),
     '--ensemble-from must be in [0, 1), got -0.1'),
    (('--members', '2', '--ensemble-snapshots', '3'),
     '--members and --ensemble-snapshots are two kinds of ensemble; give '
     'one of them'),
    (('--dropout', '1'), '--dropout must be in [0, 1), got 1.0'),
    (('--dropout', '-0.5'), '--dropout must be in [0, 1), got -0.5'),
])
def test_bad_mixup_and_dropout_are_refused(flags, message):
    with pytest.raises(SystemExit) as exit:
        parsed(*flags)
    assert exit.value.code == 'music-classification train: ' + message


def test_a_run_with_cosine_schedule_and_mixup(demo_data, tmp_path):
    # Adam's alpha as used by each of 4 updates is logged.
    import contextlib
    import io
    from music_classification.cli import train
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(train_argv(
            demo_data, tmp_path, '--iterations', '4', '--eval-every', '100',
            '--lr', '1e-3', '--lr-schedule', 'cosine',
            '--mixup', '0.4', '--dropout', '0.25'))
    alpha = [e['alpha'] for e in read_log(tmp_path)]
    np.testing.assert_allclose(
        alpha, 1e-3 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2, rtol=1e-6)
    with open(tmp_path / 'labels.json') as f:
        labels = json.load(f)
    assert (labels['recipe']['lr_schedule'], labels['recipe']['mixup']) == \
        ('cosine', 0.4)
    assert labels['model']['dropout_ratio'] == 0.25


@pytest.mark.parametrize('flags, rank, sampler, per_class, other', [
    (('--batch-per-song', '3', '--other-per-batch', '2'), 1,
     training.SongOrderSampler, None, 2),
    # rank 0 by default
    (('--batch-per-song', '3'), None, training.SongOrderSampler, None, None),
    (('--batch-per-class', '4'), 0, training.BalancedOrderSampler, 4,
     None),
    (('--batch-per-class', '4', '--other-per-batch', '3'), 2,
     training.BalancedOrderSampler, 4, 3),
])
@pytest.mark.parametrize('processes', [0, 2])
def test_make_iterator_of_the_flags(classes, flags, rank, sampler,
                                    per_class, other, processes):
    args = parsed('--seed', '5', '--processes', str(processes), *flags)
    it = training.make_iterator(args, classes,
                                *([] if rank is None else [rank]))
    rank = rank or 0
    try:
        assert isinstance(it, training.BalancedMultiprocessIterator
                          if processes else training.BalancedSerialIterator)
        s = it.order_sampler
        assert type(s) is sampler
        assert s.seed == (5, rank)
        n_songs = sum(len(c) for c in classes[1:])
        n_other = len(classes[0][0])
        if per_class is None:
            assert (s.per_song, s.other_per_batch) == (3, other)
            assert s.batch_size == (other or n_other) + 3 * n_songs
            assert s.song_sizes == [len(d) for c in classes[1:] for d in c]
        else:
            assert s.batch_per_class == [other or n_other] + [per_class] * (
                len(classes) - 1)
        assert len(it.next()) == s.batch_size
    finally:
        it.finalize()


def test_seeded_updater_defaults_to_seed_0():
    from chainer.iterators import SerialIterator
    optimizer, _ = _adam_trainer()
    it = SerialIterator([(np.zeros(2, np.float32), np.int32(0))], 1)
    assert training.SeededUpdater(it, optimizer).seed == (0,)
    assert training.SeededUpdater(it, optimizer, seed=(3, 1)).seed == (3, 1)


def test_loss_without_mixup_by_default():
    model, x, t = _mixup_case()
    with chainer.using_config('train', True):
        np.random.seed(3)
        loss = training.loss_with_report(model)(x, t)
        expected = model(x, t)[0]
    assert float(loss.array) == pytest.approx(float(expected.array),
                                              rel=1e-6)


def test_mixup_reports_the_accuracy_against_the_batchs_own_labels():
    import chainer.functions as F
    model, x, t = _mixup_case()
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observed = {}
    with reporter.scope(observed):
        np.random.seed(3)
        training.loss_with_report(model, mixup=0.4)(x, t)
    _, _, y = _mixed(model, x)
    assert float(observed['main/accuracy'].array) == float(
        F.accuracy(y, t).array)


def test_communicator_without_mpi():
    comm, rank, size, device = training.communicator(parsed())
    assert (comm, rank, size) == (None, 0, 1)
    assert device == chainer.get_device('@numpy')


def test_balanced_sampler_defaults_epochs_and_refusal():
    s = training.BalancedOrderSampler([3, 5], 2)
    assert (s.seed, s.batches_per_epoch, s.batch_size) == ((0,), 100, 4)
    orders = [s(None, 0) for _ in range(3)]
    for epoch, order in enumerate(orders):  # a new order every epoch
        assert_array_equal(order, s.order_for(epoch))
    assert s.epoch == 3
    with pytest.raises(training.DatasetError) as e:
        training.BalancedOrderSampler([3, 0, 2], 1)
    assert str(e.value) == 'class 1 has no examples'


def test_cosine_annealing_of_a_one_iteration_run():
    optimizer, trainer = _adam_trainer()
    training.CosineAnnealing(1e-3, 1)(trainer(1))
    assert optimizer.alpha == 0.0


def test_resume_compares_the_training_songs_and_completes_old_features(
        tmp_path):
    other = {'alpha': ['a9.wav'], 'beta': ['b1.wav']}
    write_labels(tmp_path, train_songs=other)
    with pytest.raises(training.ParameterError) as e:
        training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)
    assert str(e.value) == (
        '--resume: {} was written for another run: train_songs {} there, '
        '{} now'.format(tmp_path / 'labels.json', other, NOW['train_songs']))
    # Features saved before a parameter existed get its default.
    old = {k: v for k, v in NOW['features'].items()
           if k not in ('normalize', 'representation')}
    write_labels(tmp_path, features=old)
    training.check_out_folder(out_args(tmp_path, resume=True), 0, NOW)


def test_balanced_iterator_defaults(classes):
    it = training.balanced_iterator(classes)
    assert it.order_sampler.seed == (0,)
    assert it.order_sampler.batch_per_class == [10] * len(classes)
    assert it.order_sampler.batches_per_epoch == 100
    assert isinstance(it, training.BalancedSerialIterator)


@pytest.mark.parametrize('eps', [0.0, 0.1, 0.3])
def test_smoothed_cross_entropy_against_numpy(eps):
    rng = np.random.default_rng(int(eps * 10))
    y = rng.standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 1, 2], np.int32)
    log_p = y - np.log(np.exp(y).sum(axis=1, keepdims=True))
    target = np.full((5, 4), eps / 4) + (1 - eps) * np.eye(4)[t]
    expected = -(target * log_p).sum(axis=1).mean()
    loss = training.smoothed_cross_entropy(y, t, eps)
    assert float(loss.array) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('mixup', [0.0, 0.4])
def test_label_smoothing_in_training_only(mixup):
    model, x, t = _mixup_case()
    for train in (True, False):
        with chainer.using_config('train', train):
            np.random.seed(3)
            loss = training.loss_with_report(
                model, mixup=mixup, label_smoothing=0.2)(x, t)
            np.random.seed(3)
            plain = training.loss_with_report(model, mixup=mixup)(x, t)
            if mixup and train:
                lam, perm, y = _mixed(model, x)
                expected = lam * training.smoothed_cross_entropy(
                    y, t, 0.2) + (1 - lam) * training.smoothed_cross_entropy(
                        y, t[perm], 0.2)
            else:
                expected = training.smoothed_cross_entropy(
                    model.forward(x), t, 0.2 if train else 0.0)
        assert float(loss.array) == pytest.approx(float(expected.array),
                                                  rel=1e-5)
        assert (abs(float(loss.array) - float(plain.array)) > 1e-3) == train


def _class_batch():
    # Window k is the constant k + 1, so a mixture names its two sources.
    labels = [0, 1, 1, 2, 1, 0, 3]
    return [(np.full(8, k + 1.0, np.float32), np.int32(label))
            for k, label in enumerate(labels)]


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_mix_same_class_mixes_windows_of_one_class(seed):
    batch = _class_batch()
    before = [w.copy() for w, _ in batch]
    mixed = training.mix_same_class(batch, 1.0,
                                    rng=np.random.default_rng(seed))
    for (w, _), b in zip(batch, before):  # the inputs are left alone
        assert_array_equal(w, b)
    sources = set()
    for k, ((wave, label), (own, own_label)) in enumerate(zip(mixed, batch)):
        assert label == own_label and wave.dtype == np.float32
        assert np.ptp(wave) == 0
        mates = [j for j, (_, other) in enumerate(batch)
                 if other == label and j != k]
        if not mates:  # alone in its class (label 2 and 3)
            assert_array_equal(wave, own)
            continue
        # a * (k + 1) + (1 - a) * (j + 1) with a in [0.3, 0.7]
        fits = [j for j in mates
                if 0.3 - 1e-6 <= (wave[0] - (j + 1)) / (k - j) <= 0.7 + 1e-6]
        assert fits, (k, wave[0])
        sources.update(fits)
    assert len(sources) > 1


def test_mix_same_class_probability():
    batch = [(np.full(4, k + 1.0, np.float32), np.int32(k % 3))
             for k in range(300)]
    for p in (0.0, 0.25, 0.5, 1.0):
        mixed = training.mix_same_class(batch, p,
                                        rng=np.random.default_rng(4))
        changed = np.mean([not np.array_equal(w, own)
                           for (w, _), (own, _) in zip(mixed, batch)])
        assert changed == pytest.approx(p, abs=0.07)


def _noise_batch(config):
    # four random windows, labels 0 1 0 1
    rng = np.random.default_rng(0)
    return [(rng.uniform(-0.5, 0.5, config.window_samples).astype(
        np.float32), np.int32(k % 2)) for k in range(4)]


def test_converter_mixes_same_class_windows_before_the_features():
    config = training.FeatureConfig(length=40)
    batch = _noise_batch(config)
    plain, t = training.FeatureConverter(config)(batch)
    mixed, t2 = training.FeatureConverter(config, same_class_mix=1.0,
                                          rng=7)(batch)
    expected_batch = training.mix_same_class(batch, 1.0,
                                             rng=np.random.default_rng(7))
    expected, _ = training.FeatureConverter(config)(expected_batch)
    assert_array_equal(t, t2)
    assert_allclose(mixed, expected)
    assert not np.allclose(mixed, plain)


@pytest.mark.parametrize('flag', ['--label-smoothing', '--same-class-mix'])
@pytest.mark.parametrize('value', ['1', '-0.1'])
def test_bad_smoothing_and_mixing_are_refused(flag, value):
    with pytest.raises(SystemExit) as exit:
        parsed(flag, value)
    assert exit.value.code == 'music-classification train: {} must be in ' \
        '[0, 1), got {}'.format(flag, float(value))


def test_smoothing_and_mixing_flags_reach_the_run(demo_data, tmp_path):
    import contextlib
    import io
    from music_classification.cli import train
    args = parsed('--label-smoothing', '0.1', '--same-class-mix', '0.5')
    assert (args.label_smoothing, args.same_class_mix) == (0.1, 0.5)
    assert (parsed().label_smoothing, parsed().same_class_mix) == (0.0, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(train_argv(
            demo_data, tmp_path, '--iterations', '2', '--eval-every', '100',
            '--label-smoothing', '0.1', '--same-class-mix', '0.5'))
    with open(tmp_path / 'labels.json') as f:
        recipe = json.load(f)['recipe']
    assert (recipe['label_smoothing'], recipe['same_class_mix']) == (0.1, 0.5)


def _glibc_with_mallinfo2():
    import ctypes
    import platform
    try:
        return platform.libc_ver()[0] == 'glibc' and \
            hasattr(ctypes.CDLL(None), 'mallinfo2')
    except (OSError, TypeError):
        return False


@pytest.mark.skipif(not _glibc_with_mallinfo2(),
                    reason='glibc 2.33 or later (mallopt, mallinfo2)')
@pytest.mark.parametrize('kept', [False, True])
def test_keep_freed_memory_serves_large_arrays_from_the_heap(kept):
    # glibc maps an array of 64 MB (above its largest mmap threshold, 32
    # MB) on its own pages, returned at free, unless memory is kept.
    code = '''if 1:
        import ctypes, sys
        import numpy as np
        from music_classification import training

        class Info(ctypes.Structure):  # glibc's struct mallinfo2
            _fields_ = [(name, ctypes.c_size_t) for name in (
                'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
                'fsmblks', 'uordblks', 'fordblks', 'keepcost')]
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = Info
        if sys.argv[1] == 'True':
            assert training.keep_freed_memory() is True
        x = np.ones(1 << 24, np.float32)
        print(mallinfo2().hblkhd >> 20)
    '''
    mapped = int(subprocess.run([sys.executable, '-c', code, str(kept)],
                                capture_output=True, text=True,
                                check=True).stdout)
    assert (mapped >= 64) is not kept  # (the rest: small mapped blocks)


def test_build_trainer_passes_mixing_and_smoothing_on(classes, tmp_path):
    from music_classification.net import SMALL_CNN
    args = parsed('--recipe', 'improved', '--out', str(tmp_path),
                  '--same-class-mix', '0.5', '--label-smoothing', '0.2',
                  '--freq-shift', '3', '--random-eq', '0.7',
                  '--time-stretch', '0.3')
    model = SMALL_CNN(n_classes=3, input_shape=(32, 24), dropout_ratio=0.0)
    it = training.make_iterator(args, classes)
    trainer = training.build_trainer(
        args, model, it, training.feature_config(args),
        chainer.get_device('@numpy'), None, 0)
    updater = trainer.updater
    assert updater.converter.same_class_mix == 0.5
    assert updater.converter.freq_shift == 3
    assert updater.converter.random_eq == 0.7
    assert updater.converter.time_stretch == 0.3
    assert updater.converter.spec_augment
    _, x, t = _mixup_case()
    x = x[:, :, :32, :24]
    with chainer.using_config('train', True):
        loss = updater.loss_func(x, t)
        expected = training.smoothed_cross_entropy(model.forward(x), t, 0.2)
    assert float(loss.array) == pytest.approx(float(expected.array),
                                              rel=1e-5)


@pytest.mark.parametrize('max_shift', [1, 3, 7])
@pytest.mark.parametrize('seed', [0, 1])
def test_shift_bands_moves_each_window_along_the_mel_axis(max_shift, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 1, 16, 5)).astype(np.float32)
    before = x.copy()
    out = training.shift_bands(x, max_shift,
                               rng=np.random.default_rng(seed + 10))
    assert_array_equal(x, before)  # the input is left alone
    shifts = np.random.default_rng(seed + 10).integers(
        -max_shift, max_shift + 1, size=150)
    for window, moved, k in zip(x, out, shifts):
        expected = np.zeros_like(window)
        if k >= 0:
            expected[:, k:] = window[:, :16 - k]
        else:
            expected[:, :k] = window[:, -k:]
        assert_array_equal(moved, expected)
    assert set(shifts) == set(range(-max_shift, max_shift + 1))


@pytest.mark.parametrize('k', [-17, -16, -3, -1, 0, 2, 15, 16, 17])
def test_move_bands_moves_every_window_by_k_bands(k):
    x = np.random.default_rng(abs(k)).normal(size=(3, 1, 16, 4)).astype(
        np.float32)
    expected = np.zeros_like(x)
    for band in range(16):
        if 0 <= band + k < 16:
            expected[:, :, band + k] = x[:, :, band]
    assert_array_equal(training.move_bands(x, k), expected)
    out = np.zeros_like(x)
    view = out[1]
    assert training.move_bands(x[1], k, out=view) is view
    assert_array_equal(out[1], expected[1])
    assert_array_equal(out[[0, 2]], 0)


@pytest.mark.parametrize('amplitude', [0.25, 1.0])
@pytest.mark.parametrize('seed', [0, 1])
def test_random_eq_adds_one_smooth_curve_per_window(amplitude, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 1, 64, 6)).astype(np.float32)
    before = x.copy()
    out = training.random_eq(x, amplitude,
                             rng=np.random.default_rng(seed + 10))
    assert_array_equal(x, before)  # the input is left alone
    curve = out - x
    # one curve along the mel axis per window, the same in every frame
    assert_allclose(curve, curve[..., :1].repeat(6, axis=3), atol=1e-6)
    curve = curve[:, 0, :, 0].astype(np.float64)
    assert_allclose(curve.mean(axis=1), 0, atol=1e-6)  # the mean stays
    # a tilt of up to A and two ripples of up to A / 2, less their mean
    # (a ripple of k >= 1 cycles and depth b has a mean of at most b / pi)
    assert np.abs(curve).max() <= (2 + 1 / np.pi) * amplitude + 1e-6
    assert np.abs(curve).max() > amplitude  # ... and it gets near that
    # smooth: a tilt and two ripples of at most 4 cycles, so from one
    # band to the next (du = 2 / 63) it moves at most A du + 2 (A / 2) 4 pi du
    du = 2 / 63
    steepest = amplitude * du + amplitude * 4 * np.pi * du
    assert np.abs(np.diff(curve, axis=1)).max() <= steepest + 1e-6
    # a different curve for every window, tilted either way
    slope = curve[:, -1] - curve[:, 0]
    assert len(np.unique(curve.round(4), axis=0)) == 400
    assert (slope > 0).mean() == pytest.approx(0.5, abs=0.1)
    # the amplitude scales the curves and nothing else
    twice = training.random_eq(x, 2 * amplitude,
                               rng=np.random.default_rng(seed + 10)) - x
    assert_allclose(twice[:, 0, :, 0], 2 * curve, atol=1e-5)


def test_converter_stretches_then_equalises_shifts_and_masks():
    config = training.FeatureConfig(length=40)
    batch = _noise_batch(config)
    plain, _ = training.FeatureConverter(config)(batch)
    out, _ = training.FeatureConverter(
        config, time_stretch=0.3, random_eq=0.5, freq_shift=5,
        spec_augment=True, rng=3)(batch)
    draws = np.random.default_rng(3)
    expected = training.spec_augment(training.shift_bands(
        training.random_eq(training.stretch_time(plain, 0.3, rng=draws),
                           0.5, rng=draws), 5, rng=draws), rng=draws)
    assert_allclose(out, expected, atol=1e-6)
    assert not np.allclose(out, plain)


@pytest.mark.parametrize('most', [0.1, 0.5])
@pytest.mark.parametrize('seed', [0, 1])
def test_stretch_time_reads_a_random_stretch_of_each_window(most, seed):
    frames = 30
    # every band a ramp along time (band m: 100 m + frame number)
    x = (np.arange(frames)[None, :] + 100.0 * np.arange(4)[:, None])
    x = np.tile(x.astype(np.float32), (300, 1, 1, 1))
    before = x.copy()
    out = training.stretch_time(x, most, rng=np.random.default_rng(seed))
    assert_array_equal(x, before)  # the input is left alone
    assert out.shape == x.shape
    # each window reads frames start, start + s, ..., start + (frames-1) s
    # of itself: on a ramp, again a ramp, of slope s, inside the window
    at = out[:, 0] - 100.0 * np.arange(4)[None, :, None]
    assert_allclose(at, at[:, :1].repeat(4, axis=1), atol=1e-4)  # all bands
    at = at[:, 0].astype(np.float64)
    speed = np.diff(at, axis=1)
    assert_allclose(speed, speed[:, :1].repeat(frames - 1, axis=1),
                    atol=1e-4)
    speed = speed[:, 0]
    assert speed.min() >= 1 - most - 1e-6 and speed.max() <= 1 + 1e-6
    assert speed.min() < 1 - 0.9 * most and speed.max() > 1 - 0.1 * most
    assert at[:, 0].min() >= -1e-4 and at[:, -1].max() <= frames - 1 + 1e-4
    # ... at a random place: some start late, some end early
    assert (at[:, 0] > 1).any() and (at[:, -1] < frames - 2).any()
    # between frames, a line from one to the next
    noise = np.random.default_rng(seed).normal(
        size=(300, 1, 4, frames)).astype(np.float32)
    out = training.stretch_time(noise, most,
                                rng=np.random.default_rng(seed))
    low = np.floor(at).astype(int).clip(0, frames - 2)
    w = (at - low)[:, None, :]
    a = np.take_along_axis(noise[:, 0], low[:, None, :].repeat(4, 1), 2)
    b = np.take_along_axis(noise[:, 0], low[:, None, :].repeat(4, 1) + 1, 2)
    assert_allclose(out[:, 0], a + w * (b - a), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize('augment, amount', [('stretch_time', 0.3),
                                             ('random_eq', 0.5),
                                             ('shift_bands', 3)])
def test_augmentations_on_cupy_equal_numpy(cupy, augment, amount):
    x = np.random.default_rng(0).normal(size=(6, 1, 16, 20)).astype(
        np.float32)
    func = getattr(training, augment)
    on_gpu = func(cupy.asarray(x), amount, rng=np.random.default_rng(1))
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == np.float32
    assert_allclose(cupy.asnumpy(on_gpu),
                    func(x, amount, rng=np.random.default_rng(1)),
                    rtol=1e-6, atol=1e-6)


def test_stretch_time_by_nothing_is_the_window():
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 12)).astype(
        np.float32)
    assert_allclose(training.stretch_time(x, 0.0,
                                          rng=np.random.default_rng(0)), x,
                    atol=1e-6)


@pytest.mark.parametrize('C', [0.1, 1.0])
def test_fit_standardised_regression_fits_the_standardised_features(C):
    rng = np.random.default_rng(3)
    t = rng.integers(0, 3, size=90)
    X = rng.normal(size=(90, 4)) * [1.0, 50.0, 0.01, 0.0] + [0, 7, -3, 2]
    X[:, 0] += t
    mean, scale, W, b = training.fit_standardised_regression(X, t, 3, C=C)
    assert_allclose(mean, X.mean(axis=0))
    assert_allclose(scale, [X[:, 0].std(), X[:, 1].std(), X[:, 2].std(),
                            1.0])  # a constant feature is left unscaled
    W2, b2 = training.fit_logistic_regression((X - mean) / scale, t, 3, C=C)
    assert_allclose(W, W2)
    assert_allclose(b, b2)


@pytest.mark.parametrize('level, step', [
    (0.5, None), (-3e-4, None), (1e3, None),
    # rounded at 1.9 before a batch norm scaled it to ~1e-6 (musicnn's
    # timbral74 channel 193): steps of 1e-4 of its own size
    (-2.4e-6, 2e-10)])
def test_a_feature_constant_but_for_rounding_gets_no_weight(level, step):
    # a dead channel of a float32 network: one value give or take a few
    # roundings, which here even follow the labels. Standardised, they
    # would be fitted and their weight divided by a scale of ~1e-9.
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, size=200)
    step = step or np.spacing(np.float32(level))
    X = np.stack([rng.normal(size=200) + t,
                  np.float32(level) + step * (t == 1)], axis=1)
    X = np.concatenate([X, np.zeros((200, 3))], axis=1)  # dead: exact 0
    mean, scale, W, b = training.fit_standardised_regression(X, t, 3, C=1.0)
    assert_array_equal(scale[1:], 1.0)
    assert_array_equal(W[:, 1:], 0.0)
    assert np.abs(W[:, 0]).max() > 0.5  # the real feature is fitted
    assert np.all(np.abs(W / scale) < 10)  # as folded into a layer
    # a small but real spread is still a feature
    X[:, 1] = 1.0 + 1e-3 * t
    _, scale, W, _ = training.fit_standardised_regression(X, t, 3, C=1.0)
    assert_allclose(scale[1], X[:, 1].std())
    assert np.abs(W[:, 1]).max() > 0.5


@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('C', [0.1, 1.0])
@pytest.mark.parametrize('seed', [0, 1])
def test_fit_logistic_regression_is_scikit_learns(C, seed, weighted):
    sklearn = pytest.importorskip('sklearn.linear_model')
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, size=120)
    X = rng.normal(size=(120, 5)) + t[:, None] * [1.0, -0.5, 0, 0, 0.2]
    weights = rng.uniform(0.1, 3.0, size=120) if weighted else None
    W, b = training.fit_logistic_regression(X, t, 3, C=C, weights=weights)
    reference = sklearn.LogisticRegression(C=C, tol=1e-10,
                                           max_iter=10000).fit(
        X, t, sample_weight=weights)
    z = X @ W.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert_allclose(p, reference.predict_proba(X), atol=1e-4)


def test_a_weight_of_k_is_the_row_k_times():
    rng = np.random.default_rng(5)
    t = rng.integers(0, 3, size=40)
    X = rng.normal(size=(40, 3)) + t[:, None]
    k = rng.integers(1, 4, size=40)
    W, b = training.fit_logistic_regression(X, t, 3, C=0.3,
                                            weights=k.astype(float))
    W2, b2 = training.fit_logistic_regression(np.repeat(X, k, axis=0),
                                              np.repeat(t, k), 3, C=0.3)
    assert_allclose(W, W2, atol=1e-5)
    assert_allclose(b, b2, atol=1e-5)


def test_song_weights_weigh_every_class_and_song_alike():
    # class 0: one "song" of 3 windows; class 1: songs of 2 and 6
    # windows; class 2: one song of 4
    labels = np.array([0] * 3 + [1] * 8 + [2] * 4)
    songs = np.array([7] * 3 + [1] * 2 + [2] * 6 + [3] * 4)
    w = training.song_weights(labels, songs)
    assert_allclose(w.mean(), 1.0)
    for label in range(3):
        assert_allclose(w[labels == label].sum(), len(w) / 3)
    assert_allclose(w[songs == 1].sum(), w[songs == 2].sum())
    assert_allclose(w[songs == 2], w[songs == 2][0])  # windows of a song
    assert_allclose(w[:3], 5.0 / 3)  # 15 windows / 3 classes / 3 windows
    assert training.fitting_weights(labels, songs, 'windows') is None
    assert_allclose(training.fitting_weights(labels, songs, 'songs'), w)
    with pytest.raises(training.ParameterError,
                       match='fit_weights must be one of'):
        training.fitting_weights(labels, songs, 'classes')


@pytest.mark.parametrize('bands, shifts', [(0, (0,)), (2, (0, -2, 2)),
                                           (5, (0, -5, 5))])
def test_fit_shifts_are_the_bands_down_and_up(bands, shifts):
    assert training.fit_shifts(bands) == shifts


def test_negative_fit_shifts_are_refused():
    with pytest.raises(training.ParameterError, match='0 or more bands'):
        training.fit_shifts(-1)


@pytest.mark.parametrize('shifts', [(0,), (0, -3, 3)])
def test_window_rows_read_each_window_at_each_shift(classes, shifts):
    config = training.FeatureConfig(length=16, n_mels=32, compression='db',
                                    normalize='window')
    x, t, songs = fitted_windows(classes, config)

    def rows_of(features):  # a few bands of every window, all frames
        return features[:, 0, 10:20, :].reshape(len(features), -1)
    X, labels, got_songs = training.window_rows(classes, config, rows_of,
                                                batch_size=7, shifts=shifts)
    # batch by batch (7 windows, the last fewer), each shift in turn
    expected = np.concatenate([
        rows_of(training.move_bands(x[i:i + 7], k))
        for i in range(0, len(x), 7) for k in shifts])
    assert X.shape == (len(shifts) * len(x), 10 * x.shape[-1])
    assert_allclose(X, expected, rtol=1e-5, atol=1e-5)
    order = [j for i in range(0, len(x), 7) for k in shifts
             for j in range(i, min(i + 7, len(x)))]
    assert_array_equal(labels, t[order])
    assert_array_equal(got_songs, songs[order])


def test_statistics_windows_cover_songs_and_other_sounds(classes):
    window = 4096
    got = list(training.statistics_windows(classes, window))
    expected = 0
    for label, datasets in enumerate(classes):
        for d in datasets:
            if label == 0:
                expected += len(d.sounds)
            else:
                n = len(d.all_data)
                expected += len(np.arange(0, n - window + 1, window // 2))
    assert len(got) == expected
    assert all(w.shape == (window,) for w, _, _ in got)
    song = classes[1][0].all_data
    firsts = [w for w, label, _ in got if label == 1][:2]
    assert_array_equal(firsts[0], song[:window])
    assert_array_equal(firsts[1], song[window // 2:window // 2 + window])
    assert sorted(set(label for _, label, _ in got)) == [0, 1, 2]
    # each dataset is one song, every "Other" sound of one dataset too
    datasets = [d for datasets in classes for d in datasets]
    songs = [song for _, _, song in got]
    assert sorted(set(songs)) == list(range(len(datasets)))
    assert songs == sorted(songs)
    assert songs.count(0) == len(classes[0][0].sounds)


def test_statistics_windows_with_noise_add_a_noisy_copy_of_each(classes):
    from music_classification import augment
    window = 4096
    clean = list(training.statistics_windows(classes, window))
    noise = augment.default_noise(sr=16000, seconds=2.0)
    got = list(training.statistics_windows(
        classes, window, noise=noise, rng=np.random.default_rng(1),
        snr_db=(5.0, 15.0)))
    assert len(got) == 2 * len(clean)
    for (w, label, song), (a, la, sa), (b, lb, sb) in zip(
            clean, got[::2], got[1::2]):
        assert_array_equal(a, w)  # each window as it is, then its copy
        assert (la, sa) == (lb, sb) == (label, song)
    # the copies' noise is 5 to 15 dB below the whole song (an "Other"
    # sound: itself), each window drawn anew
    songs = [d.all_data if hasattr(d, 'all_data') else d.sounds
             for datasets in classes for d in datasets]
    ratios = []
    for k, ((w, _, song), (b, _, _)) in enumerate(zip(clean, got[1::2])):
        whole = songs[song] if song else classes[0][0].sounds[k]
        if augment.dbfs(whole) < -200:  # a silent sound: no noise either
            assert_array_equal(b, w)
            continue
        ratios.append(augment.dbfs(whole) - augment.dbfs(
            b.astype(np.float64) - w))
    assert len(ratios) > 10
    assert 5.0 - 1e-3 <= min(ratios) and max(ratios) <= 15.0 + 1e-3
    assert np.std(ratios) > 1.0
    assert training.FIT_NOISE_SNR == (0.0, 20.0)
    with pytest.raises(training.ParameterError,
                       match='noisy or quieter copies need an rng'):
        next(training.statistics_windows(classes, window, noise=noise))


@pytest.mark.parametrize('noisy', [False, True])
def test_statistics_windows_with_volume_add_a_quieter_copy(classes, noisy):
    from music_classification import augment
    window = 4096
    clean = list(training.statistics_windows(classes, window))
    noise = augment.default_noise(sr=16000, seconds=2.0) if noisy else None
    got = list(training.statistics_windows(
        classes, window, noise=noise, rng=np.random.default_rng(2),
        volume=True))
    assert len(got) == 2 * len(clean)
    volumes = {0: [], 1: []}
    for (w, label, song), (a, la, sa), (b, lb, sb) in zip(
            clean, got[::2], got[1::2]):
        assert_array_equal(a, w)  # each window as it is, then its copy
        assert (la, sa) == (lb, sb) == (label, song)
        assert b.dtype == np.float32
        if not w.any():  # turned down, a silent window stays silent
            assert noisy or not b.any()
            continue
        # the copy over the window: its volume (with noise, a least-squares
        # fit of the turned-down window plus noise)
        volume = float(np.dot(b, w) / np.dot(w, w))
        if noisy:
            assert augment.rms(b - volume * w) > 1e-4
        else:
            assert_allclose(b, volume * w, rtol=1e-6, atol=1e-7)
        volumes[int(label > 0)].append(volume)
    # songs turned down to U(0.1, 1), "Other" sounds to U(0.05, 1), each
    # copy drawn anew
    for key, (low, high) in ((1, augment.SONG_VOLUME),
                             (0, augment.OTHER_VOLUME)):
        tolerance = 0.05 if noisy else 1e-6
        assert low - tolerance <= min(volumes[key])
        assert max(volumes[key]) <= high + tolerance
        assert np.std(volumes[key]) > 0.1
    # "Other" sounds turned further down than songs: below 0.1 in some of
    # five draws of each
    quietest = min(
        float(np.dot(b, w) / np.dot(w, w)) for seed in range(5)
        for (w, label, _), (b, _, _) in zip(clean, list(
            training.statistics_windows(
                classes, window, rng=np.random.default_rng(seed),
                volume=True))[1::2]) if label == 0 and w.any())
    assert quietest < augment.SONG_VOLUME[0]
    if noisy:
        # the noise first, drawn as --fit-noise alone draws it, then the
        # volume: the first copy is --fit-noise's first copy turned down
        assert clean[0][0].any()
        alone = list(training.statistics_windows(
            classes, window, noise=noise, rng=np.random.default_rng(2)))[1][0]
        volume = float(np.dot(got[1][0], alone) / np.dot(alone, alone))
        assert 0.05 <= volume < 1
        assert_allclose(got[1][0], volume * alone, rtol=1e-5, atol=1e-7)
    with pytest.raises(training.ParameterError,
                       match='noisy or quieter copies need an rng'):
        next(training.statistics_windows(classes, window, volume=True))


@pytest.mark.parametrize('fit_weights,shifts', [
    ('windows', (0,)), ('songs', (0,)), ('songs', (0, -4, 4)),
    ('songs', 'noise'), ('songs', 'volume')])
def test_fit_statistics_classifier_learns_the_training_windows(
        classes, fit_weights, shifts):
    from music_classification.augment import default_noise
    from music_classification.features import window_statistics
    from music_classification.net import SMALL_CNN
    noisy = {}
    if shifts == 'noise':  # every window and its noisy copy, as drawn
        shifts, noisy = (0,), dict(noise=default_noise(seconds=2.0))
    elif shifts == 'volume':  # and its quieter copy
        shifts, noisy = (0,), dict(volume=True)
    config = training.FeatureConfig(length=16, n_mels=32, compression='db',
                                    normalize='window')
    model = SMALL_CNN(n_classes=3, input_shape=config.input_shape, width=4)
    model.add_statistics_classifier(1.0)
    n = training.fit_statistics_classifier(
        model, classes, config, fit_weights=fit_weights, shifts=shifts,
        rng=np.random.default_rng(7), **noisy)
    x, t, songs = fitted_windows(classes, config,
                                 rng=np.random.default_rng(7), **noisy)
    assert n == len(shifts) * len(t)
    x = np.concatenate([training.move_bands(x, k) for k in shifts])
    t, songs = np.tile(t, len(shifts)), np.tile(songs, len(shifts))
    assert_allclose(model.stats_mean, features_mean(x), rtol=1e-4,
                    atol=1e-4)
    mean, scale, W, b = training.fit_standardised_regression(
        window_statistics(x=x).astype(np.float64), t, 3,
        weights=training.fitting_weights(t, songs, fit_weights))
    assert_allclose(model.stats_W, W, rtol=1e-3, atol=1e-3)
    assert_allclose(model.stats_b, b, rtol=1e-3, atol=1e-3)
    guesses = model.predict(x).array.argmax(axis=1)
    assert np.mean(guesses == t) > 0.9  # the demo's artists are apart
    model.stats_weight = 0.0  # the network alone: untrained, near chance
    assert np.mean(model.predict(x).array.argmax(axis=1) == t) < 0.9


@pytest.mark.parametrize('members,fit_weights,shifts', [
    (1, 'windows', (0,)), (2, 'windows', (0,)), (1, 'songs', (0,)),
    (1, 'songs', (0, -2, 2)), (1, 'songs', 'noise'),
    (1, 'songs', 'volume')])
def test_fit_output_layer_is_a_logistic_regression_on_the_embedding(
        classes, members, fit_weights, shifts):
    from music_classification.augment import default_noise
    from music_classification.net import ENSEMBLE, SMALL_CNN
    noisy = {}
    if shifts == 'noise':  # every window and its noisy copy, as drawn
        shifts, noisy = (0,), dict(noise=default_noise(seconds=2.0))
    elif shifts == 'volume':  # and its quieter copy
        shifts, noisy = (0,), dict(volume=True)
    config = training.FeatureConfig(length=16, n_mels=32, compression='db',
                                    normalize='window')
    np.random.seed(3)
    nets = [SMALL_CNN(n_classes=3, input_shape=config.input_shape, width=4)
            for _ in range(members)]
    model = nets[0] if members == 1 else ENSEMBLE(nets)
    before = {name: p.array.copy() for name, p in model.namedparams()}
    n = training.fit_output_layer(model, classes, config, C=0.5,
                                  fit_weights=fit_weights, shifts=shifts,
                                  rng=np.random.default_rng(7), **noisy)
    x, t, songs = fitted_windows(classes, config,
                                 rng=np.random.default_rng(7), **noisy)
    assert n == len(shifts) * len(t)
    assert len(t) == (2 if noisy else 1) * len(fitted_windows(
        classes, config)[1])
    # the rows of every shift, in any order: the fit does not depend on it
    x = np.concatenate([training.move_bands(x, k) for k in shifts])
    t, songs = np.tile(t, len(shifts)), np.tile(songs, len(shifts))
    weights = training.fitting_weights(t, songs, fit_weights)
    with chainer.using_config('train', False):
        for net in nets:
            e = net.embed(x).array.astype(np.float64)
            mean, scale, W, b = training.fit_standardised_regression(
                e, t, 3, C=0.5, weights=weights)
            # each member's own regression, its standardisation folded in
            assert_allclose(net.forward(x).array,
                            ((e - mean) / scale) @ W.T + b, rtol=1e-3,
                            atol=1e-3)
    for name, p in model.namedparams():  # only the output layers move
        moved = not np.array_equal(p.array, before[name])
        assert moved == ('/fc5/' in name), name
    guesses = model.predict(x).array.argmax(axis=1)
    assert np.mean(guesses == t) > 0.9  # random features, fitted head


def fitted_windows(classes, config, **noisy):
    """The windows the fits read: their features, labels and songs."""
    windows = list(training.statistics_windows(
        classes, config.window_samples, **noisy))
    x = config(np.stack([w for w, _, _ in windows]))
    t = np.array([label for _, label, _ in windows])
    return x, t, np.array([song for _, _, song in windows])


def features_mean(x):
    from music_classification.features import window_statistics
    return window_statistics(x=x).mean(axis=0)


def improved_run(demo_data, out, *flags):
    """A two-step ``--recipe improved`` run: its labels and loaded model."""
    from music_classification import collection
    from music_classification.cli import train
    train.main(train_argv(demo_data, out, '--recipe', 'improved',
                          '--length', '16', '--iterations', '2',
                          '--snapshot-every', '0', '--eval-every', '2',
                          *flags))
    with open(out / 'labels.json') as f:
        labels = json.load(f)
    return labels, collection.load_trained(str(out))


def probes_of_a_run(demo_data, tmp_path, flags_of):
    """An improved run in ``tmp_path / 'run'``, then a linear probe of it
    for each name in ``flags_of`` (with those flags, in ``tmp_path /
    name``): name -> (labels, model, config)."""
    improved_run(demo_data, tmp_path / 'run')
    probes = {}
    for name, flags in flags_of.items():
        labels, (model, _, config) = improved_run(
            demo_data, tmp_path / name, '--init-from', str(tmp_path / 'run'),
            '--linear-probe', *flags)
        probes[name] = labels, model, config
    return probes


def test_a_run_fits_its_statistics_classifier(demo_data, tmp_path):
    labels, (model, _, _) = improved_run(demo_data, tmp_path / 'run',
                                         '--stats-weight', '0.5')
    assert model.stats_weight == 0.5
    assert np.abs(model.stats_W).max() > 0.1  # fitted, not its zeros
    assert labels['model']['stats_weight'] == 0.5
    assert labels['recipe']['stats_weight'] == 0.5


def test_a_linear_probe_of_the_improved_recipe(demo_data, tmp_path):
    # from a run's snapshot ensemble: its last network, one network saved
    # (the recipe's snapshots need steps), the statistics classifier fitted
    from music_classification.net import ENSEMBLE, SMALL_CNN
    _, (source, _, _) = improved_run(demo_data, tmp_path / 'run')
    assert isinstance(source, ENSEMBLE)
    labels, (model, _, _) = improved_run(
        demo_data, tmp_path / 'probe', '--init-from', str(tmp_path / 'run'),
        '--linear-probe')
    assert labels['recipe']['linear_probe'] == 0.1
    assert labels['recipe']['ensemble_snapshots'] == 1
    assert 'members' not in labels['model']
    assert isinstance(model, SMALL_CNN)
    assert np.abs(model.stats_W).max() > 0.1  # fitted, not its zeros
    last = source[len(source) - 1]
    assert_array_equal(model.conv4.W.array, last.conv4.W.array)
    assert_array_equal(model.bn4.avg_mean, last.bn4.avg_mean)
    assert not np.allclose(model.fc5.W.array, last.fc5.W.array, atol=0.05)


def test_a_probe_weighs_every_song_alike_if_asked(demo_data, tmp_path):
    probes = probes_of_a_run(demo_data, tmp_path, {
        weights: ['--fit-weights', weights]
        for weights in ('windows', 'songs')})
    for weights, (labels, _, _) in probes.items():
        assert labels['recipe']['fit_weights'] == weights
    (_, a, _), (_, b, _) = probes['windows'], probes['songs']
    assert_array_equal(a.conv4.W.array, b.conv4.W.array)  # one network
    # both fits weighed otherwise: the output layer, the statistics
    # classifier
    assert not np.allclose(a.fc5.W.array, b.fc5.W.array, atol=1e-3)
    assert not np.allclose(a.stats_W, b.stats_W, atol=1e-3)


def test_a_probe_reads_every_layer_and_shifted_windows_if_asked(
        demo_data, tmp_path, capsys):
    from music_classification import evaluation
    from music_classification.net import SMALL_CNN
    probes = probes_of_a_run(demo_data, tmp_path, {
        'plain': [], 'layers': ['--head', 'pool_layers'],
        'shifted': ['--fit-shifts', '3']})
    for name, (labels, _, config) in probes.items():
        assert labels['recipe']['fit_shifts'] == (3 if name == 'shifted'
                                                  else 0)
        assert labels['model'].get('head') == ('pool_layers'
                                               if name == 'layers' else None)
    printed = capsys.readouterr().out
    assert '(linear probe, C = 0.1, also 3 mel bands down and up)' in printed
    rows, windows = map(int, re.search(
        r'output layer fitted on (\d+) rows \((\d+) windows, each at 3 '
        r'band shifts\)', printed).groups())
    assert rows == 3 * windows  # three rows a window
    plain, layers, shifted = (probes[k][1] for k in ('plain', 'layers',
                                                     'shifted'))
    assert isinstance(layers, SMALL_CNN) and layers.head == 'pool_layers'
    channels = sum(out for out, _, _ in layers.layers)
    assert layers.fc5.W.shape[1] == plain.fc5.W.shape[1] + 3 * channels
    for probe in (layers, shifted):  # one network, fitted otherwise
        assert_array_equal(probe.conv2.W.array, plain.conv2.W.array)
    assert not np.allclose(shifted.fc5.W.array, plain.fc5.W.array,
                           atol=1e-3)
    assert not np.allclose(shifted.stats_W, plain.stats_W, atol=1e-3)
    # the probe of every layer, loaded from its folder alone, is scored
    with open(tmp_path / 'layers' / 'labels.json') as f:
        held_out = json.load(f)['val_songs']
    result = evaluation.evaluate_songs(layers, demo_data.class_names,
                                       config, held_out)
    assert result['songs'] == sum(len(v) for v in held_out.values())


def test_fine_tuning_starts_from_the_probe(demo_data, tmp_path, capsys):
    # --fine-tune: the probe's output layer, then the recipe's training
    from music_classification.net import ENSEMBLE
    improved_run(demo_data, tmp_path / 'run')
    probe_flags = ('--init-from', str(tmp_path / 'run'), '--linear-probe',
                   '--fit-weights', 'songs', '--head', 'pool_layers')
    _, (probe, _, _) = improved_run(demo_data, tmp_path / 'probe',
                                    *probe_flags)
    capsys.readouterr()
    # steps that change nothing leave the fitted output layer as it was
    # fitted
    _, (still, _, _) = improved_run(
        demo_data, tmp_path / 'still', *probe_flags, '--fine-tune', '--lr',
        '0', '--weight-decay', '0', '--ensemble-snapshots', '1')
    assert_allclose(still.fc5.W.array, probe.fc5.W.array, rtol=1e-5,
                    atol=1e-6)
    assert_array_equal(still.conv2.W.array, probe.conv2.W.array)
    # ... and its batch norms keep the statistics that it was fitted on
    norms = [(a, b) for a, b in zip(still.links(), probe.links())
             if isinstance(a, chainer.links.BatchNormalization)]
    assert norms
    for tuned_norm, fitted_norm in norms:
        assert_array_equal(tuned_norm.avg_mean, fitted_norm.avg_mean)
        assert_array_equal(tuned_norm.avg_var, fitted_norm.avg_var)
    printed = capsys.readouterr().out
    assert printed.index('output layer fitted on') < printed.index(
        'main/loss')
    assert len(read_log(tmp_path / 'still')) == 2  # trained, two steps
    labels, (tuned, _, _) = improved_run(demo_data, tmp_path / 'tuned',
                                         *probe_flags, '--fine-tune')
    assert labels['recipe']['fine_tune'] is True
    assert labels['recipe']['linear_probe'] == 0.1
    assert isinstance(tuned, ENSEMBLE)  # the recipe's snapshots
    last = tuned[len(tuned) - 1]
    assert not np.allclose(last.conv2.W.array, probe.conv2.W.array,
                           atol=1e-4)
    assert not np.allclose(last.fc5.W.array, probe.fc5.W.array, atol=1e-4)
    assert np.abs(tuned.stats_W).max() > 0.1  # fitted after training


def test_fine_tuning_resumes_from_its_snapshot(demo_data, tmp_path,
                                              capsys):
    # resumed, it goes on from the snapshot's output layer: no second fit
    improved_run(demo_data, tmp_path / 'run')
    flags = ('--init-from', str(tmp_path / 'run'), '--linear-probe',
             '--fine-tune', '--snapshot-every', '1')
    improved_run(demo_data, tmp_path / 'tuned', *flags)
    assert 'output layer fitted on' in capsys.readouterr().out
    labels, _ = improved_run(demo_data, tmp_path / 'tuned', *flags,
                             '--resume', '--iterations', '3')
    printed = capsys.readouterr().out
    assert 'fitting the output layer' not in printed
    assert [e['iteration'] for e in read_log(tmp_path / 'tuned')] == \
        [1, 2, 3]


@pytest.mark.gpu
def test_a_probe_fitted_on_the_gpu_equals_the_cpu_one(cupy, demo_data,
                                                      tmp_path):
    # every layer's statistics and the band-shifted rows made by CuPy: the
    # same fitted output layer and statistics classifier as on the CPU
    import chainer
    if not chainer.backends.cuda.available:
        pytest.skip('chainer.backends.cuda.available is False')
    probes = probes_of_a_run(demo_data, tmp_path, {
        device: ['--fit-weights', 'songs', '--fit-shifts', '2', '--head',
                 'pool_layers', '--device', device] for device in ('-1', '0')})
    (_, cpu, config), (_, gpu, _) = probes['-1'], probes['0']
    assert_allclose(gpu.fc5.W.array, cpu.fc5.W.array, rtol=1e-2, atol=1e-3)
    assert_allclose(gpu.stats_W, cpu.stats_W, rtol=1e-2, atol=1e-3)
    x = np.random.default_rng(0).uniform(
        0, 3, (4, 1) + config.input_shape).astype(np.float32)
    assert_allclose(gpu.predict(x).array, cpu.predict(x).array, atol=1e-3)


def test_a_run_of_an_ensemble_reloads_from_its_folder(demo_data, tmp_path):
    from music_classification import evaluation
    from music_classification.net import ENSEMBLE
    labels, (model, names, config) = improved_run(
        demo_data, tmp_path / 'run', '--members', '2')
    assert labels['model']['members'] == 2
    assert labels['recipe']['members'] == 2
    assert isinstance(model, ENSEMBLE) and len(model) == 2
    assert model.stats_weight == 0.3
    assert np.abs(model.stats_W).max() > 0.1  # fitted, not its zeros
    result = evaluation.evaluate_songs(model, names, config,
                                       labels['val_songs'])
    assert result['songs'] == sum(map(len, labels['val_songs'].values()))


def test_a_run_saves_its_snapshot_ensemble(demo_data, tmp_path):
    from music_classification import evaluation
    from music_classification.net import ENSEMBLE
    labels, (model, names, config) = improved_run(
        demo_data, tmp_path / 'run', '--ensemble-snapshots', '2')
    assert labels['model']['members'] == 2
    assert labels['recipe']['ensemble_snapshots'] == 2
    assert labels['recipe']['ensemble_from'] == 0.5
    assert isinstance(model, ENSEMBLE) and len(model) == 2
    # The network after step 1 of 2, and after step 2
    assert not np.allclose(model[0].conv1.W.array, model[1].conv1.W.array)
    assert model.stats_weight == 0.3
    assert np.abs(model.stats_W).max() > 0.1  # fitted, not its zeros
    result = evaluation.evaluate_songs(model, names, config,
                                       labels['val_songs'])
    assert result['songs'] == sum(map(len, labels['val_songs'].values()))


def _tiny_trainer(iterations):
    """A small CNN's trainer on random windows, and the network's
    parameters after each of its steps."""
    from music_classification.net import build_model
    np.random.seed(0)
    model = build_model('small_cnn', n_classes=3, input_shape=(16, 16),
                        width=2)
    rng = np.random.default_rng(0)
    data = chainer.datasets.TupleDataset(
        rng.normal(size=(12, 1, 16, 16)).astype(np.float32),
        rng.integers(0, 3, size=12).astype(np.int32))
    optimizer = chainer.optimizers.Adam(1e-2)
    optimizer.setup(model)
    updater = chainer.training.updaters.StandardUpdater(
        chainer.iterators.SerialIterator(data, 4, shuffle=False), optimizer,
        loss_func=lambda x, t: model(x, t)[0])
    trainer = chainer.training.Trainer(updater, (iterations, 'iteration'))
    seen = {}

    @chainer.training.make_extension(trigger=(1, 'iteration'),
                                      priority=-1000)
    def record(trainer):
        seen[trainer.updater.iteration] = dict(
            {name: param.array.copy() for name, param in model.namedparams()},
            avg_mean=model.bn1.avg_mean.copy())
    trainer.extend(record)
    return model, trainer, seen


@pytest.mark.parametrize('iterations, members, start, kept_at', [
    (10, 3, 0.5, [5, 8]),
    (10, 2, 0.0, [1]),
    (12, 4, 0.25, [3, 6, 9]),
    (7, 3, 0.6, [5, 6]),
    (100, 3, 0.2, [20, 60]),  # 0.2 + 0.8 / 2 is 0.6000000000000001
])
def test_snapshot_ensemble_keeps_the_network_along_the_run(
        iterations, members, start, kept_at):
    from music_classification.net import ENSEMBLE
    model, trainer, seen = _tiny_trainer(iterations)
    keep = training.SnapshotEnsemble(model, members, start, iterations)
    trainer.extend(keep)
    trainer.run()
    assert len(keep.kept) == members - 1
    ensemble = keep.ensemble()
    assert isinstance(ensemble, ENSEMBLE) and len(ensemble) == members
    for member, step in zip(ensemble, kept_at + [iterations]):
        for name, param in member.namedparams():
            assert_array_equal(param.array, seen[step][name])
        assert_array_equal(member.bn1.avg_mean, seen[step]['avg_mean'])


def test_snapshot_ensemble_under_a_time_budget():
    model, trainer, _ = _tiny_trainer(10)
    budget = training.TimeBudgetTrigger(10, max_iterations=100)
    budget.start = time.perf_counter() - 450  # three quarters of 600 s
    keep = training.SnapshotEnsemble(model, 3, 0.5, 100, budget)
    trainer.extend(keep)
    trainer.run()
    # 0.5 and 0.75 of the run: reached by the clock at the first update
    assert len(keep.kept) == 2
    assert keep.kept[0].keys() == keep.kept[1].keys()
    assert_array_equal(keep.kept[0]['conv1/W'], keep.kept[1]['conv1/W'])


def test_snapshot_ensemble_survives_a_snapshot_and_resume(tmp_path):
    model, trainer, _ = _tiny_trainer(6)
    keep = training.SnapshotEnsemble(model, 3, 0.5, 10)
    trainer.extend(keep)
    trainer.run()
    assert len(keep.kept) == 1  # at step 5
    chainer.serializers.save_npz(str(tmp_path / 'snapshot'), trainer)
    # As a new process would: a fresh trainer, loaded, run on to step 10
    model, trainer, seen = _tiny_trainer(10)
    resumed = training.SnapshotEnsemble(model, 3, 0.5, 10)
    trainer.extend(resumed)
    chainer.serializers.load_npz(str(tmp_path / 'snapshot'), trainer)
    assert len(resumed.kept) == 1
    for name, array in keep.kept[0].items():
        assert_array_equal(resumed.kept[0][name], array)
    trainer.run()
    assert len(resumed.kept) == 2
    ensemble = resumed.ensemble()
    assert_array_equal(ensemble[0].conv1.W.array, keep.kept[0]['conv1/W'])
    assert_array_equal(ensemble[1].conv1.W.array, seen[8]['/conv1/W'])
    assert_array_equal(ensemble[2].conv1.W.array, seen[10]['/conv1/W'])


@pytest.mark.parametrize('members, start', [(1, 0.5), (3, 1.0), (3, -0.1)])
def test_snapshot_ensemble_refuses_bad_settings(members, start):
    with pytest.raises(training.ParameterError):
        training.SnapshotEnsemble(None, members, start, 10)


def test_an_incomplete_snapshot_ensemble_ends_with_the_last_network(
        capsys):
    model, trainer, seen = _tiny_trainer(6)
    keep = training.SnapshotEnsemble(model, 4, 0.5, 10)
    trainer.extend(keep)
    trainer.run()  # stopped at step 6 of 10: only step 5's snapshot kept
    ensemble = keep.ensemble()
    assert len(ensemble) == 4
    assert 'ended before 2 of its 3 snapshots' in capsys.readouterr().out
    for member, step in zip(ensemble, [5, 6, 6, 6]):
        assert_array_equal(member.conv1.W.array, seen[step]['/conv1/W'])
