"""The original's training recipe on Chainer's own machinery.

* :func:`balanced_iterator`: Chainer's ``SerialIterator`` or
  ``MultiprocessIterator`` with a :class:`BalancedOrderSampler`: every step
  takes ``batch_per_class`` random windows from every class (the original:
  10 from each artist, plus the "Other" clips), so a class with more songs
  does not dominate.
* :class:`FeatureConverter`: stacks the examples' waveforms on the training
  device and computes the features there, batched, with the package's one
  feature function (on the GPU when training on the GPU).
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
    replacement) among that class's examples: the original's "10 windows from
    every artist plus the Other clips" in each step. An epoch is
    ``batches_per_epoch`` batches.

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
    for label, datasets in enumerate(classes):
        if not datasets:
            raise DatasetError('class {} has no examples'.format(label))
    flat = [d for datasets in classes for d in datasets]
    dataset = chainer.datasets.ConcatenatedDataset(*flat)
    sampler = BalancedOrderSampler(
        [sum(len(d) for d in datasets) for datasets in classes],
        batch_per_class, batches_per_epoch, seed)
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
    """

    def __init__(self, config=None):
        self.config = config or _features.FeatureConfig()

    def __call__(self, batch, device=None):
        waves, labels = chainer.dataset.concat_examples(batch, device)
        return self.config(waves), labels


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
