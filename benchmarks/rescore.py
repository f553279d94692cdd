#!/usr/bin/env python
"""Kept models scored again: test-time band shifts, song votes, statistics.

Three ways to get more out of a trained model without training it again,
each tried on the runs given (kept with ``--keep-models``), on their
held-out songs (``labels.json``), on the same 10.24 s clips every 5 s as
``music-classification evaluate``:

* **test-time band shifts**: each window's probabilities averaged over
  copies of it moved up and down the mel axis by up to 1, 2 or 4 bands
  (the training's ``--freq-shift``, bands left zeroed);
* **another song vote**: a song's artist by the mean log probability of its
  clips, or by the majority of its clips, instead of the mean probability;
* **another statistics classifier**: the share of the model's own
  (``--stats-weight``) at 0 and 0.5, and the classifier fitted again on the
  run's training songs and "Other" sounds with 20, 40 or 128 cepstral
  coefficients and ``C`` of 0.1, 1 or 10, or as the model's own with every
  artist and song weighed alike (``train --fit-weights songs``), mixed in
  at the model's share.

The first row scores the model as it was saved (its ``result.json``)::

    python -m benchmarks.rescore \\
        benchmarks/wesnoth/work/study-2346steps/time_stretch-seed0
"""

import os

import numpy as np

SHIFTS = (1, 2, 4)
COEFFICIENTS = (20, 40, 128)
PENALTIES = (0.1, 1.0, 10.0)


def clip_windows(y, config):
    """The windows that score ``y``'s clips: ``(n_clips, waves)``, ``waves``
    ``(n_clips * per_clip, window)`` clip-major, as
    ``predict.predict_windows`` (with its defaults) takes them."""
    from music_classification import predict
    y, starts, every = predict.clip_windows(y, config=config)
    window = config.window_samples
    return len(starts), np.stack([y[s:s + window] for s in every])


def statistics(x):
    """``{n: (batch, 4 * n)}``: the windows' statistics for each of
    ``COEFFICIENTS``, sliced out of the largest (the first ``n`` rows of an
    orthonormal DCT do not depend on how many are kept)."""
    return by_coefficients(most_statistics(x))


def most_statistics(x):
    """The windows' statistics ``(batch, 4 * max(COEFFICIENTS))``."""
    from music_classification.features import window_statistics
    return window_statistics(x=x, n_coefficients=max(COEFFICIENTS))


def by_coefficients(s):
    """:func:`most_statistics`' ``s`` as ``{n: (batch, 4 * n)}`` for each
    of ``COEFFICIENTS``."""
    most = max(COEFFICIENTS)
    s = s.reshape(len(s), 4, most)
    return {n: s[:, :, :n].reshape(len(s), 4 * n) for n in COEFFICIENTS}


def softmax(z):
    """Softmax over the last axis of NumPy scores."""
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def held_out_scores(model, config, songs, names, batch_size=64):
    """Per song: its label, the network's probabilities for every shift in
    ``-max(SHIFTS) .. max(SHIFTS)`` ``(shifts, clips, per_clip, classes)``,
    the model's statistics classifier's ``(clips, per_clip, classes)`` and
    the windows' statistics for each of ``COEFFICIENTS``."""
    import chainer
    from music_classification import audio
    from music_classification.training import move_bands
    index = {name: label for label, name in enumerate(names)}
    shifts = range(-max(SHIFTS), max(SHIFTS) + 1)
    out = []
    for artist, paths in sorted(songs.items()):
        for path in paths:
            y, _ = audio.load_audio(path, sr=config.sr)
            n_clips, waves = clip_windows(y, config)
            net, own, stats = [], [], {n: [] for n in COEFFICIENTS}
            with chainer.using_config('train', False), \
                    chainer.no_backprop_mode():
                for i in range(0, len(waves), batch_size):
                    x = config(waves[i:i + batch_size])
                    net.append(np.stack([softmax(
                        model.forward(move_bands(x, k)).array)
                        for k in shifts]))
                    if model.stats_weight:
                        own.append(softmax(model.statistics_scores(x)))
                    for n, s in statistics(x).items():
                        stats[n].append(s)
            shape = (n_clips, -1, len(names))
            out.append(dict(
                label=index[artist],
                net=np.concatenate(net, axis=1).reshape(
                    (len(shifts),) + shape),
                own=np.concatenate(own).reshape(shape) if own else None,
                stats={n: np.concatenate(v).astype(np.float64)
                       for n, v in stats.items()}))
    return out


def training_statistics(config, train_songs, other, names, batch_size=64):
    """The statistics of the windows a statistics classifier is fitted on
    (``training.window_rows``), for each of ``COEFFICIENTS``, their labels
    and their songs."""
    from music_classification.dataset import READ_DATASET, READ_DATASET2
    from music_classification.training import window_rows
    common = dict(chunk=config.chunk, length=config.length,
                  expected_fs=config.sr, compression=config.compression,
                  augment=False, noise_augment=False,
                  rng=np.random.default_rng(0))
    classes = [[READ_DATASET2(other, label=0, **common)]]
    for artist in names[1:]:
        classes.append([READ_DATASET(p, label=len(classes), **common)
                        for p in train_songs[artist]])
    rows, labels, songs = window_rows(classes, config, most_statistics,
                                      batch_size=batch_size)
    return by_coefficients(rows), labels, songs


