"""music-classification train, evaluate and predict end to end, on the demo
data."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

import numpy as np
from numpy.testing import assert_array_equal
import pytest

from conftest import cli, read_log, train_argv


def train_cmd(demo_data, out, *extra):
    return [*cli('train'), *train_argv(demo_data, out, *extra)]


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          **kwargs)


@pytest.fixture(scope='module')
def trained(demo_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    result = run(train_cmd(demo_data, out, '--iterations', '12',
                           '--eval-every', '6', '--snapshot-every', '6'))
    assert result.returncode == 0, result.stderr
    return out, result


def test_training_writes_everything(trained, demo_data):
    out, result = trained
    # --no-progress: plain lines, without the escape that erases a bar
    assert 'main/loss' in result.stdout and '\033' not in result.stdout
    assert {'model.npz', 'labels.json', 'log', 'loss.png', 'accuracy.png',
            'snapshot_iter_12'} <= set(os.listdir(out))
    assert not [f for f in os.listdir(out) if f.endswith('.tmp')]
    log = read_log(out)
    assert [e['iteration'] for e in log] == list(range(1, 13))
    assert 'validation/main/accuracy' in log[5]
    with open(os.path.join(out, 'labels.json')) as f:
        labels = json.load(f)
    assert labels['classes'] == demo_data.class_names
    assert labels['features']['length'] == 40
    for artist in demo_data.artists:  # one held-out song each, no overlap
        assert len(labels['val_songs'][artist]) == 1
        assert not set(labels['val_songs'][artist]) & \
            set(labels['train_songs'][artist])


def test_loss_falls_by_a_margin(trained):
    # 12 steps from a seeded run (dropout seeded per iteration): the loss
    # falls from about 1.09 to about 0.93. An optimiser ten times slower,
    # or one that does not update, stays within 0.05 of the start.
    log = read_log(trained[0])
    first = sum(e['main/loss'] for e in log[:3]) / 3
    last = sum(e['main/loss'] for e in log[-3:]) / 3
    assert last < first - 0.08, (first, last)


def test_evaluate_scores_the_held_out_songs(trained, demo_data):
    out, _ = trained
    with open(out / 'labels.json') as f:
        labels = json.load(f)
    held_out = sorted(p for v in labels['val_songs'].values() for p in v)
    base = [*cli('evaluate'),
            '--model', str(out)]
    # by default: the run's held-out songs, from labels.json; the "Other"
    # sounds given were all trained on (labels.json lists them), and the
    # scores say so
    sounds = sorted(os.path.join(demo_data.other_dir, f)
                    for f in os.listdir(demo_data.other_dir))
    assert sorted(labels['other_sounds']) == sounds
    result = run(base + ['--other', demo_data.other_dir])
    assert result.returncode == 0, result.stderr
    assert [e for e in result.stderr.splitlines() if 'warning' in e] == [
        'music-classification evaluate: warning: {} of the "Other" sounds '
        'scored were used in training (a run trains on every sound of its '
        '--other folder): score "Other" on sounds it has not heard'.format(
            len(sounds))]
    assert 'warning' not in run(base).stderr
    last = result.stdout.strip().splitlines()[-1]
    fields = dict(kv.split('=') for kv in last.split())
    assert set(fields) == {'clip_accuracy', 'song_accuracy', 'songs',
                           'clips'}
    assert fields['songs'] == '2'
    assert os.path.getsize(out / 'confusion.png') > 5000
    as_json = json.loads(run(base + ['--json']).stdout)
    assert sorted(f['path'] for f in as_json['files']) == held_out
    assert len(as_json['confusion']) == len(demo_data.class_names)
    assert sum(map(sum, as_json['confusion'])) == as_json['clips']
    # a folder: the songs the model did not train on, unless told
    folder = json.loads(run(base + ['--json', '--music',
                                    demo_data.music_dir]).stdout)
    assert sorted(f['path'] for f in folder['files']) == held_out
    everything = run(base + ['--music', demo_data.music_dir, '--split',
                             'all'])
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.strip().endswith('songs=4 clips=4')
    warnings = [e for e in everything.stderr.splitlines()
                if not e.startswith('[')]  # [n/total] progress lines
    assert warnings == [
        'music-classification evaluate: warning: 2 of the songs scored were '
        'used in training: their figures are training accuracy']
    assert '[4/4] ' in everything.stderr


def test_evaluate_skips_bad_files_and_keeps_its_scores(trained, demo_data,
                                                       tmp_path):
    out, _ = trained
    music = tmp_path / 'music'
    for artist in demo_data.artists:
        os.makedirs(music / artist)
        for song in demo_data.songs[artist]:
            shutil.copy(song, music / artist)
    (music / demo_data.artists[0] / 'broken.wav').write_text('not audio')
    model = tmp_path / 'model'
    shutil.copytree(out, model, ignore=shutil.ignore_patterns('snapshot*'))
    os.chmod(model, 0o555)  # a read-only model folder
    try:
        result = run(cli('evaluate') + [
            '--model', str(model), '--music', str(music), '--split', 'all'])
    finally:
        os.chmod(model, 0o755)
    assert result.returncode != 0
    lines = result.stdout.strip().splitlines()
    assert lines[-1].endswith('songs=4 clips=4 skipped=1')
    errors = [e for e in result.stderr.splitlines() if not e.startswith('[')]
    assert any(e.startswith('music-classification evaluate: skipped ')
               and 'broken.wav' in e for e in errors)
    if os.geteuid() != 0:  # root writes anywhere
        assert errors[-1].startswith(
            'music-classification evaluate: cannot write ')
    missing = run(cli('evaluate') + [
        '--model', str(out), '--music', str(tmp_path / 'nope')])
    assert missing.returncode != 0
    assert missing.stderr.strip() == 'music-classification evaluate: ' \
        '--music {}: no such folder'.format(tmp_path / 'nope')


def test_resume_after_kill(demo_data, tmp_path):
    out = tmp_path / 'run'
    # with the original's per-song batches, read by worker processes
    cmd = train_cmd(demo_data, out, '--iterations', '10',
                    '--snapshot-every', '2', '--eval-every', '100',
                    '--processes', '2')
    i = cmd.index('--batch-per-class')
    cmd[i:i + 2] = ['--batch-per-song', '2']
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # Chainer writes a snapshot under a temporary name and moves it: once
    # the name is there, the snapshot is whole.
    while not (out / 'snapshot_iter_4').exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 'model.npz' not in os.listdir(out)
    done = [e['iteration'] for e in read_log(out)] if os.path.exists(
        out / 'log') else []
    result = run(cmd + ['--resume'])
    assert result.returncode == 0, result.stderr
    iterations = [e['iteration'] for e in read_log(out)]
    assert iterations[-1] == 10
    assert iterations == sorted(set(iterations))  # no step done twice
    assert iterations[0] == 1 and len(iterations) == 10
    assert set(done) <= set(iterations)


def test_resume_refuses_another_run(trained, demo_data, tmp_path):
    out, _ = trained
    music = tmp_path / 'music'
    os.makedirs(music)
    for artist in demo_data.artists:
        os.symlink(os.path.join(demo_data.music_dir, artist),
                   music / (artist + '_renamed'))
    cmd = train_cmd(demo_data, out, '--iterations', '13', '--resume')
    cmd[cmd.index('--music') + 1] = str(music)
    result = run(cmd)
    assert result.returncode != 0
    assert 'labels.json was written for another run: classes' in \
        result.stderr
    # another architecture, another split: refused in one line each
    other = run(train_cmd(demo_data, out, '--iterations', '13', '--resume',
                          '--head', 'pool'))
    assert other.returncode != 0 and 'Traceback' not in other.stderr
    assert "'head': 'flatten'" in other.stderr and \
        "'head': 'pool'" in other.stderr
    split = run(train_cmd(demo_data, out, '--iterations', '13', '--resume',
                          '--seed', '7'))
    assert split.returncode != 0 and 'Traceback' not in split.stderr
    assert 'val_songs' in split.stderr or 'train_songs' in split.stderr
    assert 'classes' not in split.stderr.split('another run:')[1]


def test_a_folder_with_another_run_is_not_overwritten(trained, demo_data,
                                                      tmp_path):
    out, _ = trained
    before = (out / 'labels.json').read_bytes()
    result = run(train_cmd(demo_data, out, '--iterations', '1'))
    assert result.returncode != 0
    assert result.stderr.strip().startswith(
        'music-classification train: {} holds another run (labels.json, '
        'model.npz, snapshot_iter_'.format(out))
    assert '--resume' in result.stderr and '--force' in result.stderr
    assert (out / 'labels.json').read_bytes() == before
    # --force starts over there, removing the old run's snapshots; what an
    # interrupted snapshot left is cleaned at the start
    copy = tmp_path / 'copy'
    shutil.copytree(out, copy)
    os.makedirs(copy / 'tmpsnapshot_iter_40abc')
    (copy / 'tmpsnapshot_iter_40abc' / 'snapshot_iter_40').write_bytes(
        b'half')
    forced = run(train_cmd(demo_data, copy, '--iterations', '1', '--force',
                           '--snapshot-every', '0'))
    assert forced.returncode == 0, forced.stderr
    assert 'removed {}'.format(copy / 'tmpsnapshot_iter_40abc') in \
        forced.stdout
    assert not [f for f in os.listdir(copy) if 'snapshot' in f]
    # --resume where there is no snapshot says it starts from scratch
    fresh = run(train_cmd(demo_data, tmp_path / 'fresh', '--iterations', '1',
                          '--resume', '--snapshot-every', '0'))
    assert fresh.returncode == 0, fresh.stderr
    assert 'no snapshot in {}; starting from scratch'.format(
        tmp_path / 'fresh') in fresh.stdout
    # --out naming a file
    (tmp_path / 'file').write_text('x')
    bad = run(train_cmd(demo_data, tmp_path / 'file', '--iterations', '1'))
    assert bad.returncode != 0
    assert bad.stderr.strip() == \
        'music-classification train: --out {}: not a folder'.format(
            tmp_path / 'file')


def assert_all_but_the_output_layer_kept(source, run, atol=1e-8):
    """``run``'s MUSIC_NET has ``source``'s conv1..conv3 and fc4, and an
    output layer not within ``atol`` of ``source``'s."""
    with np.load(source / 'model.npz') as kept, \
            np.load(run / 'model.npz') as got:
        assert sorted(kept.files) == sorted(got.files)
        for key in ('conv1', 'conv2', 'conv3', 'fc4'):
            assert_array_equal(got[key + '/W'], kept[key + '/W'])
            assert_array_equal(got[key + '/b'], kept[key + '/b'])
        assert not np.allclose(got['fc5/W'], kept['fc5/W'], atol=atol)


