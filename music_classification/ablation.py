"""The article's claims as a rerunnable ablation study.

Each variant is a set of ``music-classification train`` flags (see
:data:`VARIANTS`): the article's recipe, the article's own alternatives
(waveform input, pooling, no ``log``, ``sqrt``, no noise), the single
ingredients that lead from the article's net to a small modern CNN, the
small CNN itself, the improved recipe and ingredients tried on top of it
(mixup, a cosine learning-rate schedule, mixing windows of one class,
song-balanced batches, label smoothing, wider band shifts, an ensemble
of 2 networks, half the batch, 64 mel bands, a random equaliser) or taken
out of it (its statistics classifier; band shifts and statistics
classifier: the recipe before them; its snapshot ensemble: the recipe
before it; its time stretch), and linear probes of a trained network
(``--linear-probe``, with ``--init-from``), one of them followed by
fine-tuning (``--fine-tune``), and linear probes of musicnn, pretrained on
the Million Song Dataset (``--recipe musicnn``). :func:`run_study` trains
every variant on the same songs, with the same held-out songs and seeds and the
same wall-clock budget per run, scores the held-out songs (clip and song
accuracy) and an MFCC-statistics baseline on them, and writes ``results.md``
(a Markdown table) and ``results.png`` (a bar chart with the spread over
seeds). Each finished run leaves its ``result.json``; a rerun skips what is
done with the same settings, so an interrupted study resumes where it
stopped.
"""

import collections
import json
import os
import time

import numpy as np

from music_classification import collection, evaluation, training
from music_classification.cli.train import parse_args
from music_classification.features import FeatureConfig
from music_classification.serialization import save_json, save_png

