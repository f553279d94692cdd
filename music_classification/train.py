"""Train MUSIC_NET with the original recipe on Chainer's Trainer.

Songs come from --music (one subfolder per artist, labels 1..N in sorted
order) and non-music sounds from --other (label 0). Each step takes, as the
original, --batch-per-song (10) augmented windows from every training song
plus every "Other" sound once; --batch-per-class N takes N windows per
artist instead. Adam(alpha=1e-4) with WeightDecay(1e-4). Whole songs are
held out per artist (--val-songs) for the Evaluator.

    python scripts/train.py --music data/demo/music --other data/demo/other \\
        --out runs/x --device -1 --iterations 20

``--recipe improved`` trains the recipe this project recommends for a
user's own music instead (see :data:`RECIPES`); any flag given explicitly
overrides a recipe's value.

``scripts/train.py`` calls :func:`main`; ``scripts/demo.py`` too.
"""

import argparse
import functools
import hashlib
import os
import sys

import chainer
from chainer import training
from chainer.training import extensions
import numpy as np

from music_classification import collection
from music_classification import training as mc_training
from music_classification.dataset import READ_DATASET, READ_DATASET2
from music_classification.errors import MusicClassificationError
from music_classification.features import FeatureConfig
from music_classification.net import MODELS, build_model
from music_classification.serialization import save_model, writable_folder

#: The settings of each ``--recipe``. ``article``: the original's, as its
#: code had them. ``improved``: the best configuration of this project's
#: ablation study on real music (README, "Does it work on real music?").
RECIPES = {
    'article': dict(model='music_net', n_mels=256, length=160,
                    compression='log1p', normalize='none', spec_augment=False,
                    lr=1e-4, weight_decay=1e-4, batch_per_song=10,
                    batch_per_class=None, other_per_batch=None),
    'improved': dict(model='small_cnn', n_mels=128, length=48,
                     compression='db', normalize='window',
                     spec_augment=True, lr=1e-3, weight_decay=1e-4,
                     batch_per_song=None, batch_per_class=8,
                     other_per_batch=8),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='train.py', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
                        'article\'s recipe (default) or the improved one')
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument('--batch-per-song', type=int, default=None,
                       help='windows per training song per step, without '
                       'replacement from its shuffled offsets (article: 10)')
    batch.add_argument('--batch-per-class', '-b', type=int, default=None,
                       help='instead: windows per artist per step, drawn '
                       'from all its songs (for many songs per artist; '
                       'faster steps on a CPU)')
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
    parser.add_argument('--head', choices=['flatten', 'pool'], default=None,
                        help='music_net / wave head: flatten + fc4 (the '
                        'original) or mean and max over time + fc5 (small)')
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
                        'run (its snapshots are removed)')
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
                        choices=['log1p', 'sqrt', 'none', 'db'],
                        help='mel compression (article: log1p; db: '
                        'decibels)')
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
                 'length', 'n_mels', 'width'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            sys.exit('train.py: --{} must be a positive integer, got {}'
                     .format(flag.replace('_', '-'), value))
    recipe = RECIPES[args.recipe]
    batch_given = args.batch_per_song is not None or \
        args.batch_per_class is not None
    for key, value in recipe.items():
        if batch_given and key in ('batch_per_song', 'batch_per_class',
                                   'other_per_batch'):
            continue  # a batch flag replaces the recipe's composition
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.val_songs >= 1 or args.val_songs == 0:
        args.val_songs = int(args.val_songs)
    return args


def feature_config(args):
    """The :class:`FeatureConfig` of the run's flags."""
    return FeatureConfig(
        length=args.length, n_mels=args.n_mels, compression=args.compression,
        normalize=args.normalize, pad_mode=args.pad_mode,
        representation='wave' if args.model == 'wave' else 'mel')


def model_options(args):
    """Keyword arguments of :func:`~music_classification.net.build_model`.
    """
    if args.model == 'small_cnn':
        options = {'width': args.width} if args.width else {}
    else:
        options = {'init': args.init}
        for key in ('pooling', 'batchnorm', 'head'):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
    return options


