"""A model on disk as a store of generations: what the monthly job updates.

A *model store* is a folder. Every update writes a new *generation* beside
the old ones (the checkpoint, the evaluation store, and the replay-memory
files the model needs), makes it durable, and commits it by replacing one
small pointer file with a rename. Committed generations are never changed;
readers follow the pointer. A kill -9 at any instant therefore leaves either
the old or the new generation current, each whole. See docs/reliability.md
for the format and its guarantees.

::

    M/
      CURRENT                   {"format": 1, "generation": 7}: the commit point
      LOCK                      the writer lock (and who holds it)
      generations/000007.json   one manifest per generation, never changed
      objects/                  checkpoints and evaluation stores, never changed
      memory/                   replay-memory files (immutable, shared by generations)
      refused/                  one JSON record per update the forgetting gate refused

* :class:`ModelStore`: read a store (:meth:`ModelStore.load`,
  :meth:`ModelStore.generations`) and write one under its lock
  (:meth:`ModelStore.writer`).
* :class:`Generation`: one generation's manifest.
* :func:`load`: :func:`sklearn_cf.load`, for a store folder or a checkpoint
  file.
"""

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ._atomic import file_sha256, remove_file, sigint_held, write_atomically_bytes
from ._compat import to_python
from ._estimator import load as load_checkpoint
from ._eval_store import EvalStore
from ._lock import WriterLock

__all__ = ["DEFAULT_KEEP", "Generation", "ModelStore", "StoreWriter", "load"]

FORMAT = 1
DEFAULT_KEEP = 5
"""Generations a store keeps by default (the current one and the four before)."""

CURRENT = "CURRENT"
LOCK = "LOCK"
GENERATIONS = "generations"
REFUSED = "refused"
OBJECTS = "objects"
MEMORY = "memory"
_MANIFEST = re.compile(r"^(\d{6,})\.json$")
_REFUSAL = re.compile(r"^(\d{6,}-[0-9a-f]{12})\.json$")
_READ_TRIES = 3


