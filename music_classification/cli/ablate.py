"""``music-classification ablate``: the ablation study, every variant that
trains, trained and scored on the same songs.

Trains each variant of music_classification.ablation.VARIANTS (the
article's recipe, its alternatives, single ingredients, the small CNN, the
improved recipe; not the linear probes, which need a trained network) on
--music/--other with the same held-out songs, seeds and
wall-clock budget per run, scores the held-out songs and an MFCC baseline,
and writes results.md and results.png into --out. Rerun the same command to
resume an interrupted study.
"""

import os

from music_classification import ablation, synthetic
from music_classification.cli import command_parser, describe

PROG = 'music-classification ablate'
EXAMPLES = """examples:
  music-classification ablate --music data/mine/music \\
      --other data/mine/other --out runs/ablation --minutes 6 --seeds 0 1
  music-classification ablate --quick   # every variant, demo data, ~2 min"""


def main(argv=None):
    parser = command_parser(PROG, describe(__doc__), EXAMPLES)
    parser.add_argument('--music', '-m', help='folder with one subfolder of '
                        'songs per artist')
    parser.add_argument('--other', '-O', help='folder of non-music sounds')
    parser.add_argument('--out', '-o', default='runs/ablation',
                        help='folder for the runs, results.md and '
                        'results.png')
    parser.add_argument('--minutes', type=float, default=6.0,
                        help='wall-clock training budget of every run')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds (each also draws its held-out songs)')
    parser.add_argument('--variants', nargs='+', default=None,
                        choices=ablation.trainable(ablation.VARIANTS),
                        help='variants to run (default: all)')
    parser.add_argument('--val-songs', type=float, default=0.34,
                        help='songs held out per artist (fraction or count)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the MFCC baseline (needs scikit-learn)')
    parser.add_argument('--quick', action='store_true',
                        help='every variant for 2 steps on a small '
                        'synthetic collection, 5.12 s windows: checks the '
                        'study runs')
    args = parser.parse_args(argv)
    iterations, extra = 1000000, []
    if args.quick:
        data = synthetic.make_demo_dataset(
            os.path.join(args.out, 'data'), seed=3, n_artists=2,
            songs_per_artist=2, song_seconds=14.0)
        args.music, args.other = data.music_dir, data.other_dir
        args.minutes, iterations, args.val_songs = None, 2, 1
        extra = ['--length', '80']  # 5.12 s windows: a smaller fc4
    elif not (args.music and args.other):
        parser.error('--music and --other are needed (or --quick)')
    ablation.run_study(args.music, args.other, args.out,
                       variants=args.variants, seeds=args.seeds,
                       minutes=args.minutes, iterations=iterations,
                       val_songs=args.val_songs, extra=extra,
                       baseline=not args.no_baseline)
    print('wrote {} and {}'.format(os.path.join(args.out, 'results.md'),
                                   os.path.join(args.out, 'results.png')))

