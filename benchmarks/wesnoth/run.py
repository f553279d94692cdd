#!/usr/bin/env python
"""The study on real music: Wesnoth's composers.

Builds a data set from Debian's ``wesnoth-1.16-music`` package (OGG tracks
with an ARTIST tag naming the composer): the composers with at least 3
tracks of 20 s or more, the five with the most tracks. The "Other" class is
sound effects and ambience from ``wesnoth-1.16-data`` (war drums left out).
Packages are fetched with ``apt-get download`` and unpacked with
``dpkg -x`` (no root needed), into --work.

A third of each composer's tracks (at least one) are held out, from each
seed. Each variant of music_classification.ablation trains with the same
wall-clock budget (--minutes) on the CPU and is scored on the held-out
songs, next to an MFCC-statistics baseline (logistic regression) on the
same songs: clip accuracy over 10.24 s clips every 5 s, song accuracy from
the mean probability over a song's clips. Finished runs are kept; the same
command resumes an interrupted study.

    python -m benchmarks.wesnoth.run --minutes 20 --seeds 0 1
    python -m benchmarks.wesnoth.run --minutes 5 --variants study
"""

import collections
import glob
import os
import time

import matplotlib
matplotlib.use('Agg')  # the training's PlotReport PNGs
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

from benchmarks import real_music
from music_classification.prepare import (
    artist_tag, prepare_collection)

PACKAGES = ('wesnoth-1.16-music', 'wesnoth-1.16-data')
SOUNDS = 'usr/share/games/wesnoth/1.16/data/core/sounds'


def fetch(work):
    """Download and unpack the two packages into ``work/pkg``."""
    pkg = os.path.join(work, 'pkg')
    if os.path.isdir(os.path.join(pkg, SOUNDS)):
        return pkg
    return real_music.download_and_unpack(PACKAGES, work)


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


def main():
    args = real_music.parse_args(__doc__, os.path.join(HERE, 'work'))
    pkg = fetch(args.work)
    tracks = select_tracks(pkg)
    sounds = select_sounds(pkg)
    data = os.path.join(args.work, 'data')
    t0 = time.perf_counter()
    prepare_collection([p for paths in tracks.values() for p in paths], data,
                       group='tag', other=sounds, log=print)
    print('"Other" sounds: {}'.format(len(sounds)))
    real_music.run_and_report(
        args, os.path.join(data, 'music'), os.path.join(data, 'other'),
        {c: len(t) for c, t in tracks.items()}, time.perf_counter() - t0)


if __name__ == '__main__':
    main()
