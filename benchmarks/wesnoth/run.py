#!/usr/bin/env python
"""MUSIC_NET vs an MFCC baseline on real music: Wesnoth's composers.

Builds a data set from Debian's ``wesnoth-1.16-music`` package (OGG tracks
with an ARTIST tag naming the composer): the composers with at least 3
tracks of 20 s or more, the five with the most tracks. The "Other" class is
sound effects and ambience from ``wesnoth-1.16-data`` (war drums left out).
Packages are fetched with ``apt-get download`` and unpacked with
``dpkg -x`` (no root needed), into --work.

A third of each composer's tracks (at least one) are held out, from --seed.
MUSIC_NET trains with the original recipe (scripts/train.py) for --minutes
of wall time on the CPU; the baseline (MFCC mean/std plus delta statistics
per 10.24 s window, standardised, logistic regression from scikit-learn)
trains on the same training songs' windows. Both are scored on the held-out
songs: clip accuracy over windows every 5 s, song accuracy from the mean
probability over a song's windows.

    python benchmarks/wesnoth/run.py --minutes 20
"""

import argparse
import collections
import glob
import json
import os
import platform
import subprocess
import sys
import time

import matplotlib
matplotlib.use('Agg')  # the training's PlotReport PNGs
import numpy as np  # NOQA: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..'))

from music_classification import collection, evaluation  # NOQA: E402
from music_classification import load_audio, train  # NOQA: E402
from music_classification.predict import window_starts  # NOQA: E402
from music_classification.prepare import (  # NOQA: E402
    artist_tag, prepare_collection)

PACKAGES = ('wesnoth-1.16-music', 'wesnoth-1.16-data')
SOUNDS = 'usr/share/games/wesnoth/1.16/data/core/sounds'


def fetch(work):
    """Download and unpack the two packages into ``work/pkg``."""
    pkg = os.path.join(work, 'pkg')
    if os.path.isdir(os.path.join(pkg, SOUNDS)):
        return pkg
    debs = os.path.join(work, 'debs')
    os.makedirs(debs, exist_ok=True)
    if len(glob.glob(os.path.join(debs, '*.deb'))) < len(PACKAGES):
        print('downloading {} (about 300 MB)'.format(' '.join(PACKAGES)),
              flush=True)
        subprocess.run(['apt-get', 'download'] + list(PACKAGES), cwd=debs,
                       check=True)
    for deb in sorted(glob.glob(os.path.join(debs, '*.deb'))):
        subprocess.run(['dpkg', '-x', deb, pkg], check=True)
    return pkg


def select_tracks(pkg, min_seconds=20.0, min_tracks=3, n_composers=5):
    import soundfile
    by_composer = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(pkg, 'usr', 'share', 'games',
                                              'wesnoth', '1.16', 'data',
                                              'core', 'music', '*.ogg'))):
        composer = artist_tag(path)
        if composer and soundfile.info(path).duration >= min_seconds:
            by_composer[composer].append(path)
    eligible = sorted((c for c, t in by_composer.items()
                       if len(t) >= min_tracks),
                      key=lambda c: (-len(by_composer[c]), c))[:n_composers]
    return {c: by_composer[c] for c in eligible}


def select_sounds(pkg, n=40):
    folder = os.path.join(pkg, SOUNDS)
    effects = sorted(f for f in glob.glob(os.path.join(folder, '*'))
                     if f.endswith(('.ogg', '.wav')))
    chosen = [effects[i] for i in np.linspace(0, len(effects) - 1, n)
              .round().astype(int)]
    ambient = sorted(f for f in glob.glob(os.path.join(folder, 'ambient',
                                                       '*.ogg'))
                     if 'drum' not in os.path.basename(f))
    return sorted(set(chosen)) + ambient


def window_features(y, sr, starts, window):
    """MFCC mean/std and delta mean/std of each window: (n, 80)."""
    import librosa
    rows = []
    for s in starts:
        mfcc = librosa.feature.mfcc(y=y[s:s + window], sr=sr, n_mfcc=20)
        delta = librosa.feature.delta(mfcc)
        rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1),
                                    delta.mean(1), delta.std(1)]))
    return np.array(rows)