def build_datasets(args, config, rank=0):
    songs = collection.scan_collection(args.music, args.other)
    train_songs, val_songs = collection.split_songs(
        songs.songs, args.val_songs, seed=args.seed)
    # Every rank augments with streams of its own; the split is shared.
    seeds = np.random.SeedSequence([args.seed, rank]).spawn(
        1 + len(songs.songs))
    common = dict(chunk=config.chunk, length=config.length,
                  expected_fs=config.sr, noise=args.noise,
                  compression=config.compression)
    train_common = dict(common, noise_augment=not args.no_noise,
                        augment=not args.no_augment)
    classes = [[READ_DATASET2(args.other, rng=np.random.default_rng(seeds[0]),
                              label=0, **train_common)]]
    for label, paths in sorted(train_songs.items()):
        rng = np.random.default_rng(seeds[label])
        classes.append([READ_DATASET(p, stride=args.stride, rng=rng,
                                     label=label, **train_common)
                        for p in paths])
    # Held-out windows every 5 s, clean (no augmentation).
    val = [READ_DATASET(p, stride=5 * config.sr, augment=False, label=label,
                        **common)
           for label, paths in sorted(val_songs.items()) for p in paths]
    return songs, train_songs, val_songs, classes, val


#: The spec of a labels.json written before variants were saved.
MUSIC_NET_SPEC = {'model': 'music_net', 'pooling': False, 'batchnorm': False,
                  'head': 'flatten'}


def _architecture(spec):
    # What must match for a snapshot to load: not the initialisation or the
    # dropout ratio.
    return {k: v for k, v in spec.items()
            if k not in ('init', 'dropout_ratio')}


def check_out_folder(args, rank, now):
    """Never overwrite another run; resume only the same run.

    Removes what an interrupted snapshot write left (Chainer writes into a
    ``tmpsnapshot_iter_*`` folder, then moves the file). Without --resume,
    a folder holding another run's labels.json or snapshots is refused
    unless --force (which removes its snapshots). With --resume, the
    run's labels.json must match ``now`` (classes, features, architecture,
    song split); each difference is named.
    """
    import glob
    import shutil
    snapshots = sorted(glob.glob(os.path.join(args.out, 'snapshot_iter_*')))
    if rank == 0:
        for tmp in glob.glob(os.path.join(args.out, 'tmpsnapshot_iter_*')):
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
                print('train.py: removed {}, left by an interrupted snapshot'
                      .format(tmp), flush=True)
    labels_path = os.path.join(args.out, 'labels.json')
    if not args.resume:
        if (snapshots or os.path.exists(labels_path)) and not args.force:
            sys.exit('train.py: {} holds another run ({}); continue it with '
                     '--resume, start over with --force, or choose another '
                     '--out'.format(args.out, ', '.join(
                         os.path.basename(p) for p in
                         ([labels_path] if os.path.exists(labels_path)
                          else []) + snapshots)))
        if rank == 0:
            for path in snapshots:  # --force: a later --resume must not
                os.remove(path)     # load the old run's state
        return
    if not snapshots:
        print('train.py: --resume: no snapshot in {}; starting from scratch'
              .format(args.out), flush=True)
    if not os.path.exists(labels_path):
        return
    info, _ = collection.load_labels(labels_path)
    then = {'classes': info['classes'], 'features': info['features'],
            'model': _architecture(info.get('model', MUSIC_NET_SPEC)),
            'train_songs': info.get('train_songs'),
            'val_songs': info.get('val_songs')}
    then['features'] = FeatureConfig.from_dict(then['features']).to_dict()
    differ = [key for key in now if then[key] is not None
              and then[key] != now[key]]
    if differ:
        sys.exit('train.py: --resume: {} was written for another run: {}'
                 .format(labels_path, '; '.join(
                     '{} {} there, {} now'.format(
                         key, _short(then[key]), _short(now[key]))
                     for key in differ)))


def _short(value):
    text = str(value)
    return text if len(text) < 200 else text[:197] + '...'


