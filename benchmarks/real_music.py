"""What the real-music benchmarks share: their flags and the study's report.

``wesnoth/run.py`` and ``gamemusic/run.py`` each build a data set of named
composers from Debian packages, then call :func:`run_and_report`.
"""

import argparse
import glob
import os
import platform
import subprocess
import time

from music_classification import ablation
from music_classification.errors import MusicClassificationError


def download_and_unpack(packages, work):
    """``apt-get download`` Debian ``packages`` and ``dpkg -x`` them.

    Into ``work/debs`` and ``work/pkg`` (no root needed); what is already
    downloaded is not fetched again. Returns ``work/pkg``.
    """
    pkg = os.path.join(work, 'pkg')
    debs = os.path.join(work, 'debs')
    os.makedirs(debs, exist_ok=True)
    if len(glob.glob(os.path.join(debs, '*.deb'))) < len(packages):
        print('downloading {}'.format(' '.join(packages)), flush=True)
        subprocess.run(['apt-get', 'download'] + list(packages), cwd=debs,
                       check=True)
    for deb in sorted(glob.glob(os.path.join(debs, '*.deb'))):
        subprocess.run(['dpkg', '-x', deb, pkg], check=True)
    return pkg


def doc_parser(doc):
    """An ``ArgumentParser`` of a benchmark from its docstring ``doc``: the
    first paragraph as the description, the rest, as written, after the
    flags."""
    return argparse.ArgumentParser(
        description=doc.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(doc.split('\n\n')[1:]))


def parser(doc, work):
    """The flags of a real-music benchmark."""
    p = doc_parser(doc)
    p.add_argument('--work', default=work,
                   help='folder for packages, data and the runs')
    p.add_argument('--minutes', type=float, default=20.0,
                   help='wall-clock training budget of every run')
    p.add_argument('--iterations', type=int, default=None,
                   help='train every run for this many steps instead of '
                   '--minutes')
    p.add_argument('--device', default='-1',
                   help='training device of every run (-1: CPU, 0: GPU 0)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='seeds of the split, weights and batches')
    p.add_argument('--variants', nargs='+', default=['article', 'improved'],
                   help='variants of music_classification.ablation ("study" '
                   'for the study of the article\'s claims, ablation.STUDY; '
                   '"all" for every one, the linear probes of a trained '
                   'network only with --init-from)')
    p.add_argument('--val', type=float, default=0.34,
                   help='fraction of each composer\'s tracks held out')
    p.add_argument('--init-from', metavar='FOLDER', default=None,
                   help='start every run from the model trained in FOLDER '
                   '(train --init-from; for example a run of the other set '
                   'kept with --keep-models), skipping the variants of '
                   'other features or network; the study goes to a folder '
                   'ending in -from-PARENT-NAME, after FOLDER\'s last two '
                   'names')
    p.add_argument('--keep-models', action='store_true',
                   help='keep each run\'s model.npz (MUSIC_NET: 280 MB)')
    return p


def parse_args(doc, work):
    """The benchmark's arguments, its ``--variants`` checked before anything
    is fetched: ``args.variants`` becomes the list of variant names."""
    p = parser(doc, work)
    args = p.parse_args()
    every = list(ablation.VARIANTS)
    args.variants = {'all': every if args.init_from else [
        v for v in every if not ablation.needs_trained_network(v)],
                     'study': list(ablation.STUDY)}.get(
                         ' '.join(args.variants), args.variants)
    unknown = [v for v in args.variants if v not in ablation.VARIANTS]
    if unknown:
        p.error('--variants {}: no such variant (all, study or names of '
                'music_classification.ablation.VARIANTS; the MFCC baseline '
                'runs with every study)'.format(' '.join(unknown)))
    probes = [v for v in args.variants if ablation.needs_trained_network(v)]
    if probes and not args.init_from:
        p.error('--variants {}: a linear probe needs --init-from FOLDER, the '
                'network to probe'.format(' '.join(probes)))
    return args


def run_and_report(args, music, other, composers, prep_seconds):
    """Run (or resume) the study on ``music``/``other`` and print it.

    Args:
        composers (dict): composer -> number of tracks, for the report.
    """
    variants = args.variants
    print('composers: {}'.format(', '.join(
        '{} ({})'.format(c, n) for c, n in composers.items())), flush=True)
    if args.iterations:
        budget = dict(iterations=args.iterations, minutes=None)
        per_run, out = '{} steps'.format(args.iterations), \
            'study-{}steps'.format(args.iterations)
    else:
        budget = dict(minutes=args.minutes)
        per_run, out = '{:g} min'.format(args.minutes), \
            'study-{:g}min'.format(args.minutes)
    if args.device not in ('-1', '@numpy'):
        out += '-device{}'.format(args.device)
    extra = ['--device', args.device]
    if args.init_from:
        out += '-from-' + '-'.join(
            os.path.abspath(args.init_from).split(os.sep)[-2:])
        try:
            unfit = ablation.unfit_for(args.init_from, variants, music,
                                       other, extra=extra)
        except MusicClassificationError as e:
            raise SystemExit('--init-from: {}'.format(e)) from None
        if unfit:
            print('--init-from {}: skipping {} (other features or network)'
                  .format(args.init_from, ', '.join(unfit)), flush=True)
            variants = [name for name in variants if name not in unfit]
        extra += ['--init-from', os.path.abspath(args.init_from)]
    out = os.path.join(args.work, out)
    t0 = time.perf_counter()
    results = ablation.run_study(music, other, out, variants=variants,
                                 seeds=args.seeds, val_songs=args.val,
                                 extra=extra,
                                 keep_models=args.keep_models, **budget)
    print()
    print('machine: {} {}, {} CPUs; data preparation {:.0f} s; study {:.0f} s '
          '(finished runs are reused)'.format(
              platform.system(), platform.machine(), os.cpu_count(),
              prep_seconds, time.perf_counter() - t0))
    print('{} composers (chance {:.2f}); {} per run on device {}; seeds {}'
          .format(len(composers), 1.0 / len(composers), per_run,
                  args.device, ' '.join(map(str, args.seeds))))
    print(ablation.markdown_table(results))
    for r in results:
        print('seed {} {}: clip {:.3f} song {:.3f} ({} songs, {} clips{})'
              .format(r['seed'], r['variant'], r['clip_accuracy'],
                      r['song_accuracy'], r['songs'], r['clips'],
                      ', {} steps'.format(r['steps']) if 'steps' in r
                      else ''))
    print('wrote {}'.format(os.path.join(out, 'results.md')))
    return results