def test_a_run_starts_from_another_runs_network(trained, demo_data,
                                                tmp_path):
    out, _ = trained
    # Adam's alpha 0: the one step moves nothing, so the model saved is
    # the network the run started from.
    result = run(train_cmd(demo_data, tmp_path / 'from', '--iterations', '1',
                           '--lr', '0', '--snapshot-every', '0',
                           '--init-from', str(out)))
    assert result.returncode == 0, result.stderr
    # MUSIC_NET: conv1..conv3 and fc4, each W and b
    assert 'started from {} (8 arrays, all but the output layer)'.format(
        out) in result.stdout
    # The output layer starts afresh.
    assert_all_but_the_output_layer_kept(out, tmp_path / 'from')
    with open(tmp_path / 'from' / 'labels.json') as f:
        assert json.load(f)['recipe']['init_from'] == str(out)
    # A resumed run takes its weights from its snapshot, not from FOLDER;
    # with --snapshot-every 0 no snapshot is loaded, so FOLDER's are used.
    for every, loaded in (('6', True), ('0', False)):
        shutil.copytree(out, tmp_path / ('resumed' + every))
        resumed = run(train_cmd(demo_data, tmp_path / ('resumed' + every),
                                '--iterations', '13', '--resume',
                                '--snapshot-every', every,
                                '--init-from', str(tmp_path / 'from')))
        assert resumed.returncode == 0, resumed.stderr
        assert ('started from' not in resumed.stdout) is loaded
        # and a resume that loads none says so
        assert ('--snapshot-every 0 loads no snapshot' in
                resumed.stdout) is not loaded
    # Other features, or an ensemble of members: refused in one line,
    # before anything is written.
    other = run(train_cmd(demo_data, tmp_path / 'other', '--iterations',
                          '1', '--init-from', str(out), '--n-mels', '128'))
    assert other.returncode != 0 and 'Traceback' not in other.stderr
    assert other.stderr.strip() == (
        'music-classification train: --init-from {}: trained on other '
        'features (n_mels 256 where this run has 128)'.format(out))
    assert not os.path.exists(tmp_path / 'other' / 'labels.json')
    members = run(train_cmd(demo_data, tmp_path / 'members', '--iterations',
                            '1', '--init-from', str(out), '--members', '2'))
    assert members.returncode != 0 and 'Traceback' not in members.stderr
    assert '--init-from starts one network' in members.stderr
    missing = run(train_cmd(demo_data, tmp_path / 'missing', '--iterations',
                            '1', '--init-from', str(tmp_path / 'nothing')))
    assert missing.returncode != 0 and 'Traceback' not in missing.stderr
    assert str(tmp_path / 'nothing') in missing.stderr


