import hashlib
import json
import os

import numpy as np
import pytest

from music_classification import synthetic, load_audio, log_melspectrogram
from music_classification.errors import ParameterError


def digest(root):
    h = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            h.update(name.encode())
            with open(os.path.join(folder, name), 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def test_layout(demo_data):
    assert sorted(os.listdir(demo_data.music_dir)) == list(demo_data.artists)
    for artist, songs in demo_data.songs.items():
        assert len(songs) == 2
        for path in songs:
            y, sr = load_audio(path)
            assert sr == 16000 and len(y) == 14 * 16000
            assert 0.7 < np.abs(y).max() <= 0.81
    others = os.listdir(demo_data.other_dir)
    assert len(others) == 2 * len(synthetic.OTHER_KINDS)
    for name in others:
        y, _ = load_audio(os.path.join(demo_data.other_dir, name))
        assert 1.0 <= len(y) / 16000 <= 12.0
    noise = np.load(demo_data.noise_path)
    assert noise.dtype == np.int8
    assert demo_data.class_names == ['Other'] + list(demo_data.artists)


def test_deterministic_and_idempotent(tmp_path):
    kwargs = dict(n_artists=2, songs_per_artist=1, song_seconds=3.0)
    synthetic.make_demo_dataset(tmp_path / 'a', seed=5, **kwargs)
    synthetic.make_demo_dataset(tmp_path / 'b', seed=5, **kwargs)
    synthetic.make_demo_dataset(tmp_path / 'c', seed=6, **kwargs)
    assert digest(tmp_path / 'a') == digest(tmp_path / 'b')
    assert digest(tmp_path / 'a') != digest(tmp_path / 'c')
    first = os.path.getmtime(tmp_path / 'a' / 'manifest.json')
    synthetic.make_demo_dataset(tmp_path / 'a', seed=5, **kwargs)  # reused
    assert os.path.getmtime(tmp_path / 'a' / 'manifest.json') == first
    synthetic.make_demo_dataset(tmp_path / 'a', seed=6, **kwargs)  # rewritten
    assert digest(tmp_path / 'a') == digest(tmp_path / 'c')
    with open(tmp_path / 'a' / 'manifest.json') as f:
        assert json.load(f)['seed'] == 6


def test_eight_bit_like_the_original(tmp_path):
    data = synthetic.make_demo_dataset(tmp_path, n_artists=2,
                                       songs_per_artist=1, song_seconds=2.0,
                                       subtype='PCM_U8')
    import soundfile
    assert soundfile.info(data.songs[data.artists[0]][0]).subtype == 'PCM_U8'


def test_artists_have_recognisable_styles(tmp_path):
    # Leave-one-out nearest centroid on each song's per-band mean and spread
    # of the log-mel spectrogram: far above chance (3 of 15), so an artist
    # is a style, not a coin toss.
    data = synthetic.make_demo_dataset(tmp_path, seed=1, n_artists=5,
                                  songs_per_artist=3, song_seconds=11.0)
    profiles = {}
    for artist, paths in data.songs.items():
        profiles[artist] = []
        for path in paths:
            S = log_melspectrogram(y=load_audio(path)[0][:163840])[0, 0]
            profiles[artist].append(np.concatenate([S.mean(1), S.std(1)]))
    right = 0
    for artist, songs in profiles.items():
        for i, song in enumerate(songs):
            distances = {}
            for other, other_songs in profiles.items():
                rest = [s for j, s in enumerate(other_songs)
                        if other != artist or j != i]
                distances[other] = np.linalg.norm(song - np.mean(rest, 0))
            right += min(distances, key=distances.get) == artist
    assert right >= 13


def test_songs_of_one_artist_differ():
    style = synthetic.ARTISTS[0]
    a = synthetic.synthesize_song(style, seed=1, seconds=5.0)
    b = synthetic.synthesize_song(style, seed=2, seconds=5.0)
    assert np.corrcoef(a, b)[0, 1] < 0.5


@pytest.mark.parametrize('kwargs', [dict(n_artists=1), dict(n_artists=9),
                                    dict(songs_per_artist=0)])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ParameterError):
        synthetic.make_demo_dataset(tmp_path, **kwargs)


def test_unknown_sound_kind():
    with pytest.raises(ParameterError, match='knock'):
        synthetic.synthesize_other('doorbell', seed=0)
