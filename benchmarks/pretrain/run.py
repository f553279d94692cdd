#!/usr/bin/env python
"""A network pretrained on other game music, each song its own class.

The two real-music sets have few songs per composer (18 and 41 training
songs), and every network learns them by heart. This trains the improved
recipe's network on the music of ten other free games in Debian, with
every track as its own class (no composer labels needed), so that its
layers learn to tell pieces of music apart; the benchmarks then start
from it with ``--init-from`` (every layer but the output layer). None of
these packages is one of the benchmarks' (``wesnoth-1.16-*``,
``ufoai-music``, ``nexuiz-music``), so the held-out songs were never
heard.

Tracks of 30 s or more are kept, and each piece once (see DUPLICATES).
The "Other" class is sound effects and voices of five of the packages,
0.5 to 20 s long, spread evenly over each one's files; every step takes a
window of each track and every "Other" clip once.
Packages are fetched with ``apt-get download`` (about 1.9 GB) and unpacked
with ``dpkg -x`` into --work.

    python -m benchmarks.pretrain.run --iterations 800
    python -m benchmarks.wesnoth.run --iterations 2346 --seeds 0 1 \\
        --variants improved \\
        --init-from benchmarks/pretrain/work/pretrained-800steps
    python -m benchmarks.wesnoth.run --iterations 2346 --seeds 0 1 \\
        --variants linear_probe \\
        --init-from benchmarks/pretrain/work/pretrained-800steps
"""

import glob
import os
import shutil
import time

import matplotlib
matplotlib.use('Agg')  # the training's PlotReport PNGs
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

from benchmarks import real_music
from music_classification import training
from music_classification.cli.train import parse_args
from music_classification.prepare import prepare_collection, safe_name

#: package -> its music folders (a pattern under usr/share).
PACKAGES = {
    'extremetuxracer-data': 'games/etr/music',
    'freedroidrpg-data': 'freedroidrpg/data/sound/music',
    'hedgewars-data': 'games/hedgewars/Data/Music',
    'lincity-ng-data': 'games/lincity-ng/music',
    'megaglest-data': 'games/megaglest/**/music',
    'supertux-data': 'games/supertux2/music',
    'supertuxkart-data': 'games/supertuxkart/data/music',
    'warzone2100-music': 'games/warzone2100/music',
    'widelands-data': 'games/widelands/data/music',
    'xmoto-data': 'games/xmoto/Textures/Musics',
}
#: package -> the folder (under usr/share) whose other sounds make the
#: "Other" class.
SOUND_FOLDERS = {'freedroidrpg-data': 'freedroidrpg/data/sound',
                 'hedgewars-data': 'games/hedgewars/Data/Sounds',
                 'megaglest-data': 'games/megaglest',
                 'supertuxkart-data': 'games/supertuxkart/data/sfx',
                 'widelands-data': 'games/widelands/data/sound'}
AUDIO = ('.ogg', '.opus', '.wav', '.flac')
#: other versions of a piece kept once (name endings): Warzone 2100's
#: remasters, SuperTuxKart's faster last laps (``*_fast``, ``farm_f``),
#: SuperTux's airship remix and Hedgewars' sudden-death Olympics.
#: Byte-identical files (Widelands' menu is its ingame_14) are kept once
#: by their content.
DUPLICATES = ('_enhanced', '_fast', 'farm_f', 'airship_remix',
              'olympics_sd')


def audio_files(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, '**', '*'),
                                       recursive=True)
                  if p.lower().endswith(AUDIO) and os.path.isfile(p))


def seconds_of(path):
    """The length of an audio file; an unreadable one stops the run."""
    import soundfile
    try:
        return soundfile.info(path).duration
    except RuntimeError as e:
        raise SystemExit('{}: {}'.format(path, e)) from None


def music_folders(pkg, package):
    """The package's music folders."""
    found = sorted(glob.glob(os.path.join(pkg, 'usr', 'share',
                                          PACKAGES[package]), recursive=True))
    if not found:
        raise SystemExit('{}: no music folder {!r} in {}'.format(
            package, PACKAGES[package], pkg))
    return found