def test_a_linear_probe_fits_only_the_output_layer(trained, demo_data,
                                                  tmp_path):
    out, _ = trained
    result = run(train_cmd(demo_data, tmp_path / 'probe', '--init-from',
                           str(out), '--linear-probe', '0.5',
                           '--fit-weights', 'songs'))
    assert result.returncode == 0, result.stderr
    assert 'fitting the output layer on the training songs (linear probe, ' \
        'C = 0.5, every artist and song weighed alike)' in result.stdout
    assert 'output layer fitted on ' in result.stdout
    # fitted, not the fixture's output layer 12 small steps from its
    # initial weights (the same seed)
    assert_all_but_the_output_layer_kept(out, tmp_path / 'probe', atol=0.05)
    # nothing was trained: no log, no snapshot
    assert sorted(os.listdir(tmp_path / 'probe')) == ['labels.json',
                                                      'model.npz']
    with open(tmp_path / 'probe' / 'labels.json') as f:
        recipe = json.load(f)['recipe']
    assert recipe['linear_probe'] == 0.5 and recipe['init_from'] == str(out)
    assert recipe['fit_weights'] == 'songs'
    scored = run([*cli('evaluate'), '-M', str(tmp_path / 'probe')])
    assert scored.returncode == 0, scored.stderr
    assert 'song_accuracy=' in scored.stdout
    # refused in one line: without a network to keep, with a penalty of
    # 0, with a snapshot ensemble, which needs training
    for flags, message in (
            ([], 'give it with --init-from FOLDER'),
            (['--init-from', str(out), '--linear-probe', '0'],
             '--linear-probe C must be above 0, got 0.0'),
            (['--init-from', str(out), '--ensemble-snapshots', '3'],
             'no --ensemble-snapshots'),
            (['--init-from', str(out), '--resume'],
             'no --resume (give --fine-tune to train after it)'),
            (['--init-from', str(out), '--distributed'],
             '--linear-probe fits on one process: no --distributed'),
            # training after a probe needs the probe
            (['--fine-tune'], '--fine-tune trains on after a '
             '--linear-probe: give both'),
            # nothing fitted to weigh or shift: the article's recipe, no
            # probe
            (['--fit-weights', 'songs'], '--fit-weights needs something '
             'fitted: use --recipe musicnn'),
            (['--fit-shifts', '2'], '--fit-shifts needs something fitted'),
            (['--fit-noise'], '--fit-noise needs something fitted'),
            (['--fit-volume'], '--fit-volume needs something fitted'),
            (['--init-from', str(out), '--fit-shifts', '-1'],
             '--fit-shifts must be 0 or more, got -1')):
        if not flags or not flags[0].startswith(('--fit', '--fine')):
            flags = ['--linear-probe'] + flags
        bad = run(train_cmd(demo_data, tmp_path / 'bad', *flags))
        assert bad.returncode != 0 and 'Traceback' not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert message in bad.stderr
        assert not os.path.exists(tmp_path / 'bad')


