"""music-classification ablate: the study runs every variant, writes its
table and chart, and resumes where it stopped."""

import json
import os
import subprocess

import pytest

from music_classification import ablation

from conftest import cli


def test_quick_study_runs_every_variant_and_resumes(tmp_path):
    out = tmp_path / 'study'
    cmd = cli('ablate') + ['--quick', '--out', str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    table = (out / 'results.md').read_text()
    rows = [line.split('|')[1].strip() for line in table.splitlines()[2:]]
    # every variant but the linear probes, which need a trained network
    trained = ablation.trainable(ablation.VARIANTS)
    assert rows == ['mfcc_baseline'] + trained
    assert os.path.getsize(out / 'results.png') > 10000
    for name in trained:
        with open(out / '{}-seed0'.format(name) / 'result.json') as f:
            result = json.load(f)
        # an ensemble of K networks gets 1/K of the steps
        assert result['steps'] == max(1, 2 // result['settings']['members'])
        assert result['songs'] == 2
        assert 0 <= result['clip_accuracy'] <= 1
        assert result['parameters'] > 0 and result['model_bytes'] > 0
        # measured, then removed: a study would fill the disk otherwise
        assert not (out / '{}-seed0'.format(name) / 'model.npz').exists()
    # the wave variant really read waveforms, pooling really pooled
    with open(out / 'wave-seed0' / 'labels.json') as f:
        assert json.load(f)['features']['representation'] == 'wave'
    with open(out / 'pooling-seed0' / 'labels.json') as f:
        assert json.load(f)['model']['pooling'] is True

    # A finished study reruns nothing; a lost result is redone alone.
    os.remove(out / 'sqrt-seed0' / 'result.json')
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count('saved ') == 1
    assert (out / 'results.md').read_text().count('| sqrt |') == 1


@pytest.mark.parametrize('name, head, rooted, noisy, quieter, C', [
    # the square roots and the noisy or quieter copies off: recorded unset
    # as in the results cached before --signed-sqrt, --fit-noise and
    # --fit-volume, so that they are reused
    ('musicnn', 'pool_layers', None, None, None, 0.1),
    ('musicnn_sqrt', 'pool_layers', True, None, None, 0.03),
    ('musicnn_noise', 'pool_layers', None, True, None, 0.1),
    ('musicnn_noise_volume', 'pool_layers', None, True, True, 0.1),
    # musicnn's own pooling: recorded unset, as in the results cached
    # before --head reached musicnn, so that they are reused
    ('musicnn_pool', None, None, None, None, 0.1),
    ('musicnn_shifts', None, None, None, None, 0.1),
    ('musicnn_fine_tune', 'pool_layers', None, None, None, 0.1),
])
def test_musicnn_variants_heads(name, head, rooted, noisy, quieter, C):
    args = ablation.variant_args(name, 'music', 'other', 'out', seed=0)
    settings = ablation.run_settings(args)
    assert settings['head'] == head
    assert args.head == head or (head is None and args.head == 'pool')
    assert settings['signed_sqrt'] == rooted
    assert settings['fit_noise'] == noisy
    assert settings['fit_volume'] == quieter
    assert settings['linear_probe'] == C
    assert not ablation.needs_trained_network(name)


@pytest.mark.parametrize('flag, variant', [
    ('signed_sqrt', 'musicnn_sqrt'), ('fit_noise', 'musicnn_noise'),
    ('fit_volume', 'musicnn_noise_volume')])
def test_a_flag_off_is_recorded_as_before_the_flag(flag, variant):
    # a run cached before the flag has no such setting: reused
    args = ablation.variant_args('musicnn', 'music', 'other', 'out', seed=0,
                                 extra=['--no-' + flag.replace('_', '-')])
    assert getattr(args, flag) is False
    settings = ablation.run_settings(args)
    cached = {key: value for key, value in settings.items()
              if key != flag}
    assert ablation.same_settings(cached, settings)
    on = ablation.run_settings(ablation.variant_args(
        variant, 'music', 'other', 'out', seed=0))
    assert not ablation.same_settings(cached, on)


@pytest.mark.parametrize('variant, lr, clean', [
    ('musicnn_fine_tune', 1e-4, False),
    ('musicnn_fine_tune_clean', 1e-4, True),
    ('musicnn_fine_tune_slow', 1e-5, True)])
def test_a_fine_tuning_cached_before_it_trained_as_at_inference_is_redone(
        variant, lr, clean):
    # fine-tuning now keeps batch norms' statistics and drops nothing out:
    # a result cached with the earlier training (fine_tune: True) is not
    # reused, one cached since is
    settings = ablation.run_settings(ablation.variant_args(
        variant, 'music', 'other', 'out', seed=0))
    assert settings['fine_tune'] == ablation.FINE_TUNE_SETTING
    assert (settings['lr'], settings['no_augment']) == (lr, clean)
    assert ablation.same_settings(dict(settings), settings)
    before = dict(settings, fine_tune=True)
    assert not ablation.same_settings(before, settings)
    probe = ablation.run_settings(ablation.variant_args(
        'musicnn', 'music', 'other', 'out', seed=0))
    assert probe['fine_tune'] is False  # a probe alone: as it was


def test_a_study_trains_every_variant_but_the_linear_probes():
    trained = ablation.trainable(ablation.VARIANTS)
    assert [name for name in ablation.VARIANTS if name not in trained] == [
        'linear_probe', 'linear_probe_alone', 'linear_probe_songs',
        'linear_probe_shifts', 'linear_probe_layers', 'probe_fine_tune',
        'musicnn', 'musicnn_pool', 'musicnn_shifts', 'musicnn_fine_tune',
        'musicnn_fine_tune_clean', 'musicnn_fine_tune_slow',
        'musicnn_sqrt', 'musicnn_noise', 'musicnn_noise_volume']
    assert trained[:2] == ['article', 'wave']
    assert ablation.needs_trained_network('linear_probe')
    assert not ablation.needs_trained_network('improved')
    # musicnn's probes need no network of this study, only its own
    assert not ablation.needs_trained_network('musicnn')
    assert ablation.probes_musicnn('musicnn')
    assert not ablation.probes_musicnn('linear_probe')


def test_summary_of_seeds():
    runs = [dict(variant='a', clip_accuracy=c, song_accuracy=s, steps=10,
                 seconds_per_step=1.0, parameters=5, model_bytes=2e6)
            for c, s in ((0.5, 0.25), (0.7, 0.75))]
    row, = ablation.summarise(runs)
    assert row['clip_accuracy'] == 0.6 and row['song_accuracy'] == 0.5
    assert (row['clip_accuracy_min'], row['clip_accuracy_max']) == (0.5, 0.7)
    table = ablation.markdown_table(runs)
    assert '| a | MFCC' not in table
    assert '0.600 (0.500..0.700)' in table and '0.500 (0.250..0.750)' in table
    assert '| 10 | 1.00 | 5 | 2.0 MB |' in table
    # a run of no steps has no seconds per step, only its seconds in all
    probe = [dict(runs[0], variant='b', steps=0, seconds_per_step=31.6)]
    assert '| 0 | (32 s in all) | 5 | 2.0 MB |' in \
        ablation.markdown_table(probe)


def test_a_result_of_other_settings_is_not_reused(demo_data, tmp_path):
    # A cached result is reused only while the flags and the recipe they
    # name resolve to the same settings.
    out = str(tmp_path / 'improved-seed0')

    def run(iterations=1):
        return ablation.run_variant(
            'improved', demo_data.music_dir, demo_data.other_dir, out,
            seed=0, iterations=iterations, val_songs=1,
            extra=['--length', '16', '--noise', demo_data.noise_path])
    first = run()
    assert first['settings']['model'] == 'small_cnn'
    assert first['settings']['freq_shift'] == \
        ablation.training.RECIPES['improved']['freq_shift']
    assert run() == first  # the same settings: read back, not rerun
    path = os.path.join(out, 'result.json')
    with open(path) as f:
        stale = json.load(f)
    older = json.loads(json.dumps(stale))  # a run from before --init-from
    del older['settings']['init_from']
    older['clip_accuracy'] = -2.0
    with open(path, 'w') as f:
        json.dump(older, f)
    assert run()['clip_accuracy'] == -2.0  # still the same run: read back
    stale['settings']['lr'] = 0.5  # as if the recipe had changed since
    stale['clip_accuracy'] = -1.0
    with open(path, 'w') as f:
        json.dump(stale, f)
    again = run()
    assert again['settings'] == first['settings']
    assert again['clip_accuracy'] >= 0
    del stale['settings']  # a result from before settings were recorded
    with open(path, 'w') as f:
        json.dump(stale, f)
    assert run()['clip_accuracy'] >= 0
    assert run(iterations=2)['steps'] == 2  # another budget: run again


@pytest.mark.parametrize('cached, same', [
    ({'lr': 0.001, 'init_from': None}, True),
    # a flag added since: unset in the runs made before it
    ({'lr': 0.001}, True),
    ({'lr': 0.002, 'init_from': None}, False),
    ({'lr': 0.001, 'init_from': '/a/run'}, False),
    ({'lr': 0.001, 'init_from': None, 'gone': 1}, False),
    ({}, False),
    (None, False),
])
def test_a_setting_added_since_keeps_the_runs_made_before_it(cached, same):
    assert ablation.same_settings(
        cached, {'lr': 0.001, 'init_from': None}) is same
    if cached:  # a run that set the new flag is another run
        assert not ablation.same_settings(
            cached, {'lr': 0.001, 'init_from': '/b/run'})


@pytest.mark.parametrize('name, extra, members, steps', [
    ('improved', (), 1, 1245), ('two_members', (), 2, 622),
    ('improved', ('--members', '3'), 3, 415)])
def test_an_ensemble_gets_its_share_of_the_steps(name, extra, members,
                                                 steps):
    # A step count stands for a time budget; K networks cost K times one.
    args = ablation.variant_args(name, 'music', 'other', 'out', seed=0,
                                 iterations=1245, extra=extra)
    assert (args.members, args.iterations) == (members, steps)
    timed = ablation.variant_args(name, 'music', 'other', 'out', seed=0,
                                  minutes=20, extra=extra)
    assert timed.time_budget == 20 and timed.iterations == 1000000
    given = ablation.variant_args(name, 'music', 'other', 'out', seed=0,
                                  extra=extra + ('--iterations', '600'))
    assert given.iterations == 600 // members


@pytest.mark.parametrize('name, snapshots', [
    ('improved', 7), ('last_network', 1), ('two_members', 1),
    ('article', 1)])
def test_which_variants_save_a_snapshot_ensemble(name, snapshots):
    args = ablation.variant_args(name, 'music', 'other', 'out', seed=0)
    assert args.ensemble_snapshots == snapshots


def test_the_variants_that_cannot_start_from_a_trained_run(demo_data,
                                                           tmp_path):
    # A run of the improved recipe: 128 mel bands, decibels, the small CNN
    from music_classification import collection
    args = ablation.variant_args('improved', demo_data.music_dir,
                                 demo_data.other_dir, os.devnull, seed=0)
    collection.save_labels(str(tmp_path / 'labels.json'), ['Other', 'a', 'b'],
                           ablation.training.feature_config(args),
                           model={'model': 'small_cnn', 'width': 16})
    names = ['article', 'improved', 'mixup', 'two_members', 'mels64',
             'small_cnn', 'no_stretch', 'linear_probe']
    # other features (article: 256 bands; mels64; small_cnn: log1p, not
    # standardised), another network (article), two networks; the linear
    # probe, which needs --init-from, is checked with it
    assert ablation.unfit_for(str(tmp_path), names, demo_data.music_dir,
                              demo_data.other_dir) == [
        'article', 'two_members', 'mels64', 'small_cnn']
    # a study's own flags count too
    assert ablation.unfit_for(str(tmp_path), ['improved'],
                              demo_data.music_dir, demo_data.other_dir,
                              extra=['--length', '16']) == ['improved']
    # another network on the same features
    collection.save_labels(str(tmp_path / 'labels.json'), ['Other', 'a', 'b'],
                           ablation.training.feature_config(args),
                           model={'model': 'music_net', 'head': 'pool'})
    assert ablation.unfit_for(str(tmp_path), ['improved'],
                              demo_data.music_dir,
                              demo_data.other_dir) == ['improved']
    with pytest.raises(ablation.collection.ModelFileError,
                       match='no such file'):
        ablation.unfit_for(str(tmp_path / 'none'), names,
                           demo_data.music_dir, demo_data.other_dir)
