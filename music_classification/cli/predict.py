"""``music-classification predict``: name the artist of audio files (or
every file in folders).

For each file: windows every --hop seconds, the vote (largest mean
probability over the windows; "Other" when a file is mostly non-music), its
probability and the top 3. --csv or --json for tables; --artistgram DIR
writes a probability timeline PNG per file. A file that cannot be read gets
one line on stderr (an ``error`` field in the tables) and the others go on;
the exit status is 1 when any failed.
"""

import csv
import json
import os
import sys

import chainer

from music_classification import audio, collection, plotting, predict
from music_classification.cli import command_parser, describe
from music_classification.errors import MusicClassificationError, reason
from music_classification.serialization import save_png, writable_folder

PROG = 'music-classification predict'
EXAMPLES = """examples:
  music-classification predict --model runs/demo/improved song.flac
  music-classification predict --model runs/mine ~/Music/new --csv \\
      --artistgram artistgrams > predictions.csv"""


def expand(paths):
    """``(path, error)`` for every file named or found in a folder, once.

    ``error`` is None, or why the path cannot be read (missing, an empty
    folder): such a path is reported, and the others still predicted. A
    file named twice, or named and found in a folder given too, is
    predicted the first time only (links to one file are each predicted).
    """
    from music_classification.prepare import find_audio
    seen = set()

    def first(f):
        key = os.path.abspath(f)
        new = key not in seen
        seen.add(key)
        return new
    for path in paths:
        if os.path.isdir(path):
            found = find_audio(path)
            if not found:
                yield path, 'the folder holds no audio files'
            for f in found:
                if first(f):
                    yield f, None
        elif not os.path.exists(path):
            yield path, 'no such file or folder'
        elif first(path):
            yield path, None


def artistgram_name(path, root):
    """A PNG name for ``path`` that no other input shares.

    The path relative to the current folder (or absolute, outside it), its
    folders joined by ``__``: ``a/x.wav`` and ``b/x.wav`` give ``a__x.png``
    and ``b__x.png``.
    """
    rel = os.path.relpath(os.path.abspath(path))
    if rel.startswith(os.pardir):
        rel = os.path.abspath(path).lstrip(os.sep)
    stem = os.path.splitext(rel)[0].replace(os.sep, '__')
    return os.path.join(root, stem + '.png')


class Output(object):
    """Prints each file's result as soon as it is ready."""

    def __init__(self, kind):
        self.kind = kind
        self.count = 0
        if kind == 'csv':
            self.writer = csv.writer(sys.stdout)
            self.writer.writerow(['path', 'artist', 'probability', 'windows',
                                  'top1', 'p1', 'top2', 'p2', 'top3', 'p3',
                                  'error'])
        elif kind == 'json':
            sys.stdout.write('[')

    def __call__(self, r):
        if self.kind == 'json':
            sys.stdout.write((',\n' if self.count else '\n')
                             + json.dumps(r))
        elif self.kind == 'csv':
            if 'error' in r:
                self.writer.writerow([r['path']] + [''] * 9 + [r['error']])
            else:
                self.writer.writerow(
                    [r['path'], r['artist'], r['probability'], r['windows']]
                    + [v for pair in r['top3'] for v in pair] + [''])
        elif 'error' not in r:
            print('{}: {} ({:.0%})  top 3: {}'.format(
                r['path'], r['artist'], r['probability'], ', '.join(
                    '{} {:.0%}'.format(n, q) for n, q in r['top3'])))
        if 'error' in r:  # one line on stderr whatever the format
            print(PROG + ': {}: {}'.format(r['path'], r['error']),
                  file=sys.stderr)
        sys.stdout.flush()
        self.count += 1

    def close(self):
        if self.kind == 'json':
            print('\n]')


def predict_file(path, model, names, config, args):
    y, _ = audio.load_audio(path, sr=config.sr, resample=args.resample)
    starts, probs = predict.predict_windows(model, y, config=config,
                                            hop_seconds=args.hop)
    # "Other" takes part: a mostly non-music file says so.
    label, p, mean = predict.song_vote(probs, exclude=())
    top = sorted(range(len(names)), key=lambda k: -mean[k])[:3]
    result = {'path': path, 'artist': names[label],
              'probability': round(p, 4), 'windows': len(probs),
              'top3': [[names[k], round(float(mean[k]), 4)] for k in top]}
    if args.artistgram:
        png = artistgram_name(path, args.artistgram)
        centres = (starts + config.window_samples / 2) / config.sr
        areas = plotting.plot_timeline(centres, probs, names, title=path)
        save_png(areas[0].axes.figure, png)
        result['artistgram'] = png
    return result


def main(argv=None):
    parser = command_parser(PROG, describe(__doc__), EXAMPLES)
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
        predict.check_hop(args.hop, config)
        if args.artistgram:
            writable_folder(args.artistgram, '--artistgram')
        device = chainer.get_device(args.device)
        model.to_device(device)
        device.use()
    except MusicClassificationError as e:
        sys.exit(PROG + ': {}'.format(e))
    output = Output('json' if args.json else 'csv' if args.csv else 'text')
    items = list(expand(args.paths))
    failed = 0
    for n, (path, error) in enumerate(items, start=1):
        if len(items) > 1:
            print('[{}/{}] {}'.format(n, len(items), path), file=sys.stderr,
                  flush=True)
        if error is None:
            try:
                output(predict_file(path, model, names, config, args))
                continue
            except (MusicClassificationError, OSError) as e:
                error = reason(e, path)
        output({'path': path, 'error': error})
        failed += 1
    output.close()
    if failed:
        sys.exit(PROG + ': {} of {} files failed'.format(
            failed, len(items)))

