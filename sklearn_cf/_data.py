"""Training rows of one month, and batches served by slicing tensors.

skorch's default ``DataLoader`` fetches and collates row by row, which costs
about half the throughput of a hand-written loop on tabular data. Rows here
stay in a few large CPU tensors; a batch is one fancy-indexing gather.
"""

import math
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MonthData", "RowsDataset", "EpochIterator", "SliceIterator", "as_tensor",
           "prefetch", "host_to_device", "nbytes"]


def as_tensor(array):
    """Zero-copy view of a numpy array (or a read-only memmap) as a CPU tensor.

    The package never writes to its input, so torch's warning about
    non-writable arrays (a memmap opened with ``mode="r"``) is silenced here.
    """
    if isinstance(array, torch.Tensor):
        return array
    array = np.ascontiguousarray(array)
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable", category=UserWarning
        )
        return torch.from_numpy(array)


class MonthData(Dataset):
    """What one month trains on: some row sources and a per-epoch plan.

    The rows of several sources (the new month, replay memory, earlier
    months) are addressed as one virtual concatenation without copying them
    into one tensor. ``plan`` holds the virtual row indices of the current
    epoch; ``resample`` draws a new one, so replay can mix different past rows
    into every epoch.

    Parameters
    ----------
    sources : list of (Tensor, Tensor)
        ``(X, y)`` pairs of CPU tensors.
    sample_epoch : callable, default=None
        ``sample_epoch(sizes, rng) -> ndarray of int`` gives the virtual row
        indices of one epoch from the source sizes and a numpy Generator.
        None trains on every row once per epoch.
    weights : list of (Tensor or None) or None, default=None
        Per-row sample weights of each source (float32, one per row), None
        for a source whose rows all weigh 1. When any source has weights,
        training batches are ``(X, (y, w))`` instead of ``(X, y)``.
    """

    def __init__(self, sources, sample_epoch=None, weights=None):
        self.sources = [(as_tensor(X), as_tensor(y)) for X, y in sources]
        self.sizes = [len(y) for _, y in self.sources]
        self.offsets = np.cumsum([0] + self.sizes)
        self.sample_epoch = sample_epoch
        if weights is None or all(w is None for w in weights):
            self.weights = None
        else:
            if len(weights) != len(self.sources):
                raise ValueError(
                    f"{len(weights)} weight entries for {len(self.sources)} sources."
                )
            self.weights = [
                torch.ones(n, dtype=torch.float32) if w is None else as_tensor(w)
                for w, n in zip(weights, self.sizes)
            ]
        self.plan = None
        self.held_out = None

    @property
    def weighted(self):
        """Whether rows carry sample weights (batches are ``(X, (y, w))``)."""
        return self.weights is not None

    def to(self, device):
        """This month's rows on ``device`` (moved once; the plan and what is
        held out are kept)."""
        moved = MonthData([], self.sample_epoch)
        moved.sources = [(X.to(device), y.to(device)) for X, y in self.sources]
        if self.weights is not None:
            moved.weights = [w.to(device) for w in self.weights]
        moved.sizes, moved.offsets = self.sizes, self.offsets
        moved.plan, moved.held_out = self.plan, self.held_out
        return moved

    def resample(self, rng):
        """Draw the rows of the next epoch (never a held-out row)."""
        if self.sample_epoch is None:
            plan = np.arange(self.offsets[-1])
        else:
            plan = np.asarray(self.sample_epoch(self.sizes, rng), dtype=np.int64)
        if self.held_out is not None:
            plan = plan[~np.isin(plan, self.held_out)]
        self.plan = torch.from_numpy(plan)
        return self

    def hold_out(self, vidx):
        """Keep rows out of this and every later epoch, and return them as a
        fixed :class:`MonthData` (a validation set that cannot leak into
        training when later epochs draw other rows).

        Parameters
        ----------
        vidx : array-like of int
            Virtual row indices.

        Returns
        -------
        MonthData
        """
        vidx = np.asarray(vidx, dtype=np.int64)
        self.held_out = np.unique(vidx if self.held_out is None
                                  else np.concatenate([self.held_out, vidx]))
        if self.plan is not None:
            plan = self.plan.numpy()
            self.plan = torch.from_numpy(plan[~np.isin(plan, self.held_out)])
        held = MonthData(self.sources, weights=self.weights)
        held.plan = torch.from_numpy(vidx.copy())
        return held

    def plan_labels(self):
        """Labels of the current epoch's rows, in plan order."""
        if len(self.sources) == 1:
            return self.sources[0][1][self.plan]
        labels = torch.cat([y for _, y in self.sources])
        return labels[self.plan]

    def plan_weights(self):
        """Sample weights of the current epoch's rows in plan order, or None
        when no source has weights."""
        if self.weights is None:
            return None
        if len(self.weights) == 1:
            return self.weights[0][self.plan]
        return torch.cat(self.weights)[self.plan]

    def labels_and_weights(self, vidx):
        """Labels and sample weights (None when rows are unweighted) of the
        rows with virtual indices ``vidx`` (a tensor), in that order; no
        feature is read."""
        vidx = vidx.cpu()
        labels = torch.cat([y.cpu() for _, y in self.sources])[vidx]
        if self.weights is None:
            return labels, None
        return labels, torch.cat([w.cpu() for w in self.weights])[vidx]

    def rows(self, vidx):
        """Gather rows by virtual index (order within the result may differ
        from ``vidx`` when several sources are hit, X and y stay aligned).
        Returns ``(X, y)``, or ``(X, (y, w))`` when rows carry weights."""
        if len(self.sources) == 1:
            X, y = self.sources[0]
            if self.weights is not None:
                return X[vidx], (y[vidx], self.weights[0][vidx])
            return X[vidx], y[vidx]
        source = np.searchsorted(self.offsets, vidx.numpy(), side="right") - 1
        parts_X, parts_y, parts_w = [], [], []
        for k in np.unique(source):
            local = vidx[torch.from_numpy(source == k)] - int(self.offsets[k])
            X, y = self.sources[k]
            parts_X.append(X[local])
            parts_y.append(y[local])
            if self.weights is not None:
                parts_w.append(self.weights[k][local])
        if self.weights is not None:
            return torch.cat(parts_X), (torch.cat(parts_y), torch.cat(parts_w))
        return torch.cat(parts_X), torch.cat(parts_y)

    def __len__(self):
        if self.plan is None:
            raise RuntimeError("MonthData.resample must be called before use.")
        return len(self.plan)

    def __getitem__(self, i):
        X, y = self.rows(self.plan[i : i + 1])
        if self.weights is not None:
            return X[0], (y[0][0], y[1][0])
        return X[0], y[0]


