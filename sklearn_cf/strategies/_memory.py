"""Where replay keeps past rows: all of them, or a uniform reservoir.

A month that fails after its rows entered memory must leave the memory as it
was, without a copy of the memory (it can be tens of GB): each memory keeps
an undo log while a month is open (:meth:`begin` ... :meth:`undo` or
:meth:`end`). Adding to :class:`AllRowsMemory` only appends, so its log is a
length; :class:`ReservoirMemory` overwrites slots, so its log holds what the
slots a month wrote held before (at most the month's rows, never more than
the memory's capacity).

With a ``directory`` (``memory_dir``), rows live in memory-mapped ``.npy``
files there (:mod:`._disk`), and files are never changed once written
(copy-on-write). Every write is a *segment*: new files named with a uuid4
(``<stem>.X.npy``, ``<stem>.y.npy`` and, for weighted rows,
``<stem>.w.npy``). :class:`AllRowsMemory` writes one segment per month.
A :class:`ReservoirMemory` writes one segment per :meth:`~ReservoirMemory.add`
with the rows that enter it, and keeps an index ``slot -> (segment, row)``
in RAM (with each slot's label and weight); its state (what a checkpoint
stores) is that index and the segments it references, with their SHA-256.
An older checkpoint keeps its own index and so still reads its own rows
after later months. When a reservoir references more than
:data:`COMPACT_AFTER` segments, its rows are rewritten into one new segment
(never in place). Undoing a month deletes the segments it wrote and puts
the index back: no journal.
"""

import os

import numpy as np
import torch

from .._atomic import fsync_folder
from ._disk import (
    check_digest,
    check_writable,
    ensure_folder,
    file_digest,
    new_file_stem,
    open_rows,
    remove_files,
    resolve_folder,
    write_rows,
)

__all__ = ["AllRowsMemory", "ReservoirMemory", "MemoryRows", "COMPACT_AFTER"]

#: A reservoir on disk that references more segments than this rewrites its
#: rows into one new segment: a batch then gathers from a bounded number of
#: files, and rows that are no longer in memory stop being referenced.
COMPACT_AFTER = 16


class MemoryRows:
    """The rows of a memory as training reads them, without a copy.

    Attributes
    ----------
    sources : list of (Tensor, Tensor)
        ``(X, y)`` pairs (memory maps on disk): a
        :class:`~sklearn_cf.strategies.MonthData` takes them as they are.
        On disk, a reservoir's segments may also hold rows that are no
        longer in memory; only the rows :attr:`index` names are.
    weights : list of Tensor or None
        Per-row sample weights of each source, or None when no row is
        weighted.
    index : ndarray of int64 or None
        The virtual row (in the concatenation of ``sources``) of each slot
        of the memory, in slot order; None when slot ``k`` is virtual row
        ``k``.
    """

    def __init__(self, sources, weights=None, index=None):
        self.sources = sources
        self.weights = weights
        self.index = index

    def rows_of(self, slots):
        """Virtual rows of ``slots`` (an int array of slot numbers)."""
        slots = np.asarray(slots, dtype=np.int64)
        return slots if self.index is None else self.index[slots]


def _gather(sources, virtual, field=0):
    """Entries ``virtual`` (virtual row indices) of field ``field`` (0: X,
    1: y) of ``sources``, in that order, as one new tensor."""
    first = sources[0][field]
    out = torch.empty((len(virtual), *first.shape[1:]), dtype=first.dtype)
    offsets = np.cumsum([0] + [len(y) for _, y in sources])
    which = np.searchsorted(offsets, virtual, side="right") - 1
    for s in np.unique(which):
        at = np.flatnonzero(which == s)
        rows = virtual[at] - offsets[s]
        # Read in increasing row order (sequential on a memory map).
        order = np.argsort(rows, kind="stable")
        out[torch.from_numpy(at[order])] = sources[s][field].index_select(
            0, torch.from_numpy(rows[order]))
    return out


class _Gathered:
    """Rows of several sources through a virtual index, read a chunk at a
    time (what :func:`write_rows` writes when a reservoir is compacted)."""

    def __init__(self, sources, virtual):
        self.sources, self.virtual = sources, virtual
        X = sources[0][0]
        self.shape = (len(virtual), *X.shape[1:])
        self.dtype = X.dtype

    def __len__(self):
        return len(self.virtual)

    def __getitem__(self, where):
        return _gather(self.sources, self.virtual[where]).numpy()


