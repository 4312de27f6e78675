"""Training rows of one month, and batches served by slicing tensors.

skorch's default ``DataLoader`` fetches and collates row by row, which costs
about half the throughput of a hand-written loop on tabular data. Rows here
stay in a few large CPU tensors; a batch is gathered from them with
``index_select`` (see :class:`EpochIterator` for batches mixing sources).
"""

import functools
import math
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["MonthData", "RowsDataset", "EpochIterator", "SliceIterator", "as_tensor",
           "prefetch", "host_to_device", "nbytes", "sorted_within_batches"]


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
            # A source without weights weighs 1 everywhere: a zero-stride
            # view of one 1.0, so that an unweighted memory of any size costs
            # nothing (not a tensor of ones per remembered row every month).
            self.weights = [
                torch.ones(1, dtype=torch.float32).expand(n) if w is None else as_tensor(w)
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

    def _source_starts(self, device):
        """The first virtual index of every source, on ``device`` (made once
        per device: batches ask for it at every step)."""
        device = torch.device(device)
        cache = self.__dict__.setdefault("_starts", {})
        if device not in cache:
            cache[device] = torch.as_tensor(np.asarray(self.offsets[:-1], dtype=np.int64),
                                            device=device)
        return cache[device]

    def _source_bounds(self, device):
        """The first virtual index of every source but the first, on ``device``
        (``searchsorted`` of a virtual index on them gives its source)."""
        return self._source_starts(device)[1:]

    def _take(self, vidx, *per_source):
        """Entries ``vidx`` (virtual row indices) of per-source 1-d tensors,
        in that order, on their device: one tensor for each list of
        ``per_source`` (labels, weights), which share the index work.

        One gather per source hit: the work is in the number of indices, never
        in the number of rows the sources hold (no concatenation of every
        source, which grows with the history a month keeps).
        """
        on = per_source[0][0].device
        vidx = torch.as_tensor(vidx, device=on)
        if len(self.sources) == 1:
            return [tensors[0].index_select(0, vidx) for tensors in per_source]
        source = torch.searchsorted(self._source_bounds(on), vidx, right=True)
        order = _grouped(source, len(self.sources))
        local = (vidx - self._source_starts(on)[source]).index_select(0, order)
        counts = torch.bincount(source, minlength=len(self.sources)).tolist()
        hit = [k for k, count in enumerate(counts) if count]
        local = local.split(counts)
        out = []
        for tensors in per_source:
            # Each source's entries into its slice of a buffer in source
            # order, then all of them back to the order asked for.
            dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
            by_source = torch.empty(len(vidx), dtype=dtype, device=on)
            parts = by_source.split(counts)
            for k in hit:
                if tensors[k].dtype == dtype:
                    torch.index_select(tensors[k], 0, local[k], out=parts[k])
                else:
                    parts[k].copy_(tensors[k].index_select(0, local[k]))
            out.append(torch.empty_like(by_source).index_copy_(0, order, by_source))
        return out

    def plan_labels(self):
        """Labels of the current epoch's rows, in plan order (read from the
        rows of the plan only, whatever the size of the sources)."""
        return self._take(self.plan, [y for _, y in self.sources])[0]

    def plan_weights(self):
        """Sample weights of the current epoch's rows in plan order, or None
        when no source has weights."""
        if self.weights is None:
            return None
        return self._take(self.plan, self.weights)[0]

    def labels_and_weights(self, vidx):
        """Labels and sample weights (None when rows are unweighted) of the
        rows with virtual indices ``vidx`` (a tensor), in that order, on the
        CPU; no feature is read, and only the rows asked for."""
        labels = [y for _, y in self.sources]
        if self.weights is None:
            return self._take(vidx, labels)[0].cpu(), None
        labels, weights = self._take(vidx, labels, self.weights)
        return labels.cpu(), weights.cpu()

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


def _row_bytes(X):
    """Bytes of one row of ``X``'s features."""
    return X.element_size() * math.prod(X.shape[1:])


def _argsort(values):
    """Indices that sort a 1-d integer tensor (ties in any order); numpy's
    sort on the CPU, several times faster than torch's there."""
    if values.device.type == "cpu":
        return torch.from_numpy(np.argsort(values.numpy()))
    return torch.argsort(values)


def _grouped(source, n_sources):
    """The positions of ``source`` (source ids, a 1-d tensor) grouped by id,
    in increasing order within each: a stable argsort, as a radix sort of
    16-bit keys on the CPU (ten times numpy's default sort on such keys)."""
    if source.device.type == "cpu" and n_sources <= 2**16:
        return torch.from_numpy(np.argsort(source.numpy().astype(np.uint16), kind="stable"))
    return torch.argsort(source, stable=True)


def _put(out, where, values):
    """``out[where] = values`` for a 1-d index ``where``: ``index_copy_``
    (a plain copy per row) when the dtypes agree, else a casting assignment."""
    if values.dtype == out.dtype:
        out.index_copy_(0, where, values)
    else:
        out[where] = values


def sorted_within_batches(plan, batch_size):
    """``plan`` with the virtual indices of every batch of ``batch_size``
    consecutive entries sorted in increasing order.

    Each batch keeps the same rows; only their order inside the batch
    changes, which the mean loss over a batch does not see. Sorted, the rows
    a batch takes from one source are contiguous (virtual indices of a source
    form one range), so they can be gathered into the batch with one copy.

    Examples
    --------
    >>> sorted_within_batches(torch.tensor([5, 1, 4, 0, 3, 2, 9]), 3).tolist()
    [1, 4, 5, 0, 2, 3, 9]
    """
    n_full = len(plan) // batch_size * batch_size
    if plan.device.type == "cpu":  # numpy's sort is many times faster here
        values = plan.numpy()
        return torch.from_numpy(np.concatenate([
            np.sort(values[:n_full].reshape(-1, batch_size), axis=1).reshape(-1),
            np.sort(values[n_full:])]))
    head = plan[:n_full].reshape(-1, batch_size).sort(dim=1).values.reshape(-1)
    return torch.cat([head, plan[n_full:].sort().values])


def _only_source(data, plan):
    """The source every row of ``plan`` comes from, or None when it mixes
    several."""
    if len(data.sources) == 1:
        return 0
    if not len(plan):
        return None
    first, last = np.searchsorted(data.offsets, [int(plan.min()), int(plan.max())],
                                  side="right") - 1
    return int(first) if first == last else None


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

    Notes
    -----
    The (shuffled) plan is cut into batches of ``batch_size`` consecutive
    rows. A shuffled plan that mixes several sources (replay's new month and
    memory, joint's history) then has each global batch's rows put in
    increasing virtual index (:func:`sorted_within_batches`, before
    sharding, so that every process agrees): each batch holds the same rows,
    in another order, which the batch's mean loss does not see, and the rows
    it takes from one source are contiguous. On the host they are copied
    once, from the source straight into the batch's memory
    (``index_select(..., out=...)``), rather than gathered into a temporary
    and then scattered into place; a memory-mapped source is read in
    increasing row order within each batch. Otherwise (one source, or
    ``shuffle=False``, as for validation rows) batches keep the plan's order.

    A source that contributes on average fewer than :attr:`min_run_rows`
    rows (or :attr:`min_run_bytes` bytes) to each batch of a chunk is
    gathered for the whole chunk at once, in increasing row order, and then
    put in place: two copies of its rows,
    but two operations instead of one per batch, which is faster for short
    runs (see ``benchmarks/bench_gather.py``). Sources on a GPU always take
    that path (one kernel per source, not one per batch and source).
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

    #: Plan rows gathered at once: one index operation per source per chunk
    #: instead of per batch (and at most :attr:`chunk_bytes` of features).
    chunk_rows = 16384

    #: At most this many bytes of features are gathered at once: wide rows
    #: (16k rows x 2,381 float32 features would be 156 MB) and memory-mapped
    #: months keep a small footprint (tests/test_inputs.py), while narrow
    #: rows still gather dozens of batches at once. A 200,000 x 200 month in
    #: RAM: the process grew by 10-13 MiB during its epoch with 1 MiB
    #: chunks, 17-21 MiB with 4 MiB ones.
    chunk_bytes = 2**20

    def _batches_per_chunk(self, X):
        """Batches gathered at once: :attr:`chunk_rows` rows (at least one
        batch), fewer when that many of ``X``'s rows pass :attr:`chunk_bytes`."""
        rows = min(self.chunk_rows, self.chunk_bytes // max(1, _row_bytes(X)))
        return max(1, rows // self.batch_size)

    #: Rows per batch, on average over a chunk, from which a source's rows are
    #: copied straight into each batch (one ``index_select`` per batch and
    #: source) rather than gathered for the chunk and put in place (two copies,
    #: two operations per source). Measured on 2 CPU cores, 200 float32
    #: features: a direct copy per batch wins from about 16-32 rows a run.
    min_run_rows = 24

    #: And at least this many bytes of features per run: with narrow rows a
    #: copy costs its call, not its bytes (MLP 8-16-2's 8 float32 features,
    #: 128 rows a run: 25 us a batch copied per run, 21 us gathered for the
    #: chunk; benchmarks/bench_step.py). 24 rows of 200 float32 features
    #: are 19 kB.
    min_run_bytes = 16384

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
        only = _only_source(data, plan)
        if only is None and self.shuffle:
            plan = sorted_within_batches(plan, self.batch_size)
        self._global_plan = plan
        plan, sizes, self._global_sizes = self._local_plan(plan)
        on = data.sources[0][0].device
        plan = plan.to(on)  # indices where the rows are
        ends = np.cumsum([0] + sizes).tolist()
        weights = None if data.weights is None else [w.to(on) for w in data.weights]
        if only is not None:
            # Rows of one source (replay with rehearsal_ratio=0 included):
            # batches in plan order, as a single-source month's.
            X, y = data.sources[only]
            w = None if weights is None else weights[only]
            if only:
                plan = plan - int(data.offsets[only])

            def gather(index, _sizes):
                # index_select: the same rows as X[index], a plain copy per
                # row (advanced indexing costs about three times as much).
                return (X.index_select(0, index), y.index_select(0, index),
                        None if w is None else w.index_select(0, index))
        else:
            X = data.sources[0][0]

            def gather(index, chunk_sizes):
                return self._gather_chunk(index, chunk_sizes, weights)

        # One gather for a chunk of batches, then views of it: with a small
        # network a gather per batch cost as much as a tenth of the step
        # (benchmarks/bench_step.py).
        per_chunk = self._batches_per_chunk(X)
        for first_batch in range(0, len(sizes), per_chunk):
            last_batch = min(first_batch + per_chunk, len(sizes))
            first = ends[first_batch]
            X_chunk, y_chunk, w_chunk = gather(plan[first : ends[last_batch]],
                                               sizes[first_batch:last_batch])
            for k in range(first_batch, last_batch):
                rows = slice(ends[k] - first, ends[k + 1] - first)
                if w_chunk is None:
                    yield X_chunk[rows], y_chunk[rows]
                else:
                    yield X_chunk[rows], (y_chunk[rows], w_chunk[rows])

    def _gather_chunk(self, chunk, sizes, weights):
        """The rows of consecutive batches (``sizes`` rows each, virtual
        indices ``chunk``) as one ``(X, y, w)`` in that order, ``w`` None for
        unweighted rows. Features of long runs (one source's consecutive rows
        in a batch) are copied straight into place; labels and weights, and
        the features of other sources, are gathered per source, in
        increasing row order, then put in place."""
        data = self.data
        X0, y0 = data.sources[0]
        on = X0.device
        # On the host, gather straight into pinned memory when batches go on
        # to a GPU (no extra copy before the non-blocking transfer).
        pin = self.move is not None and on.type == "cpu"
        X_chunk = torch.empty((len(chunk), *X0.shape[1:]), dtype=X0.dtype, device=on,
                              pin_memory=pin)
        y_chunk = torch.empty((len(chunk), *y0.shape[1:]), dtype=y0.dtype, device=on,
                              pin_memory=pin)
        w_chunk = None if weights is None else torch.empty(
            len(chunk), dtype=weights[0].dtype, device=on, pin_memory=pin)
        if not len(chunk):  # empty local batches (sharded, a short last batch)
            return X_chunk, y_chunk, w_chunk
        n_sources = len(data.sources)
        source = torch.searchsorted(data._source_bounds(on), chunk, right=True)
        local = chunk - data._source_starts(on)[source]
        order = _grouped(source, n_sources)  # each source's positions, in order
        counts = torch.bincount(source, minlength=n_sources)
        direct = self._direct_runs(source, sizes, counts, X_chunk.dtype)
        counts = counts.tolist()
        done = 0
        for k, count in enumerate(counts):
            if not count:
                continue
            where = order[done : done + count]
            done += count
            X, y = data.sources[k]
            rows = local.index_select(0, where)
            if k not in direct:
                # Read in increasing row order (sequential on a memory map).
                in_order = _argsort(rows)
                rows = rows.index_select(0, in_order)
                where = where.index_select(0, in_order)
                _put(X_chunk, where, X.index_select(0, rows))
            _put(y_chunk, where, y.index_select(0, rows))
            if w_chunk is not None:
                _put(w_chunk, where, weights[k].index_select(0, rows))
        for k, runs in direct.items():
            X = data.sources[k][0]
            for start, stop in runs:
                torch.index_select(X, 0, local[start:stop], out=X_chunk[start:stop])
        return X_chunk, y_chunk, w_chunk

    def _direct_runs(self, source, sizes, counts, dtype):
        """``{source: [(start, stop), ...]}``: the runs (one source's rows
        within one batch) of the sources whose features are copied straight
        into the chunk, those with at least ``min_run_rows`` rows per run on
        average; the other sources' rows are gathered, then put in place."""
        on = source.device
        if on.type != "cpu":
            return {}
        same_dtype = torch.tensor([X.dtype == dtype for X, _ in self.data.sources])
        first_rows = np.cumsum([0] + sizes[:-1])[np.asarray(sizes) > 0]
        new_run = torch.zeros(len(source), dtype=torch.bool)
        new_run[torch.from_numpy(first_rows)] = True  # a batch starts a run
        new_run[1:] |= source[1:] != source[:-1]
        run_start = torch.nonzero(new_run).squeeze(1)
        run_source = source.index_select(0, run_start)
        n_runs = torch.bincount(run_source, minlength=len(counts))
        row_bytes = torch.tensor([_row_bytes(X) for X, _ in self.data.sources])
        long_runs = ((counts > 0) & (counts >= self.min_run_rows * n_runs)
                     & (counts * row_bytes >= self.min_run_bytes * n_runs) & same_dtype)
        if not bool(long_runs.any()):
            return {}
        run_stop = torch.cat([run_start[1:], torch.tensor([len(source)])])
        keep = long_runs.index_select(0, run_source)
        direct = {}
        for k, start, stop in zip(run_source[keep].tolist(), run_start[keep].tolist(),
                                  run_stop[keep].tolist()):
            direct.setdefault(k, []).append((start, stop))
        return direct


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