def select_tracks(pkg, min_seconds=30.0):
    """``{class name: track}``: every track of every package its own."""
    import hashlib
    tracks, seen = {}, set()
    share = os.path.join(pkg, 'usr', 'share')
    for package in sorted(PACKAGES):
        game, before = package.split('-')[0], len(tracks)
        for path in [p for f in music_folders(pkg, package)
                     for p in audio_files(f)]:
            stem = os.path.splitext(os.path.relpath(path, share))[0]
            stem = '/'.join(stem.split('/')[-3:])
            if stem.endswith(DUPLICATES):
                continue
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if seconds_of(path) < min_seconds or digest in seen:
                continue
            seen.add(digest)
            name = '{} {}'.format(game, safe_name(stem))
            if name in tracks:
                raise SystemExit('{} and {} are both {!r}'.format(
                    tracks[name], path, name))
            tracks[name] = path
        if len(tracks) == before:
            raise SystemExit('{}: no track of {:g} s or more'.format(
                package, min_seconds))
        print('{}: {} tracks'.format(package, len(tracks) - before))
    return tracks


def select_sounds(pkg, music, per_package=12, seconds=(0.5, 20.0)):
    """Sound effects spread evenly over each of SOUND_FOLDERS' files,
    ``seconds`` long (long ambiences and recordings left out)."""
    sounds = []
    for package in sorted(SOUND_FOLDERS):
        folder = os.path.join(pkg, 'usr', 'share', SOUND_FOLDERS[package])
        found = []
        for path in audio_files(folder):
            if path in music or 'music' in os.path.relpath(
                    path, folder).lower():
                continue
            if seconds[0] <= seconds_of(path) <= seconds[1]:
                found.append(path)
        if not found:
            raise SystemExit('{}: no sound in {}'.format(package, folder))
        pick = np.linspace(0, len(found) - 1, min(per_package, len(found)))
        sounds += [found[i] for i in sorted(set(pick.round().astype(int)))]
    return sounds


def stage(tracks, work):
    """One folder per track, named for its class (links, not copies)."""
    staged = os.path.join(work, 'staged')
    shutil.rmtree(staged, ignore_errors=True)
    for name, path in tracks.items():
        os.makedirs(os.path.join(staged, name))
        os.symlink(os.path.abspath(path), os.path.join(
            staged, name, os.path.basename(path)))
    return [os.path.join(staged, name) for name in sorted(tracks)]


def parse(argv=None):
    p = real_music.doc_parser(__doc__)
    p.add_argument('--work', default=os.path.join(HERE, 'work'),
                   help='folder for packages, data and the network')
    p.add_argument('--iterations', type=int, default=800,
                   help='training steps')
    p.add_argument('--batch-per-class', type=int, default=1,
                   help='windows of each track in every batch')
    p.add_argument('--device', default='-1',
                   help='training device (-1: CPU, 0: GPU 0)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the weights, batches and augmentation')
    p.add_argument('--init-from', metavar='FOLDER', default=None,
                   help='start from the network trained in FOLDER (train '
                   '--init-from: all but its output layer), for example a '
                   'shorter pretraining; the network goes to a folder '
                   'ending in -from-NAME, after FOLDER\'s name')
    p.add_argument('--resume', action='store_true',
                   help='go on from the last snapshot of the network')
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    pkg = os.path.join(args.work, 'pkg')
    if not os.path.isdir(os.path.join(pkg, 'usr', 'share', 'games')):
        pkg = real_music.download_and_unpack(list(PACKAGES), args.work)
    t0 = time.perf_counter()
    tracks = select_tracks(pkg)
    sounds = select_sounds(pkg, set(tracks.values()))
    data = os.path.join(args.work, 'data')
    prepare_collection(stage(tracks, args.work), data, group='parent',
                       other=sounds, log=print)
    print('{} tracks of {} games, {} "Other" sounds; prepared in {:.0f} s'
          .format(len(tracks), len(PACKAGES), len(sounds),
                  time.perf_counter() - t0), flush=True)
    out = os.path.join(args.work, 'pretrained-{}steps'.format(
        args.iterations))
    init = []
    if args.init_from:
        out += '-from-' + os.path.basename(os.path.abspath(args.init_from))
        init = ['--init-from', args.init_from]
    train = parse_args([
        '--recipe', 'improved', '--music', os.path.join(data, 'music'),
        '--other', os.path.join(data, 'other'), '--out', out,
        '--val-songs', '0', '--seed', str(args.seed),
        '--iterations', str(args.iterations),
        '--batch-per-class', str(args.batch_per_class),
        '--device', args.device, '--snapshot-every', '100',
        '--eval-every', str(10 ** 9), '--log-every', '20', '--no-progress'] +
        (['--resume'] if args.resume else ['--force']) + init)
    t0 = time.perf_counter()
    steps = training.run_training(train)
    print('{} steps in {:.0f} s; the network is in {}'.format(
        steps, time.perf_counter() - t0, out))


if __name__ == '__main__':
    main()