class RowsDataset(Dataset):
    """Rows of a single feature tensor, for prediction."""

    def __init__(self, X):
        self.X = as_tensor(X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], torch.zeros(())


def host_to_device(device):
    """How a host batch reaches ``device``: on CUDA, a copy into pinned
    memory and a non-blocking copy to the device (so it can overlap the
    previous step); None elsewhere (nothing to move)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None

    def move(tensor):
        if tensor.device.type == device.type:  # already there (month_on_device)
            return tensor
        return tensor.pin_memory().to(device, non_blocking=True)

    return move


def prefetch(batches, move):
    """Yield ``(X, y)`` batches passed through ``move``, issuing the next
    batch's ``move`` before the current batch is yielded: with non-blocking
    copies, batch k+1 travels to the device while batch k trains.

    Examples
    --------
    >>> log = []
    >>> def move(t):
    ...     log.append(f"move {t}")
    ...     return t
    >>> for X, y in prefetch(iter([(1, 1), (2, 2), (3, 3)]), move):
    ...     log.append(f"train {X}")
    >>> log[:5]
    ['move 1', 'move 1', 'move 2', 'move 2', 'train 1']
    """
    pending = None
    for X, y in batches:
        moved = (move(X), tuple(map(move, y)) if isinstance(y, tuple) else move(y))
        if pending is not None:
            yield pending
        pending = moved
    if pending is not None:
        yield pending


def nbytes(sources, weights=None):
    """Bytes held by the ``(X, y)`` tensor pairs of ``sources`` (and their
    ``weights``, a list of tensors, if given)."""
    tensors = [t for pair in sources for t in pair] + list(weights or [])
    return sum(t.element_size() * t.nelement() for t in tensors)


class EpochIterator:
    """Shuffled mini-batches over a :class:`MonthData` epoch plan.

    Parameters
    ----------
    data : MonthData
    batch_size : int
        Rows per (global) batch.
    shuffle : bool, default=True
    generator : torch.Generator, default=None
        Draws the shuffle.
    shard : (int, int) or None, default=None
        ``(rank, world_size)`` when several processes train together: every
        process shuffles the plan identically (same generator state), cuts
        it into the same global batches of ``batch_size`` rows, and yields
        only rows ``rank::world_size`` of each. Every process then yields
        the same number of batches (a local batch may be empty when the last
        global batch has fewer rows than processes). ``global_batch_rows``
        holds the number of rows of the global batch last yielded, and
        ``global_batch_index`` their virtual row indices.
    device : str or torch.device, default=None
        Where batches are trained. Batches are gathered on the device the
        sources live on (the host, or the GPU with ``month_on_device``); for
        a CUDA device, host batches move there through pinned memory, one
        batch ahead (:func:`prefetch`).
    """

    def __init__(self, data, batch_size, shuffle=True, generator=None, shard=None,
                 device=None):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.shard = shard
        self.global_batch_rows = None
        self.global_batch_index = None
        self.move = None if device is None else host_to_device(device)

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    #: Plan rows gathered at once when several sources are mixed: one index
    #: operation per source per chunk instead of per batch (bounded memory:
    #: 16k rows x 200 float32 features is 13 MB).
    chunk_rows = 16384

    def _local_plan(self, plan):
        """This process's rows of the plan and the (local, global) size of
        each batch."""
        size = self.batch_size
        global_sizes = [min(size, len(plan) - start) for start in range(0, len(plan), size)]
        if self.shard is None:
            return plan, global_sizes, global_sizes
        rank, world = self.shard
        position_in_batch = torch.arange(len(plan)) % size
        local = plan[position_in_batch % world == rank]
        local_sizes = [len(range(rank, n, world)) for n in global_sizes]
        return local, local_sizes, global_sizes

    def __iter__(self):
        batches = self._host_batches()
        if self.move is not None:
            batches = prefetch(batches, self.move)
        # Set as each batch is handed out: prefetch runs one batch ahead.
        for k, batch in enumerate(batches):
            self.global_batch_rows = self._global_sizes[k]
            if self.shard is not None:
                start = k * self.batch_size
                self.global_batch_index = self._global_plan[start:start + self.batch_size]
            yield batch

    def _host_batches(self):
        data = self.data
        plan = data.plan
        if self.shuffle:
            plan = plan[torch.randperm(len(plan), generator=self.generator)]
        self._global_plan = plan
        plan, sizes, self._global_sizes = self._local_plan(plan)
        on = data.sources[0][0].device
        plan = plan.to(on)  # indices where the rows are
        ends = np.cumsum([0] + sizes).tolist()
        weights = None if data.weights is None else [w.to(on) for w in data.weights]
        if len(data.sources) == 1:
            X, y = data.sources[0]
            for k in range(len(sizes)):
                index = plan[ends[k] : ends[k + 1]]
                if weights is None:
                    yield X[index], y[index]
                else:
                    yield X[index], (y[index], weights[0][index])
            return
        bounds = torch.from_numpy(np.asarray(data.offsets[1:-1], dtype=np.int64)).to(on)
        per_chunk = max(1, self.chunk_rows // self.batch_size)  # batches per gather
        X0, y0 = data.sources[0]
        # On the host, gather straight into pinned memory when batches go on
        # to a GPU (no extra copy before the non-blocking transfer).
        pin = self.move is not None and on.type == "cpu"
        for first_batch in range(0, len(sizes), per_chunk):
            last_batch = min(first_batch + per_chunk, len(sizes))
            first = ends[first_batch]
            chunk = plan[first : ends[last_batch]]
            source = torch.searchsorted(bounds, chunk, right=True)
            order = torch.argsort(source, stable=True)
            counts = torch.bincount(source, minlength=len(data.sources)).tolist()
            X_chunk = torch.empty((len(chunk), *X0.shape[1:]), dtype=X0.dtype, device=on,
                                  pin_memory=pin)
            y_chunk = torch.empty((len(chunk), *y0.shape[1:]), dtype=y0.dtype, device=on,
                                  pin_memory=pin)
            w_chunk = None if weights is None else torch.empty(
                len(chunk), dtype=weights[0].dtype, device=on, pin_memory=pin)
            done = 0
            for k, count in enumerate(counts):
                if count:
                    where = order[done : done + count]
                    done += count
                    X, y = data.sources[k]
                    # Read each source in index order (sequential on a
                    # memory-mapped file); rows still land in plan order.
                    local, order_in_source = torch.sort(chunk[where] - int(data.offsets[k]))
                    where = where[order_in_source]
                    X_chunk[where] = X[local]
                    y_chunk[where] = y[local]
                    if w_chunk is not None:
                        w_chunk[where] = weights[k][local]
            # Rows keep the plan's order; batches are views of the chunk.
            for k in range(first_batch, last_batch):
                rows = slice(ends[k] - first, ends[k + 1] - first)
                if w_chunk is None:
                    yield X_chunk[rows], y_chunk[rows]
                else:
                    yield X_chunk[rows], (y_chunk[rows], w_chunk[rows])


class SliceIterator:
    """Consecutive slices of a :class:`RowsDataset`, in order."""

    def __init__(self, dataset, batch_size):
        self.X = dataset.X
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.X), self.batch_size):
            yield self.X[start : start + self.batch_size], None
