"""The original's training recipe on Chainer's own machinery.

* :func:`song_iterator`: Chainer's ``SerialIterator`` or
  ``MultiprocessIterator`` with a :class:`SongOrderSampler`: the original's
  batches. Every step takes ``per_song`` windows from every training song
  (the original: 10 from each of its 24 songs), in the order of the song's
  shuffled window offsets, plus every "Other" sound exactly once, in a
  random order (the original: 38 sounds and the silent clip, so 279 windows
  a step).
* :func:`balanced_iterator`: the same iterators with a
  :class:`BalancedOrderSampler`: every step takes ``batch_per_class`` random
  windows from every class, whatever its number of songs (for collections
  with many songs per artist).
* :class:`FeatureConverter`: stacks the examples' waveforms on the training
  device and computes the features there, batched, with the package's one
  feature function (on the GPU when training on the GPU), with
  :func:`mix_same_class`'s mixtures, :func:`shift_bands`' band shifts and
  :func:`spec_augment`'s masks for training batches if asked.
* :func:`fit_statistics_classifier`: after training, the logistic
  regression on MFCC statistics that ``--stats-weight`` mixes into the
  model's predictions.
* :func:`fit_output_layer`: instead of training (``--linear-probe``), the
  output layer of a trained network fitted as a logistic regression. Both
  fits weigh every window alike, or (``--fit-weights songs``) every class
  and song alike (:func:`song_weights`).
* :func:`make_optimizer`: Adam(alpha=1e-4) with WeightDecay(1e-4).
* :func:`loss_with_report`: the loss function for ``StandardUpdater``; it
  reports ``loss`` and ``accuracy`` for ``LogReport``.

The whole run of ``music-classification train`` is :func:`run_training`,
in named steps: :data:`RECIPES` (the flags' defaults), :func:`build_datasets`
(the song split, one ``READ_DATASET`` per training song), the out folder's
checks (:func:`check_out_folder`, on every rank under ChainerMN:
:func:`on_every_rank`), then :func:`train_network`: :func:`build_trainer`,
:func:`add_evaluator`, :func:`add_snapshots` and :func:`add_reports` (or,
with ``--linear-probe``, :func:`fit_output_layer` instead).
"""

import functools
import glob
import hashlib
import os
import shutil
import sys

import chainer
import chainer.functions as F
from chainer.training import extensions
import numpy as np

from music_classification import audio, collection, pretrained
from music_classification.augment import OTHER_VOLUME, SONG_VOLUME
from music_classification.dataset import READ_DATASET, READ_DATASET2
from music_classification.errors import (
    DatasetError, MusicClassificationError, ParameterError)
from music_classification.features import MUSICNN_FEATURES, FeatureConfig
from music_classification.net import (ENSEMBLE, OUTPUT_LAYER, build_model,
                                      copy_feature_layers)
from music_classification.serialization import save_model, writable_folder


class BalancedOrderSampler(chainer.iterators.OrderSampler):
    """Class-balanced batches for Chainer's own iterators.

    The iterator's dataset is the concatenation of the classes' examples,
    class by class (``class_sizes[c]`` examples for class ``c``). Every
    ``batch_size = sum(batch_per_class)`` consecutive positions of the order
    hold ``batch_per_class[c]`` examples of class ``c``, drawn uniformly (with
    replacement) among that class's examples, whatever song they come from
    (``music-classification train --batch-per-class``; the original's
    batches are :class:`SongOrderSampler`'s), or, with ``song_sizes``,
    from a song drawn uniformly among the class's songs and then a window
    drawn uniformly in that song (``--balance-songs``: a long song no longer
    outweighs a short one). An epoch is ``batches_per_epoch`` batches.

    The order of epoch ``e`` depends only on ``(seed, e)``, so an iterator
    restored from a snapshot (:func:`balanced_iterator`) re-derives it, and
    data-parallel ranks seeded ``(seed, rank)`` draw different windows while
    sharing one snapshot.

    Args:
        class_sizes (list of int): examples per class, in dataset order.
        batch_per_class (int or list of int): examples per class per batch.
        batches_per_epoch (int): batches in one epoch.
        seed (int or tuple of int): seed of the window choice.
        song_sizes (list of list of int or None): for each class, the
            examples of each of its datasets (songs), which must add up to
            ``class_sizes``; ``None``: windows drawn whatever their song.
    """

    def __init__(self, class_sizes, batch_per_class, batches_per_epoch=100,
                 seed=0, song_sizes=None):
        self.class_sizes = [int(n) for n in class_sizes]
        for label, n in enumerate(self.class_sizes):
            if n <= 0:
                raise DatasetError('class {} has no examples'.format(label))
        self.song_sizes = None
        if song_sizes is not None:
            self.song_sizes = [np.asarray(sizes, dtype=np.int64)
                               for sizes in song_sizes]
            if [int(sizes.sum()) for sizes in self.song_sizes] != \
                    self.class_sizes or \
                    min(sizes.min() for sizes in self.song_sizes) <= 0:
                raise DatasetError('song sizes {} do not make up the class '
                                   'sizes {}'.format(song_sizes,
                                                     self.class_sizes))
        if np.ndim(batch_per_class) == 0:
            batch_per_class = [batch_per_class] * len(self.class_sizes)
        self.batch_per_class = [int(k) for k in batch_per_class]
        self.batch_size = sum(self.batch_per_class)
        self.offsets = np.concatenate([[0], np.cumsum(self.class_sizes)[:-1]])
        self.batches_per_epoch = int(batches_per_epoch)
        self.seed = tuple(np.atleast_1d(seed).astype(int).tolist())
        self.epoch = 0  # the epoch whose order the next call returns

    def order_for(self, epoch):
        """The order of one epoch."""
        rng = np.random.default_rng(self.seed + (int(epoch),))
        batches = []
        for _ in range(self.batches_per_epoch):
            for label, (offset, size, k) in enumerate(zip(
                    self.offsets, self.class_sizes, self.batch_per_class)):
                if self.song_sizes is None:
                    batches.append(offset + rng.integers(0, size, size=k))
                    continue
                sizes = self.song_sizes[label]
                starts = offset + np.cumsum(sizes) - sizes
                songs = rng.integers(0, len(sizes), size=k)
                batches.append(starts[songs] + rng.integers(0, sizes[songs]))
        return np.concatenate(batches).astype(np.intp)

    def __call__(self, current_order, current_position):
        order = self.order_for(self.epoch)
        self.epoch += 1
        return order