@dataclass
class Generation:
    """One committed generation of a :class:`ModelStore` (its manifest).

    Attributes
    ----------
    id : int
        Generation number, increasing by one per commit.
    kind : {"update", "rollback", "import", "save-best"}
        What made it.
    previous : int or None
        The generation that was current when it was committed (what
        ``--rollback`` returns to); None for the first.
    restores : int or None
        For a rollback, the generation whose model it makes current again.
    created : str
        When it was committed (UTC, ISO 8601).
    months : list
        Months the model has trained on, in order.
    month_data : list of dict
        Per month: ``{"month", "rows", "sha256"}`` of the data it was
        updated with (None where unknown), for idempotent re-runs.
    scoring : str or None
        Scorer name of the evaluation store.
    scores : dict
        Held-out score of this generation's model on each month (as
        strings of the month label; NaN where undefined).
    files : dict
        ``{"model": path, "eval": path}``, relative to the store.
    memory : list of str
        Replay-memory files the model references (relative to the store
        when inside it).
    sha256 : dict
        Digest of each file of ``files``.
    sizes : dict
        Bytes of every file the generation references.
    source : dict or None
        For an import: ``{"path", "sha256"}`` of the checkpoint file it
        was made from.
    """

    id: int
    kind: str
    previous: int = None
    restores: int = None
    created: str = ""
    months: list = field(default_factory=list)
    month_data: list = field(default_factory=list)
    scoring: str = None
    scores: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    memory: list = field(default_factory=list)
    sha256: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    source: dict = None

    def referenced(self):
        """Every file (store-relative where inside it) this generation needs."""
        return [*self.files.values(), *self.memory]

    @property
    def size(self):
        """Bytes on disk of every file it references (shared ones included)."""
        return sum(self.sizes.values())

    def to_json(self):
        return json.dumps(dict(asdict(self), format=FORMAT), indent=1, sort_keys=True,
                          allow_nan=True)

    @classmethod
    def from_json(cls, text, name):
        try:
            data = json.loads(text)
            if data.pop("format", None) != FORMAT:
                raise ValueError("unknown format")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"The generation manifest {name!r} is damaged ({exc}).") from None


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ModelStore:
    """A folder of model generations, committed one at a time.

    Parameters
    ----------
    path : str or path-like
        The store's folder. Nothing is created until a writer commits.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_cf import ContinualClassifier
    >>> from sklearn_cf.store import ModelStore
    >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> store = ModelStore(os.path.join(tempfile.mkdtemp(), "model"))
    >>> with store.writer() as writer:
    ...     clf = ContinualClassifier(max_epochs=1, random_state=0).fit(X, y)
    ...     first = writer.commit(clf, kind="import")
    >>> with store.writer() as writer:
    ...     _ = writer.commit(writer.load().partial_fit_month(X, y), kind="update")
    >>> [(g.id, g.kind, g.months) for g in store.generations()]
    [(1, 'import', [0]), (2, 'update', [0, 1])]
    >>> with store.writer() as writer:
    ...     back = writer.rollback()
    >>> back.id, back.restores, store.load().months_seen_
    (3, 1, [0])
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.root = os.path.abspath(self.path)

    # -- reading --------------------------------------------------------
    def _at(self, *parts):
        return os.path.join(self.root, *parts)

    @staticmethod
    def is_store(path):
        """Whether ``path`` is a store folder (it has a ``CURRENT`` pointer,
        or is a folder that a first writer started)."""
        path = os.fspath(path)
        return os.path.isfile(os.path.join(path, CURRENT)) or (
            os.path.isdir(path) and os.path.exists(os.path.join(path, LOCK)))

    def current_id(self):
        """The current generation's number; None for a store with none yet."""
        try:
            with open(self._at(CURRENT), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return int(data["generation"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"The store pointer {self._at(CURRENT)!r} is damaged ({exc})."
            ) from None

    def _manifest_path(self, gen_id):
        return self._at(GENERATIONS, f"{gen_id:06d}.json")

    def generation(self, gen_id=None):
        """The manifest of generation ``gen_id`` (None: the current one).

        Raises
        ------
        ValueError
            When the store has no such generation (or none at all).
        """
        current = self.current_id()
        if gen_id is None:
            gen_id = current
            if gen_id is None:
                raise ValueError(f"{self.path!r} is not a model store with a generation yet.")
        # A manifest newer than CURRENT was never committed (a writer was
        # killed before its pointer's rename): it is not a generation.
        gen = None if current is None or gen_id > current else self._manifest(gen_id)
        if gen is None:
            kept = ", ".join(str(g) for g in self._committed_ids()) or "none"
            raise ValueError(
                f"The store {self.path!r} has no generation {gen_id} (kept: {kept})."
            )
        return gen

    def _manifest(self, gen_id):
        """Generation ``gen_id``'s manifest; None when there is none."""
        path = self._manifest_path(gen_id)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return Generation.from_json(text, path)

    def _manifest_ids(self):
        try:
            names = os.listdir(self._at(GENERATIONS))
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for m in map(_MANIFEST.match, names) if m)

    def _committed_ids(self):
        current = self.current_id()
        return [] if current is None else [g for g in self._manifest_ids() if g <= current]

    def generations(self):
        """The kept generations, oldest first (the last is current)."""
        # A manifest a writer collects while they are listed is left out.
        return [gen for gen in map(self._manifest, self._committed_ids()) if gen is not None]

    def _file(self, relpath):
        return relpath if os.path.isabs(relpath) else self._at(relpath)

    def _eval_of(self, gen):
        name = gen.files.get("eval")
        if name is None:
            return EvalStore()
        path = self._file(name)
        with open(path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != gen.sha256.get(name):
            raise ValueError(
                f"The evaluation store {path!r} of generation {gen.id} is damaged (its "
                "SHA-256 differs from the manifest's). Roll back to an earlier generation "
                "with `sklearn-cf update --rollback --to GEN`."
            )
        return EvalStore.from_bytes(data, path)

    def _model_of(self, gen, device=None):
        path = self._file(gen.files["model"])
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        # Memory files are read from this store's memory/ folder wherever
        # the store was written (it may have been moved or copied since).
        memory = self._at(MEMORY) if gen.memory and os.path.isdir(self._at(MEMORY)) else None
        return load_checkpoint(path, device=device, memory_dir=memory)

    def _read(self, reader, gen_id):
        # A reader takes no lock: the generation it read may be garbage-
        # collected by a writer between reading the pointer and opening the
        # files (only with --keep 1); it then reads the new current one.
        # Whatever fails then (its manifest gone, a missing checkpoint or
        # memory file) is retried once the pointer has moved.
        for attempt in range(_READ_TRIES):
            target = self.current_id() if gen_id is None else gen_id
            try:
                gen = self.generation(target)
                return gen, reader(gen)
            except (FileNotFoundError, ValueError) as exc:
                if (gen_id is None and target is not None and attempt < _READ_TRIES - 1
                        and self.current_id() != target):
                    continue
                if isinstance(exc, FileNotFoundError):
                    raise ValueError(
                        f"A file of generation {target} of {self.path!r} is missing "
                        f"({exc.filename or exc})."
                    ) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def load(self, generation=None, device=None):
        """The model of a generation (None: the current one), fitted.

        Parameters
        ----------
        generation : int or None, default=None
        device : str or None, default=None
            As for :func:`sklearn_cf.load`.

        Returns
        -------
        ContinualClassifier
        """
        return self._read(lambda gen: self._model_of(gen, device), generation)[1]

    def eval_store(self, generation=None):
        """The evaluation store of a generation (None: the current one)."""
        return self._read(self._eval_of, generation)[1]

    def refusals(self):
        """The updates the forgetting gate refused, oldest first.

        Each is the JSON record ``sklearn-cf update`` wrote when it refused
        (a dict; its keys in docs/reliability.md): the months with their row
        counts and digests, the gate's settings and tests, how the update
        was run, and ``applied`` (None, or the generation that applied the
        months later). A record that cannot be read is returned as
        ``{"id": ..., "damaged": "why"}``. Records are not part of any
        generation: writing one never changes a committed generation.

        Returns
        -------
        list of dict

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sklearn_cf import ContinualClassifier
        >>> from sklearn_cf.store import ModelStore
        >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
        >>> store = ModelStore(os.path.join(tempfile.mkdtemp(), "model"))
        >>> with store.writer() as writer:
        ...     _ = writer.commit(ContinualClassifier(max_epochs=1).fit(X, y), kind="import")
        ...     _ = writer.record_refusal({"id": "000001-0123456789ab", "months": [],
        ...                                "applied": None})
        >>> [(r["id"], r["applied"]) for r in store.refusals()]
        [('000001-0123456789ab', None)]
        >>> store.generation().id  # no generation was written for it
        1
        """
        try:
            names = os.listdir(self._at(REFUSED))
        except FileNotFoundError:
            return []
        records = [self.refusal(m.group(1)) for m in map(_REFUSAL.match, sorted(names)) if m]
        return sorted((r for r in records if r is not None),
                      key=lambda r: (r.get("created", ""), r["id"]))

    def refusal(self, refusal_id):
        """The refusal record ``refusal_id`` (None when there is none)."""
        path = self._at(REFUSED, f"{refusal_id}.json")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text)
            if not isinstance(record, dict) or record.get("id") != refusal_id:
                raise ValueError("not a refusal record")
            return record
        except ValueError as exc:
            return {"id": refusal_id, "damaged": str(exc)}

    # -- writing --------------------------------------------------------
    def writer(self, wait=0.0, keep=DEFAULT_KEEP):
        """Take the store's writer lock: ``with store.writer() as w: ...``.

        Parameters
        ----------
        wait : float, default=0
            Seconds to wait for another writer; then
            :class:`~sklearn_cf.exceptions.StoreLockedError`.
        keep : int, default=DEFAULT_KEEP
            Generations kept after a commit (at least 1); older ones and
            every file only they reference are removed.

        Returns
        -------
        StoreWriter
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1, got {keep!r}.")
        return StoreWriter(self, wait, keep)


class StoreWriter:
    """The one writer of a :class:`ModelStore` (see :meth:`ModelStore.writer`).

    Entering it creates the store's folders if needed, takes the lock, and
    removes what an interrupted writer left; leaving it removes what this
    writer wrote but did not commit (a refused update, an error), then
    releases the lock.

    Attributes
    ----------
    base : Generation or None
        The generation current when the lock was taken; None for a new store.
    memory_dir : str
        The folder for the replay-memory files of a model in this store.
    """

    def __init__(self, store, wait, keep):
        self.store, self.wait, self.keep = store, wait, keep
        self.base = None
        self.memory_dir = store._at(MEMORY)
        self._lock = None
        self._created = False
        self.committed = None

    def __enter__(self):
        store = self.store
        parent = os.path.dirname(store.root)
        if not os.path.isdir(parent):
            raise ValueError(f"{store.path!r}: the folder {parent!r} does not exist.")
        if os.path.exists(store.root) and not os.path.isdir(store.root):
            raise ValueError(f"{store.path!r} is a file, not a model store folder.")
        if (os.path.isdir(store.root) and not ModelStore.is_store(store.root)
                and os.listdir(store.root)):
            # Its objects/ and memory/ would be cleaned as a store's.
            raise ValueError(
                f"{store.path!r} is a folder but not a model store (no {CURRENT} file) and "
                "it is not empty; give the path of a new folder."
            )
        self._created = not os.path.exists(store.root)
        while True:
            os.makedirs(store.root, exist_ok=True)
            try:
                self._lock = WriterLock(store._at(LOCK), self.wait).__enter__()
                break
            except FileNotFoundError:
                # A first writer that gave up removed the folder while this
                # one waited for its lock: start the store again.
                if os.path.isdir(store.root):
                    raise
                self._created = True
        try:
            for sub in (GENERATIONS, OBJECTS):
                os.makedirs(store._at(sub), exist_ok=True)
            current = store.current_id()
            self.base = None if current is None else store.generation(current)
            self._collect(keep=None)
        except BaseException:
            self._release(remove_empty=True)
            raise
        return self

    def __exit__(self, *exc_info):
        try:
            if exc_info[0] is None or not issubclass(exc_info[0], KeyboardInterrupt):
                self._collect(keep=self.keep if self.committed else None)
        finally:
            self._release(remove_empty=True)
        return False

    def _release(self, remove_empty=False):
        """Release the lock; a store this writer created and committed
        nothing to is removed first (a refused first update leaves no
        folder that looks like a store)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            if remove_empty and self._created and self.store.current_id() is None:
                self._remove_empty()
        finally:
            lock.__exit__(None, None, None)

    def _remove_empty(self):
        store = self.store
        for sub in (OBJECTS, MEMORY, GENERATIONS):  # all emptied by _collect
            shutil.rmtree(store._at(sub), ignore_errors=True)
        remove_file(store._at(LOCK))  # other writers check the file they locked is this one
        try:
            os.rmdir(store.root)
        except OSError:  # something else was put there
            pass

    # -- what the base generation holds ----------------------------------
    def load(self, device=None):
        """The base generation's model (a ValueError for a new store)."""
        if self.base is None:
            raise ValueError(f"The store {self.store.path!r} has no model yet.")
        return self.store._model_of(self.base, device)

    def eval_store(self):
        """The base generation's evaluation store (empty for a new store)."""
        return EvalStore() if self.base is None else self.store._eval_of(self.base)

    # -- commits ----------------------------------------------------------
    def _next_id(self):
        return (self.base.id if self.base is not None else 0) + 1

    def commit(self, clf, eval_store=None, *, kind="update", month_data=None, scores=None,
               source=None):
        """Write ``clf`` (and its evaluation store) as the next generation and
        make it current.

        Parameters
        ----------
        clf : ContinualClassifier
            Fitted.
        eval_store : EvalStore or None, default=None
        kind : str, default="update"
        month_data : list of dict or None, default=None
            ``{"month", "rows", "sha256"}`` per month of ``clf.months_seen_``
            (None: unknown for every month).
        scores : dict or None, default=None
            Held-out score per month.
        source : str or None, default=None
            For an import: the checkpoint file it was made from (its path
            and digest are recorded).

        Returns
        -------
        Generation
        """
        store, gen_id = self.store, self._next_id()
        token = uuid.uuid4().hex[:8]
        model = f"{OBJECTS}/model-{gen_id:06d}-{token}.pt"
        evaluation = f"{OBJECTS}/eval-{gen_id:06d}-{token}.npz"
        clf.save(store._at(model))
        write_atomically_bytes(store._at(evaluation), (eval_store or EvalStore()).to_bytes())
        # Memory files were fsynced, with their folder, when written.
        memory = self._memory_of(clf)
        months = [to_python(m) for m in clf.months_seen_]
        gen = Generation(
            id=gen_id, kind=kind, previous=None if self.base is None else self.base.id,
            created=_now(), months=months,
            month_data=month_data or [{"month": m, "rows": None, "sha256": None}
                                      for m in months],
            scoring=None if eval_store is None else eval_store.scoring,
            scores={str(k): v for k, v in (scores or {}).items()},
            files={"model": model, "eval": evaluation}, memory=memory,
            source=None if source is None else {
                "path": os.path.abspath(source), "sha256": file_sha256(source)},
        )
        gen.sha256 = {name: file_sha256(store._at(name)) for name in (model, evaluation)}
        gen.sizes = {name: os.path.getsize(store._file(name)) for name in gen.referenced()}
        return self._commit(gen)

    def rollback(self, to=None):
        """Make an earlier generation's model current again, as a new
        generation (so a rollback can itself be rolled back).

        Parameters
        ----------
        to : int or None, default=None
            The generation to restore; None: the base generation's
            ``previous`` (the one current before it).

        Returns
        -------
        Generation or None
            The new generation; None, and nothing written, when ``to``'s
            model is already the current one (a rollback run twice).
        """
        if self.base is None:
            raise ValueError(f"The store {self.store.path!r} has no model to roll back.")
        if to is None:
            to = self.base.previous
            if to is None:
                raise ValueError(
                    f"Generation {self.base.id} of {self.store.path!r} is its first: there "
                    "is nothing to roll back to."
                )
        if to == self.base.restores:  # --to GEN run twice: nothing to do
            return None
        target = self.store.generation(to)
        if target.files == self.base.files:
            return None
        # Both must be whole before the pointer moves.
        self.store._eval_of(target)
        self.store._model_of(target)
        gen = Generation(
            id=self._next_id(), kind="rollback", previous=self.base.id, restores=target.id,
            created=_now(), months=list(target.months), month_data=list(target.month_data),
            scoring=target.scoring, scores=dict(target.scores), files=dict(target.files),
            memory=list(target.memory), sha256=dict(target.sha256), sizes=dict(target.sizes),
        )
        return self._commit(gen)

    # -- refusals -------------------------------------------------------
    def record_refusal(self, record):
        """Write a refusal record, ``refused/<id>.json``, unless one with
        its id is there (the same update refused again); under the lock,
        atomically (a kill leaves the old content or the new, and a stray
        temporary file that the next writer removes).

        Parameters
        ----------
        record : dict
            JSON-ready, with an ``id`` of the form ``GGGGGG-xxxxxxxxxxxx``.

        Returns
        -------
        str
            The record's id.
        """
        refusal_id = record["id"]
        if not _REFUSAL.match(f"{refusal_id}.json"):
            raise ValueError(f"A refusal record's id must look like 000004-0123456789ab, "
                             f"got {refusal_id!r}.")
        if self.store.refusal(refusal_id) is None:
            self._write_refusal(record)
        return refusal_id

    def mark_refusal_applied(self, refusal_id, generation, accepted):
        """Mark a refusal record as applied by ``generation`` (committed),
        with ``accepted`` whether the gate was overridden."""
        record = self.store.refusal(refusal_id)
        if record is None or "damaged" in record:
            return
        record["applied"] = {"generation": generation, "accepted_forgetting": bool(accepted),
                             "at": _now()}
        self._write_refusal(record)

    def _write_refusal(self, record):
        if self._lock is None:
            raise RuntimeError("A refusal record is written under the writer lock.")
        os.makedirs(self.store._at(REFUSED), exist_ok=True)
        text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False, default=str)
        write_atomically_bytes(self.store._at(REFUSED, f"{record['id']}.json"), text.encode())

    def _memory_of(self, clf):
        files = clf.memory_files() if hasattr(clf, "memory_files") else []
        out = []
        for path in files:
            path = os.path.abspath(path)
            rel = os.path.relpath(path, self.store.root)
            out.append(path if rel.startswith(os.pardir) else rel.replace(os.sep, "/"))
        return sorted(out)

    def _commit(self, gen):
        store = self.store
        # The manifest, then the pointer: the rename of CURRENT is the commit.
        write_atomically_bytes(store._manifest_path(gen.id), gen.to_json().encode())
        pointer = json.dumps({"format": FORMAT, "generation": gen.id}).encode()
        with sigint_held():
            write_atomically_bytes(store._at(CURRENT), pointer)
        self.committed = gen
        self.base = gen
        return gen

    # -- garbage collection ---------------------------------------------
    def _collect(self, keep):
        """Remove uncommitted leftovers and, with ``keep``, generations
        older than the newest ``keep`` and every file no kept one needs."""
        store = self.store
        current = store.current_id()
        ids = store._manifest_ids()
        for gen_id in ids:  # written by a writer killed before its commit
            if current is None or gen_id > current:
                remove_file(store._manifest_path(gen_id))
        committed = [g for g in ids if current is not None and g <= current]
        if keep is not None:
            for gen_id in committed[:-keep]:
                remove_file(store._manifest_path(gen_id))
            committed = committed[-keep:]
        needed = set()
        for gen_id in committed:  # the lock is held: no manifest vanishes here
            needed.update(store._manifest(gen_id).referenced())
        for sub in (OBJECTS, MEMORY):
            top = store._at(sub)
            for folder, dirs, names in os.walk(top, topdown=False):
                for name in names:
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, store.root).replace(os.sep, "/")
                    if rel not in needed:
                        remove_file(path)
                if folder != top and not os.listdir(folder):
                    try:
                        os.rmdir(folder)
                    except OSError:
                        pass
        for folder in (store.root, store._at(GENERATIONS), store._at(REFUSED)):
            # write_atomically's temporaries
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.startswith(".") and name.endswith(".tmp"):
                    remove_file(os.path.join(folder, name))