class _Segment:
    """The files one write put on disk, never changed after: ``X``, ``y``
    and, for weighted rows, ``w``, each a read-only memory map.

    Its checkpoint entry is ``[X name, y name, X sha, y sha]``, followed by
    ``[w name, w sha]`` for weighted rows (the layout of the per-month files
    of :class:`AllRowsMemory` since memories went to disk).
    """

    def __init__(self, folder, names, X, y, w=None, digests=None):
        self.folder = folder
        self.names = names
        self.X, self.y, self.w = X, y, w
        self.digests = digests

    def paths(self):
        return [os.path.join(self.folder, name) for name in self.names]

    def __len__(self):
        return len(self.y)

    @classmethod
    def write(cls, folder, prefix, X, y, w=None, index=None):
        """Write rows (``rows[index]`` of each of ``X, y, w``, or all) to new
        files in ``folder``; a failure removes the files it made."""
        ensure_folder(folder)
        stem = new_file_stem(prefix)
        fields = [X, y] if w is None else [X, y, w]
        names = [f"{stem}.{f}.npy" for f in "Xyw"[:len(fields)]]
        paths = [os.path.join(folder, name) for name in names]
        try:
            written = [write_rows(path, rows, index) for path, rows in zip(paths, fields)]
        except BaseException:
            remove_files([p for p in paths if os.path.exists(p)])
            raise
        # The new names in the folder are durable too.
        fsync_folder(folder)
        return cls(folder, names, *written)

    def entry(self):
        """The checkpoint entry; the SHA-256 are computed the first time a
        checkpoint needs them (the files never change), not on every
        month's critical path."""
        if self.digests is None:
            self.digests = [file_digest(path) for path in self.paths()]
        entry = [*self.names[:2], *self.digests[:2]]
        if len(self.names) > 2:
            entry += [self.names[2], self.digests[2]]
        return entry

    @classmethod
    def from_entry(cls, folder, entry):
        """Open the files of a checkpoint entry read-only, refusing any that
        is missing or changed since."""
        names = list(entry[:2]) + list(entry[4:5])
        digests = list(entry[2:4]) + list(entry[5:6])
        paths = [os.path.join(folder, name) for name in names]
        for path, digest in zip(paths, digests):
            check_digest(path, digest)
        maps = [open_rows(path) for path in paths]
        return cls(folder, names, *maps, digests=digests)


