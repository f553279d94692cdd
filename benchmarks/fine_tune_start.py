#!/usr/bin/env python
"""How far a training step moves a fitted output layer from its fit.

A linear probe (``train --linear-probe``, ``--recipe musicnn``) fits the
output layer on what the network gives at inference. ``--fine-tune`` then
trains on from it. This prints the cross-entropy and accuracy of a kept
run's network on clean windows of its own training songs (3 windows a
song, drawn with a fixed seed): at inference; in a training step with
each batch's own batch-norm statistics and dropout (how ``--fine-tune``
trained before it trained as at inference); with only one of the two;
and as ``--fine-tune`` trains now (``inference_mode_training``)::

    python -m benchmarks.fine_tune_start \\
        benchmarks/wesnoth/work/study-2346steps/musicnn-seed0
"""

import argparse
import os


def training_windows(run, per_song=3, seed=0):
    """``(x, t)``: ``per_song`` clean windows of each training song of
    ``run`` (its features, labels), at starts drawn with ``seed``."""
    import numpy as np
    from music_classification import audio, collection
    from music_classification.augment import fit_to_length
    info, config = collection.load_labels(os.path.join(run, 'labels.json'))
    rng = np.random.RandomState(seed)
    waves, labels = [], []
    for artist, paths in sorted(info['train_songs'].items()):
        for path in paths:
            y, _ = audio.load_audio(path, sr=config.sr)
            y = fit_to_length(y, max(config.window_samples, len(y)))
            for _ in range(per_song):
                start = rng.randint(0, len(y) - config.window_samples + 1)
                waves.append(y[start:start + config.window_samples])
                labels.append(info['classes'].index(artist))
    x = config(np.stack(waves).astype(np.float32))
    return x, np.array(labels, np.int32)


def losses(model, x, t):
    """``{mode: (cross-entropy, accuracy)}`` of one forward pass each."""
    import chainer
    import chainer.functions as F
    import numpy as np

    def score(train, dropout, frozen):
        np.random.seed(0)  # Chainer's dropout draws from NumPy's
        before, ratio = model.inference_mode_training, model.dropout_ratio
        model.inference_mode_training = frozen
        if not dropout:
            model.dropout_ratio = 0.0
        try:
            with chainer.using_config('train', train), \
                    chainer.no_backprop_mode():
                y = model.training_scores(x)[0]
                return (float(F.softmax_cross_entropy(y, t).array),
                        float(F.accuracy(y, t).array))
        finally:
            model.dropout_ratio = ratio
            model.inference_mode_training = before

    saved = model.copy(mode='copy')  # batch statistics move the averages
    out = {}
    for name, train, dropout, frozen in (
            ('at inference', False, False, False),
            ('training step, batch statistics and dropout', True, True,
             False),
            ('training step, batch statistics only', True, False, False),
            ('training step as --fine-tune trains now', True, True, True)):
        out[name] = score(train, dropout, frozen)
        model.copyparams(saved, copy_persistent=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', metavar='RUN',
                        help='folder of a kept run (model.npz, labels.json)')
    parser.add_argument('--per-song', type=int, default=3,
                        help='windows of each training song (default: 3)')
    args = parser.parse_args(argv)
    from music_classification import collection
    for run in args.runs:
        model = collection.load_trained(run)[0]
        x, t = training_windows(run, per_song=args.per_song)
        print('{}: {} windows of its training songs'.format(run, len(t)))
        for name, (loss, accuracy) in losses(model, x, t).items():
            print('  {:48s} loss {:.3f}  accuracy {:.3f}'.format(
                name, loss, accuracy))


if __name__ == '__main__':
    main()
