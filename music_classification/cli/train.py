"""``music-classification train``: train a model on a music collection.

Songs come from --music (one subfolder per artist, labels 1..N in sorted
order) and non-music sounds from --other (label 0). By default the
article's recipe: MUSIC_NET on 10.24 s windows of log(1 + mel), recorded
noise and volume augmentation, Adam(alpha=1e-4) with WeightDecay(1e-4), and
each step takes, as the original, --batch-per-song (10) windows from every
training song plus every "Other" sound once (--batch-per-class N takes N
windows per artist instead). ``--recipe improved`` trains the recipe this
project measured best when trained from random weights; ``--recipe
musicnn`` fits only the output layer of musicnn, pretrained on the Million
Song Dataset, the best on real music (see
:data:`music_classification.training.RECIPES`); a flag given explicitly
overrides a recipe's value. Whole songs are held out per artist
(--val-songs) for the Evaluator. The machinery is
:func:`music_classification.training.run_training`.
"""

import argparse
import os

from music_classification.augment import OTHER_VOLUME, SONG_VOLUME
from music_classification.cli import command_parser, fail
from music_classification.errors import MusicClassificationError
from music_classification.features import COMPRESSIONS, MUSICNN_FEATURES
from music_classification.net import HEADS, MODELS
from music_classification.training import FIT_NOISE_SNR, FIT_WEIGHTS, RECIPES

PROG = 'music-classification train'
DESCRIPTION = 'Train a model on a music collection (one folder per artist).'
EXAMPLES = """examples:
  # the article's recipe, 20 steps on the CPU
  music-classification train --music data/demo/music --other data/demo/other \\
      --out runs/article --iterations 20
  # the recipe recommended for your own music: musicnn, pretrained on the
  # Million Song Dataset, its output layer fitted (minutes, no training)
  music-classification train --recipe musicnn --music data/mine/music \\
      --other data/mine/other --out runs/mine
  # a small CNN trained from random weights, 20 minutes
  music-classification train --recipe improved --music data/mine/music \\
      --other data/mine/other --out runs/mine-cnn --time-budget 20
  # go on where a killed run stopped
  music-classification train --recipe improved --music data/mine/music \\
      --other data/mine/other --out runs/mine-cnn --time-budget 20 --resume"""