class AllRowsMemory:
    """Every past training row, one chunk per month (no copy on sampling).

    Parameters
    ----------
    directory : path-like or None, default=None
        None: in RAM. A folder: each month's rows in new files there (a
        segment, see the module docstring), created at the first write.

    Examples
    --------
    >>> import torch
    >>> memory = AllRowsMemory()
    >>> memory.add(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), rng=None)
    >>> memory.add(torch.ones(2, 2), torch.ones(2, dtype=torch.long), rng=None)
    >>> len(memory), [len(y) for _, y in memory.sources()]
    (5, [3, 2])
    """

    def __init__(self, directory=None):
        self.directory = None if directory is None else os.fspath(directory)
        self.chunks = []
        # Per chunk: its rows' sample weights, or None when they all weigh 1.
        self.chunk_weights = []
        # With a directory, per chunk: its files.
        self.segments = []

    def add(self, X, y, rng, sample_weight=None):
        if self.directory is None:
            self.chunks.append((X.clone(), y.clone()))
            self.chunk_weights.append(None if sample_weight is None else sample_weight.clone())
            return
        segment = _Segment.write(self.directory, "rows", X, y, sample_weight)
        self.segments.append(segment)
        self.chunks.append((segment.X, segment.y))
        self.chunk_weights.append(segment.w)

    def begin(self):
        """Open a month's undo log; returns it (see the module docstring).
        A memory on disk whose folder cannot take new files is refused here,
        before the month trains."""
        if self.directory is not None:
            check_writable(self.directory)
        return len(self.chunks)

    def undo(self, log):
        """Return to the state at :meth:`begin` (removing the files added)."""
        for segment in self.segments[log:]:
            remove_files(segment.paths())
        del self.chunks[log:]
        del self.chunk_weights[log:]
        del self.segments[log:]

    def end(self, log):
        """The month stands: close its undo log."""

    def sources(self):
        return list(self.chunks)

    def weights(self):
        """Sample weights of each source of :meth:`sources` (None for a
        source whose rows weigh 1), or None when no row has a weight."""
        if all(w is None for w in self.chunk_weights):
            return None
        return list(self.chunk_weights)

    def rows(self):
        """The rows as training reads them (:class:`MemoryRows`): the chunks."""
        return MemoryRows(self.sources(), self.weights())

    def memory_files(self):
        """Absolute paths of the files this memory references (those
        :meth:`state_dict` records); empty in RAM."""
        return [path for segment in self.segments for path in segment.paths()]

    def state_dict(self):
        if self.directory is not None:
            return {"kind": "all", "directory": self.directory,
                    "files": [segment.entry() for segment in self.segments]}
        state = {"kind": "all", "chunks": [list(chunk) for chunk in self.chunks]}
        if self.weights() is not None:
            state["weights"] = list(self.chunk_weights)
        return state

    @classmethod
    def from_state(cls, state):
        """Rebuild a memory from its :meth:`state_dict`; files on disk are
        opened read-only, checked against the digests recorded then, and
        refused if they changed."""
        directory = resolve_folder(state.get("directory"))
        memory = cls(directory)
        if directory is None:
            memory.chunks = [tuple(chunk) for chunk in state["chunks"]]
            memory.chunk_weights = list(state.get("weights") or [None] * len(memory.chunks))
            return memory
        for entry in state["files"]:
            segment = _Segment.from_entry(directory, entry)
            memory.segments.append(segment)
            memory.chunks.append((segment.X, segment.y))
            memory.chunk_weights.append(segment.w)
        return memory

    def __len__(self):
        return sum(len(y) for _, y in self.chunks)