#: Variant name -> (description, music-classification train flags).
VARIANTS = collections.OrderedDict([
    ('article', ("the article's recipe (MUSIC_NET, log(1+mel), noise)", [])),
    ('wave', ('raw waveform input (learned filter bank)',
              ['--model', 'wave'])),
    ('pooling', ('max pooling after each convolution',
                 ['--model', 'music_net_pool'])),
    ('no_log', ('no log(x + 1): raw mel power', ['--compression', 'none'])),
    ('sqrt', ('sqrt instead of log(x + 1)', ['--compression', 'sqrt'])),
    ('db', ('decibels instead of log(x + 1)', ['--compression', 'db'])),
    ('no_noise', ('no noise augmentation', ['--no-noise'])),
    ('batchnorm', ('+ batch normalisation alone', ['--batchnorm'])),
    ('standardize', ('+ per-window standardisation alone',
                     ['--normalize', 'window'])),
    ('masks', ('+ SpecAugment masks alone', ['--spec-augment'])),
    ('small_head', ('+ size alone: pooled head, no fc4 (39 k parameters)',
                    ['--head', 'pool'])),
    ('lr', ('+ learning rate 1e-3 alone', ['--lr', '1e-3'])),
    ('small_cnn', ('small modern CNN (128 mels, 3 s windows, Adam 1e-3)',
                   ['--model', 'small_cnn', '--n-mels', '128', '--length',
                    '48', '--lr', '1e-3', '--batch-per-class', '8',
                    '--other-per-batch', '8'])),
    ('improved', ('the improved recipe (train --recipe improved)',
                  ['--recipe', 'improved'])),
    ('mixup', ('the improved recipe + mixup (Beta(0.4, 0.4))',
               ['--recipe', 'improved', '--mixup', '0.4'])),
    ('cosine', ('the improved recipe + cosine learning-rate schedule',
                ['--recipe', 'improved', '--lr-schedule', 'cosine'])),
    ('mixup_cosine', ('the improved recipe + mixup + cosine schedule',
                      ['--recipe', 'improved', '--mixup', '0.4',
                       '--lr-schedule', 'cosine'])),
    ('same_class_mix', ('the improved recipe + half the windows mixed with '
                        'another of their class',
                        ['--recipe', 'improved', '--same-class-mix', '0.5'])),
    ('balance_songs', ('the improved recipe, each window\'s song drawn '
                       'uniformly', ['--recipe', 'improved',
                                     '--balance-songs'])),
    ('label_smoothing', ('the improved recipe + label smoothing 0.1',
                         ['--recipe', 'improved', '--label-smoothing',
                          '0.1'])),
    ('network_alone', ('the improved recipe without its statistics '
                       'classifier: the network alone',
                       ['--recipe', 'improved', '--stats-weight', '0'])),
    ('wide_shifts', ('the improved recipe with band shifts of up to 8 mel '
                     'bands instead of 4',
                     ['--recipe', 'improved', '--freq-shift', '8'])),
    ('no_shifts', ('the improved recipe before band shifts and statistics '
                   'classifier (and before its snapshot ensemble and time '
                   'stretch)',
                   ['--recipe', 'improved', '--freq-shift', '0',
                    '--stats-weight', '0', '--ensemble-snapshots', '1',
                    '--time-stretch', '0'])),
    ('small_batches', ('the improved recipe with half the batch (4 windows '
                       'per artist, 4 "Other"): a step costs under half',
                       ['--recipe', 'improved', '--batch-per-class', '4',
                        '--other-per-batch', '4'])),
    ('mels64', ('the improved recipe on 64 mel bands (band shifts of up '
                'to 2): a step costs about half',
                ['--recipe', 'improved', '--n-mels', '64', '--freq-shift',
                 '2'])),
    ('two_members', ('the improved recipe as an ensemble of 2 networks, '
                     'half the steps', ['--recipe', 'improved',
                                        '--members', '2'])),
    ('random_eq', ('the improved recipe + a random equaliser curve on each '
                   'training window (tilt of up to 0.5 standard '
                   'deviations)', ['--recipe', 'improved', '--random-eq',
                                   '0.5'])),
    ('no_stretch', ('the improved recipe without its time stretch (the '
                    'recipe before it)', ['--recipe', 'improved',
                                          '--time-stretch', '0'])),
    ('last_network', ('the improved recipe before its snapshot ensemble '
                      '(and time stretch): the network at the end of the '
                      'run alone',
                      ['--recipe', 'improved', '--ensemble-snapshots', '1',
                       '--time-stretch', '0'])),
    ('linear_probe', ('the improved recipe\'s network from --init-from, '
                      'untrained: only its output layer fitted, a logistic '
                      'regression (a linear probe)',
                      ['--recipe', 'improved', '--linear-probe'])),
    ('linear_probe_alone', ('the linear probe without the statistics '
                            'classifier',
                            ['--recipe', 'improved', '--linear-probe',
                             '--stats-weight', '0'])),
    ('linear_probe_songs', ('the linear probe, both its fits weighing every '
                            'artist and every song alike',
                            ['--recipe', 'improved', '--linear-probe',
                             '--fit-weights', 'songs'])),
    ('linear_probe_shifts', ('the linear probe with every artist and song '
                             'alike, its fits also reading every window '
                             'moved 2 mel bands down and up',
                             ['--recipe', 'improved', '--linear-probe',
                              '--fit-weights', 'songs', '--fit-shifts',
                              '2'])),
    ('linear_probe_layers', ('that probe reading also the mean, standard '
                             'deviation and maximum of every '
                             'convolution\'s channels',
                             ['--recipe', 'improved', '--linear-probe',
                              '--fit-weights', 'songs', '--fit-shifts', '2',
                              '--head', 'pool_layers'])),
    ('probe_fine_tune', ('that probe, then every layer trained as the '
                         'recipe does from it (a linear probe, then '
                         'fine-tuning)',
                         ['--recipe', 'improved', '--linear-probe',
                          '--fit-weights', 'songs', '--fit-shifts', '2',
                          '--head', 'pool_layers', '--fine-tune'])),
    ('musicnn', ('musicnn, pretrained on the Million Song Dataset, with only '
                 'its output layer fitted, to its pooling and each '
                 'channel\'s deviation over time (train --recipe musicnn)',
                 ['--recipe', 'musicnn'])),
    ('musicnn_pool', ('that probe on musicnn\'s own pooling alone (the '
                      'recipe before the deviations)',
                      ['--recipe', 'musicnn', '--head', 'pool'])),
    ('musicnn_shifts', ('the probe on musicnn\'s own pooling with its fit '
                        'also reading every window moved 2 mel bands down '
                        'and up', ['--recipe', 'musicnn', '--head', 'pool',
                                   '--fit-shifts', '2'])),
    ('musicnn_fine_tune', ('the probe of train --recipe musicnn, then '
                           'every layer of musicnn trained on from it '
                           '(--fine-tune, Adam 1e-4)',
                           ['--recipe', 'musicnn', '--fine-tune'])),
    ('musicnn_fine_tune_clean', ('as musicnn_fine_tune, on clean windows '
                                 '(--no-augment)',
                                 ['--recipe', 'musicnn', '--fine-tune',
                                  '--no-augment'])),
    ('musicnn_fine_tune_slow', ('as musicnn_fine_tune_clean, Adam 1e-5',
                                ['--recipe', 'musicnn', '--fine-tune',
                                 '--no-augment', '--lr', '1e-5'])),
    ('musicnn_sqrt', ('the probe of train --recipe musicnn on the signed '
                      'square roots of its numbers, C = 0.03',
                      ['--recipe', 'musicnn', '--signed-sqrt',
                       '--linear-probe', '0.03'])),
    ('musicnn_noise', ('the probe of train --recipe musicnn, its fit also '
                       'reading every window with room noise 0 to 20 dB '
                       'below its song (--fit-noise)',
                       ['--recipe', 'musicnn', '--fit-noise'])),
    ('musicnn_noise_volume', ('the probe of train --recipe musicnn, its '
                              'fit also reading every window with room '
                              'noise 0 to 20 dB below its song, turned down '
                              'to 0.1 to 1 of its amplitude (--fit-noise '
                              '--fit-volume)',
                              ['--recipe', 'musicnn', '--fit-noise',
                               '--fit-volume'])),
])


