#!/usr/bin/env python
"""Each held-out song's artist as every kept run names it, and as the runs
name it together.

The runs given (folders kept with ``--keep-models``: ``model.npz`` and
``labels.json``) are grouped by their held-out songs (one seed's split).
For each group, a Markdown table has a row per held-out song: its artist,
the artist each run names (the largest mean probability over the song's
10.24 s clips every 5 s, "Other" left out, as ``music-classification
evaluate``), and, where the group has several runs, the artist the runs
name together: the mean of their probabilities, as an ensemble of them
would. A name in bold is right. Then each run's clip and song accuracy,
the runs' together, and the songs that no run names, each with how far
its artist is from being named: its place among the artists and its mean
probability, against the artist named (in the runs together, where there
are several)::

    python -m benchmarks.held_out_songs \\
        benchmarks/wesnoth/work/study-2346steps/improved-seed2 \\
        benchmarks/wesnoth/work/study-2346steps-from-work-pretrained-800steps/linear_probe-seed2
"""

import json
import os

import numpy as np


def load_runs(runs):
    """``[(run, names, config, val_songs)]`` from the runs' ``labels.json``,
    in the given order (their models are loaded one at a time, to score)."""
    from music_classification import collection
    out = []
    for run in runs:
        info, config = collection.load_labels(
            os.path.join(run, 'labels.json'))
        out.append((run, info['classes'], config, info['val_songs']))
    return out


def groups(loaded):
    """The runs by their held-out songs, in the order first seen.

    Raises:
        ValueError: two runs hold out the same songs under other classes.
    """
    out = {}
    for item in loaded:
        key = json.dumps(item[3], sort_keys=True)
        if key in out and out[key][0][1] != item[1]:
            raise ValueError('{} and {} hold out the same songs but have '
                             'other classes'.format(out[key][0][0], item[0]))
        out.setdefault(key, []).append(item)
    return list(out.values())


def clip_probabilities(group):
    """``[(path, label, [probs of each run (clips, classes)])]`` for every
    held-out song of ``group``, artists in name order. One run's model is
    in memory at a time; each song is read once for each sample rate."""
    from music_classification import audio, collection, predict
    names, val_songs = group[0][1], group[0][3]
    index = {name: label for label, name in enumerate(names)}
    songs = [(path, index[artist], [])
             for artist, paths in sorted(val_songs.items()) for path in paths]
    waves = {}
    for run, _, _, _ in group:
        model, _, config = collection.load_trained(run)
        for path, _, probs in songs:
            if (path, config.sr) not in waves:
                waves[path, config.sr] = audio.load_audio(path,
                                                          sr=config.sr)[0]
            probs.append(predict.predict_windows(
                model, waves[path, config.sr], config=config)[1])
        del model
    for path, _, probs in songs:
        if len({p.shape for p in probs}) > 1:
            raise ValueError('{}: the runs score it on other clips (a '
                             'window over 10.24 s)'.format(path))
    return songs


def vote(probs):
    """The artist a song's clips ``(clips, classes)`` name ("Other" left
    out)."""
    mean = probs.mean(axis=0)
    mean[0] = -np.inf
    return int(np.argmax(mean))


def place(probs, label):
    """Where the artist ``label`` stands in a song's clips ``(clips,
    classes)``: ``(place, its mean probability, the artist named, that
    artist's)``, place 1 for the artist named ("Other" left out)."""
    mean = probs.mean(axis=0)
    named = vote(probs)
    # ahead: more likely, or as likely and first in order (as vote breaks
    # ties), "Other" (class 0) left out
    ahead = sum(mean[a] > mean[label] or (mean[a] == mean[label] and
                                            a < label)
                for a in range(1, len(mean)))
    return 1 + int(ahead), float(mean[label]), named, float(mean[named])


def _ordinal(n):
    return '{}{}'.format(n, 'th' if 10 <= n % 100 < 20 else
                         {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th'))


def report(group, songs):
    """The Markdown of one group: the songs' table, then the accuracies."""
    names = group[0][1]
    together = len(group) > 1
    columns = ['run {}'.format(i + 1) for i in range(len(group))]
    columns += ['the runs together'] if together else []
    lines = ['| song | artist | {} |'.format(' | '.join(columns)),
             '| --- ' * (len(columns) + 2) + '|']
    right_songs = np.zeros(len(columns), dtype=int)
    right_clips = np.zeros(len(columns), dtype=int)
    clips, missed = 0, []
    for path, label, probs in songs:
        if together:
            probs = probs + [np.mean(probs, axis=0)]
        guesses = [vote(p) for p in probs]
        right_songs += [g == label for g in guesses]
        right_clips += [int((p.argmax(axis=1) == label).sum())
                        for p in probs]
        clips += len(probs[0])
        if label not in guesses[:len(group)]:
            at, p, named, q = place(probs[-1], label)
            missed.append('{} ({} {} of {}, {:.2f}; {})'.format(
                os.path.basename(path), names[label], _ordinal(at),
                len(names) - 1, p,
                'named by the runs together' if named == label else
                '{} named, {:.2f}'.format(names[named], q)))
        cells = ['**{}**'.format(names[g]) if g == label else names[g]
                 for g in guesses]
        lines.append('| {} | {} | {} |'.format(
            os.path.basename(path), names[label], ' | '.join(cells)))
    lines += ['', '| | clip accuracy | songs named |', '| --- | --- | --- |']
    for i, column in enumerate(columns):
        what = ('{}: {}'.format(column, group[i][0]) if i < len(group)
                else column)
        lines.append('| {} | {:.3f} | {} of {} |'.format(
            what, right_clips[i] / clips, right_songs[i], len(songs)))
    lines += ['', 'Named by no run: {}.'.format('; '.join(missed) or 'none')]
    return '\n'.join(lines)


def main(argv=None):
    from benchmarks.ensemble_members import runs_parser
    from music_classification.errors import MusicClassificationError
    parser = runs_parser(__doc__)
    args = parser.parse_args(argv)
    try:
        split = groups(load_runs(args.runs))
    except (MusicClassificationError, ValueError) as e:
        parser.error(str(e))
    for i, group in enumerate(split):
        print('{}## Held-out songs of {}\n'.format(
            '\n' if i else '', group[0][0]), flush=True)
        try:
            songs = clip_probabilities(group)
        except (MusicClassificationError, ValueError) as e:
            parser.error(str(e))
        print(report(group, songs), flush=True)


if __name__ == '__main__':
    main()