class ReservoirMemory:
    """A uniform sample of at most ``capacity`` rows of everything seen.

    Vitter's algorithm R: the t-th row seen (0-based) enters a full memory
    with probability capacity / (t + 1), replacing a slot chosen uniformly,
    so after any number of rows every row seen is in memory with the same
    probability. Memory and cost per month stay bounded.

    Parameters
    ----------
    capacity : int
        Maximum number of rows kept.
    directory : path-like or None, default=None
        None: the slots are tensors in RAM, overwritten in place. A folder:
        the rows that enter memory are written to new files there, and the
        slots are an index into them (see the module docstring); the same
        rows as in RAM.

    Attributes
    ----------
    y : Tensor of shape (capacity, ...)
        Each slot's label (the first ``size`` slots are in use), in RAM.
    w : Tensor of shape (capacity,) or None
        Each slot's sample weight, in RAM; None until a weighted row arrives.
    X : Tensor
        The slots' rows: in RAM, the buffer itself (``capacity`` rows); on
        disk, a copy of the ``size`` rows in memory read through the index
        (for inspection: training reads the files, see :meth:`rows`).

    Examples
    --------
    >>> import numpy as np, torch
    >>> memory = ReservoirMemory(capacity=4)
    >>> rng = np.random.default_rng(0)
    >>> for month in range(3):
    ...     X = torch.full((10, 1), float(month))
    ...     memory.add(X, torch.zeros(10, dtype=torch.long), rng)
    >>> len(memory), memory.n_seen
    (4, 30)

    References
    ----------
    J. S. Vitter, "Random sampling with a reservoir", ACM TOMS 11(1), 1985.
    """

    def __init__(self, capacity, directory=None):
        self.capacity = int(capacity)
        self.directory = None if directory is None else os.fspath(directory)
        self._X = None
        self.y = None
        # The slots' sample weights: None until a weighted row arrives (the
        # rows already kept then weigh 1).
        self.w = None
        self.size = 0
        self.n_seen = 0
        self._log = None
        # On disk: slot -> (segment id, row in the segment), the segments by
        # id, and the rows as training reads them (made again after a change).
        self._slot_segment = None
        self._slot_row = None
        self._segments = {}
        self._next_segment = 0
        self._rows = None

    @property
    def X(self):
        if self.directory is None or self.y is None:
            return self._X
        if self.size == 0:
            return self._empty_rows()
        view = self.rows()
        return _gather(view.sources, view.index)

    def _empty_rows(self):
        return torch.empty((0, *self._row_shape), dtype=self._row_dtype)

    # -- A month's undo log -----------------------------------------------------
    def begin(self):
        """Open a month's undo log; returns it (see the module docstring).
        A memory on disk whose folder cannot take new files is refused here,
        before the month trains."""
        if self.directory is not None:
            check_writable(self.directory)
        self._log = {"size": self.size, "n_seen": self.n_seen,
                     "allocated": self.y is not None, "weighted": self.w is not None,
                     "writes": [], "next_segment": self._next_segment}
        return self._log

    def undo(self, log):
        """Return to the state at :meth:`begin`: old slot contents back, in
        reverse order of writing; on disk, the month's segments deleted."""
        for slots, *old in reversed(log["writes"]):
            if self.directory is None:
                self._X[slots] = old[0]
                self.y[slots] = old[1]
                if len(old) > 2:
                    self.w[slots] = old[2]
            elif slots is None:  # a compaction: the whole index before it
                self._slot_segment[: len(old[0])] = old[0]
                self._slot_row[: len(old[1])] = old[1]
            else:
                at = torch.from_numpy(slots)
                self._slot_segment[slots], self._slot_row[slots] = old[0], old[1]
                self.y[at] = old[2]
                if old[3] is not None:
                    self.w[at] = old[3]
        if self.directory is not None:
            for key in [k for k in self._segments if k >= log["next_segment"]]:
                remove_files(self._segments.pop(key).paths())
        if not log["weighted"]:
            self.w = None
        if not log["allocated"]:
            self._X = self.y = self.w = None
            self._slot_segment = self._slot_row = None
        self.size, self.n_seen = log["size"], log["n_seen"]
        self._rows = None
        self._log = None

    def end(self, log):
        """The month stands: drop its undo log (and, on disk, forget the
        segments no slot references any more; their files stay)."""
        self._log = None
        self._forget_unreferenced()

    # -- Writing slots -----------------------------------------------------------
    def _prepare(self, X, y, sample_weight):
        if self.y is None:
            self._allocate(X, y)
        if sample_weight is not None and self.w is None:
            # Start keeping sample weights: every row kept so far weighs 1.
            self.w = torch.ones(self.capacity, dtype=torch.float32)

    def _allocate(self, X, y):
        shape_X, shape_y = (self.capacity, *X.shape[1:]), (self.capacity, *y.shape[1:])
        self._row_shape, self._row_dtype = tuple(X.shape[1:]), X.dtype
        self.y = torch.empty(shape_y, dtype=y.dtype)
        if self.directory is None:
            self._X = torch.empty(shape_X, dtype=X.dtype)
            return
        self._slot_segment = np.zeros(self.capacity, dtype=np.int32)
        self._slot_row = np.zeros(self.capacity, dtype=np.int64)

    def _store(self, parts, X, y, w):
        """Put rows into slots: ``parts`` is a list of ``(slots, rows)`` (a
        slice or an int64 tensor each), applied in order, so a later part
        wins a slot two of them write."""
        self._rows = None
        if self.directory is None:
            for slots, rows in parts:
                self._write(slots, X[rows], y[rows], None if w is None else w[rows])
            return
        slots = np.concatenate([_positions(s) for s, _ in parts])
        rows = np.concatenate([_positions(r) for _, r in parts])
        if not len(slots):
            return
        # Only the last write of a slot is kept (and written to disk).
        _, last = np.unique(slots[::-1], return_index=True)
        keep = np.sort(len(slots) - 1 - last)
        slots, rows = slots[keep], rows[keep]
        segment = _Segment.write(self.directory, "slots", X, y, w, index=rows)
        key = self._next_segment
        self._segments[key] = segment
        self._next_segment += 1
        at = torch.from_numpy(slots)
        if self._log is not None and self._log["allocated"]:
            self._log["writes"].append((slots, self._slot_segment[slots].copy(),
                                        self._slot_row[slots].copy(), self.y[at].clone(),
                                        None if self.w is None else self.w[at].clone()))
        self._slot_segment[slots] = key
        self._slot_row[slots] = np.arange(len(slots))
        self.y[at] = y.index_select(0, torch.from_numpy(rows))
        if self.w is not None:
            self.w[at] = 1.0 if w is None else w.index_select(0, torch.from_numpy(rows))

    def _write(self, slots, X, y, w=None):
        """In RAM: write rows to slots (a slice or an index tensor), logging
        the slots' old contents while a month is open."""
        log = self._log
        if log is not None and log["allocated"]:
            old = [self._X[slots], self.y[slots]]
            if self.w is not None:
                old.append(self.w[slots])
            log["writes"].append((slots, *(t.clone() for t in old)))
        self._X[slots] = X
        self.y[slots] = y
        if self.w is not None:
            self.w[slots] = 1.0 if w is None else w

    def _after_add(self):
        """On disk: rewrite the rows into one new segment when too many are
        referenced; forget unreferenced segments outside a month."""
        if self.directory is None:
            return
        if len(self._referenced()) > COMPACT_AFTER:
            self._compact()
        if self._log is None:
            self._forget_unreferenced()

    def _compact(self):
        view = self.rows()
        n = self.size
        segment = _Segment.write(self.directory, "slots", _Gathered(view.sources, view.index),
                                 self.y[:n], None if self.w is None else self.w[:n])
        key = self._next_segment
        self._segments[key] = segment
        self._next_segment += 1
        if self._log is not None and self._log["allocated"]:
            self._log["writes"].append((None, self._slot_segment[:n].copy(),
                                        self._slot_row[:n].copy()))
        self._slot_segment[:n] = key
        self._slot_row[:n] = np.arange(n)
        self._rows = None

    def _referenced(self):
        """Ids of the segments some slot in use points to, in order."""
        if self._slot_segment is None or self.size == 0:
            return np.zeros(0, dtype=np.int64)
        used = np.bincount(self._slot_segment[: self.size], minlength=self._next_segment)
        return np.flatnonzero(used)

    def _forget_unreferenced(self):
        if self.directory is None:
            return
        referenced = set(self._referenced().tolist())
        for key in [k for k in self._segments if k not in referenced]:
            del self._segments[key]

    def add(self, X, y, rng, sample_weight=None):
        n = len(y)
        self._prepare(X, y, sample_weight)
        # Rows that fit while the memory is not full go in directly.
        n_direct = min(n, self.capacity - self.size)
        parts = [(slice(self.size, self.size + n_direct), slice(0, n_direct))]
        # Each later row t draws j uniform in [0, t]; j < capacity replaces slot j.
        t = self.n_seen + np.arange(n_direct, n)
        slots = np.floor(rng.random(len(t)) * (t + 1)).astype(np.int64)
        accepted = np.flatnonzero(slots < self.capacity)
        if len(accepted):
            # Row order matters when two rows hit one slot: the later one wins.
            rev_slots = slots[accepted][::-1]
            _, first = np.unique(rev_slots, return_index=True)
            winners = accepted[::-1][first]
            parts.append((torch.from_numpy(slots[winners]), torch.from_numpy(n_direct + winners)))
        self._store(parts, X, y, sample_weight)
        self.size += n_direct
        self.n_seen += n
        self._after_add()

    # -- Reading -------------------------------------------------------------------
    def rows(self):
        """The rows as training reads them (:class:`MemoryRows`), without a
        copy: in RAM the buffer's first ``size`` rows; on disk the segments
        the slots reference, and the virtual row of each slot."""
        if self._rows is not None:
            return self._rows
        if self.size == 0:
            view = MemoryRows([])
        elif self.directory is None:
            n = self.size
            view = MemoryRows([(self._X[:n], self.y[:n])],
                              None if self.w is None else [self.w[:n]])
        else:
            referenced = self._referenced()
            segments = [self._segments[k] for k in referenced.tolist()]
            starts = np.zeros(self._next_segment, dtype=np.int64)
            starts[referenced] = np.cumsum([0] + [len(s) for s in segments])[:-1]
            index = starts[self._slot_segment[: self.size]] + self._slot_row[: self.size]
            weights = None
            if self.w is not None:
                # A segment written without weights: its rows weigh 1.
                weights = [s.w if s.w is not None else torch.ones(1).expand(len(s))
                           for s in segments]
            view = MemoryRows([(s.X, s.y) for s in segments], weights, index)
        self._rows = view
        return view

    def sources(self):
        """The rows in memory in slot order, ``[(X, y)]``: in RAM views of
        the buffer; on disk a copy read through the index (for inspection:
        training reads :meth:`rows`)."""
        if self.size == 0:
            return []
        return [(self.X[: self.size], self.y[: self.size])]

    def weights(self):
        """Sample weights of the rows of :meth:`sources`, or None when no
        row has a weight."""
        if self.size == 0 or self.w is None:
            return None
        return [self.w[: self.size]]

    def memory_files(self):
        """Absolute paths of the files this memory references (those
        :meth:`state_dict` records); empty in RAM."""
        if self.directory is None:
            return []
        return [path for key in self._referenced().tolist()
                for path in self._segments[key].paths()]

    # -- Checkpoints -----------------------------------------------------------------
    def state_dict(self):
        state = {"kind": "reservoir", "capacity": self.capacity, "size": self.size,
                 "n_seen": self.n_seen}
        if self.directory is None:
            state = dict(state, X=self._X, y=self.y)
            if self.w is not None:
                state["w"] = self.w
            return state
        state["directory"] = self.directory
        if self.y is None or self.size == 0:
            return dict(state, segments=None)
        referenced = self._referenced()
        position = np.zeros(self._next_segment, dtype=np.int32)
        position[referenced] = np.arange(len(referenced), dtype=np.int32)
        return dict(state, segments=[self._segments[k].entry() for k in referenced.tolist()],
                    slot_segment=position[self._slot_segment[: self.size]],
                    slot_row=self._slot_row[: self.size].copy(),
                    weighted=self.w is not None)

    def load_state(self, state):
        """Take the rows of a :meth:`state_dict` into this empty memory (built
        with the state's capacity); files on disk are opened read-only,
        checked against the digests recorded then, and refused if they
        changed."""
        self.size, self.n_seen = state["size"], state["n_seen"]
        if self.directory is None and state.get("directory") is None:
            self._X, self.y, self.w = state["X"], state["y"], state.get("w")
            if self._X is not None:
                self._row_shape, self._row_dtype = tuple(self._X.shape[1:]), self._X.dtype
            return
        self.directory = resolve_folder(state["directory"])
        if "segments" in state:
            entries = state["segments"]
            if entries is None:
                return
            slot_segment = np.asarray(state["slot_segment"], dtype=np.int32)
            slot_row = np.asarray(state["slot_row"], dtype=np.int64)
            weighted = bool(state["weighted"])
        else:  # one file per field, written in place before copy-on-write
            if state["files"] is None:
                return
            entries = [state["files"]]
            slot_segment = np.zeros(self.size, dtype=np.int32)
            slot_row = np.arange(self.size, dtype=np.int64)
            weighted = len(state["files"]) > 4
        segments = [_Segment.from_entry(self.directory, entry) for entry in entries]
        self._segments = dict(enumerate(segments))
        self._next_segment = len(segments)
        first = segments[0]
        self._row_shape, self._row_dtype = tuple(first.X.shape[1:]), first.X.dtype
        self._slot_segment = np.zeros(self.capacity, dtype=np.int32)
        self._slot_row = np.zeros(self.capacity, dtype=np.int64)
        self._slot_segment[: self.size] = slot_segment
        self._slot_row[: self.size] = slot_row
        self.y = torch.empty((self.capacity, *first.y.shape[1:]), dtype=first.y.dtype)
        if weighted:
            self.w = torch.ones(self.capacity, dtype=torch.float32)
        if self.size == 0:
            return
        # Each slot's label and weight in RAM, read from the segments once.
        view = self.rows()
        self.y[: self.size] = _gather(view.sources, view.index, field=1)
        if weighted:
            self.w[: self.size] = _gather([(w, w) for w in view.weights], view.index)

    def __len__(self):
        return self.size


def _positions(where):
    """An int64 array of the positions a slice or an index tensor names."""
    if isinstance(where, slice):
        return np.arange(where.start, where.stop, dtype=np.int64)
    return where.numpy().astype(np.int64, copy=False)
