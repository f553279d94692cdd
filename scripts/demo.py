#!/usr/bin/env python
"""Demo: synthesise a small music collection, train MUSIC_NET, predict.

Writes a synthetic data set (four "artists" with their own styles, three
songs each, and non-music "Other" sounds) under --data, trains MUSIC_NET on
all songs but the last of each artist with the original recipe (noise and
volume augmentation, log(1 + mel), Adam 1e-4 with weight decay 1e-4,
class-balanced batches) for a few iterations on the CPU, saves the model,
and names the artist of each held-out song.
"""

import argparse
import os
import sys

import chainer
from chainer import training
from chainer.training import extensions
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification import (  # NOQA: E402
    MUSIC_NET, READ_DATASET, READ_DATASET2, FeatureConfig, load_audio,
    save_model)
from music_classification import demo, predict  # NOQA: E402
from music_classification import training as mc_training  # NOQA: E402
from music_classification.serialization import save_json  # NOQA: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', '-d', default='data/demo',
                        help='folder for the synthetic data set')
    parser.add_argument('--out', '-o', default='runs/demo',
                        help='folder for the trained model')
    parser.add_argument('--iterations', '-i', type=int, default=40,
                        help='training iterations')
    parser.add_argument('--batch-per-class', '-b', type=int, default=4,
                        help='windows per class in each batch (original: 10)')
    parser.add_argument('--artists', type=int, default=4,
                        help='number of synthetic artists (2 to 5)')
    parser.add_argument('--seed', '-s', type=int, default=0,
                        help='seed of the data, the model and the batches')
    parser.add_argument('--device', default='-1',
                        help='-1 or @numpy for the CPU, 0 or @cupy:0 for GPU 0')
    args = parser.parse_args()

    device = chainer.get_device(args.device)
    np.random.seed(args.seed)  # Chainer's initialisers draw from NumPy
    data = demo.make_demo_dataset(args.data, seed=args.seed,
                                  n_artists=args.artists)
    print('data: {} artists x {} songs in {}'.format(
        len(data.artists), len(data.songs[data.artists[0]]), data.music_dir))
    config = FeatureConfig()
    rng = np.random.default_rng(args.seed)
    classes = [[READ_DATASET2(data.other_dir, noise=data.noise_path, rng=rng,
                              label=0)]]
    held_out = []
    for label, artist in enumerate(data.artists, start=1):
        *train_songs, test_song = data.songs[artist]
        classes.append([READ_DATASET(path, noise=data.noise_path, rng=rng,
                                     label=label) for path in train_songs])
        held_out.append((artist, test_song))

    model = MUSIC_NET(n_classes=len(data.class_names),
                      input_shape=config.input_shape)
    model.to_device(device)
    device.use()
    optimizer = mc_training.make_optimizer(model)
    iterator = mc_training.balanced_iterator(
        classes, batch_per_class=args.batch_per_class, rng=rng)
    updater = training.updaters.StandardUpdater(
        iterator, optimizer, converter=mc_training.FeatureConverter(config),
        device=device, loss_func=mc_training.loss_with_report(model))
    trainer = training.Trainer(updater, (args.iterations, 'iteration'),
                               out=args.out)
    # Average loss and accuracy every 5 iterations
    trainer.extend(extensions.LogReport(trigger=(5, 'iteration')))
    # Print them as a table
    trainer.extend(extensions.PrintReport(
        ['iteration', 'main/loss', 'main/accuracy', 'elapsed_time']))
    print('training MUSIC_NET ({:,} parameters) for {} iterations of {} '
          'windows on {}'.format(sum(p.size for p in model.params()),
                                 args.iterations, iterator.batch_size, device))
    trainer.run()

    model_path = save_model(model, os.path.join(args.out, 'model.npz'))
    save_json(os.path.join(args.out, 'labels.json'),
              {'classes': data.class_names, 'features': config.to_dict()})
    print('saved {}'.format(model_path))

    print('held-out songs (mean probability over windows every 5 s):')
    correct = 0
    for artist, path in held_out:
        y, _ = load_audio(path, sr=config.sr)
        _, probs = predict.predict_windows(model, y, config=config)
        label, p, _ = predict.song_vote(probs)
        guess = data.class_names[label]
        correct += guess == artist
        print('  {:<40} -> {:<15} p={:.2f} {}'.format(
            os.path.relpath(path, args.data), guess, p,
            'right' if guess == artist else 'WRONG (true: {})'.format(artist)))
    other = sorted(os.listdir(data.other_dir))[0]
    y, _ = load_audio(os.path.join(data.other_dir, other), sr=config.sr)
    _, probs = predict.predict_windows(model, y, config=config)
    label = int(np.argmax(probs.mean(axis=0)))
    print('  {:<40} -> {:<15} p={:.2f}'.format(
        'other/' + other, data.class_names[label], probs.mean(axis=0)[label]))
    print('song accuracy: {}/{}'.format(correct, len(held_out)))


if __name__ == '__main__':
    main()