def baseline(train_songs, val_songs, config, hop_seconds=5.0, seed=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    window = config.window_samples
    hop = int(hop_seconds * config.sr)

    def song_windows(path):
        y, _ = load_audio(path, sr=config.sr)
        if len(y) < window:
            y = np.concatenate([y, np.zeros(window - len(y), y.dtype)])
        return window_features(y, config.sr, window_starts(len(y), window,
                                                           hop), window)
    X, t = [], []
    for label, paths in train_songs.items():
        for path in paths:
            f = song_windows(path)
            X.append(f)
            t += [label] * len(f)
    clf = make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=5000, random_state=seed))
    clf.fit(np.concatenate(X), t)
    clips = right_clips = right_songs = songs = 0
    for label, paths in val_songs.items():
        for path in paths:
            probs = clf.predict_proba(song_windows(path))
            guesses = clf.classes_[probs.argmax(1)]
            clips += len(guesses)
            right_clips += int((guesses == label).sum())
            songs += 1
            right_songs += int(clf.classes_[probs.mean(0).argmax()] == label)
    return {'clip_accuracy': right_clips / clips,
            'song_accuracy': right_songs / songs, 'clips': clips,
            'songs': songs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work', default=os.path.join(HERE, 'work'),
                        help='folder for packages, data and the run')
    parser.add_argument('--minutes', type=float, default=20.0,
                        help='wall-clock training budget of MUSIC_NET')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the split, weights and batches')
    parser.add_argument('--val', type=float, default=0.34,
                        help='fraction of each composer\'s tracks held out')
    parser.add_argument('--batch-per-class', type=int, default=10,
                        help='windows per composer per step (original: 10)')
    parser.add_argument('--other-per-batch', type=int, default=10,
                        help='"Other" clips per step')
    args = parser.parse_args()

    pkg = fetch(args.work)
    tracks = select_tracks(pkg)
    sounds = select_sounds(pkg)
    data = os.path.join(args.work, 'data')
    t0 = time.perf_counter()
    prepare_collection([p for paths in tracks.values() for p in paths], data,
                       group='tag', other=sounds, log=print)
    prep_seconds = time.perf_counter() - t0
    music, other = os.path.join(data, 'music'), os.path.join(data, 'other')
    print('composers: {}; "Other" sounds: {}'.format(
        ', '.join('{} ({})'.format(c, len(t)) for c, t in tracks.items()),
        len(sounds)), flush=True)

    out = os.path.join(args.work, 'run-seed{}'.format(args.seed))
    t0 = time.perf_counter()
    iterations = train.main([
        '--music', music, '--other', other, '--out', out,
        '--val-songs', str(args.val), '--seed', str(args.seed),
        '--time-budget', str(args.minutes), '--iterations', '1000000',
        '--batch-per-class', str(args.batch_per_class),
        '--other-per-batch', str(args.other_per_batch),
        '--snapshot-every', '0', '--eval-every', '1000000',
        '--log-every', '20', '--no-progress'])
    train_seconds = time.perf_counter() - t0

    model, names, config = collection.load_trained(out)
    info, _ = collection.load_labels(os.path.join(out, 'labels.json'))
    index = {n: i for i, n in enumerate(names)}
    val_songs = {index[a]: p for a, p in info['val_songs'].items()}
    train_songs = {index[a]: p for a, p in info['train_songs'].items()}
    ours = evaluation.evaluate_songs(model, names, config, info['val_songs'])
    t0 = time.perf_counter()
    base = baseline(train_songs, val_songs, config, seed=args.seed)
    base_seconds = time.perf_counter() - t0

    chance = 1.0 / len(tracks)
    rows = [('MUSIC_NET (original recipe, {:.0f} min CPU, {} iterations)'
             .format(args.minutes, iterations), ours),
            ('MFCC stats + logistic regression ({:.0f} s)'.format(
                base_seconds), base)]
    print()
    print('machine: {} {}, {} CPUs; seed {}; data preparation {:.0f} s; '
          'training {:.0f} s'.format(platform.system(), platform.machine(),
                                     os.cpu_count(), args.seed, prep_seconds,
                                     train_seconds))
    print('held-out: {} songs, {} clips; {} composers (chance {:.2f})'.format(
        ours['songs'], ours['clips'], len(tracks), chance))
    print('| model | clip accuracy | song accuracy |')
    print('| --- | --- | --- |')
    for name, r in rows:
        print('| {} | {:.3f} | {:.3f} |'.format(name, r['clip_accuracy'],
                                                r['song_accuracy']))
    with open(os.path.join(out, 'benchmark.json'), 'w') as f:
        json.dump({'music_net': ours, 'baseline': base,
                   'iterations': iterations, 'minutes': args.minutes,
                   'composers': {c: len(t) for c, t in tracks.items()}},
                  f, indent=1)


if __name__ == '__main__':
    main()