def needs_trained_network(name):
    """Whether variant ``name`` only fits a trained network's output layer
    (``--linear-probe``), so that it needs ``--init-from``."""
    return '--linear-probe' in VARIANTS[name][1] and not probes_musicnn(name)


def probes_musicnn(name):
    """Whether variant ``name`` fits musicnn's output layer (``--recipe
    musicnn``): no training step, its own features, its weights fetched."""
    flags = VARIANTS[name][1]
    return any(flags[i:i + 2] == ['--recipe', 'musicnn']
               for i in range(len(flags)))


def trainable(names):
    """``names`` but the linear probes (and their fine-tuning), which need
    a trained network or musicnn's weights: those of
    :func:`needs_trained_network` and of :func:`probes_musicnn`."""
    return [name for name in names if not needs_trained_network(name)
            and not probes_musicnn(name)]


#: The study of the article's claims: every variant up to the improved
#: recipe, without the ingredients tried on top of it.
STUDY = tuple(VARIANTS)[:tuple(VARIANTS).index('improved') + 1]

#: Rows that are not networks.
BASELINES = {'mfcc_baseline': 'MFCC mean/std + deltas, logistic regression'}


def variant_args(name, music, other, out, *, seed, minutes=None,
                 iterations=1000000, val_songs=0.34, extra=()):
    """The parsed ``music-classification train`` flags of a variant's run.
    """
    argv = ['--music', music, '--other', other, '--out', out,
            '--val-songs', str(val_songs), '--seed', str(seed),
            '--iterations', str(iterations), '--snapshot-every', '0',
            '--eval-every', str(10 ** 9), '--log-every', '20',
            '--no-progress', '--force'] + list(VARIANTS[name][1]) + list(
                extra)
    if minutes is not None:
        argv += ['--time-budget', str(minutes)]
    args = parse_args(argv)
    if args.time_budget is None and args.members > 1:
        # A step count stands for a time budget, and a step of K members
        # costs about K networks' steps (a little less: they share the
        # features), so an ensemble gets 1/K of the steps.
        args.iterations = max(1, args.iterations // args.members)
    return args


def unfit_for(folder, variants, music, other, extra=()):
    """The variants whose networks cannot start from the run in ``folder``.

    ``train --init-from`` needs the trained run's features and network
    variant, and one network; the study's variants differ in both
    (``article`` reads 256 mel bands with MUSIC_NET, ``improved`` 128 with
    the small CNN), and ``two_members`` trains two networks. ``extra``:
    the study's other flags, ``--init-from`` not among them.

    Returns:
        list: the names in ``variants`` that do not fit, in their order.

    Raises:
        ModelFileError: ``folder`` holds no readable ``labels.json``.
    """
    from music_classification.net import MODELS
    info, config = collection.load_labels(os.path.join(folder, 'labels.json'))
    trained = (config.to_dict(), info.get('model', {}).get('model'))
    unfit = []
    for name in variants:
        probe = ['--init-from', folder] if needs_trained_network(
            name) else []
        args = variant_args(name, music, other, os.devnull, seed=0,
                            extra=list(extra) + probe)
        if args.members > 1 or (training.feature_config(args).to_dict(),
                                MODELS[args.model].variant) != trained:
            unfit.append(name)
    return unfit


def run_settings(args):
    """What parsed flags resolve to, but for paths and reporting.

    A cached result of other settings (a recipe changed since, another
    budget or seed) is not reused.
    """
    settings = {key: value for key, value in sorted(vars(args).items())
                if key not in NOT_SETTINGS}
    if settings.get('model') == 'musicnn' and settings.get('head') == 'pool':
        # musicnn's own head, unset as it was before --head reached musicnn
        settings['head'] = None
    for flag in ('signed_sqrt', 'fit_noise', 'fit_volume'):
        if not settings.get(flag):
            settings[flag] = None  # off, as before the flag
    if settings.get('fine_tune'):
        # fine-tuned as at inference: a result cached before (True) was
        # trained with batch statistics and dropout, and is not reused
        settings['fine_tune'] = FINE_TUNE_SETTING
    return settings


def same_settings(cached, settings):
    """Whether a cached result's settings are ``settings``.

    A setting missing from ``cached`` (a flag added since) counts as unset
    (``None``), so a new flag left out keeps the runs made before it.
    """
    return cached is not None and set(cached) <= set(settings) and all(
        cached.get(key) == value for key, value in settings.items())


#: How :func:`run_settings` records ``--fine-tune``.
FINE_TUNE_SETTING = 'as at inference'

#: ``train`` flags that do not change what a run learns.
NOT_SETTINGS = ('music', 'other', 'out', 'resume', 'force', 'snapshot_every',
                'eval_every', 'log_every', 'no_progress', 'processes')


def run_variant(name, music, other, out, *, seed, minutes=None,
                iterations=1000000, val_songs=0.34, extra=(),
                keep_model=False):
    """Train and score one variant; returns its result dict.

    The result is also saved as ``out/result.json``; if that file exists and
    holds the same settings (every flag but paths and reporting, with the
    recipe they name resolved) the run is not repeated. Unless
    ``keep_model``, the model file is removed once measured (MUSIC_NET's is
    280 MB).
    """
    result_path = os.path.join(out, 'result.json')
    flags = VARIANTS[name][1]
    args = variant_args(name, music, other, out, seed=seed, minutes=minutes,
                        iterations=iterations, val_songs=val_songs,
                        extra=extra)
    settings = run_settings(args)
    if os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        if same_settings(result.get('settings'), settings):
            return result
    start = time.perf_counter()
    steps = training.run_training(args)
    seconds = time.perf_counter() - start
    model, names, config = collection.load_trained(out)
    info, _ = collection.load_labels(os.path.join(out, 'labels.json'))
    scores = evaluation.evaluate_songs(model, names, config,
                                       info['val_songs'])
    result = {
        'variant': name, 'seed': seed, 'flags': flags,
        'clip_accuracy': scores['clip_accuracy'],
        'song_accuracy': scores['song_accuracy'],
        'clips': scores['clips'], 'songs': scores['songs'],
        'steps': steps, 'seconds': seconds,
        'seconds_per_step': seconds / max(steps, 1),
        'parameters': int(sum(p.size for p in model.params())),
        'model_bytes': os.path.getsize(os.path.join(out, 'model.npz')),
        'minutes': minutes, 'settings': settings,
    }
    save_json(result_path, result)
    if not keep_model:
        os.remove(os.path.join(out, 'model.npz'))
    return result


def mfcc_baseline(train_songs, val_songs, config, hop_seconds=5.0, seed=0):
    """MFCC mean/std + delta statistics per clip, logistic regression.

    Trained on the training songs' 10.24 s clips every ``hop_seconds``,
    scored on the held-out songs' clips like the networks (a song by the
    mean probability of its clips). Needs scikit-learn (the ``bench``
    extra).

    Args:
        train_songs, val_songs (dict): label -> list of song paths.
        config (FeatureConfig): its ``sr`` is used.
    """
    import librosa
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from music_classification import load_audio
    from music_classification.features import WINDOW_SAMPLES
    from music_classification.predict import window_starts
    window, hop = WINDOW_SAMPLES, int(hop_seconds * config.sr)

    def clip_features(path):
        y, _ = load_audio(path, sr=config.sr)
        if len(y) < window:
            y = np.concatenate([y, np.zeros(window - len(y), y.dtype)])
        rows = []
        for s in window_starts(len(y), window, hop):
            mfcc = librosa.feature.mfcc(y=y[s:s + window], sr=config.sr,
                                        n_mfcc=20)
            delta = librosa.feature.delta(mfcc)
            rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1),
                                        delta.mean(1), delta.std(1)]))
        return np.array(rows)

    start = time.perf_counter()
    X, t = [], []
    for label, paths in train_songs.items():
        for path in paths:
            f = clip_features(path)
            X.append(f)
            t += [label] * len(f)
    clf = make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=5000, random_state=seed))
    clf.fit(np.concatenate(X), t)
    clips = right_clips = right_songs = songs = 0
    for label, paths in val_songs.items():
        for path in paths:
            probs = clf.predict_proba(clip_features(path))
            guesses = clf.classes_[probs.argmax(1)]
            clips += len(guesses)
            right_clips += int((guesses == label).sum())
            songs += 1
            right_songs += int(clf.classes_[probs.mean(0).argmax()] == label)
    return {'variant': 'mfcc_baseline', 'seed': seed,
            'clip_accuracy': right_clips / clips,
            'song_accuracy': right_songs / songs, 'clips': clips,
            'songs': songs, 'seconds': time.perf_counter() - start}


