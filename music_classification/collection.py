"""A music collection on disk, its song-level split, a trained model folder.

Layout (see ``data/README.md``): ``MUSIC/<artist>/<song>`` with labels
1..N in sorted artist-folder order, and ``OTHER/<sound>`` for class 0. A
trained model folder holds ``model.npz`` and ``labels.json`` (class names,
feature parameters and the song split).
"""

import dataclasses
import json
import os

import numpy as np

from music_classification import audio
from music_classification.errors import (AudioFileError, DatasetError,
                                         ModelFileError)
from music_classification.features import FeatureConfig
from music_classification.serialization import load_model, save_json

OTHER = 'Other'


@dataclasses.dataclass
class Collection:
    """Songs per label and the "Other" sounds."""

    music_dir: str
    other_dir: str
    class_names: list  # ['Other', artist1, ...]; index = label
    songs: dict        # label (1..N) -> sorted list of song paths


def scan_collection(music_dir, other_dir=None, min_artists=2):
    """List the artists and their songs.

    Raises:
        DatasetError: the music folder is missing, has fewer than
            ``min_artists`` artist folders, or an artist folder holds no
            audio; the "Other" folder holds no audio.
    """
    music_dir = os.fspath(music_dir)
    if not os.path.isdir(music_dir):
        raise DatasetError('{}: no such music folder'.format(music_dir))
    artists = sorted(name for name in os.listdir(music_dir)
                     if not name.startswith('.')
                     and os.path.isdir(os.path.join(music_dir, name)))
    if len(artists) < min_artists:
        raise DatasetError(
            '{}: found {} artist folder(s) ({}); need at least {} (one '
            'subfolder per artist)'.format(music_dir, len(artists),
                                           ', '.join(artists) or 'none',
                                           min_artists))
    songs = {}
    for label, artist in enumerate(artists, start=1):
        try:
            songs[label] = audio.list_audio_files(
                os.path.join(music_dir, artist))
        except AudioFileError as e:
            raise DatasetError('artist {!r}: {}'.format(artist, e)) from None
    if other_dir is not None:
        try:
            audio.list_audio_files(other_dir)
        except AudioFileError as e:
            raise DatasetError('"Other" sounds: {}'.format(e)) from None
    return Collection(music_dir, None if other_dir is None
                      else os.fspath(other_dir), [OTHER] + artists, songs)


def split_songs(songs, val_songs=1, seed=0):
    """Hold out whole songs per artist, deterministically from ``seed``.

    Args:
        songs (dict): label -> list of song paths.
        val_songs (int or float): songs held out per artist, or a fraction
            (0 < f < 1) of each artist's songs (at least one); 0 holds out
            nothing.

    Returns:
        tuple: ``(train, val)`` dicts label -> list of paths; no song is in
        both.

    Raises:
        DatasetError: an artist would be left with no training song.
    """
    train, val = {}, {}
    for label, paths in sorted(songs.items()):
        paths = sorted(paths)
        if isinstance(val_songs, float) and 0 < val_songs < 1:
            k = max(1, int(round(val_songs * len(paths))))
        else:
            k = int(val_songs)
        if k < 0 or k >= len(paths):
            raise DatasetError(
                '{}: {} song(s); holding out {} leaves none to train on: add '
                'songs, move the folder out, or hold out fewer (--val-songs)'
                .format(os.path.dirname(paths[0]), len(paths), k))
        order = np.random.default_rng([seed, label]).permutation(len(paths))
        val[label] = sorted(paths[i] for i in order[:k])
        train[label] = sorted(paths[i] for i in order[k:])
    return train, val


def save_labels(path, class_names, config, **extra):
    """Write ``labels.json``: class names, feature parameters, ``extra``."""
    info = {'classes': list(class_names), 'features': config.to_dict()}
    info.update(extra)
    return save_json(path, info)


def load_labels(path):
    """Read ``labels.json`` as ``(info dict, FeatureConfig)``."""
    path = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
        classes = info['classes']
        config = FeatureConfig.from_dict(info['features'])
    except FileNotFoundError:
        raise ModelFileError('{}: no such file'.format(path)) from None
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError('{}: not a labels file ({}: {})'.format(
            path, type(e).__name__, e)) from None
    if not isinstance(classes, list) or len(classes) < 2:
        raise ModelFileError('{}: "classes" must list at least two names'
                             .format(path))
    return info, config


def load_trained(model_dir):
    """Load ``model.npz`` with its ``labels.json`` from a training run.

    Returns:
        tuple: ``(model, class_names, config)``.

    Raises:
        ModelFileError: either file is missing or unreadable, or the two do
            not belong together (class count or input shape differ).
    """
    model_dir = os.fspath(model_dir)
    labels_path = os.path.join(model_dir, 'labels.json')
    model_path = os.path.join(model_dir, 'model.npz')
    info, config = load_labels(labels_path)
    # The variant and its options (a labels.json without them: MUSIC_NET).
    model = load_model(model_path, spec=info.get('model'),
                       input_shape=config.input_shape)
    if model.n_classes != len(info['classes']):
        raise ModelFileError(
            '{} lists {} classes but {} has {} outputs: they come from '
            'different runs'.format(labels_path, len(info['classes']),
                                    model_path, model.n_classes))
    return model, info['classes'], config