def test_default_batches_are_the_originals(demo_data, tmp_path):
    # No batch flags: 10 windows of every training song, in the order of
    # its shuffled offsets, plus every "Other" sound (and the silence)
    # exactly once, as the original's train.py.
    from music_classification import FeatureConfig, training
    from music_classification.cli.train import parse_args
    import numpy as np
    args = parse_args(['--music', demo_data.music_dir, '--other',
                       demo_data.other_dir, '--out', str(tmp_path),
                       '--noise', demo_data.noise_path])
    assert (args.batch_per_song, args.batch_per_class) == (10, None)
    config = FeatureConfig()
    _, train_songs, _, classes, _ = training.build_datasets(args, config)
    it = training.make_iterator(args, classes)
    n_other = len(os.listdir(demo_data.other_dir)) + 1  # and the silence
    n_songs = sum(len(v) for v in train_songs.values())
    sizes = [len(d) for c in classes for d in c]
    starts = np.cumsum([0] + sizes)
    for step in range(3):
        batch = next(it)
        assert len(batch) == it.batch_size == n_other + 10 * n_songs
        labels = [int(t) for _, t in batch]
        assert labels[:n_other] == [0] * n_other
        assert labels[n_other:] == sorted(labels[n_other:])
        order = it.order_sampler.order_for(0)[step * len(batch):
                                             (step + 1) * len(batch)]
        # which dataset each example came from: the "Other" one, then each
        # training song 10 times, in song order
        source = np.searchsorted(starts, order, side='right') - 1
        assert sorted(order[:n_other]) == list(range(n_other))
        assert list(source[n_other:]) == [
            1 + k for k in range(n_songs) for _ in range(10)]
        assert all(w.shape == (config.window_samples,) for w, _ in batch)


def test_default_run_uses_the_original_batches(demo_data, tmp_path):
    cmd = train_cmd(demo_data, tmp_path / 'out', '--iterations', '2',
                    '--eval-every', '2')
    i = cmd.index('--batch-per-class')
    del cmd[i:i + 4]  # no batch flags at all
    result = run(cmd)
    assert result.returncode == 0, result.stderr
    n_other = len(os.listdir(demo_data.other_dir)) + 1
    n_train_songs = len(demo_data.artists)  # one song each held out
    assert '{} windows per step'.format(
        n_other + 10 * n_train_songs) in result.stdout
    assert [e['iteration'] for e in read_log(tmp_path / 'out')] == [1, 2]


@pytest.mark.parametrize('flags', [
    ['--batch-per-song', '0'], ['--batch-per-song', '-3'],
    ['--batch-per-class', '0'], ['--other-per-batch', '-1'],
])
def test_batch_sizes_must_be_positive(demo_data, tmp_path, flags):
    cmd = train_cmd(demo_data, tmp_path / 'out', '--iterations', '1')
    i = cmd.index('--batch-per-class')
    del cmd[i:i + 4]
    result = run(cmd + flags)
    assert result.returncode != 0
    assert result.stderr.strip() == \
        'music-classification train: {} must be a positive integer, ' \
        'got {}'.format(*flags)
    assert not os.path.exists(tmp_path / 'out')