class SongOrderSampler(chainer.iterators.OrderSampler):
    """The original's batches for Chainer's own iterators.

    The iterator's dataset is the concatenation of the "Other" datasets
    (``other_sizes``) and then the songs (``song_sizes``, one dataset per
    song, any class). Every batch holds, in this order:

    * every "Other" example exactly once, in a fresh random order (or, with
      ``other_per_batch``, that many drawn uniformly with replacement);
    * ``per_song`` windows of every song, taken in order from the song's
      shuffled window offsets, without replacement. As in the original, a
      cycle (the original's epoch) ends when the song with the fewest
      windows runs out; then every song is shuffled again. A song with fewer
      than ``per_song`` windows repeats its shuffled windows.

    The order of each of Chainer's epochs (``batches_per_epoch`` batches)
    depends only on ``(seed, epoch)``: an iterator restored from a snapshot
    re-derives it, and data-parallel ranks seeded ``(seed, rank)`` draw
    different windows.

    Args:
        other_sizes (list of int): examples of each "Other" dataset.
        song_sizes (list of int): windows of each song.
        per_song (int): windows per song per batch (the original: 10).
        other_per_batch (int or None): ``None``: every "Other" example once.
        batches_per_epoch (int): batches in one of Chainer's epochs.
        seed (int or tuple of int): seed of the orders.
    """

    def __init__(self, other_sizes, song_sizes, per_song=10,
                 other_per_batch=None, batches_per_epoch=100, seed=0):
        self.other_sizes = [int(n) for n in other_sizes]
        self.song_sizes = [int(n) for n in song_sizes]
        if not self.song_sizes or min(self.song_sizes) <= 0:
            raise DatasetError('every song needs at least one window')
        self.n_other = int(sum(self.other_sizes))
        if self.n_other <= 0:
            raise DatasetError('class 0 ("Other") has no examples')
        self.per_song = _positive(per_song, 'windows per song')
        self.other_per_batch = None if other_per_batch is None else \
            _positive(other_per_batch, '"Other" clips per batch')
        self.batch_size = (self.other_per_batch or self.n_other) + \
            self.per_song * len(self.song_sizes)
        self.song_offsets = self.n_other + np.concatenate(
            [[0], np.cumsum(self.song_sizes)[:-1]]).astype(np.int64)
        # Batches in one cycle of the songs' shuffled offsets.
        self.steps_per_cycle = max(1, min(self.song_sizes) // self.per_song)
        self.batches_per_epoch = int(batches_per_epoch)
        self.seed = tuple(np.atleast_1d(seed).astype(int).tolist())
        self.epoch = 0  # the epoch whose order the next call returns

    def _song_order(self, song, cycle):
        # The song's shuffled window offsets in cycle ``cycle``.
        rng = np.random.default_rng(self.seed + (1, song, int(cycle)))
        return rng.permutation(self.song_sizes[song])

    def order_for(self, epoch):
        """The order of one of Chainer's epochs."""
        rng = np.random.default_rng(self.seed + (0, int(epoch)))
        first = int(epoch) * self.batches_per_epoch
        orders = {}  # (song, cycle) -> permutation, for this epoch
        batches = []
        for step in range(first, first + self.batches_per_epoch):
            if self.other_per_batch is None:
                batches.append(rng.permutation(self.n_other))
            else:
                batches.append(rng.integers(0, self.n_other,
                                            size=self.other_per_batch))
            cycle, within = divmod(step, self.steps_per_cycle)
            positions = np.arange(within * self.per_song,
                                  (within + 1) * self.per_song)
            for song, offset in enumerate(self.song_offsets):
                if (song, cycle) not in orders:
                    orders[song, cycle] = self._song_order(song, cycle)
                batches.append(offset + np.take(orders[song, cycle],
                                                positions, mode='wrap'))
        return np.concatenate(batches).astype(np.intp)

    def __call__(self, current_order, current_position):
        order = self.order_for(self.epoch)
        self.epoch += 1
        return order


def _positive(value, what):
    if int(value) != value or int(value) < 1:
        raise DatasetError('{} must be a positive integer, got {}'.format(
            what, value))
    return int(value)


class _RederiveOrder(object):
    # After loading a snapshot, take the current epoch's order from this
    # process's sampler rather than from the file (which may come from
    # another rank).
    def serialize(self, serializer):
        super(_RederiveOrder, self).serialize(serializer)
        if isinstance(serializer, chainer.serializer.Deserializer):
            self.order_sampler.epoch = self.epoch
            self._set_order(self.order_sampler(None, 0))


class BalancedSerialIterator(_RederiveOrder,
                             chainer.iterators.SerialIterator):
    """``SerialIterator`` over a :class:`BalancedOrderSampler`."""

    def _set_order(self, order):
        self._state = self._state._replace(order=order)


class BalancedMultiprocessIterator(_RederiveOrder,
                                   chainer.iterators.MultiprocessIterator):
    """``MultiprocessIterator`` over a :class:`BalancedOrderSampler`."""

    def _set_order(self, order):
        self._reset_state(self.current_position, self.epoch,
                          self.is_new_epoch, order)


def balanced_iterator(classes, batch_per_class=10, batches_per_epoch=100,
                      seed=0, n_processes=None, balance_songs=False):
    """A Chainer iterator of class-balanced batches.

    Args:
        classes (list): for each class (label order), a list of datasets
            whose examples are ``(wave, label)``.
        batch_per_class (int or list of int): examples per class per batch.
        batches_per_epoch (int): batches in one epoch.
        seed (int or tuple of int): seed of the window choice.
        n_processes (int or None): ``None`` for a ``SerialIterator``; a
            number for a ``MultiprocessIterator`` with that many workers
            reading and augmenting the windows.
        balance_songs (bool): draw a class's song uniformly, then a window
            in it (:class:`BalancedOrderSampler`'s ``song_sizes``).

    Returns:
        chainer.dataset.Iterator: yields lists of ``(wave, label)``.
    """
    _check_classes(classes)
    sampler = BalancedOrderSampler(
        [sum(len(d) for d in datasets) for datasets in classes],
        batch_per_class, batches_per_epoch, seed,
        song_sizes=[[len(d) for d in datasets] for datasets in classes]
        if balance_songs else None)
    return _iterator(classes, sampler, n_processes)


def song_iterator(classes, per_song=10, other_per_batch=None,
                  batches_per_epoch=100, seed=0, n_processes=None):
    """A Chainer iterator of the original's batches (:class:`SongOrderSampler`).

    Args:
        classes (list): for each class (label order), a list of datasets
            whose examples are ``(wave, label)``: class 0 the "Other"
            datasets, every other class one dataset per song.
        per_song (int): windows per song per batch (the original: 10).
        other_per_batch (int or None): ``None``: every "Other" example once
            per batch, as the original.
        batches_per_epoch, seed, n_processes: as :func:`balanced_iterator`.

    Returns:
        chainer.dataset.Iterator: yields lists of ``(wave, label)``.
    """
    _check_classes(classes)
    sampler = SongOrderSampler(
        [len(d) for d in classes[0]],
        [len(d) for datasets in classes[1:] for d in datasets], per_song,
        other_per_batch, batches_per_epoch, seed)
    return _iterator(classes, sampler, n_processes)


def _check_classes(classes):
    for label, datasets in enumerate(classes):
        if not datasets:
            raise DatasetError('class {} has no examples'.format(label))


def _iterator(classes, sampler, n_processes):
    flat = [d for datasets in classes for d in datasets]
    dataset = chainer.datasets.ConcatenatedDataset(*flat)
    if n_processes:
        return BalancedMultiprocessIterator(
            dataset, sampler.batch_size, order_sampler=sampler,
            n_processes=n_processes)
    return BalancedSerialIterator(dataset, sampler.batch_size,
                                  order_sampler=sampler)


class FeatureConverter(object):
    """``(wave, label)`` examples to features and labels on a device.

    Args:
        config (FeatureConfig): the feature parameters.
        spec_augment (bool): mask each window's features as SpecAugment
            (:func:`spec_augment`); for training batches only.
        rng (numpy.random.Generator or None): source of the masks, shifts
            and mixtures.
        same_class_mix (float): probability of mixing each window with
            another of its class (:func:`mix_same_class`).
        freq_shift (int): largest band shift (:func:`shift_bands`); 0: none.
        random_eq (float): amplitude of a random equaliser curve added to
            each window (:func:`random_eq`); 0: none.
        time_stretch (float): largest slow-down of a window
            (:func:`stretch_time`); 0: none.
    """

    def __init__(self, config=None, spec_augment=False, rng=None,
                 same_class_mix=0.0, freq_shift=0, random_eq=0.0,
                 time_stretch=0.0):
        self.config = config or FeatureConfig()
        self.spec_augment = bool(spec_augment)
        self.same_class_mix = float(same_class_mix)
        self.freq_shift = int(freq_shift)
        self.random_eq = float(random_eq)
        self.time_stretch = float(time_stretch)
        self.rng = np.random.default_rng(rng)

    def __call__(self, batch, device=None):
        if self.same_class_mix:
            batch = mix_same_class(batch, self.same_class_mix, rng=self.rng)
        waves, labels = chainer.dataset.concat_examples(batch, device)
        x = self.config(waves)
        if self.config.representation == 'mel':
            if self.time_stretch:
                x = stretch_time(x, self.time_stretch, rng=self.rng)
            if self.random_eq:
                x = random_eq(x, self.random_eq, rng=self.rng)
            if self.freq_shift:
                x = shift_bands(x, self.freq_shift, rng=self.rng)
            if self.spec_augment:
                x = spec_augment(x, rng=self.rng)
        return x, labels


def stretch_time(x, most, *, rng):
    """Slow each window down: a random stretch of it, zoomed to its length.

    Window ``i`` plays at a speed ``s_i ~ U(1 - most, 1)``: its frames are
    read from a random stretch of ``(frames - 1) s_i + 1`` frames of it,
    interpolated linearly between neighbours. The notes keep their pitch
    (the mel axis is untouched); the tempo drops by up to ``most``. A
    composer's music is theirs at any tempo, so the network should not name
    a song by its exact rhythm.

    Args:
        x: ``(batch, 1, n_mels, frames)`` features, NumPy or CuPy.
        most (float): the largest slow-down, in ``[0, 1)``.
        rng (numpy.random.Generator): source of the speeds and places.

    Returns:
        the stretched features (a new array).
    """
    batch, _, _, frames = x.shape
    speed = rng.uniform(1.0 - most, 1.0, size=(batch, 1))
    start = rng.uniform(0.0, 1.0, size=(batch, 1)) * (frames - 1) * (
        1.0 - speed)
    at = start + np.arange(frames) * speed  # (batch, frames), in frames
    low = np.minimum(np.floor(at).astype(np.int64), frames - 2)
    weight = (at - low).astype(x.dtype)
    xp = chainer.backend.get_array_module(x)
    low, weight = xp.asarray(low[:, None, None]), xp.asarray(
        weight[:, None, None])
    shape = x.shape
    a = xp.take_along_axis(x, xp.broadcast_to(low, shape), axis=3)
    b = xp.take_along_axis(x, xp.broadcast_to(low + 1, shape), axis=3)
    return a + weight * (b - a)


def random_eq(x, amplitude, *, rng):
    """Add a random smooth curve along the mel axis: a random equaliser.

    On log features (``--compression db``) a gain curve of the recording
    (its microphone, its mix, its mastering) is a curve added along the mel
    axis. Window ``i`` gets ``c_i(m) = a_i u + sum_j b_ij cos(pi k_ij (u +
    1) + phi_ij) - mean``, ``u = -1 .. 1`` over the bands, with a tilt
    ``a_i ~ U(-A, A)``, two ripples ``j = 1, 2`` of ``b_ij ~ U(0, A / 2)``
    and ``k_ij ~ U(1, 4)`` cycles at a random phase ``phi_ij``, and
    its mean over the bands removed, so the window's mean stays where it
    was. The network should not name a song by its recording's colour.

    Args:
        x: ``(batch, 1, n_mels, frames)`` log features, NumPy or CuPy
            (standardised ones: ``A`` is in their standard deviations).
        amplitude (float): ``A``, the largest tilt, in the units of ``x``.
        rng (numpy.random.Generator): source of the curves.

    Returns:
        the equalised features (a new array).
    """
    batch, _, n_mels, _ = x.shape
    u = np.linspace(-1.0, 1.0, n_mels)
    tilt = rng.uniform(-amplitude, amplitude, size=(batch, 1))
    depth = rng.uniform(0.0, amplitude / 2, size=(batch, 2, 1))
    cycles = rng.uniform(1.0, 4.0, size=(batch, 2, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(batch, 2, 1))
    curve = tilt * u + (depth * np.cos(np.pi * cycles * (u + 1) +
                                       phase)).sum(axis=1)
    curve -= curve.mean(axis=1, keepdims=True)  # (batch, n_mels)
    xp = chainer.backend.get_array_module(x)
    return x + xp.asarray(curve.astype(x.dtype))[:, None, :, None]


def shift_bands(x, max_shift, *, rng):
    """Move each window up or down the mel axis: a rough pitch shift.

    Window ``i`` is moved by ``k_i ~ U{-max_shift..max_shift}`` mel bands
    (up for ``k_i > 0``); the bands it leaves are 0 (the mean of a
    standardised window, ``--normalize window``). A composer's music is
    theirs in any key, so the network should not learn a song by the exact
    bands of its notes.

    Args:
        x: ``(batch, 1, n_mels, frames)`` features, NumPy or CuPy.
        max_shift (int): the largest shift, in mel bands.
        rng (numpy.random.Generator): source of the shifts.

    Returns:
        the shifted features (a new array).
    """
    out = chainer.backend.get_array_module(x).zeros_like(x)
    for i, k in enumerate(rng.integers(-max_shift, max_shift + 1,
                                       size=len(x))):
        move_bands(x[i], int(k), out=out[i])
    return out


def move_bands(x, k, *, out=None):
    """``x`` moved up the mel axis by ``k`` bands (down for ``k < 0``).

    Args:
        x: ``(..., n_mels, frames)`` features, NumPy or CuPy.
        k (int): the shift, in mel bands (by ``n_mels`` or more: all 0).
        out: where to write (zeros, of ``x``'s shape); None: a new array.

    Returns:
        ``out``: the bands that ``x`` leaves are 0.
    """
    if out is None:
        out = chainer.backend.get_array_module(x).zeros_like(x)
    n_mels = x.shape[-2]
    k = max(-n_mels, min(n_mels, k))
    if k >= 0:
        out[..., k:, :] = x[..., :n_mels - k, :]
    else:
        out[..., :k, :] = x[..., -k:, :]
    return out


def mix_same_class(batch, p, *, rng):
    """Mix windows with other windows of their class: new "songs".

    Each ``(wave, label)`` example is, with probability ``p``, replaced by
    ``a * wave + (1 - a) * other``, ``a ~ U(0.3, 0.7)``, where ``other`` is
    another example of the batch with the same label (drawn at random;
    an example alone in its class is kept). Unlike mixup the label stays
    whole: two windows of one artist, mostly from two songs, are still that
    artist, and the network sees combinations of the artist's sounds that
    no training song holds.

    Args:
        batch (list): ``(wave, label)`` examples, ``wave`` ``(n_samples,)``.
        p (float): probability of mixing each example.
        rng (numpy.random.Generator): source of the draws.

    Returns:
        list: the new examples (the inputs are not changed).
    """
    labels = np.array([int(label) for _, label in batch])
    out = []
    for i, (wave, label) in enumerate(batch):
        mates = np.flatnonzero(labels == int(label))
        mates = mates[mates != i]
        if len(mates) and rng.random() < p:
            a = rng.uniform(0.3, 0.7)
            other = batch[int(rng.choice(mates))][0]
            wave = (a * wave + (1 - a) * other).astype(wave.dtype)
        out.append((wave, label))
    return out


def spec_augment(x, *, rng, n_bands=2, n_spans=2, max_band=None,
                 max_span=None):
    """SpecAugment-style masks: zero random mel bands and frame spans.

    Each window gets ``n_bands`` bands of U{0..max_band} mel bins and
    ``n_spans`` spans of U{0..max_span} frames set to 0 (the mean of a
    standardised window), at random places.

    Args:
        x: ``(batch, 1, n_mels, frames)`` features, NumPy or CuPy; masked in
            place.
        rng (numpy.random.Generator): source of the masks.
        max_band, max_span (int or None): ``None``: 1/8 of the mel bands
            and of the frames (32 and 40 for 256 x 321).

    Returns:
        the masked ``x``.
    """
    batch, _, n_mels, frames = x.shape
    max_band = n_mels // 8 if max_band is None else int(max_band)
    max_span = frames // 8 if max_span is None else int(max_span)

    def keep(size, n, widest):
        # (batch, size): 1 outside the n masked stretches, 0 inside
        mask = np.ones((batch, size), np.float32)
        for row in mask:
            for _ in range(n):
                width = int(rng.integers(0, widest + 1))
                start = int(rng.integers(0, size - width + 1))
                row[start:start + width] = 0
        return mask
    xp = chainer.backend.get_array_module(x)
    x *= xp.asarray(keep(n_mels, n_bands, max_band))[:, None, :, None]
    x *= xp.asarray(keep(frames, n_spans, max_span))[:, None, None, :]
    return x


class SeededUpdater(chainer.training.updaters.StandardUpdater):
    """``StandardUpdater`` whose dropout draws follow the iteration.

    Chainer's dropout draws from NumPy's (or CuPy's) global generator. Before
    each update this seeds it from ``(seed, iteration)``, so a run resumed
    from a snapshot drops out exactly as the uninterrupted run would have.

    Args:
        seed (int or tuple of int): the run's seed (and rank).
        others: as ``StandardUpdater``.
    """

    def __init__(self, *args, seed=0, **kwargs):
        super(SeededUpdater, self).__init__(*args, **kwargs)
        self.seed = tuple(np.atleast_1d(seed).astype(int).tolist())

    def update_core(self):
        sequence = np.random.SeedSequence(self.seed + (self.iteration,))
        np.random.seed(sequence.generate_state(1)[0])
        device = self.get_optimizer('main').target.device
        if device.xp is not np:  # pragma: no mutate block (GPU only)
            device.xp.random.seed(int(sequence.generate_state(1)[0]))
        super(SeededUpdater, self).update_core()


class TimeBudgetTrigger(object):
    """Stop trigger: after ``minutes`` of training or ``max_iterations``.

    For benchmarks "under a fixed CPU budget"; the clock starts at the first
    call (the first iteration), so data loading does not count. The time
    spent is saved with the trainer's snapshots, so a resumed run trains
    for what was left of its budget, not for a whole budget again.
    """

    def __init__(self, minutes, max_iterations=None):
        self.seconds = 60.0 * minutes
        self.max_iterations = max_iterations
        self.start = None
        self.spent = 0.0  # seconds of earlier processes (a resumed run)

    def __call__(self, trainer):
        import time
        if self.start is None:
            self.start = time.perf_counter()
        if self.max_iterations is not None and \
                trainer.updater.iteration >= self.max_iterations:
            return True
        return self.elapsed() >= self.seconds

    def get_training_length(self):
        return (self.max_iterations, 'iteration')

    def elapsed(self):
        """Seconds of training so far, earlier processes' included."""
        import time
        if self.start is None:
            return self.spent
        return self.spent + time.perf_counter() - self.start

    def fraction(self):
        """The fraction of the time budget spent (earlier processes' time
        included)."""
        return self.elapsed() / self.seconds

    def serialize(self, serializer):
        """Save the time spent; a load (before the run) starts from it."""
        if isinstance(serializer, chainer.serializer.Serializer):
            serializer('spent_seconds', self.elapsed())
            return
        try:
            self.spent = float(serializer('spent_seconds', 0.0))
        except KeyError:  # a snapshot of a version that did not save it
            self.spent = 0.0


def keep_freed_memory():
    """Ask glibc's allocator to keep freed memory for the next allocation.

    Training on the CPU allocates and frees arrays of tens of MB every
    step (im2col columns, gradients). By default glibc serves each from
    fresh ``mmap`` pages and hands them back on ``free``, so every step
    pays the kernel to map and zero them again (half of a step's CPU time
    in ``benchmarks/bench_allocator.py``). With ``mmap`` off and the
    heap's top kept, freed blocks are reused. The setting holds for the
    rest of the process, whose memory then stays at its peak. Does
    nothing (returns False) where the C library has no ``mallopt`` or
    refuses the setting.
    """
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # pragma: no cover
        return False  # not glibc (TypeError: Windows' CDLL(None))
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and \
        bool(mallopt(m_trim_threshold, 2 ** 31 - 1))


def make_optimizer(model, alpha=1e-4, weight_decay=1e-4, comm=None):
    """The original's optimiser: Adam(alpha) with WeightDecay.

    With a ChainerMN communicator ``comm`` the optimiser all-reduces the
    gradients of every rank before each update (and broadcasts rank 0's
    weights before the first one).
    """
    optimizer = chainer.optimizers.Adam(alpha=alpha)
    if comm is not None:
        import chainermn
        optimizer = chainermn.create_multi_node_optimizer(optimizer, comm)
    optimizer.setup(model)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    return optimizer


def smoothed_cross_entropy(y, t, eps):
    """Cross-entropy against ``(1 - eps) * onehot(t) + eps / n_classes``.

    Args:
        y: ``(batch, n_classes)`` unnormalised scores.
        t: ``(batch,)`` int32 labels.
        eps (float): label smoothing (0: plain cross-entropy).
    """
    loss = F.softmax_cross_entropy(y, t)
    if not eps:
        return loss
    uniform = -F.mean(F.log_softmax(y))  # mean over classes and batch
    return (1 - eps) * loss + eps * uniform


def loss_with_report(model, mixup=0.0, label_smoothing=0.0):
    """A ``loss_func`` for ``StandardUpdater`` reporting loss and accuracy.

    With ``mixup > 0`` (training only) each batch is replaced by the mixture
    ``lam * x + (1 - lam) * x[perm]`` of its windows with a random
    permutation of them, and the loss is ``lam * CE(y, t) + (1 - lam) *
    CE(y, t[perm])`` (Zhang et al., 2018); ``lam ~ Beta(mixup, mixup)``, one
    per batch. Both are drawn from NumPy's global generator, which
    :class:`SeededUpdater` seeds from the iteration. The reported accuracy
    is against ``t``. With ``label_smoothing > 0`` (training only) each
    cross-entropy is :func:`smoothed_cross_entropy`'s. An ensemble's loss
    is its members' mean cross-entropy (what each member learns from, on
    held-out windows too), its accuracy that of their mean probability.
    """
    def lossfun(x, t):
        train = chainer.config.train
        eps = label_smoothing if train else 0.0
        if not mixup or not train:
            ys = model.training_scores(x)
            losses = [smoothed_cross_entropy(y, t, eps) for y in ys]
        else:
            lam = float(np.random.beta(mixup, mixup))
            perm = np.random.permutation(len(t))
            perm = chainer.backend.get_array_module(x).asarray(perm)
            ys = model.training_scores(lam * x + (1 - lam) * x[perm])
            losses = [lam * smoothed_cross_entropy(y, t, eps) + (1 - lam) *
                      smoothed_cross_entropy(y, t[perm], eps) for y in ys]
        loss = sum(losses) / len(losses)  # an ensemble: its members' mean
        accuracy = F.accuracy(model.combine(ys), t)
        chainer.report({'loss': loss, 'accuracy': accuracy}, model)
        return loss
    return lossfun


class _RunFraction(object):
    """``fraction(trainer)``: the fraction of the run done, of its
    :class:`TimeBudgetTrigger` ``budget``'s time or ``iterations``,
    whichever is further (at most 1)."""

    def fraction(self, trainer):
        done = trainer.updater.iteration / max(self.iterations, 1)
        if self.budget is not None:
            done = max(done, self.budget.fraction())
        return min(done, 1.0)


class CosineAnnealing(_RunFraction, chainer.training.Extension):
    """Anneal Adam's ``alpha`` from ``lr`` to 0 along a half cosine.

    ``alpha = lr * (1 + cos(pi * f)) / 2`` where ``f`` is the fraction of
    the run done: of its :class:`TimeBudgetTrigger`'s time or iterations,
    whichever is further, or of ``iterations``. Set before every update.
    """

    trigger = 1, 'iteration'
    # After the trainer snapshot's (-100): at --resume, the first alpha is
    # set once the snapshot has restored the iteration, not from iteration 0
    priority = -200

    def __init__(self, lr, iterations, budget=None):
        self.lr = float(lr)
        self.iterations = int(iterations)
        self.budget = budget

    def initialize(self, trainer):
        self(trainer)

    def __call__(self, trainer):
        alpha = self.lr * 0.5 * (1 + np.cos(np.pi * self.fraction(trainer)))
        trainer.updater.get_optimizer('main').alpha = float(alpha)


class SnapshotEnsemble(_RunFraction, chainer.training.Extension):
    """Keep copies of the network over the last part of a run.

    A network trained with a constant learning rate wanders between
    solutions until its last step; snapshots of it taken along the way make
    different mistakes, and their mean probability is steadier than the last
    one alone (Huang et al., 2017, "Snapshot ensembles", without their
    cyclic learning rate). Snapshot ``i`` of
    ``members`` (``i = 0 .. members - 2``) is kept after the first update at
    which the fraction of the run done reaches ``start + (1 - start) * i /
    (members - 1)`` (of its :class:`TimeBudgetTrigger`'s time or
    iterations, whichever is further, or of ``iterations``); the network at
    the end of the run is the last member. :meth:`ensemble` builds the
    :class:`~music_classification.net.ENSEMBLE` of them. Kept snapshots are
    saved with the trainer's snapshot, so a resumed run keeps them. A run
    that ends before its last snapshot (a time budget of very few, slow
    steps) fills the missing members with the last network.

    Args:
        model: the network being trained.
        members (int): networks in the ensemble, the last one included (at
            least 2).
        start (float): fraction of the run of the first snapshot, in
            ``[0, 1)``.
        iterations (int): the run's ``--iterations``.
        budget (TimeBudgetTrigger or None): the run's time budget.
    """

    trigger = 1, 'iteration'
    priority = chainer.training.PRIORITY_READER

    def __init__(self, model, members, start, iterations, budget=None):
        if int(members) < 2 or not 0 <= start < 1:
            raise ParameterError(
                'a snapshot ensemble needs 2 or more members and a start in '
                '[0, 1), got {} and {}'.format(members, start))
        self.model = model
        self.members = int(members)
        self.start = float(start)
        self.iterations = int(iterations)
        self.budget = budget
        self.kept = []  # one {name: NumPy array} per snapshot kept

    def fractions(self):
        """Where in the run each of the kept snapshots is taken."""
        return [self.start + (1 - self.start) * i / (self.members - 1)
                for i in range(self.members - 1)]

    def _arrays(self, link):
        # Parameters and persistent values (batch norm's running
        # statistics) by name, copied to NumPy
        arrays = {}
        chainer.serializers.DictionarySerializer(arrays).save(link)
        return {name: np.array(value) for name, value in arrays.items()
                if not name.startswith('stats_')}

    def __call__(self, trainer):
        due = self.fractions()
        while len(self.kept) < len(due) and \
                self.fraction(trainer) >= due[len(self.kept)] - 1e-9:
            self.kept.append(self._arrays(self.model))

    def serialize(self, serializer):
        n = int(serializer('n_kept', len(self.kept)))
        if isinstance(serializer, chainer.serializer.Deserializer):
            names = list(self._arrays(self.model))
            self.kept = [dict.fromkeys(names) for _ in range(n)]
        for i, arrays in enumerate(self.kept):
            for name in list(arrays):
                arrays[name] = np.array(serializer(
                    'kept{}/{}'.format(i, name), arrays[name]))

    def ensemble(self):
        """The :class:`~music_classification.net.ENSEMBLE` of the kept
        snapshots and the network as it is now (also in place of any
        snapshot not yet kept), on the network's device, without a
        statistics classifier.
        """
        # Each member rebuilt from the network's own spec, less its
        # statistics classifier
        spec = {key: value for key, value in self.model.spec().items()
                if not key.startswith('stats_')}
        last = self._arrays(self.model)
        missing = self.members - 1 - len(self.kept)
        if missing:
            print('the run ended before {} of its {} snapshots: the last '
                  'network takes their places in the ensemble'.format(
                      missing, self.members - 1), flush=True)
        nets = []
        for arrays in self.kept + [last] * (missing + 1):
            net = build_model(n_classes=self.model.n_classes,
                              input_shape=self.model.input_shape, **spec)
            chainer.serializers.NpzDeserializer(arrays).load(net)
            nets.append(net)
        ensemble = ENSEMBLE(nets)
        ensemble.to_device(self.model.device)
        return ensemble


# The run of ``music-classification train``, in named steps. The steps
# that only a whole training run reaches are marked "no mutate block":
# whole runs test them (tests/test_training.py, test_train_script.py,
# test_distributed.py), but mutation testing (benchmarks/mutation.py)
# would need a run of 5-25 s for each of their mutants.

#: The settings of each ``--recipe``. ``article``: the original's, as its
#: code had them. ``improved``: the ingredients this project's measurements
#: on real music kept (README, "Does it work on real music?";
#: docs/experiments.md, "Band shifts and MFCC statistics", "Snapshot
#: ensembles" and "Time stretch").
RECIPES = {
    'article': dict(model='music_net', n_mels=256, length=160,
                    compression='log1p', normalize='none', spec_augment=False,
                    lr=1e-4, weight_decay=1e-4, lr_schedule='constant',
                    mixup=0.0, label_smoothing=0.0, same_class_mix=0.0,
                    freq_shift=0, random_eq=0.0, time_stretch=0.0,
                    stats_weight=0.0, members=1,
                    ensemble_snapshots=1, ensemble_from=0.5,
                    batch_per_song=10, batch_per_class=None,
                    balance_songs=False, other_per_batch=None),
    'improved': dict(model='small_cnn', n_mels=128, length=48,
                     compression='db', normalize='window',
                     spec_augment=True, lr=1e-3, weight_decay=1e-4,
                     lr_schedule='constant', mixup=0.0,
                     label_smoothing=0.0, same_class_mix=0.0,
                     freq_shift=4, random_eq=0.0, time_stretch=0.2,
                     stats_weight=0.3, members=1,
                     ensemble_snapshots=7, ensemble_from=0.5,
                     batch_per_song=None, batch_per_class=8,
                     balance_songs=False, other_per_batch=8),
    # musicnn, pretrained on the Million Song Dataset, with only its
    # output layer fitted (a linear probe, every artist and song alike) to
    # its pooling, dense layer and each channel's deviation over time;
    # its training settings are for --fine-tune
    'musicnn': dict(model='musicnn', head='pool_layers',
                    n_mels=MUSICNN_FEATURES.n_mels,
                    length=MUSICNN_FEATURES.length,
                    compression=MUSICNN_FEATURES.compression,
                    normalize=MUSICNN_FEATURES.normalize,
                    spec_augment=False, lr=1e-4, weight_decay=1e-4,
                    lr_schedule='constant', mixup=0.0, label_smoothing=0.0,
                    same_class_mix=0.0, freq_shift=0, random_eq=0.0,
                    time_stretch=0.0, stats_weight=0.0, members=1,
                    ensemble_snapshots=1, ensemble_from=0.5,
                    batch_per_song=None, batch_per_class=8,
                    balance_songs=False, other_per_batch=8,
                    linear_probe=0.1, fit_weights='songs'),
}



def feature_config(args):
    """The :class:`FeatureConfig` of the run's flags (``--model musicnn``:
    the features it was trained on, :data:`~music_classification.
    features.MUSICNN_FEATURES`)."""
    if args.model == 'musicnn':
        return MUSICNN_FEATURES
    return FeatureConfig(
        length=args.length, n_mels=args.n_mels, compression=args.compression,
        normalize=args.normalize, pad_mode=args.pad_mode,
        representation='wave' if args.model == 'wave' else 'mel')


def model_options(args):
    """Keyword arguments of :func:`~music_classification.net.build_model`.
    """
    if args.model == 'small_cnn':
        options = {'width': args.width} if args.width else {}
        if args.head is not None:
            options['head'] = args.head
    elif args.model == 'musicnn':
        options = {'head': args.head} if args.head else {}
        if args.signed_sqrt:
            options['signed_sqrt'] = True
    else:
        options = {'init': args.init}
        for key in ('pooling', 'batchnorm', 'head'):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
    if args.dropout is not None:
        options['dropout_ratio'] = args.dropout
    if args.stats_weight:
        options['stats_weight'] = args.stats_weight
    if args.members > 1:
        options['members'] = args.members
    return options


def start_from_trained(model, folder, config):
    """``--init-from``: start ``model`` from the trained run in ``folder``.

    Its layers but the output layer are copied
    (:func:`~music_classification.net.copy_feature_layers`): a network
    trained on other music (other artists, even another number of them)
    lends what it learned of music in general; the output layer starts
    afresh for this run's classes.

    Args:
        model: the network about to be trained, on the CPU.
        folder (str): a training run's folder (``model.npz`` and
            ``labels.json``).
        config (FeatureConfig): this run's features; the trained run's must
            be the same.

    Returns:
        int: the number of arrays copied.

    Raises:
        ModelFileError: the folder holds no readable model.
        ParameterError: other features, or a network that does not fit.
    """
    try:
        source, _, trained = collection.load_trained(folder)
    except MusicClassificationError as e:
        raise type(e)('--init-from {}: {}'.format(folder, e)) from None
    had, has = trained.to_dict(), config.to_dict()
    differ = ['{} {} where this run has {}'.format(key, had.get(key), value)
              for key, value in sorted(has.items()) if had.get(key) != value]
    if differ:
        raise ParameterError('--init-from {}: trained on other features '
                             '({})'.format(folder, ', '.join(differ)))
    try:
        return copy_feature_layers(source, model)
    except ParameterError as e:
        raise ParameterError('--init-from {}: {}'.format(folder, e)) from None


def start_from_musicnn(model):
    """``--model musicnn``: every layer of ``model`` but its output layer
    set to musicnn's weights trained on the Million Song Dataset
    (:func:`~music_classification.pretrained.musicnn_arrays`, fetched once).

    Returns:
        int: the number of arrays set.

    Raises:
        ModelFileError: the weights could not be fetched or read.
    """
    return model.load_pretrained(pretrained.musicnn_arrays())


def _ensemble(members, snapshots, start):
    # How a run's ensemble is made, as --resume compares it
    return {'members': members, 'ensemble_snapshots': snapshots,
            'ensemble_from': start}


def saved_spec(args, model):
    """The architecture of the model a run saves: ``model``'s, or the
    ensemble of ``--ensemble-snapshots`` copies of it."""
    spec = model.spec()
    if args.ensemble_snapshots > 1:
        spec['members'] = args.ensemble_snapshots
    return spec


def build_datasets(args, config, rank=0):  # pragma: no mutate block
    songs = collection.scan_collection(args.music, args.other)
    train_songs, val_songs = collection.split_songs(
        songs.songs, args.val_songs, seed=args.seed)
    # Every rank augments with streams of its own; the split is shared.
    seeds = np.random.SeedSequence([args.seed, rank]).spawn(
        1 + len(songs.songs))
    common = dict(chunk=config.chunk, length=config.length,
                  expected_fs=config.sr, noise=args.noise,
                  compression=config.compression)
    train_common = dict(common, noise_augment=not args.no_noise,
                        augment=not args.no_augment)
    classes = [[READ_DATASET2(args.other, rng=np.random.default_rng(seeds[0]),
                              label=0, **train_common)]]
    for label, paths in sorted(train_songs.items()):
        rng = np.random.default_rng(seeds[label])
        classes.append([READ_DATASET(p, stride=args.stride, rng=rng,
                                     label=label, **train_common)
                        for p in paths])
    # Held-out windows every 5 s, clean (no augmentation).
    val = [READ_DATASET(p, stride=5 * config.sr, augment=False, label=label,
                        **common)
           for label, paths in sorted(val_songs.items()) for p in paths]
    return songs, train_songs, val_songs, classes, val


#: The spec of a labels.json written before variants were saved.
MUSIC_NET_SPEC = {'model': 'music_net', 'pooling': False, 'batchnorm': False,
                  'head': 'flatten'}


def _architecture(spec):
    # What must match for a snapshot to load: not the initialisation or the
    # dropout ratio.
    return {k: v for k, v in spec.items()
            if k not in ('init', 'dropout_ratio')}


def snapshots_in(out):
    """The trainer snapshots in a run's folder, oldest first."""
    return sorted(glob.glob(os.path.join(out, 'snapshot_iter_*')))


def loads_snapshot(args):
    """Whether the run takes its state from a snapshot in ``--out``: with
    ``--resume`` and ``--snapshot-every`` (the snapshot extension loads the
    latest one, :func:`add_snapshots`) when there is one."""
    return bool(args.resume and args.snapshot_every and
                snapshots_in(args.out))


def check_out_folder(args, rank, now):
    """Never overwrite another run; resume only the same run.

    Removes what an interrupted snapshot write left (Chainer writes into a
    ``tmpsnapshot_iter_*`` folder, then moves the file). Without --resume,
    a folder holding another run's labels.json, model.npz or snapshots is
    refused (``--resume`` is offered only to a run that trains) unless
    --force, which removes the model and snapshots, so that the new
    labels.json is never paired with the old run's model, even if the new
    run is interrupted. With --resume, the
    run's labels.json must match ``now`` (classes, features, architecture,
    song split); each difference is named, and a resume that will load no
    snapshot (none there, or ``--snapshot-every 0``) says so.

    Raises:
        ParameterError: the folder holds another run.
    """
    snapshots = snapshots_in(args.out)
    if rank == 0:
        for tmp in glob.glob(os.path.join(args.out, 'tmpsnapshot_iter_*')):
            if os.path.isdir(tmp):
                # (rmtree never follows a link into its target)
                shutil.rmtree(tmp, ignore_errors=True)
                print(('removed {}, left by an interrupted snapshot'
                       if not os.path.lexists(tmp) else
                       'could not remove all of {} (an interrupted '
                       'snapshot\'s folder); the rest is left as it is')
                      .format(tmp), flush=True)
    labels_path = os.path.join(args.out, 'labels.json')
    model_path = os.path.join(args.out, 'model.npz')
    if not args.resume:
        kept = [p for p in (labels_path, model_path) if os.path.exists(p)] \
            + snapshots
        old = [p for p in kept if p != labels_path]  # what a run left
        if kept and not args.force:  # (labels.json alone: maybe running)
            trains = getattr(args, 'linear_probe', None) is None \
                or getattr(args, 'fine_tune', False)
            raise ParameterError('{} holds another run ({}); {}start over '
                     'with --force, or choose another --out'.format(
                         args.out, ', '.join(os.path.basename(p)
                                             for p in kept),
                         'continue it with --resume, ' if trains else ''))
        if rank == 0 and old:
            # --force: the old model must not stay beside the new
            # labels.json, nor a later --resume load the old run's state
            for path in old:
                os.remove(path)
            print('--force: removed the old run\'s {}'.format(', '.join(
                os.path.basename(p) for p in old)), flush=True)
        return
    if not snapshots:
        print('--resume: no snapshot in {}; starting from scratch'
              .format(args.out), flush=True)
    elif not args.snapshot_every:
        print('--resume: --snapshot-every 0 loads no snapshot, so the run '
              'starts anew ({} is left as it is)'.format(
                  os.path.basename(snapshots[-1])), flush=True)
    if not os.path.exists(labels_path):
        return
    info, _ = collection.load_labels(labels_path)
    then = {'classes': info['classes'], 'features': info['features'],
            'model': _architecture(info.get('model', MUSIC_NET_SPEC)),
            'train_songs': info.get('train_songs'),
            'val_songs': info.get('val_songs')}
    then['features'] = FeatureConfig.from_dict(then['features']).to_dict()
    recipe = info.get('recipe') or {}
    # (labels.json files from before snapshot ensembles do not say)
    then['ensemble'] = _ensemble(
        recipe['members'], recipe['ensemble_snapshots'],
        recipe['ensemble_from']) if 'ensemble_snapshots' in recipe else None
    differ = [key for key in now if then[key] is not None
              and then[key] != now[key]]
    if differ:
        raise ParameterError('--resume: {} was written for another run: {}'
                 .format(labels_path, '; '.join(
                     '{} {} there, {} now'.format(
                         key, _short(then[key]), _short(now[key]))
                     for key in differ)))


def _short(value):
    text = str(value)
    return text if len(text) < 200 else text[:197] + '...'


def make_iterator(args, classes, rank=0):
    """The batches of --batch-per-song (the original's) or --batch-per-class.
    """
    seed, n_processes = (args.seed, rank), args.processes or None
    if args.batch_per_class is None:
        return song_iterator(
            classes, per_song=args.batch_per_song,
            other_per_batch=args.other_per_batch, seed=seed,
            n_processes=n_processes)
    n_other = args.other_per_batch or len(classes[0][0])
    return balanced_iterator(
        classes, batch_per_class=[n_other] + [args.batch_per_class] * (
            len(classes) - 1), seed=seed, n_processes=n_processes,
        balance_songs=args.balance_songs)


def communicator(args):
    """``(comm, rank, size, device)`` for this process."""
    if not args.distributed:
        return None, 0, 1, chainer.get_device(args.device)
    return _mpi_communicator(args)


def _mpi_communicator(args):  # pragma: no mutate block (MPI only)
    # Run by tests/test_distributed.py's processes, not in the test process
    import chainermn
    gpu = args.device not in ('-1', '@numpy')
    name = args.communicator or ('pure_nccl' if gpu else 'naive')
    comm = chainermn.create_communicator(name)
    # One GPU per process on each machine.
    device = chainer.get_device('@cupy:{}'.format(comm.intra_rank) if gpu
                                else '@numpy')
    return comm, comm.rank, comm.size, device


def on_every_rank(comm, func, *args, **kwargs):
    """``func(*args, **kwargs)``; if it fails on one rank, fail on every rank.

    Under ChainerMN the ranks agree first (an ``allgather``, so it is also a
    barrier): a rank that exited alone would leave the others waiting for it
    for ever in their first ``allreduce``. Without ``comm`` it is just the
    call.

    Raises:
        MusicClassificationError: ``func`` raised it on this rank or on
            another (its message, on every rank).
    """
    error = None
    try:
        result = func(*args, **kwargs)
    except MusicClassificationError as e:
        result, error = None, e
    if comm is not None:
        messages = [m for m in comm.mpi_comm.allgather(
            None if error is None else str(error)) if m is not None]
        if messages and error is None:
            error = MusicClassificationError(messages[0])
    if error is not None:
        raise error
    return result


def run_training(args):  # pragma: no mutate block
    """Train as ``music-classification train`` with parsed ``args``.

    Writes ``args.out``: labels.json first, then the log, plots, snapshots
    and, at the end, model.npz (rank 0 only under ChainerMN); a folder it
    created (and the folders it made on the way) is removed again if the
    run stops while it is empty. A linear
    probe (``--linear-probe``) trains nothing and writes no log, plots or
    snapshots, unless ``--fine-tune`` trains every layer after it.

    Returns:
        int: the number of iterations done.

    Raises:
        MusicClassificationError: bad data or flags, or an ``--out`` that
            holds another run (on every rank).
    """
    config = feature_config(args)
    made = []  # the folders writable_folder will make, innermost first
    folder = os.path.abspath(args.out)
    while not os.path.exists(folder) and folder != os.path.dirname(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    writable_folder(args.out)  # before minutes of loading songs
    try:
        return _run_training(args, config)
    except BaseException:
        for folder in made:  # a refused or interrupted run leaves no
            try:             # empty folder that it made
                os.rmdir(folder)  # (only if empty)
            except OSError:  # not empty, or another rank's, gone already
                break
        raise


def _run_training(args, config):  # pragma: no mutate block
    comm, rank, size, device = communicator(args)
    songs, train_songs, val_songs, classes, val = on_every_rank(
        comm, build_datasets, args, config, rank)
    np.random.seed(args.seed)  # Chainer's initialisers draw from NumPy
    model = on_every_rank(
        comm, build_model, args.model, n_classes=len(songs.class_names),
        input_shape=config.input_shape, **model_options(args))
    if args.init_from and not loads_snapshot(args):  # else the snapshot's
        copied = on_every_rank(comm, start_from_trained, model,
                               args.init_from, config)
        if rank == 0:
            print('started from {} ({} arrays, all but the output layer)'
                  .format(args.init_from, copied), flush=True)
    elif args.model == 'musicnn' and not loads_snapshot(args):
        copied = on_every_rank(comm, start_from_musicnn, model)
        if rank == 0:
            print('started from musicnn, trained on the Million Song '
                  'Dataset ({} arrays, all but the output layer)'.format(
                      copied), flush=True)
    # The song split by artist name, as labels.json keeps it.
    split = {part: {songs.class_names[k]: v for k, v in paths.items()}
             for part, paths in (('train_songs', train_songs),
                                 ('val_songs', val_songs))}
    spec = saved_spec(args, model)
    # Every rank checks the folder before rank 0 writes labels.json in it.
    on_every_rank(comm, check_out_folder, args, rank, dict(
        classes=songs.class_names, features=config.to_dict(),
        model=_architecture(spec),
        ensemble=_ensemble(args.members, args.ensemble_snapshots,
                           args.ensemble_from), **split))
    if rank == 0:
        save_run_labels(args, songs.class_names, config, spec, split,
                        other_sounds=[os.path.abspath(path)
                                      for ds in classes[0]
                                      for path in getattr(ds, 'files', [])
                                      if path is not None])  # (silence)

    model.to_device(device)
    device.use()
    settings = fit_settings(args)
    bands = settings['fit_shifts']
    how = [phrase for phrase, wanted in (
        ('every artist and song weighed alike',
         settings['fit_weights'] == 'songs'),
        ('also {} mel bands down and up'.format(bands), bands),
        ('each window also with noise {:g} to {:g} dB below its song'
         .format(*FIT_NOISE_SNR), settings['fit_noise']),
        ('{} turned down to {:g} to {:g} of its amplitude ("Other" sounds '
         '{:g} to {:g})'.format(
             'that copy' if settings['fit_noise'] else 'each window also',
             *SONG_VOLUME, *OTHER_VOLUME), settings['fit_volume'])) if wanted]
    fitted = dict(fit_weights=settings['fit_weights'],
                  shifts=fit_shifts(bands), volume=settings['fit_volume'])
    noise = audio.load_noise(args.noise, sr=config.sr) \
        if settings['fit_noise'] else None
    iterations = 0
    if args.linear_probe is not None and not loads_snapshot(args):
        print('fitting the output layer on the training songs ({})...'
              .format(', '.join(['linear probe, C = {:g}'.format(
                  args.linear_probe)] + how)), flush=True)
        # each fit draws its noisy or quieter copies from a stream of its
        # own, so that a resumed run's statistics classifier draws the same
        print('output layer fitted on ' + _rows_phrase(fit_output_layer(
            model, classes, config, C=args.linear_probe, noise=noise,
            rng=np.random.default_rng([args.seed, 3]), **fitted),
            fitted['shifts']), flush=True)
    if args.linear_probe is None or args.fine_tune:
        model.inference_mode_training = bool(args.fine_tune)
        model, iterations = train_network(
            args, model, (songs, train_songs, val_songs), classes, val,
            config, device, comm, rank, size)
    if model.stats_weight and rank == 0:
        print('fitting the statistics classifier on the training songs{}...'
              .format(' ({})'.format(', '.join(how)) if how else ''),
              flush=True)
        print('statistics classifier fitted on ' + _rows_phrase(
            fit_statistics_classifier(
                model, classes, config, noise=noise,
                rng=np.random.default_rng([args.seed, 4]), **fitted),
            fitted['shifts']), flush=True)
    if comm is not None:
        print('rank {} of {}: parameter checksum {}'.format(
            rank, size, parameter_checksum(model)), flush=True)
    if rank == 0:
        print('saved {}'.format(save_model(model, os.path.join(
            args.out, 'model.npz'))), flush=True)
    return iterations


def train_network(args, model, split, classes, val, config, device, comm,
                  rank, size):  # pragma: no mutate block
    """Build the trainer of :func:`run_training` and run it.

    Args:
        split (tuple): ``(songs, train_songs, val_songs)`` of
            :func:`build_datasets`, for the first lines of the log.

    Returns:
        tuple: the trained model (of ``--ensemble-snapshots``, the
        snapshot ensemble) and the number of iterations done.
    """
    songs, train_songs, val_songs = split
    if device.xp is np:
        keep_freed_memory()  # 1.3-1.5 x the steps per second on a CPU
    iterator = make_iterator(args, classes, rank)
    trainer = build_trainer(args, model, iterator, config, device, comm,
                            rank)
    keys = ['iteration', 'main/loss', 'main/accuracy']
    if val:
        add_evaluator(trainer, args, model, val, config, device, comm)
        keys += ['validation/main/loss', 'validation/main/accuracy']
    if args.snapshot_every:
        add_snapshots(trainer, args, comm)
    if rank == 0:
        add_reports(trainer, args, keys)
        print('classes: {}; training songs: {}; held-out songs: {}; {} '
              'windows per step{}'.format(
                  ', '.join(songs.class_names),
                  sum(len(v) for v in train_songs.values()),
                  sum(len(v) for v in val_songs.values()),
                  iterator.batch_size,
                  '; {} ranks, {} windows per step in all'.format(
                      size, size * iterator.batch_size) if comm else ''),
              flush=True)
    trainer.run()
    if args.ensemble_snapshots > 1:
        model = trainer.get_extension('SnapshotEnsemble').ensemble()
        if args.stats_weight:
            model.add_statistics_classifier(args.stats_weight)
    return model, trainer.updater.iteration


def statistics_windows(classes, window, *, noise=None, rng=None,
                       snr_db=None, volume=False):
    """The clean windows a statistics classifier is fitted on.

    Every song's windows every half window (a song shorter than a window
    zero-padded to one), every "Other" sound cut or zero-padded to one
    window. With ``noise``, each window is followed by a noisy copy
    (:func:`~music_classification.augment.add_noise_at_snr`): ``noise`` at
    a signal-to-noise ratio drawn from U(``snr_db``) over the RMS of the
    window's whole song (of an "Other" sound, the sound's own; a silent
    one's copy stays silent). With ``volume``, each window is followed by
    a copy (the noisy one, with ``noise``) turned down as the original's
    training turns its examples down
    (:func:`~music_classification.augment.change_volume` over the
    dataset's ``volume_range``): a song's window to
    U(:data:`~music_classification.augment.SONG_VOLUME`) of its amplitude,
    an "Other" sound to U(:data:`~music_classification.augment.
    OTHER_VOLUME`), each copy drawn anew.

    Args:
        classes (list): for each label, its datasets (``READ_DATASET`` or
            ``READ_DATASET2``).
        window (int): samples per window.
        noise (numpy.ndarray or None): ``(n_noise,)`` noise for the copies.
        rng (numpy.random.Generator): the copies' draws (with ``noise``
            or ``volume``).
        snr_db (tuple): the copies' range of signal-to-noise ratios in dB
            (default :data:`FIT_NOISE_SNR`).
        volume (bool): whether the copies are turned down (or, without
            ``noise``, whether there are copies).

    Yields:
        tuple: ``(wave, label, song)``, ``wave`` ``(window,)`` float32,
        ``song`` the index of its dataset in ``classes`` (a song; the
        sounds of an "Other" dataset share one).
    """
    from music_classification.augment import (
        add_noise_at_snr, change_volume, fit_to_length, rms)
    from music_classification.predict import window_starts
    low, high = snr_db or FIT_NOISE_SNR
    if (noise is not None or volume) and rng is None:
        raise ParameterError('noisy or quieter copies need an rng')

    def with_copy(wave, label, song, level, volumes):
        yield wave, label, song
        copy = wave
        if noise is not None:
            copy = add_noise_at_snr(wave, noise, rng=rng, level=level,
                                    snr_db=rng.uniform(low, high))
        if volume:
            copy = change_volume(copy, rng=rng, low=volumes[0],
                                 high=volumes[1])
        if noise is not None or volume:
            yield copy, label, song
    song = 0
    for label, datasets in enumerate(classes):
        for dataset in datasets:
            # the original's volume range of the dataset's kind
            volumes = dataset.volume_range
            if hasattr(dataset, 'all_data'):
                y = fit_to_length(dataset.all_data, max(
                    window, len(dataset.all_data)))
                level = rms(dataset.all_data) if noise is not None else 0
                for s in window_starts(len(y), window, window // 2):
                    yield from with_copy(y[s:s + window], label, song,
                                         level, volumes)
            else:
                for sound in dataset.sounds:
                    yield from with_copy(
                        fit_to_length(sound, window), label, song,
                        rms(sound) if noise is not None else 0, volumes)
            song += 1


#: The signal-to-noise ratios (dB) of ``train --fit-noise``'s noisy copies:
#: from noise as loud as the music to noise 20 dB below it.
FIT_NOISE_SNR = (0.0, 20.0)


#: How :func:`fit_statistics_classifier` and :func:`fit_output_layer` weigh
#: their windows (``train --fit-weights``): each alike, or as
#: :func:`song_weights`.
FIT_WEIGHTS = ('windows', 'songs')


def song_weights(labels, songs):
    """Window weights under which every class and, within a class, every
    song counts alike.

    A window's weight is ``1 / (windows of its song * songs of its
    class)``, scaled so that the weights' mean is 1: an artist of two songs
    weighs as much as one of five, and a long song as much as a short one.

    Args:
        labels (numpy.ndarray): ``(n,)`` each window's class.
        songs (numpy.ndarray): ``(n,)`` each window's song (any ids).

    Returns:
        numpy.ndarray: ``(n,)`` float64 weights.
    """
    labels, songs = np.asarray(labels), np.asarray(songs)
    _, song_of, windows = np.unique(songs, return_inverse=True,
                                    return_counts=True)
    per_class = {label: len(np.unique(songs[labels == label]))
                 for label in np.unique(labels)}
    w = 1.0 / (windows[song_of] * np.array([per_class[label]
                                             for label in labels]))
    return w / w.mean()


def fit_logistic_regression(X, t, n_classes, *, C=1.0, weights=None):
    """Multinomial logistic regression with an L2 penalty, by L-BFGS.

    Minimises ``C * sum_i w_i * cross_entropy(W x_i + b, t_i) + |W|**2 / 2``
    (the bias is not penalised), scikit-learn's ``LogisticRegression(C=C)``
    fitted with ``sample_weight=weights``.

    Args:
        X (numpy.ndarray): ``(n, k)`` inputs.
        t (numpy.ndarray): ``(n,)`` labels in ``0 .. n_classes - 1``.
        weights (numpy.ndarray or None): ``(n,)`` each row's weight ``w_i``
            (None: 1 each).

    Returns:
        tuple: ``W`` ``(n_classes, k)`` and ``b`` ``(n_classes,)``, float64.
    """
    import scipy.optimize
    X = np.asarray(X, np.float64)
    n, k = X.shape
    Y = np.eye(n_classes)[np.asarray(t)]
    if weights is not None:
        Y = Y * np.asarray(weights, np.float64)[:, None]

    def loss_and_grad(theta):
        W, b = theta[:-n_classes].reshape(n_classes, k), theta[-n_classes:]
        z = X @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        # with weights, the rows of Y sum to w_i: softmax's part scaled too
        G = C * (np.exp(log_p) * Y.sum(axis=1, keepdims=True) - Y)
        loss = -C * (Y * log_p).sum() + 0.5 * (W ** 2).sum()
        return loss, np.concatenate([(G.T @ X + W).ravel(), G.sum(axis=0)])
    theta = scipy.optimize.minimize(
        loss_and_grad, np.zeros(n_classes * (k + 1)), jac=True,
        method='L-BFGS-B', options=dict(maxiter=5000)).x
    return theta[:-n_classes].reshape(n_classes, k), theta[-n_classes:]


def window_rows(classes, config, rows_of, xp=np, batch_size=32, *,
                shifts=(0,), noise=None, rng=None, volume=False):
    """What ``rows_of`` makes of :func:`statistics_windows`' clean windows
    (and, with ``noise`` or ``volume``, their noisy or quieter copies).

    Args:
        classes (list): as :func:`statistics_windows`.
        config (FeatureConfig): the features the windows are turned into.
        rows_of: takes a batch of ``config``'s features and returns
            ``(batch, k)`` rows.
        xp: NumPy or CuPy, where the features are made and read.
        shifts (tuple of int): each window's features are read moved by
            each of these mel bands (:func:`move_bands`; 0: as they are),
            one row each.
        noise (numpy.ndarray or None): noise for :func:`statistics_windows`'
            noisy copies (None: none).
        rng (numpy.random.Generator): the copies' draws.
        volume (bool): :func:`statistics_windows`' copies turned down.

    Returns:
        tuple: the rows ``(windows * len(shifts), k)`` float64, their
        labels and their songs (each of that length), on the CPU.
    """
    rows, labels, batch = [], [], []

    def flush():
        x = config(xp.asarray(np.stack([w for w, _, _ in batch])))
        for k in shifts:
            rows.append(chainer.backend.CpuDevice().send(
                rows_of(move_bands(x, k) if k else x)))
            labels.extend((label, song) for _, label, song in batch)
        del batch[:]
    for example in statistics_windows(classes, config.window_samples,
                                      noise=noise, rng=rng, volume=volume):
        batch.append(example)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    labels, songs = np.array(labels).reshape(-1, 2).T
    return np.concatenate(rows).astype(np.float64), labels, songs


def fit_shifts(bands):
    """The band shifts (:func:`window_rows`' ``shifts``) of ``train
    --fit-shifts bands``: none for 0, else ``bands`` down and up as well.
    """
    bands = int(bands)
    if bands < 0:
        raise ParameterError('fit shifts must be 0 or more bands, got '
                             '{}'.format(bands))
    return (0, -bands, bands) if bands else (0,)


def fit_settings(args):
    """``{'fit_weights': ..., 'fit_shifts': bands, 'fit_noise': bool,
    'fit_volume': bool}`` of parsed ``train`` flags (``--fit-weights``,
    ``--fit-shifts``, ``--fit-noise`` and ``--fit-volume``;
    :func:`fit_shifts` turns the bands into shifts), as
    ``labels.json``'s recipe records them, their defaults resolved: the
    flags' own defaults are None, so that results cached before the flags
    keep their settings."""
    return dict(fit_weights=args.fit_weights or 'windows',
                fit_shifts=args.fit_shifts or 0,
                fit_noise=bool(args.fit_noise),
                fit_volume=bool(args.fit_volume))


def fitting_weights(labels, songs, fit_weights):
    """The weights :func:`fit_logistic_regression` is given for
    ``fit_weights`` (one of :data:`FIT_WEIGHTS`): None for ``windows``."""
    if fit_weights not in FIT_WEIGHTS:
        raise ParameterError('fit_weights must be one of {}, got {!r}'
                             .format(', '.join(FIT_WEIGHTS), fit_weights))
    return song_weights(labels, songs) if fit_weights == 'songs' else None


def fit_statistics_classifier(model, classes, config, batch_size=32, *,
                              fit_weights='windows', shifts=(0,), noise=None,
                              rng=None, volume=False):
    """Fit ``model``'s statistics classifier on the training windows.

    The statistics (:func:`~music_classification.features.
    window_statistics`) of :func:`statistics_windows`' clean windows, in the
    model's features, are standardised and a logistic regression
    (:func:`fit_logistic_regression`, ``C = 1``) is fitted to them: the MFCC
    baseline's classifier, on the network's windows, inside the model
    (:meth:`~music_classification.net.MUSIC_NET.
    add_statistics_classifier`). ``fit_weights`` (:data:`FIT_WEIGHTS`):
    every window alike, or every class and song alike
    (:func:`song_weights`). ``shifts``: each window is also read moved by
    these mel bands (:func:`fit_shifts`), so that the fit does not learn a
    song by the exact bands of its notes. ``noise`` and ``rng``: every
    window is also read with ``noise`` added (:func:`statistics_windows`),
    so that the fit holds in a noisy room; ``volume``: that copy (or,
    without ``noise``, a copy of its own) is turned down as the original's
    training turns its examples down, so that it holds when the music is
    quieter.

    Returns:
        int: the number of rows fitted on (windows, their noisy or
        quieter copies, times shifts).
    """
    from music_classification.features import window_statistics
    xp = model.xp
    X, labels, songs = window_rows(
        classes, config, lambda x: window_statistics(
            x=x, n_coefficients=model.n_coefficients), xp, batch_size,
        shifts=shifts, noise=noise, rng=rng, volume=volume)
    mean, scale, W, b = fit_standardised_regression(
        X, labels, model.n_classes,
        weights=fitting_weights(labels, songs, fit_weights))
    model.stats_mean[...] = xp.asarray(mean, np.float32)
    model.stats_scale[...] = xp.asarray(scale, np.float32)
    model.stats_W[...] = xp.asarray(W, np.float32)
    model.stats_b[...] = xp.asarray(b, np.float32)
    return len(labels)


def fit_output_layer(model, classes, config, *, C, batch_size=32,
                     fit_weights='windows', shifts=(0,), noise=None,
                     rng=None, volume=False):
    """Fit the output layer of a trained network: a linear probe.

    What the output layer reads (:meth:`~music_classification.net.
    MUSIC_NET.embed`) for :func:`statistics_windows`' clean windows is
    standardised and a logistic regression (:func:`fit_logistic_regression`
    with ``C``) fitted to it; the standardisation is folded into the
    weights, so the network stays a plain network of its variant. Every
    other layer is left as it is. Of an ensemble, each member's output
    layer is fitted on its own features (the windows' features made once).
    ``fit_weights``, ``shifts``, ``noise``, ``rng`` and ``volume``: as
    :func:`fit_statistics_classifier`.

    Returns:
        int: the number of rows fitted on (windows, their noisy or
        quieter copies, times shifts).
    """
    xp = model.xp
    nets = list(model) if isinstance(model, ENSEMBLE) else [model]

    def rows_of(x):  # every network's embedding side by side
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            return xp.concatenate([net.embed(x).array for net in nets],
                                  axis=1)
    X, labels, songs = window_rows(classes, config, rows_of, xp, batch_size,
                                   shifts=shifts, noise=noise, rng=rng,
                                   volume=volume)
    weights = fitting_weights(labels, songs, fit_weights)
    # members of one variant: embeddings of one width
    for net, rows in zip(nets, np.split(X, len(nets), axis=1)):
        mean, scale, W, b = fit_standardised_regression(
            rows, labels, net.n_classes, C=C, weights=weights)
        W = W / scale
        layer = getattr(net, OUTPUT_LAYER)
        layer.W.array[...] = xp.asarray(W, np.float32)
        layer.b.array[...] = xp.asarray(b - W @ mean, np.float32)
    return len(labels)


#: The relative spread under which :func:`fit_standardised_regression`
#: takes a feature for constant: about 100 float32 roundings (2**-23 each).
CONSTANT_SPREAD = 1e-5


def fit_standardised_regression(X, t, n_classes, *, C=1.0, weights=None):
    """Standardise ``X`` and fit :func:`fit_logistic_regression` to it.

    A feature whose standard deviation is at most :data:`CONSTANT_SPREAD`
    of its largest magnitude, or of the median standard deviation of the
    features that vary, is constant: what varies is float32 rounding (a
    dead channel of a network's embedding, rounded where its values were
    larger than they end up), which standardised would be blown up to
    unit size and fitted, and its weight divided by a tiny scale. It keeps
    scale 1 and gets weight 0.

    Args:
        X (numpy.ndarray): ``(n, features)`` float64.
        t (numpy.ndarray): ``(n,)`` int labels in ``0 .. n_classes - 1``.
        n_classes (int): the number of classes.
        C (float): inverse strength of the L2 penalty.
        weights (numpy.ndarray or None): ``(n,)`` each row's weight in the
            loss (the mean and scale are not weighted).

    Returns:
        tuple: ``(mean, scale, W, b)``: each feature's mean and standard
        deviation (1 where it is constant), and the weights ``(n_classes,
        features)`` (0 where it is constant) and biases ``(n_classes,)`` on
        ``(X - mean) / scale``.
    """
    mean, scale = X.mean(axis=0), X.std(axis=0)
    spread = scale[scale > 0]  # a network's dead channels: often most
    size = np.maximum(np.abs(X).max(axis=0),
                      np.median(spread) if len(spread) else 0.0)
    constant = scale <= CONSTANT_SPREAD * size
    scale[constant] = 1.0
    Z = (X - mean) / scale
    Z[:, constant] = 0.0  # no gradient: their weights stay 0
    W, b = fit_logistic_regression(Z, t, n_classes, C=C, weights=weights)
    return mean, scale, W, b


def _rows_phrase(rows, shifts):
    if len(shifts) == 1:
        return '{} windows'.format(rows)
    return '{} rows ({} windows, each at {} band shifts)'.format(
        rows, rows // len(shifts), len(shifts))


def save_run_labels(args, class_names, config, spec, split,
                    other_sounds=()):  # pragma: no mutate block
    """labels.json: classes, features, architecture (``spec``), recipe,
    split and the "Other" sounds trained on (``other_sounds``, each of them
    in every run: ``evaluate`` warns when they are scored)."""
    collection.save_labels(
        os.path.join(args.out, 'labels.json'), class_names, config,
        model=spec,
        recipe=dict(recipe=args.recipe, lr=args.lr,
                    weight_decay=args.weight_decay,
                    lr_schedule=args.lr_schedule, mixup=args.mixup,
                    label_smoothing=args.label_smoothing,
                    same_class_mix=args.same_class_mix,
                    freq_shift=args.freq_shift, random_eq=args.random_eq,
                    time_stretch=args.time_stretch,
                    stats_weight=args.stats_weight, members=args.members,
                    ensemble_snapshots=args.ensemble_snapshots,
                    ensemble_from=args.ensemble_from,
                    balance_songs=args.balance_songs,
                    spec_augment=args.spec_augment, noise=not args.no_noise,
                    batch_per_song=args.batch_per_song,
                    batch_per_class=args.batch_per_class, seed=args.seed,
                    init_from=args.init_from,
                    linear_probe=args.linear_probe,
                    fine_tune=args.fine_tune, **fit_settings(args)),
        other_sounds=list(other_sounds), **split)


def build_trainer(args, model, iterator, config, device, comm,
                  rank):  # pragma: no mutate block
    """Adam, the seeded updater and a Trainer that stops at --iterations or
    --time-budget."""
    optimizer = make_optimizer(model, alpha=args.lr,
                               weight_decay=args.weight_decay, comm=comm)
    converter = FeatureConverter(
        config, spec_augment=args.spec_augment,
        rng=np.random.default_rng([args.seed, rank, 2]),
        same_class_mix=args.same_class_mix, freq_shift=args.freq_shift,
        random_eq=args.random_eq, time_stretch=args.time_stretch)
    updater = SeededUpdater(
        iterator, optimizer, converter=converter, device=device,
        loss_func=loss_with_report(model, mixup=args.mixup,
                                   label_smoothing=args.label_smoothing),
        seed=(args.seed, rank))
    stop = (args.iterations, 'iteration') if args.time_budget is None else \
        TimeBudgetTrigger(args.time_budget, args.iterations)
    trainer = chainer.training.Trainer(updater, stop, out=args.out)
    if args.lr_schedule == 'cosine':
        # Adam's alpha from --lr down to 0 over the run
        trainer.extend(CosineAnnealing(
            args.lr, args.iterations,
            None if isinstance(stop, tuple) else stop))
        # Log the alpha of each update
        trainer.extend(extensions.observe_value(
            'alpha', lambda t: t.updater.get_optimizer('main').alpha),
            trigger=(1, 'iteration'))
    if args.ensemble_snapshots > 1:
        # Copies of the network over the run's last part, for the saved
        # model: their ensemble
        trainer.extend(SnapshotEnsemble(
            model, args.ensemble_snapshots, args.ensemble_from,
            args.iterations, None if isinstance(stop, tuple) else stop))
    return trainer


def add_evaluator(trainer, args, model, val, config, device,
                  comm):  # pragma: no mutate block
    """Score the held-out windows every --eval-every iterations."""
    val = chainer.datasets.ConcatenatedDataset(*val)
    if comm is not None:
        # Each rank scores a shard; the results are averaged.
        import chainermn
        val = chainermn.scatter_dataset(val, comm)
    evaluator = extensions.Evaluator(
        chainer.iterators.SerialIterator(val, 16, repeat=False,
                                         shuffle=False),
        model, converter=FeatureConverter(config), device=device,
        eval_func=loss_with_report(model))
    if comm is not None:
        evaluator = chainermn.create_multi_node_evaluator(evaluator, comm)
    # Loss and accuracy on the held-out songs' windows
    trainer.extend(evaluator, trigger=(args.eval_every, 'iteration'))


def add_snapshots(trainer, args, comm):  # pragma: no mutate block
    """Snapshots every --snapshot-every iterations; --resume loads one."""
    # Snapshot of the whole trainer, uncompressed (1 GB compresses
    # slowly); --resume loads the latest one
    snapshot = extensions.snapshot(
        filename='snapshot_iter_{.updater.iteration}', n_retains=1,
        autoload=args.resume,
        savefun=functools.partial(chainer.serializers.save_npz,
                                  compression=False))
    if comm is not None:
        # Rank 0 writes it; at resume every rank gets rank 0's state
        # (the weights are the same on all ranks, and each iterator
        # re-derives its own windows from its seed and the epoch).
        import chainermn
        snapshot = chainermn.extensions.multi_node_snapshot(
            comm, snapshot, [])
    # Last of all extensions at its iteration, after the log is written,
    # with Chainer's snapshot priority (-100): ChainerMN's wrapper would
    # otherwise run at the default priority, before LogReport.
    trainer.extend(snapshot, trigger=(args.snapshot_every, 'iteration'),
                   priority=-100)


def add_reports(trainer, args, keys):  # pragma: no mutate block
    """The log, its plots, the printed table and the progress bar."""
    # Average the reported values every --log-every iterations into out/log
    trainer.extend(extensions.LogReport(trigger=(args.log_every,
                                                 'iteration')))
    # Loss and accuracy curves as PNG
    trainer.extend(extensions.PlotReport(
        [k for k in keys if k.endswith('loss')], 'iteration',
        trigger=(args.log_every, 'iteration'), file_name='loss.png'))
    trainer.extend(extensions.PlotReport(
        [k for k in keys if k.endswith('accuracy')], 'iteration',
        trigger=(args.log_every, 'iteration'), file_name='accuracy.png'))
    # Print the log as a table, to the sys.stdout of now (PrintReport's
    # default is the one of when Chainer was imported)
    trainer.extend(extensions.PrintReport(
        keys + ['elapsed_time'], out=sys.stdout if not args.no_progress
        else PlainText(sys.stdout)))
    if not args.no_progress:
        # Progress bar
        trainer.extend(extensions.ProgressBar(update_interval=1,
                                              out=sys.stdout))


class PlainText:
    """A text stream without the ``ESC [ J`` (erase below) that Chainer's
    PrintReport writes before each row to erase the progress bar: with
    ``--no-progress`` there is no bar, and a log piped to a file or
    ``tee`` gets plain lines."""

    def __init__(self, out):
        self.out = out

    def write(self, text):
        return self.out.write(text.replace('\033[J', ''))

    def flush(self):
        self.out.flush()


def parameter_checksum(model):
    """SHA-256 of all parameters, in name order (equal on in-sync ranks)."""
    h = hashlib.sha256()
    for name, param in sorted(model.namedparams()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(chainer.backends.cuda.to_cpu(
            param.array)).tobytes())
    return h.hexdigest()[:16]
