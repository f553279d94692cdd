#!/usr/bin/env python
"""The study on a second real-music set: UFO: Alien Invasion and Nexuiz.

Seven composers of two free games' soundtracks in Debian, each named by
the package's debian/copyright and the files' names or ARTIST tags:

* ``ufoai-music`` (archive ``0music.pk3``): Christian "Crystan" Hoffmann
  (``Crystan-*``), Simon Green "Psymong" (``Psymong*``), "Marine" Baklund
  (``Marine*``), Manuel "Vanethian" Marino (``van_*``) and David Reeves
  (``David0*``), as the copyright file's stanzas list them;
* ``nexuiz-music`` (``music.pk3``): Gerd "elysis" Raudenbusch (ARTIST tag
  ``elysis``, ``Gerd (elysis) Raudenbusch`` or ``www.elysis.de``) and
  blkrbt (tag ``blkrbt``).

Composers with at least 3 tracks of 20 s or more are kept. The "Other"
class is the Wesnoth benchmark's sound effects (``wesnoth-1.16-data``).
Packages are fetched with ``apt-get download`` and unpacked with
``dpkg -x`` and Python's zipfile (no root needed), into --work. The study
then runs as for Wesnoth (see benchmarks/real_music.py).

    python -m benchmarks.gamemusic.run --minutes 20 --seeds 0 1
"""

import collections
import glob
import os
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

from benchmarks import real_music
from music_classification.prepare import (
    artist_tag, prepare_collection, safe_name)
from benchmarks.wesnoth import run as wesnoth

PACKAGES = {'ufoai-music': 'usr/share/games/ufoai/base/0music.pk3',
            'nexuiz-music': 'usr/share/games/nexuiz/data/music.pk3'}
#: ufoai-music: file-name prefix -> composer (debian/copyright).
UFOAI = (('Crystan-', 'Christian "Crystan" Hoffmann'),
         ('Psymong', 'Simon Green (Psymong)'),
         ('Marine', '"Marine" Baklund'),
         ('van_', 'Manuel "Vanethian" Marino'),
         ('David0', 'David Reeves'))
#: nexuiz-music: ARTIST tag -> composer.
NEXUIZ = {'Gerd (elysis) Raudenbusch': 'Gerd "elysis" Raudenbusch',
          'elysis': 'Gerd "elysis" Raudenbusch',
          'www.elysis.de': 'Gerd "elysis" Raudenbusch',
          'blkrbt': 'blkrbt'}


def fetch(work):
    """Download the packages and extract their music into ``work/tracks``.
    """
    tracks = os.path.join(work, 'tracks')
    if os.path.isdir(tracks) and os.listdir(tracks):
        return tracks
    pkg = real_music.download_and_unpack(list(PACKAGES), work)
    for name, archive in PACKAGES.items():
        with zipfile.ZipFile(os.path.join(pkg, archive)) as z:
            for member in z.namelist():
                if member.endswith('.ogg'):
                    target = os.path.join(tracks, name,
                                          os.path.basename(member))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with z.open(member) as src, open(target, 'wb') as dst:
                        dst.write(src.read())
    return tracks


def composer_of(package, path):
    """The composer of a track, or ``None``."""
    name = os.path.basename(path)
    if package == 'ufoai-music':
        for prefix, composer in UFOAI:
            if name.startswith(prefix):
                return composer
        return None
    return NEXUIZ.get(artist_tag(path) or '')


def select_tracks(tracks, min_seconds=20.0, min_tracks=3):
    import soundfile
    by_composer = collections.defaultdict(list)
    for package in PACKAGES:
        for path in sorted(glob.glob(os.path.join(tracks, package, '*.ogg'))):
            composer = composer_of(package, path)
            if composer and soundfile.info(path).duration >= min_seconds:
                by_composer[composer].append(path)
    return {c: t for c, t in sorted(by_composer.items(),
                                    key=lambda kv: (-len(kv[1]), kv[0]))
            if len(t) >= min_tracks}


def main():
    args = real_music.parse_args(__doc__, os.path.join(HERE, 'work'))
    tracks = select_tracks(fetch(args.work))
    sounds = wesnoth.select_sounds(wesnoth.fetch(os.path.join(
        HERE, '..', 'wesnoth', 'work')))
    # One folder per composer (links), grouped by folder.
    staged = os.path.join(args.work, 'staged')
    for composer, paths in tracks.items():
        folder = os.path.join(staged, safe_name(composer))
        os.makedirs(folder, exist_ok=True)
        for path in paths:
            link = os.path.join(folder, os.path.basename(path))
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(path), link)
    data = os.path.join(args.work, 'data')
    t0 = time.perf_counter()
    prepare_collection([staged], data, group='folder', other=sounds,
                       log=print)
    print('"Other" sounds (Wesnoth\'s): {}'.format(len(sounds)))
    real_music.run_and_report(
        args, os.path.join(data, 'music'), os.path.join(data, 'other'),
        {c: len(t) for c, t in tracks.items()}, time.perf_counter() - t0)


if __name__ == '__main__':
    main()