@pytest.mark.parametrize('problem, message', [
    ('empty_artist', 'no audio files'),
    ('one_artist', 'need at least 2'),
])
def test_bad_inputs(demo_data, tmp_path, problem, message):
    music = tmp_path / 'music'
    os.makedirs(music / demo_data.artists[0])
    if problem == 'empty_artist':
        os.symlink(os.path.join(demo_data.music_dir, demo_data.artists[1]),
                   music / demo_data.artists[1])
    else:
        os.rmdir(music / demo_data.artists[0])
        os.symlink(os.path.join(demo_data.music_dir, demo_data.artists[0]),
                   music / demo_data.artists[0])
    cmd = train_cmd(demo_data, tmp_path / 'out', '--iterations', '1')
    cmd[cmd.index('--music') + 1] = str(music)
    result = run(cmd)
    assert result.returncode != 0
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.gpu
@pytest.mark.parametrize('cudnn', ['auto', 'never'])
def test_gpu_training_and_cpu_reload(demo_data, tmp_path, cudnn):
    cupy = pytest.importorskip('cupy')
    import chainer
    import numpy as np
    from numpy.testing import assert_allclose
    from music_classification.collection import load_trained
    if not chainer.backends.cuda.available:
        pytest.skip('chainer.backends.cuda.available is False')
    out = tmp_path / 'gpu'
    env = dict(os.environ, CHAINER_CUDNN='0' if cudnn == 'never' else '1')
    result = run(train_cmd(demo_data, out, '--iterations', '12',
                           '--device', '0', '--eval-every', '100'), env=env)
    assert result.returncode == 0, result.stderr
    log = read_log(out)
    assert np.mean([e['main/loss'] for e in log[-3:]]) < \
        np.mean([e['main/loss'] for e in log[:3]])
    model, _, config = load_trained(out)  # saved from the GPU, read on CPU
    x = np.random.default_rng(0).uniform(
        0, 3, (2, 1) + config.input_shape).astype(np.float32)
    cpu = model.predict(x).array
    model.to_device('@cupy:0')
    with chainer.using_config('use_cudnn', cudnn):
        gpu = cupy.asnumpy(model.predict(cupy.asarray(x)).array)
    assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)


def test_predict_file_and_folder(trained, demo_data, tmp_path):
    import csv
    import io
    out, _ = trained
    song = demo_data.songs[demo_data.artists[0]][0]
    base = cli('predict') + ['--model', str(out)]
    result = run(base + [song, demo_data.other_dir, '--artistgram',
                         str(tmp_path / 'gram')])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 + len(os.listdir(demo_data.other_dir))
    assert lines[0].startswith(song + ': ') and 'top 3: ' in lines[0]
    assert len(os.listdir(tmp_path / 'gram')) == len(lines)
    png, = [f for f in os.listdir(tmp_path / 'gram')
            if f.endswith('__song_00.png')]
    assert os.path.getsize(tmp_path / 'gram' / png) > 5000
    rows = list(csv.DictReader(io.StringIO(run(
        base + ['--csv', demo_data.music_dir]).stdout)))
    assert len(rows) == 4 and set(rows[0]) >= {'path', 'artist', 'top1'}
    # a song named and found in a folder given too: predicted once
    again = list(csv.DictReader(io.StringIO(run(
        base + ['--csv', song, demo_data.music_dir, song]).stdout)))
    assert [r['path'] for r in again] == [song] + [
        r['path'] for r in rows if r['path'] != song]
    as_json = json.loads(run(base + ['--json', song]).stdout)
    assert as_json[0]['artist'] in demo_data.class_names
    assert len(demo_data.class_names) == 3  # so the top 3 is everything
    assert abs(sum(p for _, p in as_json[0]['top3']) - 1) < 0.01
    bad = run(base + [str(tmp_path / 'missing.wav')])
    assert bad.returncode != 0 and 'missing.wav: no such file' in bad.stderr


def messy_folder(root, demo_data):
    """Good songs and every kind of bad file, as a real collection has."""
    import numpy as np
    import soundfile
    song = demo_data.songs[demo_data.artists[0]][0]
    for sub in ('a', 'b'):  # a/x.wav and b/x.wav: same name, two folders
        os.makedirs(root / sub)
        shutil.copy(song, root / sub / 'x.wav')
    os.makedirs(root / 'bad')
    soundfile.write(str(root / 'bad' / 'empty.wav'), np.zeros(0), 16000)
    (root / 'bad' / 'notes.wav').write_text('not audio at all')
    (root / 'bad' / 'garbage.flac').write_bytes(b'fLaC' + os.urandom(300))
    nan = np.full(16000, 0.1, np.float32)
    nan[100] = np.nan
    soundfile.write(str(root / 'bad' / 'nan.wav'), nan, 16000,
                    subtype='FLOAT')
    soundfile.write(str(root / 'bad' / 'cd.flac'),
                    np.zeros(22050, np.float32), 22050)
    return ['a/x.wav', 'b/x.wav'], ['bad/cd.flac', 'bad/empty.wav',
                                    'bad/garbage.flac', 'bad/nan.wav',
                                    'bad/notes.wav']