def make_iterator(args, classes, rank=0):
    """The batches of --batch-per-song (the original's) or --batch-per-class.
    """
    seed, n_processes = (args.seed, rank), args.processes or None
    if args.batch_per_class is None:
        return mc_training.song_iterator(
            classes, per_song=args.batch_per_song,
            other_per_batch=args.other_per_batch, seed=seed,
            n_processes=n_processes)
    n_other = args.other_per_batch or len(classes[0][0])
    return mc_training.balanced_iterator(
        classes, batch_per_class=[n_other] + [args.batch_per_class] * (
            len(classes) - 1), seed=seed, n_processes=n_processes)


def _communicator(args):
    """``(comm, rank, size, device)`` for this process."""
    if not args.distributed:
        return None, 0, 1, chainer.get_device(args.device)
    import chainermn
    gpu = args.device not in ('-1', '@numpy')
    name = args.communicator or ('pure_nccl' if gpu else 'naive')
    comm = chainermn.create_communicator(name)
    # One GPU per process on each machine.
    device = chainer.get_device('@cupy:{}'.format(comm.intra_rank) if gpu
                                else '@numpy')
    return comm, comm.rank, comm.size, device


def on_every_rank(comm, func, *args, **kwargs):
    """``func(*args, **kwargs)``; if it fails on one rank, exit on every rank.

    A :class:`MusicClassificationError` or ``sys.exit`` exits with one
    line. Under ChainerMN the ranks agree first (an ``allgather``, so it is
    also a barrier): a rank that exited alone would leave the others
    waiting for it forever in their first ``allreduce``.
    """
    error = None
    try:
        result = func(*args, **kwargs)
    except MusicClassificationError as e:
        result, error = None, 'train.py: {}'.format(e)
    except SystemExit as e:
        result, error = None, e.code if e.code is not None else 1
    if comm is not None:
        errors = [e for e in comm.mpi_comm.allgather(error) if e is not None]
        error = error if error is not None else (errors or [None])[0]
    if error is not None:
        sys.exit(error)
    return result