def load(path, estimator=None, device=None, memory_dir=None):
    """Load a model: the current generation of a store, or a checkpoint file.

    Parameters
    ----------
    path : str or path-like
        A model store folder (``sklearn-cf update --model M``) or a
        checkpoint file written by :meth:`ContinualClassifier.save`.
    estimator : ContinualClassifier, default=None
        For a checkpoint file: an unfitted estimator to load into (see
        :func:`sklearn_cf._estimator.load`).
    device : str, default=None
        Where to put the model; None uses the saved ``device``.
    memory_dir : path-like, default=None
        For a checkpoint file whose replay memory is on disk and was moved
        or copied: the folder now holding the memory's subfolder (see
        :func:`sklearn_cf._estimator.load`). A store reads its memory from
        its own ``memory/`` folder wherever it is.

    Returns
    -------
    ContinualClassifier

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sklearn_cf
    >>> from sklearn_cf import ContinualClassifier
    >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> ContinualClassifier(max_epochs=1, random_state=0).fit(X, y).save(path)
    >>> sklearn_cf.load(path).months_seen_
    [0]
    """
    if os.path.isdir(path):
        if not ModelStore.is_store(path):
            raise ValueError(
                f"{os.fspath(path)!r} is a folder but not a model store (no {CURRENT} file)."
            )
        if estimator is not None or memory_dir is not None:
            raise ValueError("estimator= and memory_dir= apply to a checkpoint file, not to a "
                             "model store (it keeps its memory in its own memory/ folder).")
        return ModelStore(path).load(device=device)
    return load_checkpoint(path, estimator=estimator, device=device, memory_dir=memory_dir)
