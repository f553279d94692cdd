"""``music-classification demo``: synthesise a small collection, train the
recipes, name the held-out songs' artists.

Writes a synthetic data set (four "artists" with their own styles, three
songs each, and non-music "Other" sounds; :mod:`music_classification.
synthetic`) under --data, trains MUSIC_NET with the original recipe (noise
and volume augmentation, log(1 + mel), Adam 1e-4 with weight decay 1e-4,
per-song batches) and then the improved recipe (--recipe improved) for a
few iterations each on the CPU, fits musicnn's output layer (--recipe
musicnn; its weights are fetched the first time), with one song per artist
held out, and names the artist of each held-out song with each model.
"""

import os

from music_classification import collection, load_audio, predict, synthetic
from music_classification.cli import command_parser, train

PROG = 'music-classification demo'
EXAMPLES = """examples:
  music-classification demo                    # the three recipes, ~2 minutes
  music-classification demo --recipes improved --iterations 100"""


def main(argv=None):
    parser = command_parser(
        PROG, 'Synthesise a small collection, train the recipes '
        'and name the held-out songs\' artists.',
        EXAMPLES)
    parser.add_argument('--data', '-d', default='data/demo',
                        help='folder for the synthetic data set')
    parser.add_argument('--out', '-o', default='runs/demo',
                        help='folder for the trained models (article/, '
                        'improved/ and musicnn/ in it)')
    parser.add_argument('--iterations', '-i', type=int, default=40,
                        help='training iterations of each recipe')
    parser.add_argument('--batch-per-song', '-b', type=int, default=2,
                        help='windows per training song in each batch, plus '
                        'every "Other" sound once (original: 10)')
    parser.add_argument('--artists', type=int, default=4,
                        help='number of synthetic artists (2 to 5)')
    parser.add_argument('--recipes', nargs='+',
                        default=['article', 'improved', 'musicnn'],
                        choices=['article', 'improved', 'musicnn'],
                        help='recipes to train and compare')
    parser.add_argument('--seed', '-s', type=int, default=0,
                        help='seed of the data, the model and the batches')
    parser.add_argument('--device', default='-1',
                        help='-1 or @numpy: the CPU; 0 or @cupy:0: GPU 0')
    args = parser.parse_args(argv)

    data = synthetic.make_demo_dataset(args.data, seed=args.seed,
                                  n_artists=args.artists)
    print('data: {} artists x {} songs in {}'.format(
        len(data.artists), len(data.songs[data.artists[0]]), data.music_dir))
    scores = {}
    for recipe in args.recipes:
        out = os.path.join(args.out, recipe)
        print('\n== recipe {}: {}'.format(recipe, RECIPES[recipe]))
        train.main([
            '--music', data.music_dir, '--other', data.other_dir,
            '--noise', data.noise_path, '--out', out, '--recipe', recipe,
            '--device', args.device, '--iterations', str(args.iterations),
            '--batch-per-song', str(args.batch_per_song), '--val-songs', '1',
            '--seed', str(args.seed), '--log-every', '5',
            '--eval-every', str(args.iterations), '--snapshot-every', '0',
            '--no-progress', '--force'])
        scores[recipe] = report(out, data, args.data)
    print('\nsong accuracy: ' + ', '.join(
        '{} {}/{}'.format(r, *scores[r]) for r in args.recipes))


RECIPES = {'article': 'MUSIC_NET, 10.24 s windows, log(1 + mel), Adam 1e-4',
           'improved': 'small CNN, 3 s windows, dB, standardised, masks, '
                       'band shifts, time stretch, Adam 1e-3, 7 snapshots, '
                       '+ MFCC statistics',
           'musicnn': 'musicnn pretrained on the Million Song Dataset, '
                      'only its output layer fitted (no training)'}


def report(out, data, root):
    """Name the artist of each held-out song; returns (right, songs)."""
    model, class_names, config = collection.load_trained(out)
    info, _ = collection.load_labels(os.path.join(out, 'labels.json'))
    print('held-out songs (mean probability over clips every 5 s):')
    correct = total = 0
    for artist, paths in sorted(info['val_songs'].items()):
        for path in paths:
            y, _ = load_audio(path, sr=config.sr)
            _, probs = predict.predict_windows(model, y, config=config)
            label, p, _ = predict.song_vote(probs)
            guess = class_names[label]
            correct += guess == artist
            total += 1
            print('  {:<40} -> {:<15} p={:.2f} {}'.format(
                os.path.relpath(path, root), guess, p,
                'right' if guess == artist else
                'WRONG (true: {})'.format(artist)))
    other = sorted(os.listdir(data.other_dir))[0]
    y, _ = load_audio(os.path.join(data.other_dir, other), sr=config.sr)
    _, probs = predict.predict_windows(model, y, config=config)
    label, p, _ = predict.song_vote(probs, exclude=())
    print('  {:<40} -> {:<15} p={:.2f}'.format(
        'other/' + other, class_names[label], p))
    print('song accuracy: {}/{}'.format(correct, total))
    return correct, total

