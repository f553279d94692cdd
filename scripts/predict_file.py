#!/usr/bin/env python
"""Name the artist of audio files (or every file in folders).

For each file: windows every --hop seconds, the vote (largest mean
probability over the windows; "Other" when a file is mostly non-music), its
probability and the top 3. --csv or
--json for tables; --artistgram DIR writes a probability timeline PNG per
file.

    python scripts/predict_file.py --model runs/demo/improved song.wav music/
"""

import argparse
import csv
import json
import os
import sys

import chainer
import matplotlib
matplotlib.use('Agg')

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification import audio, collection, plotting  # NOQA: E402
from music_classification import predict  # NOQA: E402
from music_classification.errors import MusicClassificationError  # NOQA
from music_classification.serialization import save_png  # NOQA: E402


def expand(paths):
    for path in paths:
        if os.path.isdir(path):
            from music_classification.prepare import find_audio
            found = find_audio(path)
            if not found:
                raise MusicClassificationError(
                    '{}: the folder holds no audio files'.format(path))
            yield from found
        else:
            yield path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('paths', nargs='+', help='audio files or folders')
    parser.add_argument('--model', '-M', required=True,
                        help='training output folder (model.npz, labels.json)')
    parser.add_argument('--hop', type=float, default=5.0,
                        help='seconds between window starts')
    parser.add_argument('--device', '-d', default='-1',
                        help='-1 or @numpy: CPU; 0: GPU 0')
    parser.add_argument('--resample', action='store_true',
                        help="resample files whose rate is not the model's")
    out = parser.add_mutually_exclusive_group()
    out.add_argument('--csv', action='store_true', help='CSV output')
    out.add_argument('--json', action='store_true', help='JSON output')
    parser.add_argument('--artistgram', default=None, metavar='DIR',
                        help='write a probability timeline PNG per file here')
    args = parser.parse_args(argv)

    try:
        model, names, config = collection.load_trained(args.model)
        model.to_device(chainer.get_device(args.device))
        results = []
        for path in expand(args.paths):
            y, _ = audio.load_audio(path, sr=config.sr,
                                    resample=args.resample)
            starts, probs = predict.predict_windows(model, y, config=config,
                                                    hop_seconds=args.hop)
            # "Other" takes part: a mostly non-music file says so.
            label, p, mean = predict.song_vote(probs, exclude=())
            top = sorted(range(len(names)), key=lambda k: -mean[k])[:3]
            results.append({'path': path, 'artist': names[label],
                            'probability': round(p, 4), 'windows': len(probs),
                            'top3': [[names[k], round(float(mean[k]), 4)]
                                     for k in top]})
            if args.artistgram:
                png = os.path.join(args.artistgram, os.path.splitext(
                    os.path.basename(path))[0] + '.png')
                centres = (starts + config.window_samples / 2) / config.sr
                areas = plotting.plot_timeline(centres, probs, names,
                                               title=path)
                save_png(areas[0].axes.figure, png)
                results[-1]['artistgram'] = png
    except MusicClassificationError as e:
        sys.exit('predict_file.py: {}'.format(e))
    if args.json:
        print(json.dumps(results, indent=1))
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(['path', 'artist', 'probability', 'windows', 'top1',
                         'p1', 'top2', 'p2', 'top3', 'p3'])
        for r in results:
            writer.writerow([r['path'], r['artist'], r['probability'],
                             r['windows']] + [v for pair in r['top3']
                                              for v in pair])
    else:
        for r in results:
            print('{}: {} ({:.0%})  top 3: {}'.format(
                r['path'], r['artist'], r['probability'], ', '.join(
                    '{} {:.0%}'.format(n, q) for n, q in r['top3'])))


if __name__ == '__main__':
    main()