def refitted(train, labels, songs, n, C, n_classes, weights=None):
    """Each song's ``(clips, per_clip, classes)`` probabilities from a
    statistics classifier of ``n`` coefficients fitted with ``C`` (and the
    training windows' ``weights``)."""
    from music_classification.training import fit_standardised_regression
    mean, scale, W, b = fit_standardised_regression(
        train[n], labels, n_classes, C=C, weights=weights)
    return [softmax(((s['stats'][n] - mean) / scale) @ W.T + b).reshape(
        s['net'].shape[1:]) for s in songs]


def accuracy(songs, shift=0, weight=0.0, stats=None, vote='mean'):
    """Clip and song accuracy of one way of scoring.

    ``shift``: the largest test-time band shift; ``weight``: the
    statistics classifier's share; ``stats``: its probabilities per song
    (None: the model's own); ``vote``: ``mean``, ``log`` or ``majority``.
    """
    right_clips = clips = right_songs = 0
    for i, song in enumerate(songs):
        middle = len(song['net']) // 2
        p = song['net'][middle - shift:middle + shift + 1].mean(axis=0)
        if weight:
            s = song['own'] if stats is None else stats[i]
            p = (1 - weight) * p + weight * s
        clip = p.mean(axis=1)  # (clips, classes)
        right_clips += int((clip.argmax(axis=1) == song['label']).sum())
        clips += len(clip)
        if vote == 'mean':
            score = clip.mean(axis=0)
        elif vote == 'log':
            score = np.log(clip + 1e-6).mean(axis=0)
        else:  # the most clips, ties to the larger mean probability
            score = (np.bincount(clip[:, 1:].argmax(axis=1) + 1,
                                 minlength=clip.shape[1])
                     + 1e-3 * clip.mean(axis=0))
        score[0] = -np.inf  # songs vote among the artists
        right_songs += int(score.argmax() == song['label'])
    return right_clips / clips, right_songs / len(songs)


def rows_for(run, other):
    """``(scoring, (clip, song))`` rows of one run."""
    from music_classification import collection
    from music_classification.training import song_weights
    model, names, config = collection.load_trained(run)
    info, _ = collection.load_labels(os.path.join(run, 'labels.json'))
    w = model.stats_weight
    songs = held_out_scores(model, config, info['val_songs'], names)
    rows = [('as saved (statistics share {:g})'.format(w),
             accuracy(songs, weight=w))]
    rows += [('test-time band shifts up to {}'.format(k),
              accuracy(songs, shift=k, weight=w)) for k in SHIFTS]
    rows += [('songs by mean log probability',
              accuracy(songs, weight=w, vote='log')),
             ('songs by the majority of clips',
              accuracy(songs, weight=w, vote='majority'))]
    if not w:
        return rows
    rows += [('statistics share {:g}'.format(v), accuracy(songs, weight=v))
             for v in (0.0, 0.5)]
    train, labels, window_songs = training_statistics(
        config, info['train_songs'], other, names)
    for n in COEFFICIENTS:
        for C in PENALTIES:
            stats = refitted(train, labels, songs, n, C, len(names))
            rows.append(('statistics refitted: {} coefficients, C = {:g}'
                         .format(n, C), accuracy(songs, weight=w,
                                                 stats=stats)))
    stats = refitted(train, labels, songs, model.n_coefficients, 1.0,
                     len(names), weights=song_weights(labels, window_songs))
    rows.append(('statistics refitted with every artist and song alike '
                 '(--fit-weights songs)', accuracy(songs, weight=w,
                                                   stats=stats)))
    return rows


def main(argv=None):
    from benchmarks.ensemble_members import runs_parser
    parser = runs_parser(__doc__)
    parser.add_argument('--other', help='the "Other" sounds the runs '
                        'trained on (default: data/other two folders above '
                        'each run, where the real-music benchmarks put '
                        'them)')
    args = parser.parse_args(argv)
    table = {}
    for run in args.runs:
        other = args.other or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(run))),
            'data', 'other')
        for label, (clip, song) in rows_for(run, other):
            table.setdefault(label, []).append(
                '{:.3f} / {:.3f}'.format(clip, song))
        print('scored', run, flush=True)
    names = [os.path.basename(os.path.normpath(r)) for r in args.runs]
    print('\n| scoring | ' + ' | '.join(names) + ' |')
    print('| --- |' + ' --- |' * len(names))
    for label, cells in table.items():
        print('| {} | {} |'.format(label, ' | '.join(cells)))


if __name__ == '__main__':
    main()
