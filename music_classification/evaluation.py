"""Scoring a trained model on a folder of songs (and "Other" sounds)."""

import os

import numpy as np

from music_classification import audio, predict
from music_classification.collection import OTHER
from music_classification.errors import (
    DatasetError, MusicClassificationError, reason)


def evaluate(model, class_names, config, music_dir, other_dir=None,
             hop_seconds=5.0, resample=False):
    """Clip and song accuracy of ``model`` on a folder in the training layout.

    Every artist folder under ``music_dir`` must be one of ``class_names``.
    Windows start every ``hop_seconds``; a clip is right when its most
    probable class (``Other`` included) is the true one; a song is right when
    the largest mean probability over its windows, ``Other`` left out of the
    vote, is its artist's. "Other" sounds count in the clip figures only.

    Returns:
        dict: ``clip_accuracy``, ``song_accuracy``, ``clips``, ``songs``,
        ``confusion`` (clip level, rows true, columns predicted),
        ``per_class`` precision and recall (clip level), ``class_names``
        and ``files`` (one entry per file with its vote).
    """
    songs = {}
    for artist in sorted(os.listdir(music_dir)):
        folder = os.path.join(music_dir, artist)
        if not artist.startswith('.') and os.path.isdir(folder):
            songs[artist] = audio.list_audio_files(folder)
    if not songs:
        raise DatasetError('{}: no artist folders'.format(music_dir))
    others = None if other_dir is None else audio.list_audio_files(other_dir)
    return evaluate_songs(model, class_names, config, songs, others,
                          hop_seconds=hop_seconds, resample=resample)


def evaluate_songs(model, class_names, config, songs, others=None,
                   hop_seconds=5.0, resample=False, progress=None):
    """:func:`evaluate` on lists of files instead of folders.

    A file that cannot be read (missing, not audio, NaN samples, another
    sample rate without ``resample``) is skipped and listed in the result's
    ``skipped`` with the reason; it counts in no figure.

    Args:
        songs (dict): artist name -> list of song paths (for example the
            ``val_songs`` of a training run's ``labels.json``).
        others (list or None): paths of "Other" sounds.
        progress (callable or None): called with ``(n, total, path)``
            before each file.
    """
    index = {name: label for label, name in enumerate(class_names)}
    items = []
    for artist, paths in sorted(songs.items()):
        if artist not in index or index[artist] == 0:
            raise DatasetError(
                'artist {!r} is not one of the model\'s classes ({})'.format(
                    artist, ', '.join(class_names[1:])))
        items += [(path, index[artist]) for path in paths]
    items += [(path, 0) for path in others or []]

    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    files, skipped = [], []
    for n, (path, label) in enumerate(items, start=1):
        if progress is not None:
            progress(n, len(items), path)
        try:
            y, _ = audio.load_audio(path, sr=config.sr, resample=resample)
        except MusicClassificationError as e:
            skipped.append({'path': path, 'error': reason(e, path)})
            continue
        _, probs = predict.predict_windows(model, y, config=config,
                                           hop_seconds=hop_seconds)
        for guess in probs.argmax(axis=1):
            confusion[label, guess] += 1
        # Songs vote among the artists; an "Other" sound among all classes.
        vote, p, _ = predict.song_vote(probs, exclude=(0,) if label else ())
        files.append({'path': path, 'true': class_names[label],
                      'predicted': class_names[vote], 'probability': p,
                      'windows': int(len(probs))})
    songs = [f for f in files if f['true'] != OTHER]
    if not files:
        raise DatasetError('no file could be scored ({} skipped)'.format(
            len(skipped)))
    per_class = {}
    for label, name in enumerate(class_names):
        predicted = confusion[:, label].sum()
        actual = confusion[label].sum()
        per_class[name] = {
            'precision': float(confusion[label, label] / predicted)
            if predicted else None,
            'recall': float(confusion[label, label] / actual)
            if actual else None,
            'clips': int(actual)}
    return {
        'clip_accuracy': float(np.trace(confusion) / confusion.sum()),
        'song_accuracy': float(np.mean([f['true'] == f['predicted']
                                        for f in songs])) if songs else None,
        'clips': int(confusion.sum()), 'songs': len(songs),
        'confusion': confusion.tolist(), 'class_names': list(class_names),
        'per_class': per_class, 'files': files, 'skipped': skipped,
    }


def summary_line(result):
    """The machine-readable last line of ``music-classification evaluate``."""
    line = ('clip_accuracy={:.3f} song_accuracy={} songs={} clips={}'.format(
        result['clip_accuracy'], '-' if result['song_accuracy'] is None
        else '{:.3f}'.format(result['song_accuracy']), result['songs'],
        result['clips']))
    if result.get('skipped'):
        line += ' skipped={}'.format(len(result['skipped']))
    return line
