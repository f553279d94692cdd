#!/usr/bin/env python
"""Each member of a saved ensemble alone, against the whole ensemble.

A model saved with ``--ensemble-snapshots K`` (the improved recipe) or
``--members K`` is an ``ENSEMBLE`` of K networks. For each run folder given,
every member is scored alone on the run's held-out songs (its
``labels.json``), with the model's statistics classifier mixed in as the
model mixes it, and then the whole ensemble, on the same 10.24 s clips
every 5 s as ``music-classification evaluate``. With
``--ensemble-snapshots`` the last member is the network at the end of the
run: the model that run would have saved without the ensemble.

    python -m benchmarks.ensemble_members \\
        benchmarks/wesnoth/work/study-2346steps/improved-seed0
"""

import os

import chainer


def member_alone(model, i):
    """Member ``i`` of ``model`` as a network of its own, with ``model``'s
    statistics classifier."""
    from music_classification.net import build_model
    spec = dict(model.spec())
    spec.pop('members')
    net = build_model(n_classes=model.n_classes,
                      input_shape=model.input_shape, **spec)
    arrays = {}
    chainer.serializers.DictionarySerializer(arrays).save(model[i])
    for name in ('stats_W', 'stats_b', 'stats_mean', 'stats_scale'):
        if hasattr(model, name):
            arrays[name] = getattr(model, name)
    chainer.serializers.NpzDeserializer(arrays).load(net)
    return net


def runs_parser(doc):
    """The flags of a benchmark over kept training runs (their folders),
    its help from ``doc`` (``real_music.doc_parser``)."""
    from benchmarks.real_music import doc_parser
    parser = doc_parser(doc)
    parser.add_argument('runs', nargs='+', help='training run folders '
                        '(model.npz and labels.json)')
    return parser


def main(argv=None):
    from music_classification import collection, evaluation
    from music_classification.net import ENSEMBLE
    parser = runs_parser(__doc__)
    args = parser.parse_args(argv)
    print('| run | model | clip | song |\n| --- | --- | --- | --- |')
    for run in args.runs:
        model, names, config = collection.load_trained(run)
        if not isinstance(model, ENSEMBLE):
            parser.error('{}: its model is one network, not an ensemble'
                         .format(run))
        info, _ = collection.load_labels(os.path.join(run, 'labels.json'))
        models = [('member {} alone'.format(i + 1), member_alone(model, i))
                  for i in range(len(model))]
        for label, net in models + [('the ensemble', model)]:
            r = evaluation.evaluate_songs(net, names, config,
                                          info['val_songs'])
            print('| {} | {} | {:.3f} | {:.3f} |'.format(
                os.path.basename(os.path.normpath(run)), label,
                r['clip_accuracy'], r['song_accuracy']), flush=True)


if __name__ == '__main__':
    main()