def run_baseline(music, other, out, *, seed, val_songs=0.34):
    """:func:`mfcc_baseline` on the split a seed's runs use (cached)."""
    result_path = os.path.join(out, 'result.json')
    if os.path.exists(result_path):
        with open(result_path) as f:
            return json.load(f)
    songs = collection.scan_collection(music, other)
    train_songs, held_out = collection.split_songs(songs.songs, val_songs,
                                                   seed=seed)
    result = mfcc_baseline(train_songs, held_out, FeatureConfig(),
                           seed=seed)
    save_json(result_path, result)
    return result


def run_study(music, other, out, *, variants=None, seeds=(0,), minutes=None,
              iterations=1000000, val_songs=0.34, baseline=True, extra=(),
              keep_models=False, log=print):
    """Run (or resume) the study; write ``results.md`` and ``results.png``.

    ``variants``: names in :data:`VARIANTS` (default: every one that trains,
    :func:`trainable`).

    Returns:
        list of dict: one result per run, the baseline's included.
    """
    variants = list(variants or trainable(VARIANTS))
    results = []
    for seed in seeds:
        if baseline:
            results.append(run_baseline(
                music, other, os.path.join(out, 'mfcc_baseline-seed{}'.format(
                    seed)), seed=seed, val_songs=val_songs))
        for name in variants:
            run_out = os.path.join(out, '{}-seed{}'.format(name, seed))
            log('[{}] seed {}: {}'.format(name, seed, VARIANTS[name][0]))
            results.append(run_variant(
                name, music, other, run_out, seed=seed, minutes=minutes,
                iterations=iterations, val_songs=val_songs, extra=extra,
                keep_model=keep_models))
            r = results[-1]
            log('[{}] seed {}: clip {:.3f} song {:.3f} in {} steps'.format(
                name, seed, r['clip_accuracy'], r['song_accuracy'],
                r['steps']))
    table = markdown_table(results)
    with open(os.path.join(out, 'results.md'), 'w') as f:
        f.write(table)
    save_png(plot_results(results), os.path.join(out, 'results.png'))
    return results