def test_predict_file_keeps_going_past_bad_files(trained, demo_data,
                                                 tmp_path):
    import csv
    import io
    out, _ = trained
    good, bad = messy_folder(tmp_path / 'messy', demo_data)
    base = [*cli('predict'),
            '--model', str(out)]
    cwd = str(tmp_path / 'messy')
    result = run(base + ['a', 'bad', 'b', 'missing.wav', '--artistgram',
                         str(tmp_path / 'gram')], cwd=cwd)
    assert result.returncode != 0
    # every good file predicted, one line each, in order
    printed = [line.split(':')[0] for line in result.stdout.splitlines()]
    assert printed == ['a/x.wav', 'b/x.wav']
    errors = [line for line in result.stderr.splitlines()
              if not line.startswith('[')]
    for path, reason in (('bad/cd.flac', 'sample rate is 22050 Hz'),
                         ('bad/cd.flac', '--resample'),
                         ('bad/empty.wav', ''), ('bad/garbage.flac', ''),
                         ('bad/nan.wav', 'NaN'), ('bad/notes.wav', ''),
                         ('missing.wav', 'no such file')):
        assert any(line.startswith(
            'music-classification predict: ' + path + ': ')
            and reason in line for line in errors), (path, errors)
    assert errors[-1] == 'music-classification predict: 6 of 8 files failed'
    assert len(errors) == 7 and 'Traceback' not in result.stderr
    # progress on stderr, one line per file
    assert '[8/8] missing.wav' in result.stderr
    # a/x.wav and b/x.wav do not overwrite each other's PNG
    assert sorted(os.listdir(tmp_path / 'gram')) == ['a__x.png', 'b__x.png']
    rows = list(csv.DictReader(io.StringIO(run(
        base + ['--csv', 'a', 'bad'], cwd=cwd).stdout)))
    assert [r['path'] for r in rows] == ['a/x.wav'] + bad
    assert rows[0]['error'] == '' and rows[0]['artist']
    assert all(r['error'] and not r['artist'] for r in rows[1:])
    records = json.loads(run(base + ['--json', 'bad', 'b'], cwd=cwd).stdout)
    assert [r['path'] for r in records] == bad + ['b/x.wav']
    assert all('error' in r for r in records[:-1])
    assert 'error' not in records[-1] and records[-1]['artist']


@pytest.mark.parametrize('flags, message', [
    (['--length', '0'], 'music-classification train: --length must be a '
                        'positive integer, got 0'),
    (['--length', '5'], "music-classification train: input shape (256, 11) "
                        "is too small for music_net's convolutions (need at "
                        "least 48 x 33)"),
])
def test_a_window_too_short_is_one_line(demo_data, tmp_path, flags,
                                        message):
    cmd = train_cmd(demo_data, tmp_path / 'out', '--iterations', '1')
    i = cmd.index('--length')
    del cmd[i:i + 2]
    result = run(cmd + flags)
    assert result.returncode != 0
    assert result.stderr.strip() == message


def musicnn_cmd(demo_data, out, *extra):
    return [*cli('train'), '--music', demo_data.music_dir, '--other',
            demo_data.other_dir, '--noise', demo_data.noise_path, '--out',
            str(out), '--recipe', 'musicnn', '--no-progress', *extra]


