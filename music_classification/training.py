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
  :func:`spec_augment`'s masks for training batches if asked.
* :func:`make_optimizer`: Adam(alpha=1e-4) with WeightDecay(1e-4).
* :func:`loss_with_report`: the loss function for ``StandardUpdater``; it
  reports ``loss`` and ``accuracy`` for ``LogReport``.
"""

import chainer
import numpy as np

from music_classification import features as _features
from music_classification.errors import DatasetError


class BalancedOrderSampler(chainer.iterators.OrderSampler):
    """Class-balanced batches for Chainer's own iterators.

    The iterator's dataset is the concatenation of the classes' examples,
    class by class (``class_sizes[c]`` examples for class ``c``). Every
    ``batch_size = sum(batch_per_class)`` consecutive positions of the order
    hold ``batch_per_class[c]`` examples of class ``c``, drawn uniformly (with
    replacement) among that class's examples, whatever song they come from
    (``train.py --batch-per-class``; the original's batches are
    :class:`SongOrderSampler`'s). An epoch is ``batches_per_epoch``
    batches.

    The order of epoch ``e`` depends only on ``(seed, e)``, so an iterator
    restored from a snapshot (:func:`balanced_iterator`) re-derives it, and
    data-parallel ranks seeded ``(seed, rank)`` draw different windows while
    sharing one snapshot.

    Args:
        class_sizes (list of int): examples per class, in dataset order.
        batch_per_class (int or list of int): examples per class per batch.
        batches_per_epoch (int): batches in one epoch.
        seed (int or tuple of int): seed of the window choice.
    """

    def __init__(self, class_sizes, batch_per_class, batches_per_epoch=100,
                 seed=0):
        self.class_sizes = [int(n) for n in class_sizes]
        for label, n in enumerate(self.class_sizes):
            if n <= 0:
                raise DatasetError('class {} has no examples'.format(label))
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
            for offset, size, k in zip(self.offsets, self.class_sizes,
                                       self.batch_per_class):
                batches.append(offset + rng.integers(0, size, size=k))
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
                      seed=0, n_processes=None):
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

    Returns:
        chainer.dataset.Iterator: yields lists of ``(wave, label)``.
    """
    _check_classes(classes)
    sampler = BalancedOrderSampler(
        [sum(len(d) for d in datasets) for datasets in classes],
        batch_per_class, batches_per_epoch, seed)
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
        rng (numpy.random.Generator or None): source of the masks.
    """

    def __init__(self, config=None, spec_augment=False, rng=None):
        self.config = config or _features.FeatureConfig()
        self.spec_augment = bool(spec_augment)
        self.rng = np.random.default_rng(rng)

    def __call__(self, batch, device=None):
        waves, labels = chainer.dataset.concat_examples(batch, device)
        x = self.config(waves)
        if self.spec_augment and self.config.representation == 'mel':
            x = spec_augment(x, rng=self.rng)
        return x, labels


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
        if device.xp is not np:
            device.xp.random.seed(int(sequence.generate_state(1)[0]))
        super(SeededUpdater, self).update_core()


class TimeBudgetTrigger(object):
    """Stop trigger: after ``minutes`` of training or ``max_iterations``.

    For benchmarks "under a fixed CPU budget"; the clock starts at the first
    call (the first iteration), so data loading does not count.
    """

    def __init__(self, minutes, max_iterations=None):
        self.seconds = 60.0 * minutes
        self.max_iterations = max_iterations
        self.start = None

    def __call__(self, trainer):
        import time
        if self.start is None:
            self.start = time.perf_counter()
        if self.max_iterations is not None and \
                trainer.updater.iteration >= self.max_iterations:
            return True
        return time.perf_counter() - self.start >= self.seconds

    def get_training_length(self):
        return (self.max_iterations, 'iteration')


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


def loss_with_report(model):
    """A ``loss_func`` for ``StandardUpdater`` reporting loss and accuracy."""
    def lossfun(x, t):
        loss, accuracy = model(x, t)
        chainer.report({'loss': loss, 'accuracy': accuracy}, model)
        return loss
    return lossfun