def summarise(results):
    """Per variant (in study order): mean and spread over seeds."""
    by_variant = collections.OrderedDict()
    for r in results:
        by_variant.setdefault(r['variant'], []).append(r)
    rows = []
    for name, runs in by_variant.items():
        row = {'variant': name, 'seeds': len(runs)}
        for key in ('clip_accuracy', 'song_accuracy'):
            values = np.array([r[key] for r in runs])
            row[key] = float(values.mean())
            row[key + '_min'] = float(values.min())
            row[key + '_max'] = float(values.max())
        for key in ('steps', 'seconds_per_step', 'parameters',
                    'model_bytes'):
            if key in runs[0]:
                row[key] = float(np.mean([r[key] for r in runs]))
        rows.append(row)
    return rows


def markdown_table(results):
    """The study's table: accuracy (mean, min..max over seeds) and costs."""
    lines = ['| variant | what | clip accuracy | song accuracy | steps | '
             's / step | parameters | model file |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for row in summarise(results):
        what = VARIANTS.get(row['variant'], ('',))[0] or BASELINES.get(
            row['variant'], '')

        def acc(key):
            if row['seeds'] == 1:
                return '{:.3f}'.format(row[key])
            return '{:.3f} ({:.3f}..{:.3f})'.format(
                row[key], row[key + '_min'], row[key + '_max'])
        cost = ['{:.0f}'.format(row['steps']),
                # a run of no steps (a linear probe): its seconds in all
                '{:.2f}'.format(row['seconds_per_step']) if row['steps']
                else '({:.0f} s in all)'.format(row['seconds_per_step']),
                '{:,}'.format(int(row['parameters'])),
                '{:.1f} MB'.format(row['model_bytes'] / 1e6)] \
            if 'steps' in row else ['', '', '', '']
        lines.append('| {} | {} | {} | {} | {} |'.format(
            row['variant'], what, acc('clip_accuracy'),
            acc('song_accuracy'), ' | '.join(cost)))
    return '\n'.join(lines) + '\n'


def plot_results(results):
    """Bar chart of clip and song accuracy with the spread over seeds."""
    from matplotlib.figure import Figure
    rows = summarise(results)
    fig = Figure(figsize=(10, 0.45 * len(rows) + 1.5))
    ax = fig.subplots()
    y = np.arange(len(rows))
    for offset, key, label in ((-0.2, 'clip_accuracy', 'clip'),
                               (0.2, 'song_accuracy', 'song')):
        mean = np.array([r[key] for r in rows])
        err = np.array([[r[key] - r[key + '_min'] for r in rows],
                        [r[key + '_max'] - r[key] for r in rows]])
        ax.barh(y + offset, mean, height=0.4, xerr=err, capsize=3,
                label=label)
    ax.set_yticks(y)
    ax.set_yticklabels([r['variant'] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel('accuracy on held-out songs (bars: mean; lines: min..max '
                  'over seeds)')
    ax.legend(loc='upper left', bbox_to_anchor=(1.0, 1.0))  # off the bars
    fig.tight_layout()
    return fig