@pytest.mark.parametrize('extra, spec', [
    ((), {}),
    # the signed square roots: recorded, and read back from the folder
    (('--signed-sqrt',), {'signed_sqrt': True}),
    # a noisy copy of each window in the fit: the recipe records it
    (('--fit-noise',), {}),
    # that copy turned down too
    (('--fit-noise', '--fit-volume'), {}),
    # a quieter copy alone
    (('--fit-volume',), {}),
])
def test_the_musicnn_recipe_fits_only_musicnns_output_layer(demo_data,
                                                           tmp_path, extra,
                                                           spec):
    from music_classification import collection, pretrained
    from music_classification.features import MUSICNN_FEATURES
    out = tmp_path / 'musicnn'
    result = run(musicnn_cmd(demo_data, out, *extra))
    assert result.returncode == 0, result.stderr
    assert 'started from musicnn, trained on the Million Song Dataset (62 ' \
        'arrays, all but the output layer)' in result.stdout
    noisy, quieter = '--fit-noise' in extra, '--fit-volume' in extra
    assert 'fitting the output layer on the training songs (linear probe, ' \
        'C = 0.1, every artist and song weighed alike{}{})'.format(
            ', each window also with noise 0 to 20 dB below its song'
            if noisy else '', ', {} turned down to 0.1 to 1 of its '
            'amplitude ("Other" sounds 0.05 to 1)'.format(
                'that copy' if noisy else 'each window also')
            if quieter else '') in result.stdout
    windows = int(re.search(r'output layer fitted on (\d+) windows',
                            result.stdout).group(1))
    from music_classification import training
    from music_classification.cli.train import parse_args
    args = parse_args(musicnn_cmd(demo_data, out, *extra)[len(cli('train')):])
    classes = training.build_datasets(args, MUSICNN_FEATURES)[3]
    assert windows == (2 if noisy or quieter else 1) * len(list(
        training.statistics_windows(classes,
                                    MUSICNN_FEATURES.window_samples)))
    assert sorted(os.listdir(out)) == ['labels.json', 'model.npz']
    with open(out / 'labels.json') as f:
        labels = json.load(f)
    assert labels['model'] == {'model': 'musicnn', 'dropout_ratio': 0.5,
                               'head': 'pool_layers', **spec}
    assert collection.load_trained(str(out))[0].signed_sqrt == bool(spec)
    assert labels['features'] == MUSICNN_FEATURES.to_dict()
    assert labels['recipe']['recipe'] == 'musicnn'
    assert labels['recipe']['linear_probe'] == 0.1
    assert labels['recipe']['fit_weights'] == 'songs'
    assert labels['recipe']['fit_noise'] is noisy
    assert labels['recipe']['fit_volume'] is quieter
    # musicnn's layers as published, its output layer fitted
    with np.load(out / 'model.npz') as got:
        for name, value in pretrained.musicnn_arrays().items():
            assert_array_equal(got[name], value)
        assert np.abs(got['fc5/W']).max() > 0.05
        # musicnn's pooling and dense layer, each channel's deviation
        assert got['fc5/W'].shape == (len(labels['classes']), 1706 + 753)
    # loaded from its folder alone
    scored = run([*cli('evaluate'), '-M', str(out)])
    assert scored.returncode == 0, scored.stderr
    assert 'song_accuracy=' in scored.stdout
    song = sorted(glob.glob(os.path.join(demo_data.music_dir, '*', '*')))[0]
    named = run([*cli('predict'), '-M', str(out), song])
    assert named.returncode == 0, named.stderr
    assert os.path.basename(song) in named.stdout


@pytest.mark.gpu
def test_the_musicnn_recipe_fits_the_same_layer_on_the_gpu(demo_data,
                                                          tmp_path):
    # musicnn's features made by CuPy, its pooled layers read on the GPU:
    # the same fitted output layer as on the CPU, and the same scores
    cupy = pytest.importorskip('cupy')
    import chainer
    import numpy as np
    from numpy.testing import assert_allclose
    from music_classification.collection import load_trained
    if not chainer.backends.cuda.available:
        pytest.skip('chainer.backends.cuda.available is False')
    models = {}
    for device in ('-1', '0'):
        out = tmp_path / device
        result = run(musicnn_cmd(demo_data, out, '--device', device))
        assert result.returncode == 0, result.stderr
        models[device], _, config = load_trained(out)
    cpu, gpu = models['-1'], models['0']
    assert_allclose(gpu.fc5.W.array, cpu.fc5.W.array, rtol=1e-2, atol=1e-3)
    x = np.random.default_rng(0).uniform(
        0, 3, (4, 1) + config.input_shape).astype(np.float32)
    expected = cpu.predict(x).array
    gpu.to_device('@cupy:0')
    got = cupy.asnumpy(gpu.predict(cupy.asarray(x)).array)
    assert_allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize('flags, named', [
    (['--n-mels', '128'], '--n-mels 128'),
    (['--compression', 'db'], '--compression db'),
    (['--normalize', 'window'], '--normalize window'),
    (['--pad-mode', 'constant'], '--pad-mode constant'),
    (['--members', '2'], '--members 2'),
])
def test_musicnn_keeps_its_own_features_and_network(demo_data, tmp_path,
                                                    flags, named):
    bad = run(musicnn_cmd(demo_data, tmp_path / 'bad', *flags))
    assert bad.returncode != 0 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip() == (
        'music-classification train: --model musicnn is one pretrained '
        'network with its own features (96 mel bands, log10(1 + 10000 x), '
        '2.98 s windows): no {}'.format(named))
    assert not os.path.exists(tmp_path / 'bad')


