import os
import shutil

import pytest

from music_classification import MUSIC_NET, save_model
from music_classification.collection import (load_trained, save_labels,
                                             scan_collection, split_songs)
from music_classification.errors import DatasetError, ModelFileError
from music_classification.features import FeatureConfig

from conftest import tone, write_float_wav


@pytest.fixture
def music(tmp_path):
    root = tmp_path / 'music'
    for artist, n in (('b_artist', 3), ('a_artist', 4)):
        (root / artist).mkdir(parents=True)
        for k in range(n):
            write_float_wav(root / artist / 's{}.wav'.format(k),
                            tone(seconds=0.1))
    return root


def test_labels_follow_sorted_folder_names(music):
    songs = scan_collection(music)
    assert songs.class_names == ['Other', 'a_artist', 'b_artist']
    assert [os.path.basename(p) for p in songs.songs[2]] == \
        ['s0.wav', 's1.wav', 's2.wav']


def test_bad_collections(music, tmp_path):
    (music / 'c_empty').mkdir()
    with pytest.raises(DatasetError, match="artist 'c_empty'.*no audio"):
        scan_collection(music)
    one = tmp_path / 'one'
    shutil.copytree(music / 'a_artist', one / 'a_artist')
    with pytest.raises(DatasetError, match='1 artist folder.*at least 2'):
        scan_collection(one)
    with pytest.raises(DatasetError, match='no such music folder'):
        scan_collection(tmp_path / 'nothing')
    (music / 'c_empty').rmdir()
    (tmp_path / 'other').mkdir()
    with pytest.raises(DatasetError, match='"Other" sounds.*no audio'):
        scan_collection(music, tmp_path / 'other')


@pytest.mark.parametrize('val, expected', [(1, {1: 1, 2: 1}),
                                           (2, {1: 2, 2: 2}),
                                           (0.5, {1: 2, 2: 2}),
                                           (0.2, {1: 1, 2: 1}),
                                           (0, {1: 0, 2: 0})])
def test_song_split_has_no_leakage(music, val, expected):
    songs = scan_collection(music).songs
    train, held = split_songs(songs, val, seed=4)
    for label, paths in songs.items():
        assert len(held[label]) == expected[label]
        assert not set(train[label]) & set(held[label])
        assert sorted(train[label] + held[label]) == sorted(paths)
    assert split_songs(songs, val, seed=4) == (train, held)


def test_split_depends_on_the_seed(music):
    songs = scan_collection(music).songs
    picks = {tuple(split_songs(songs, 1, seed=s)[1][1]) for s in range(10)}
    assert len(picks) > 1


def test_split_needs_a_training_song(music):
    songs = scan_collection(music).songs
    with pytest.raises(DatasetError, match='3 song.*holding out 3'):
        split_songs(songs, 3)


def test_mismatched_labels_json(tmp_path):
    save_model(MUSIC_NET(n_classes=3, input_shape=(256, 81)),
               tmp_path / 'model.npz')
    config = FeatureConfig(length=40)
    save_labels(tmp_path / 'labels.json', ['Other', 'a', 'b', 'c'], config)
    with pytest.raises(ModelFileError, match='4 classes.*3 outputs'):
        load_trained(tmp_path)
    save_labels(tmp_path / 'labels.json', ['Other', 'a', 'b'],
                FeatureConfig())
    with pytest.raises(ModelFileError, match='fc4/W'):
        load_trained(tmp_path)
    (tmp_path / 'labels.json').write_text('{"classes": ')
    with pytest.raises(ModelFileError, match='not a labels file'):
        load_trained(tmp_path)
    save_labels(tmp_path / 'labels.json', ['Other', 'a', 'b'], config)
    model, names, got = load_trained(tmp_path)
    assert names == ['Other', 'a', 'b'] and got == config