def main(argv=None):
    """Run the training; ``argv`` as on the command line.

    Returns:
        int: the number of iterations done.
    """
    args = parse_args(argv)
    try:
        config = feature_config(args)
        writable_folder(args.out)  # before minutes of loading songs
    except MusicClassificationError as e:
        sys.exit('train.py: {}'.format(e))
    comm, rank, size, device = _communicator(args)
    songs, train_songs, val_songs, classes, val = on_every_rank(
        comm, build_datasets, args, config, rank)
    np.random.seed(args.seed)  # Chainer's initialisers draw from NumPy
    model = on_every_rank(
        comm, build_model, args.model, n_classes=len(songs.class_names),
        input_shape=config.input_shape, **model_options(args))
    labels_path = os.path.join(args.out, 'labels.json')
    # The song split by artist name, as labels.json keeps it.
    split = {part: {songs.class_names[k]: v for k, v in paths.items()}
             for part, paths in (('train_songs', train_songs),
                                 ('val_songs', val_songs))}
    # Every rank checks the folder before rank 0 writes labels.json in it.
    on_every_rank(comm, check_out_folder, args, rank, dict(
        classes=songs.class_names, features=config.to_dict(),
        model=_architecture(model.spec()), **split))
    if rank == 0:
        collection.save_labels(
            labels_path, songs.class_names, config, model=model.spec(),
            recipe=dict(recipe=args.recipe, lr=args.lr,
                        weight_decay=args.weight_decay,
                        spec_augment=args.spec_augment,
                        noise=not args.no_noise,
                        batch_per_song=args.batch_per_song,
                        batch_per_class=args.batch_per_class,
                        seed=args.seed),
            **split)

    model.to_device(device)
    device.use()
    optimizer = mc_training.make_optimizer(
        model, alpha=args.lr, weight_decay=args.weight_decay, comm=comm)
    iterator = make_iterator(args, classes, rank)
    converter = mc_training.FeatureConverter(config)
    train_converter = mc_training.FeatureConverter(
        config, spec_augment=args.spec_augment,
        rng=np.random.default_rng([args.seed, rank, 2]))
    lossfun = mc_training.loss_with_report(model)
    updater = mc_training.SeededUpdater(
        iterator, optimizer, converter=train_converter, device=device,
        loss_func=lossfun, seed=(args.seed, rank))
    stop = (args.iterations, 'iteration') if args.time_budget is None else \
        mc_training.TimeBudgetTrigger(args.time_budget, args.iterations)
    trainer = training.Trainer(updater, stop, out=args.out)

    keys = ['iteration', 'main/loss', 'main/accuracy']
    if val:
        val = chainer.datasets.ConcatenatedDataset(*val)
        if comm is not None:
            # Each rank scores a shard; the results are averaged.
            import chainermn
            val = chainermn.scatter_dataset(val, comm)
        evaluator = extensions.Evaluator(
            chainer.iterators.SerialIterator(val, 16, repeat=False,
                                             shuffle=False),
            model, converter=converter, device=device, eval_func=lossfun)
        if comm is not None:
            evaluator = chainermn.create_multi_node_evaluator(evaluator, comm)
        # Loss and accuracy on the held-out songs' windows
        trainer.extend(evaluator, trigger=(args.eval_every, 'iteration'))
        keys += ['validation/main/loss', 'validation/main/accuracy']
    if args.snapshot_every:
        # Snapshot of the whole trainer, uncompressed (1 GB compresses
        # slowly); --resume loads the latest one
        snapshot = extensions.snapshot(
            filename='snapshot_iter_{.updater.iteration}', n_retains=1,
            autoload=args.resume,
            savefun=functools.partial(chainer.serializers.save_npz,
                                      compression=False))
        if comm is not None:
            # Rank 0 writes it; at resume every rank gets rank 0's state
            # (the weights are the same on all ranks, and each iterator
            # re-derives its own windows from its seed and the epoch).
            import chainermn
            snapshot = chainermn.extensions.multi_node_snapshot(
                comm, snapshot, [])
        # Last of all extensions at its iteration, after the log is written,
        # with Chainer's snapshot priority (-100): ChainerMN's wrapper would
        # otherwise run at the default priority, before LogReport.
        trainer.extend(snapshot, trigger=(args.snapshot_every, 'iteration'),
                       priority=-100)
    if rank == 0:
        # Average the reported values every --log-every iterations into
        # out/log
        trainer.extend(extensions.LogReport(trigger=(args.log_every,
                                                     'iteration')))
        # Loss and accuracy curves as PNG
        trainer.extend(extensions.PlotReport(
            [k for k in keys if k.endswith('loss')], 'iteration',
            trigger=(args.log_every, 'iteration'), file_name='loss.png'))
        trainer.extend(extensions.PlotReport(
            [k for k in keys if k.endswith('accuracy')], 'iteration',
            trigger=(args.log_every, 'iteration'), file_name='accuracy.png'))
        # Print the log as a table
        trainer.extend(extensions.PrintReport(keys + ['elapsed_time']))
        if not args.no_progress:
            # Progress bar
            trainer.extend(extensions.ProgressBar(update_interval=1))
        print('classes: {}; training songs: {}; held-out songs: {}; {} '
              'windows per step{}'.format(
                  ', '.join(songs.class_names),
                  sum(len(v) for v in train_songs.values()),
                  sum(len(v) for v in val_songs.values()),
                  iterator.batch_size,
                  '; {} ranks, {} windows per step in all'.format(
                      size, size * iterator.batch_size) if comm else ''),
              flush=True)
    trainer.run()
    if comm is not None:
        print('rank {} of {}: parameter checksum {}'.format(
            rank, size, parameter_checksum(model)), flush=True)
    if rank == 0:
        print('saved {}'.format(save_model(model, os.path.join(
            args.out, 'model.npz'))), flush=True)
    return updater.iteration


def parameter_checksum(model):
    """SHA-256 of all parameters, in name order (equal on in-sync ranks)."""
    h = hashlib.sha256()
    for name, param in sorted(model.namedparams()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(chainer.backends.cuda.to_cpu(
            param.array)).tobytes())
    return h.hexdigest()[:16]