@pytest.mark.parametrize('flags', [
    ('--model', 'small_cnn', '--signed-sqrt'),
    ('--recipe', 'improved', '--signed-sqrt'),
    ('--recipe', 'musicnn', '--model', 'small_cnn', '--signed-sqrt'),
])
def test_signed_sqrt_is_musicnns(demo_data, tmp_path, flags):
    bad = run([*cli('train'), '--music', demo_data.music_dir, '--other',
               demo_data.other_dir, '--out', str(tmp_path / 'bad'), *flags])
    assert bad.returncode != 0 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip() == (
        'music-classification train: --signed-sqrt is musicnn\'s (--model '
        'musicnn or --recipe musicnn)')
    assert not os.path.exists(tmp_path / 'bad')


def test_musicnn_takes_its_own_pooling_heads(demo_data, tmp_path):
    bad = run(musicnn_cmd(demo_data, tmp_path / 'bad', '--head', 'flatten'))
    assert bad.returncode != 0 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip() == (
        'music-classification train: --head flatten is music_net\'s and '
        'wave\'s; musicnn takes pool (its own pooling) or pool_layers')
    assert not os.path.exists(tmp_path / 'bad')


@pytest.mark.parametrize('flags, probe', [
    ([], '--recipe musicnn (a linear probe)'),
    (['--linear-probe', '0.5'], '--linear-probe'),
])
@pytest.mark.parametrize('refused, message', [
    (['--resume'], '{} does not train: no --resume (give --fine-tune to '
     'train after it)'),
    (['--ensemble-snapshots', '3'], '{} does not train: no '
     '--ensemble-snapshots (give --fine-tune to train after it)'),
    (['--distributed'], '{} fits on one process: no --distributed'),
])
def test_the_musicnn_probe_refuses_training_flags(demo_data, tmp_path,
                                                  flags, probe, refused,
                                                  message):
    # the message names where the probe came from: the recipe or the flag
    bad = run(musicnn_cmd(demo_data, tmp_path / 'bad', *flags, *refused))
    assert bad.returncode != 0 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip() == 'music-classification train: ' + \
        message.format(probe)
    assert not os.path.exists(tmp_path / 'bad')


@pytest.mark.parametrize('command, hop', [
    ('predict', '0'), ('evaluate', '-1'), ('predict', '1e-9'),
    ('evaluate', 'inf'), ('predict', 'nan')])
def test_a_hop_shorter_than_a_frame_is_refused_in_one_line(
        trained, demo_data, command, hop):
    # a hop of 0 (or of a few samples) would lay out clips almost forever
    out, _ = trained
    song = demo_data.songs[demo_data.artists[0]][0]
    result = run(cli(command) + ['--model', str(out), '--hop', hop] +
                 ([song] if command == 'predict' else []))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'music-classification {}: the hop between clips must be finite and '
        'at least one feature frame (0.032 s), not {:g} s'.format(
            command, float(hop)))


def test_a_refused_run_leaves_no_empty_folder(demo_data, tmp_path):
    # the folder it made before reading the songs goes again; one that was
    # there before stays
    for out, made in ((tmp_path / 'new', False), (tmp_path / 'mine', True),
                      (tmp_path / 'a' / 'b' / 'c', False)):
        if made:
            out.mkdir()
        result = run(train_cmd(demo_data, out, '--iterations', '1',
                               '--val-songs', '5'))
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert 'leaves none to train on' in result.stderr
        assert os.path.isdir(out) == made
    # the folders made on the way to --out go too
    assert sorted(os.listdir(tmp_path)) == ['mine']


def test_ctrl_c_ends_training_with_one_line(demo_data, tmp_path):
    out = tmp_path / 'run'
    proc = subprocess.Popen(
        train_cmd(demo_data, out, '--iterations', '100000',
                  '--snapshot-every', '2'),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not glob.glob(str(out / 'snapshot_iter_*')):  # training by now
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # ended by SIGINT, as an interrupted program is: a shell loop stops
    assert proc.returncode == -signal.SIGINT
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == \
        'music-classification train: interrupted'
    assert 'model.npz' not in os.listdir(out)


def test_a_warning_is_one_line(demo_data, tmp_path):
    # a song shorter than one window is zero-padded, with a warning that
    # reads as the command's other notices: no source file, no code line
    from conftest import tone, write_float_wav
    music = tmp_path / 'music'
    for artist in demo_data.artists:
        os.makedirs(music / artist)
        for song in demo_data.songs[artist]:
            os.symlink(song, music / artist / os.path.basename(song))
    short = write_float_wav(music / demo_data.artists[0] / 'short.wav',
                            tone(seconds=0.5))
    cmd = train_cmd(demo_data, tmp_path / 'run', '--iterations', '1',
                    '--snapshot-every', '0')
    cmd[cmd.index('--music') + 1] = str(music)
    result = run(cmd)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if 'short' in line]
    assert warned == [
        'music-classification train: warning: {}: 0.50 s long, shorter than '
        'one window (2.56 s); zero-padded at the end to one window'.format(
            short)]
    assert 'UserWarning' not in result.stderr