def parse_args(argv=None):
    parser = command_parser(PROG, DESCRIPTION, EXAMPLES)
    parser.add_argument('--music', '-m', required=True,
                        help='folder with one subfolder of songs per artist')
    parser.add_argument('--other', '-O', required=True,
                        help='folder of non-music sounds (class 0, "Other")')
    parser.add_argument('--noise', '-n', default=None,
                        help='noise for augmentation (.npy or audio); '
                        'default: built-in room noise')
    parser.add_argument('--out', '-o', default='runs/train',
                        help='output folder (model, labels, log, plots, '
                        'snapshots)')
    parser.add_argument('--device', '-d', default='-1',
                        help='-1 or @numpy: CPU; 0 or @cupy:0: GPU 0')
    parser.add_argument('--iterations', '-i', type=int, default=10000,
                        help='training steps')
    parser.add_argument('--time-budget', type=float, default=None,
                        help='stop after this many minutes of training (or '
                        '--iterations, whichever comes first)')
    parser.add_argument('--recipe', default='article', choices=sorted(
                        RECIPES), help='defaults for everything below: the '
                        'article\'s recipe (default), the improved one, or '
                        'musicnn: a network pretrained on the Million Song '
                        'Dataset (fetched once, 29 MB) with only its output '
                        'layer fitted (a linear probe, under a few minutes '
                        'on a CPU)')
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument('--batch-per-song', type=int, default=None,
                       help='windows per training song per step, without '
                       'replacement from its shuffled offsets (article: 10)')
    batch.add_argument('--batch-per-class', '-b', type=int, default=None,
                       help='instead: windows per artist per step, drawn '
                       'from all its songs (for many songs per artist; '
                       'faster steps on a CPU)')
    parser.add_argument('--balance-songs',
                        action=argparse.BooleanOptionalAction, default=None,
                        help='with --batch-per-class: draw each window\'s '
                        'song uniformly among its artist\'s songs, then the '
                        'window in it (default: windows uniformly, so long '
                        'songs weigh more)')
    parser.add_argument('--model', choices=sorted(MODELS), default=None,
                        help='network variant (article: music_net)')
    parser.add_argument('--pooling', action=argparse.BooleanOptionalAction,
                        default=None,
                        help='2 x 2 max pooling after each convolution of '
                        'music_net or wave')
    parser.add_argument('--batchnorm', action=argparse.BooleanOptionalAction,
                        default=None,
                        help='batch normalisation after each convolution of '
                        'music_net or wave')
    parser.add_argument('--head', choices=HEADS, default=None,
                        help='head: flatten + fc4 (the original; music_net '
                        'and wave only), mean and max over time + fc5 '
                        '(pool: small), or pool and the mean, standard '
                        'deviation and maximum of every convolution\'s '
                        'channels (pool_layers: mainly for a '
                        '--linear-probe; of musicnn, its pooling and each '
                        'channel\'s standard deviation over time)')
    parser.add_argument('--signed-sqrt',
                        action=argparse.BooleanOptionalAction, default=None,
                        help='musicnn: its output layer reads the signed '
                        'square root of each of its features')
    parser.add_argument('--width', type=int, default=None,
                        help='small_cnn: channels of its first convolution '
                        '(16)')
    parser.add_argument('--n-mels', type=int, default=None,
                        help='mel bands (article: 256)')
    parser.add_argument('--normalize', choices=['none', 'window'],
                        default=None, help='standardise each window\'s '
                        'features (article: none)')
    parser.add_argument('--spec-augment',
                        action=argparse.BooleanOptionalAction, default=None,
                        help='zero two random bands of up to 1/8 of the mel '
                        'bands and two spans of up to 1/8 of the frames of '
                        'each training window')
    parser.add_argument('--lr', type=float, default=None,
                        help='Adam\'s alpha (article: 1e-4)')
    parser.add_argument('--weight-decay', type=float, default=None,
                        help='weight decay (article: 1e-4)')
    parser.add_argument('--lr-schedule', choices=['constant', 'cosine'],
                        default=None, help='Adam\'s alpha: constant '
                        '(article) or annealed to 0 along a cosine over '
                        'the run (its --time-budget, else --iterations)')
    parser.add_argument('--mixup', type=float, default=None,
                        help='mixup: train on mixtures lam * a + (1 - lam) '
                        '* b of the batch\'s windows with the loss mixed '
                        'alike, lam ~ Beta(MIXUP, MIXUP); 0: off (article)')
    parser.add_argument('--label-smoothing', type=float, default=None,
                        help='train against (1 - EPS) * one-hot + EPS / '
                        'classes; 0: off (article)')
    parser.add_argument('--same-class-mix', type=float, default=None,
                        help='probability of mixing each training window '
                        'with another window of its class in the batch '
                        '(a * x + (1 - a) * y, a ~ U(0.3, 0.7), the label '
                        'unchanged); 0: off (article)')
    parser.add_argument('--freq-shift', type=int, default=None,
                        help='move each training window up or down the mel '
                        'axis by up to this many bands (a rough pitch '
                        'shift), the bands it leaves zeroed (the mean with '
                        '--normalize window); 0: off (article)')
    parser.add_argument('--random-eq', type=float, default=None,
                        help='add a random smooth curve along the mel axis '
                        'of each training window (a random equaliser: a '
                        'tilt of up to this much, in the units of the '
                        'features (standard deviations with --normalize '
                        'window), and two ripples of up to half of it); '
                        '0: off (article)')
    parser.add_argument('--time-stretch', type=float, default=None,
                        help='slow each training window down by up to this '
                        'fraction: a random stretch of it, zoomed to its '
                        'length along time (the tempo drops, the pitch '
                        'stays); 0: off (article)')
    parser.add_argument('--stats-weight', type=float, default=None,
                        help='after training, fit a logistic regression on '
                        'each window\'s MFCC statistics (the MFCC '
                        'baseline\'s classifier) into the model and mix its '
                        'probabilities with the network\'s by this weight; '
                        '0: off (article)')
    parser.add_argument('--members', type=int, default=None,
                        help='train this many networks side by side, each '
                        'from its own initial weights on its own loss, and '
                        'predict with their mean probability (an ensemble; '
                        'each step costs this many times one network\'s); '
                        '1: one network (article)')
    parser.add_argument('--ensemble-snapshots', type=int, default=None,
                        help='keep this many copies of the network, evenly '
                        'spaced from --ensemble-from to the end of the run, '
                        'and save their ensemble (mean probability) as the '
                        'model: a snapshot ensemble, free in training time; '
                        '1: the last network alone (article)')
    parser.add_argument('--ensemble-from', type=float, default=None,
                        help='fraction of the run (of --time-budget or '
                        '--iterations) at which the first copy of '
                        '--ensemble-snapshots is kept (default 0.5)')
    parser.add_argument('--dropout', type=float, default=None,
                        help='dropout ratio before the classifier (article: '
                        '0.5; small_cnn: 0.3)')
    parser.add_argument('--no-noise', action='store_true',
                        help='no recorded-noise augmentation (the volume '
                        'still varies)')
    parser.add_argument('--no-augment', action='store_true',
                        help='no augmentation at all: clean windows, "Other" '
                        'sounds at the start of the window')
    parser.add_argument('--other-per-batch', type=int, default=None,
                        help='"Other" clips per step, drawn at random '
                        '(default: every sound once, silence included, as '
                        'the original)')
    parser.add_argument('--init', default='v1.9', choices=['v1.9', 'v1.8'],
                        help='initial weights: the original\'s wscale as '
                        'Chainer v1.9+ read it (per-layer std, default) or '
                        'as v1.8 did (N(0, 0.02^2))')
    parser.add_argument('--init-from', metavar='FOLDER', default=None,
                        help='start from the layers of the model trained in '
                        'FOLDER (on other music, with the same --model and '
                        'features), all but its output layer, which starts '
                        'afresh for this run\'s artists (of an ensemble, '
                        'its last network)')
    parser.add_argument('--linear-probe', type=float, nargs='?',
                        const=0.1, default=None, metavar='C',
                        help='no training (unless --fine-tune): keep '
                        'every layer of the '
                        '--init-from network and fit only its output '
                        'layer, a logistic regression (inverse penalty C, '
                        'default 0.1) on the training songs\' clean windows '
                        'every half window and every "Other" sound; under '
                        'two minutes on a CPU')
    parser.add_argument('--fine-tune', action='store_true',
                        help='with --linear-probe: then train every layer '
                        'as the recipe does, starting from the fitted '
                        'output layer instead of a random one (a linear '
                        'probe, then fine-tuning), as at inference: batch '
                        'norms keep their statistics, nothing drops out')
    parser.add_argument('--fit-weights', choices=FIT_WEIGHTS,
                        default=None,
                        help='how the fitted classifiers (the statistics '
                        'classifier and a --linear-probe\'s output layer) '
                        'weigh the training windows: every window alike '
                        '(windows, the default), or every artist alike and, '
                        'within an artist, every song (songs; the "Other" '
                        'sounds count as one song)')
    parser.add_argument('--fit-shifts', type=int, default=None,
                        metavar='BANDS',
                        help='the fitted classifiers also read every '
                        'training window moved BANDS mel bands down and up '
                        '(a rough pitch shift: three rows a window; the '
                        'bands it leaves are 0, the mean of --normalize '
                        'window features); 0: only as it is (the default)')
    parser.add_argument('--fit-noise',
                        action=argparse.BooleanOptionalAction, default=None,
                        help='the fitted classifiers also read a copy of '
                        'every training window with the --noise (default: '
                        'the built-in room noise) added, {:g} to {:g} dB '
                        'below its song (a signal-to-noise ratio drawn for '
                        'each window): for a microphone in a noisy room; '
                        'twice the rows to fit'.format(*FIT_NOISE_SNR))
    parser.add_argument('--fit-volume',
                        action=argparse.BooleanOptionalAction, default=None,
                        help='the fitted classifiers also read a copy of '
                        'every training window (with --fit-noise, its noisy '
                        'copy) turned down as the original\'s volume '
                        'augmentation does: a song to {:g} to {:g} '
                        'of its amplitude, an "Other" sound to {:g} to '
                        '{:g}: for a quieter loudspeaker or a lower '
                        'input gain; without --fit-noise, twice the rows '
                        'to fit'.format(*SONG_VOLUME, *OTHER_VOLUME))
    parser.add_argument('--val-songs', type=float, default=1,
                        help='songs held out per artist (an integer), or a '
                        'fraction below 1; 0 for none')
    parser.add_argument('--seed', '-s', type=int, default=0,
                        help='seed of the initial weights, the split, the '
                        'batches and the augmentation')
    parser.add_argument('--resume', '-r', action='store_true',
                        help='continue from the latest snapshot in --out')
    parser.add_argument('--force', action='store_true',
                        help='start afresh in an --out that holds another '
                        'run (its model.npz and snapshots are removed)')
    parser.add_argument('--snapshot-every', type=int, default=500,
                        help='iterations between snapshots (the most a '
                        'killed run loses); 0: none')
    parser.add_argument('--eval-every', type=int, default=500,
                        help='iterations between held-out evaluations')
    parser.add_argument('--log-every', type=int, default=10,
                        help='iterations between log lines')
    parser.add_argument('--stride', type=int, default=3,
                        help='samples between training window starts (the '
                        'original\'s train.py: 3; its article: 5)')
    parser.add_argument('--pad-mode', choices=['reflect', 'constant'],
                        default='reflect',
                        help='STFT padding at window edges: reflect (the '
                        'original\'s librosa 0.5) or constant (zeros, '
                        'librosa 0.10+)')
    parser.add_argument('--length', type=int, default=None,
                        help='chunks of 1024 samples per window (article: '
                        '160, 10.24 s)')
    parser.add_argument('--compression', default=None,
                        choices=COMPRESSIONS,
                        help='mel compression (article: log1p; db: '
                        'decibels; musicnn: log10(1 + 10000 x))')
    parser.add_argument('--processes', '-p', type=int, default=0,
                        help='worker processes reading and augmenting '
                        'windows (MultiprocessIterator); 0: in the main '
                        'process')
    parser.add_argument('--distributed', action='store_true',
                        help='data-parallel training with ChainerMN: launch '
                        'with mpiexec -n N; every rank takes its own batch')
    parser.add_argument('--communicator', default=None,
                        choices=['naive', 'flat', 'hierarchical',
                                 'two_dimensional', 'single_node',
                                 'non_cuda_aware', 'pure_nccl'],
                        help='ChainerMN communicator (default: naive on '
                        'CPUs, pure_nccl on GPUs)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (for logs)')
    args = parser.parse_args(argv)
    for flag in ('batch_per_song', 'batch_per_class', 'other_per_batch',
                 'length', 'n_mels', 'width', 'members',
                 'ensemble_snapshots'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            fail(PROG, '--{} must be a positive integer, got {}'.format(
                flag.replace('_', '-'), value))
    for flag in ('mixup', 'freq_shift', 'random_eq', 'fit_shifts'):
        value = getattr(args, flag)
        if value is not None and value < 0:
            fail(PROG, '--{} must be 0 or more, got {}'.format(
                flag.replace('_', '-'), value))
    if args.stats_weight is not None and not 0 <= args.stats_weight <= 1:
        fail(PROG, '--stats-weight must be in [0, 1], got {}'.format(
            args.stats_weight))
    for flag in ('label_smoothing', 'same_class_mix', 'dropout',
                 'time_stretch'):
        value = getattr(args, flag)
        if value is not None and not 0 <= value < 1:
            fail(PROG, '--{} must be in [0, 1), got {}'.format(
                flag.replace('_', '-'), value))
    recipe = RECIPES[args.recipe]
    batch_given = args.batch_per_song is not None or \
        args.batch_per_class is not None
    given = [key for key in MUSICNN_FIXED if getattr(args, key) is not None]
    snapshots_given = args.ensemble_snapshots is not None
    probe = '--linear-probe' if args.linear_probe is not None else \
        '--recipe {} (a linear probe)'.format(args.recipe)
    for key, value in recipe.items():
        if batch_given and key in ('batch_per_song', 'batch_per_class',
                                   'other_per_batch'):
            continue  # a batch flag replaces the recipe's composition
        if key == 'head' and args.model != recipe['model']:
            continue  # the recipe's head is its network's, not --model's
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.members > 1 and not snapshots_given:
        args.ensemble_snapshots = 1  # --members replaces the recipe's
    if args.model == 'musicnn':
        check_musicnn(args, given)
    if args.model == 'wave' and (args.freq_shift or args.stats_weight or
                                 args.time_stretch or args.random_eq or
                                 args.fit_shifts):
        fail(PROG, '--model wave reads waveforms: --freq-shift, '
             '--time-stretch, --random-eq, --stats-weight and --fit-shifts '
             'need mel features (give --freq-shift 0 --time-stretch 0 '
             '--stats-weight 0 with --recipe improved)')
    if args.signed_sqrt and args.model != 'musicnn':
        fail(PROG, '--signed-sqrt is musicnn\'s (--model musicnn or '
             '--recipe musicnn)')
    if args.model in ('small_cnn', 'musicnn') and args.head == 'flatten':
        fail(PROG, '--head flatten is music_net\'s and wave\'s; {} takes '
             'pool{} or pool_layers'.format(args.model, ' (its own pooling)'
                                            if args.model == 'musicnn'
                                            else ''))
    for flag in ('freq_shift', 'fit_shifts'):
        if (getattr(args, flag) or 0) >= args.n_mels:
            fail(PROG, '--{} must be less than --n-mels ({}), got {}'.format(
                flag.replace('_', '-'), args.n_mels, getattr(args, flag)))
    if not 0 <= args.ensemble_from < 1:
        fail(PROG, '--ensemble-from must be in [0, 1), got {}'.format(
            args.ensemble_from))
    if args.members > 1 and args.ensemble_snapshots > 1:
        fail(PROG, '--members and --ensemble-snapshots are two kinds of '
             'ensemble; give one of them')
    if args.init_from:
        args.init_from = os.path.abspath(args.init_from)
    if args.init_from and args.members > 1:
        fail(PROG, '--init-from starts one network from a trained one; '
             'it cannot start an ensemble of --members')
    if args.linear_probe is not None:
        if not args.init_from and args.model != 'musicnn':
            fail(PROG, '--linear-probe fits the output layer of a trained '
                 'network: give it with --init-from FOLDER (or --model '
                 'musicnn, trained on the Million Song Dataset)')
        if not args.linear_probe > 0:  # nan too
            fail(PROG, '--linear-probe C must be above 0, got {}'.format(
                args.linear_probe))
        if args.distributed:
            fail(PROG, '{} fits on one process: no --distributed'.format(
                probe))
        if not args.fine_tune:  # a probe alone trains nothing
            if args.resume:
                fail(PROG, '{} does not train: no --resume (give '
                     '--fine-tune to train after it)'.format(probe))
            if snapshots_given and args.ensemble_snapshots > 1:
                fail(PROG, '{} does not train: no --ensemble-snapshots '
                     '(give --fine-tune to train after it)'.format(probe))
            args.ensemble_snapshots = 1  # the recipe's snapshots need steps
    elif args.fine_tune:
        fail(PROG, '--fine-tune trains on after a --linear-probe: give '
             'both (and --init-from FOLDER, or --model musicnn)')
    for flag in ('fit_weights', 'fit_shifts', 'fit_noise', 'fit_volume'):
        if getattr(args, flag) and args.linear_probe is None and \
                not args.stats_weight:
            fail(PROG, '--{} needs something fitted: use --recipe '
                 'musicnn (or --linear-probe), or --stats-weight above 0 '
                 '(as --recipe improved has)'.format(
                     flag.replace('_', '-')))
    if args.balance_songs and args.batch_per_class is None:
        fail(PROG, '--balance-songs needs --batch-per-class (or --recipe '
             'improved)')
    if args.val_songs >= 1 or args.val_songs == 0:
        args.val_songs = int(args.val_songs)
    return args


#: What ``--model musicnn`` fixes: the features and the network it was
#: trained with.
MUSICNN_FIXED = {'n_mels': MUSICNN_FEATURES.n_mels,
                 'length': MUSICNN_FEATURES.length,
                 'compression': MUSICNN_FEATURES.compression,
                 'normalize': MUSICNN_FEATURES.normalize,
                 'pooling': None, 'batchnorm': None, 'width': None}


def check_musicnn(args, given):
    """Refuse the flags that would change ``--model musicnn``'s features or
    network (``given``: the :data:`MUSICNN_FIXED` flags given explicitly),
    and set its features' flags to its own."""
    wrong = ['--{} {}'.format(key.replace('_', '-'), getattr(args, key))
             for key in given if getattr(args, key) != MUSICNN_FIXED[key]]
    if args.pad_mode != MUSICNN_FEATURES.pad_mode:
        wrong.append('--pad-mode {}'.format(args.pad_mode))
    if args.members > 1:
        wrong.append('--members {}'.format(args.members))
    if wrong:
        fail(PROG, '--model musicnn is one pretrained network with its own '
             'features (96 mel bands, log10(1 + 10000 x), 2.98 s windows): '
             'no {}'.format(', '.join(wrong)))
    for key, value in MUSICNN_FIXED.items():
        setattr(args, key, value)


def main(argv=None):
    """Run ``music-classification train``; ``argv`` as on the command line.

    Returns:
        int: the number of iterations done.
    """
    from music_classification import training
    args = parse_args(argv)
    try:
        return training.run_training(args)
    except MusicClassificationError as e:
        fail(PROG, e)
