"""Several processes (GPUs) training one ContinualClassifier, with Hugging Face accelerate.

:class:`AcceleratedContinualClassifier` is :class:`~sklearn_cf.ContinualClassifier`
on skorch's :class:`skorch.hf.AccelerateMixin`. Launched with
``accelerate launch --num_processes N script.py`` or ``torchrun
--nproc_per_node N script.py``, every process runs the same script on the same
months; they train one model with DistributedDataParallel (DDP):

* **Sharded**: each global batch of ``batch_size`` rows. Every process draws
  the same epoch plan (which rows, replay's draws, the shuffle: the same seed
  gives the same draws), cuts it into the same global batches, and trains on
  rows ``rank::N`` of each. DDP averages the gradients, and each process's
  loss is weighted by its share of the batch, so one step is the step one
  process takes on the whole batch. The EWC Fisher: each process sums it over
  its block of the month's rows, the sums are all-reduced and divided by the
  month's row count.
* **Replicated**: everything else -- the month's rows (every process receives
  all of them), replay memory, joint's history, anchors, the Fisher,
  snapshots, ``months_seen_``, the random generator. They stay identical
  because every process makes the same draws and the same updates.

``module_`` is always the plain module (parameter names without DDP's
``module.`` prefix): the DDP wrapper exists only to run the forward pass of
training, so anchors, Fisher weights, snapshots, the month transaction and
checkpoints see the same names as in one process, and a checkpoint written
by :meth:`AcceleratedContinualClassifier.save` loads into a plain
``ContinualClassifier``.

This module does not import ``accelerate``: it is needed only to build the
``Accelerator`` passed in (``pip install sklearn-cf[accelerate]``).
"""

import contextlib
import io
import pickle
import time

import numpy as np
import torch
from skorch.dataset import get_len, unpack_data
from skorch.hf import AccelerateMixin

from ._estimator import ContinualClassifier
from ._estimator import save as _save_checkpoint
from ._data import EpochIterator
from ._fisher import fisher_diagonal
from ._mlp import GeneratorDropout

__all__ = ["AcceleratedContinualClassifier", "fisher_diagonal_sharded"]

#: accelerate set-ups whose gradients DDP averages over processes.
_DDP_TYPES = ("NO", "MULTI_CPU", "MULTI_GPU", "MULTI_NPU", "MULTI_XPU", "MULTI_MLU",
              "MULTI_MUSA", "MULTI_SDAA", "MULTI_HPU")

#: Attributes of the accelerated estimator that a plain ContinualClassifier
#: does not have (left out of its checkpoints).
_ACCELERATE_ATTRIBUTES = ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator",
                          "callbacks__print_log__sink", "distributed_module_",
                          "shard_iterator_")


def _distributed():
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_sum(tensor):
    """Sum ``tensor`` over every process, in place (no-op in one process).

    Returns only once the backend's worker thread has let go of ``tensor``
    (see :func:`_released`), so that the caller may drop it.
    """
    if _distributed() and torch.distributed.get_world_size() > 1:
        held = _use_count(tensor)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        _released(tensor, held)
    return tensor


def _use_count(tensor):
    """Strong references to ``tensor``'s TensorImpl (0 where torch cannot tell)."""
    return tensor._use_count() if hasattr(tensor, "_use_count") else 0


def _released(tensor, held, timeout=10.0):
    """Wait until nothing but the ``held`` references of before a collective
    hold ``tensor``; True if so within ``timeout`` seconds.

    A synchronous collective returns as soon as its work is *marked* done;
    gloo's worker thread drops its own reference to the work, and so to the
    tensor, a moment later (in about half of the calls, measured with two
    processes). If Python has dropped the tensor by then, torch keeps its
    Python object alive and that worker thread must take the GIL to free it.
    Should that happen as the interpreter shuts down (the end of a script;
    gloo's threads outlive ``destroy_process_group`` once a module was
    wrapped in DDP), Python ends a thread that asks for the GIL with
    ``pthread_exit``, whose unwinding through a ``noexcept`` C++ destructor
    aborts the process ("terminate called without an active exception"):
    the likely cause of the rare abort of a gloo worker (docs/multi_gpu.md).
    Waiting here keeps every tensor of this module's collectives owned by
    Python until gloo is done with it, so gloo's threads never free a
    Python object of ours.
    """
    if torch.distributed.get_backend() != "gloo" or not hasattr(tensor, "_use_count"):
        return True  # NCCL's works are freed by its own watchdog, not here
    deadline = time.monotonic() + timeout
    spins = 0
    while tensor._use_count() > held:
        if time.monotonic() > deadline:
            return False
        # Yield the core (the worker thread may share it), then sleep.
        time.sleep(0 if spins < 100 else 1e-4)
        spins += 1
    return True


def _broadcast(tensor):
    """Broadcast ``tensor`` from process 0, in place; returns once gloo has
    let go of it (see :func:`_released`)."""
    held = _use_count(tensor)
    torch.distributed.broadcast(tensor, src=0)
    _released(tensor, held)
    return tensor


def _broadcast_from_main(obj, device):
    """Process 0's ``obj`` (picklable, small), in every process (through
    tensors on ``device``, this process's).

    Not ``accelerate.utils.broadcast_object_list``: its tensors are dropped
    while gloo may still hold them (see :func:`_released`).
    """
    data = pickle.dumps(obj) if torch.distributed.get_rank() == 0 else b""
    size = _broadcast(torch.tensor([len(data)], dtype=torch.int64, device=device))
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8)
    if data:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    buffer = _broadcast(buffer.to(device))
    return pickle.loads(buffer.cpu().numpy().tobytes())


def _block(n_rows, rank, world_size):
    """Process ``rank``'s contiguous block of ``n_rows`` rows (contiguous,
    so a memory-mapped month is read sequentially)."""
    return slice(n_rows * rank // world_size, n_rows * (rank + 1) // world_size)


def _block_counts(block, n_rows, weights=None):
    """What a block and all rows count for in a mean over processes: their
    rows, or, for a weighted mean, their total weight."""
    if weights is None:
        return block.stop - block.start, n_rows
    weights = torch.as_tensor(weights).double()
    return float(weights[block].sum()), float(weights.sum())


def _mean_over_processes(trainable, compute, n_local, n_total):
    """The mean over every process's rows of a per-row quantity (one tensor
    per trainable parameter): ``compute()`` returns its mean over this
    process's ``n_local`` rows (it is not called when ``n_local`` is 0);
    ``n_total`` is the rows of all processes.

    One all-reduce. A failure in one process (e.g. a Fisher that overflows
    on its rows) reaches every process as NaN, so all raise together and
    roll the month back, rather than the others waiting forever.
    """
    error = None
    try:
        local = compute() if n_local else None
        parts = [torch.zeros_like(p).reshape(-1) if local is None
                 else local[name].reshape(-1) * n_local for name, p in trainable]
        flat = torch.cat(parts)
    except Exception as exc:
        error = exc
        flat = torch.cat([torch.full_like(p, float("nan")).reshape(-1) for _, p in trainable])
    _all_reduce_sum(flat).div_(n_total)
    if error is not None:
        raise error
    if not bool(torch.isfinite(flat).all()):
        raise FloatingPointError(
            "The Fisher diagonal computed by another process, on its rows of this "
            "month, is not finite (see that process's error; e.g. features on a very "
            "large scale). The month was rolled back."
        )
    result, start = {}, 0
    for name, p in trainable:
        result[name] = flat[start : start + p.numel()].view_as(p).clone()
        start += p.numel()
    return result


def fisher_diagonal_sharded(module, X, y, *, rank, world_size, **kwargs):
    """:func:`~sklearn_cf.fisher_diagonal` over all rows, computed by several
    processes: each takes its contiguous block of rows.

    Every process passes the same ``X`` and ``y``; each computes the sum of
    the per-row curvature over its block, the sums are all-reduced, and the
    total is divided by ``len(y)``. The result, identical on every process,
    equals ``fisher_diagonal(module, X, y, **kwargs)`` up to floating-point
    rounding.

    Parameters
    ----------
    module, X, y
        As for :func:`~sklearn_cf.fisher_diagonal`; ``module`` is the plain
        (not DDP-wrapped) module, and the same on every process.
    rank, world_size : int
        This process's index and the number of processes (a
        ``torch.distributed`` process group must be initialized when
        ``world_size > 1``).
    **kwargs
        ``kind``, ``batch_size``, ``outputs``, ``sample_weight`` of
        ``fisher_diagonal`` (the weights of all rows; each process takes its
        block's).

    Returns
    -------
    dict of str to torch.Tensor

    Notes
    -----
    Every kind is a mean over rows, :math:`F = \\frac{1}{N}\\sum_n f_n`, so
    :math:`F = \\frac{1}{N}\\sum_r n_r F_r` with :math:`F_r` the mean over the
    :math:`n_r` rows of process :math:`r`. A process whose block is empty
    (fewer rows than processes) adds zeros. One all-reduce of the
    concatenated diagonals.
    """
    if world_size == 1:
        return fisher_diagonal(module, X, y, **kwargs)
    block = _block(len(y), rank, world_size)
    weights = kwargs.pop("sample_weight", None)
    # A weighted Fisher is a weighted mean: blocks count by their weight.
    n_local, n_total = _block_counts(block, len(y), weights)
    if weights is not None:
        kwargs["sample_weight"] = torch.as_tensor(weights)[block]
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    return _mean_over_processes(
        trainable, lambda: fisher_diagonal(module, X[block], y[block], **kwargs),
        n_local, n_total)


@contextlib.contextmanager
def _quiet(enabled):
    """Discard what is printed to stdout (the month lines of processes other
    than the main one)."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class AcceleratedContinualClassifier(AccelerateMixin, ContinualClassifier):
    """ContinualClassifier trained by several processes (GPUs) with DDP.

    Run the same script in every process (``accelerate launch
    --num_processes N script.py`` or ``torchrun --nproc_per_node N
    script.py``), each passing the same months in the same order. Every
    process draws the same epoch plans and trains on its slice (rows
    ``rank::N``) of each global batch of ``batch_size`` rows; DDP averages
    the gradients, so N processes take the steps one process would take
    with the same ``batch_size`` (up to floating-point rounding). Replay
    memory, anchors, the Fisher, snapshots and ``months_seen_`` are
    replicated and identical on every process; see docs/multi_gpu.md.

    Parameters
    ----------
    module : torch module class, instance or None, default=None
        As for :class:`~sklearn_cf.ContinualClassifier`.
    accelerator : accelerate.Accelerator
        Built in every process (``Accelerator()``; ``Accelerator(cpu=True)``
        for CPU processes). Mixed precision and gradient accumulation are
        not supported yet (``mixed_precision="no"``,
        ``gradient_accumulation_steps=1``), nor DeepSpeed, FSDP or XLA.
    device : str or None, default=None
        None: this process's device, ``accelerator.device`` (e.g.
        ``"cuda:1"`` on the second process), read when the estimator is
        built. Otherwise it must be that device.
    **kwargs
        Every other parameter of :class:`~sklearn_cf.ContinualClassifier`
        (``strategy``, ``batch_size`` -- the global batch --, ``random_state``
        ...) and of :class:`skorch.hf.AccelerateMixin`
        (``unwrap_after_train``: True drops the DDP wrapper at the end of
        every month, False keeps it for the next; ``module_`` is the plain
        module either way).

    Notes
    -----
    What differs from one process:

    * ``save`` writes from the main process only; the others wait for it
      (call it in every process). The checkpoint is that of a plain
      ``ContinualClassifier`` (weights without DDP's ``module.`` prefix, no
      accelerator), so ``sklearn_cf.load`` reads it in one process, or
      ``sklearn_cf.load(path, estimator=AcceleratedContinualClassifier(...))``
      in every process to continue with several. The estimator itself does
      not pickle (the ``Accelerator`` does not).
    * With ``random_state=None`` the main process's generator is copied to
      the others, so they still draw the same plans.
    * ``history``'s ``train_loss`` is each process's loss on its slices;
      prediction and validation (``train_split``) use every row in every
      process. ``EarlyStopping`` on ``valid_loss`` stops every process at
      the same epoch; on ``train_loss`` it would not (and training would
      hang): do not use it.
    * Dropout masks differ between processes (each reseeds its generator
      from the month's seed and its rank), so with ``dropout > 0`` the
      result is not that of one process, only distributed the same way.
    * Custom ``iterator_train__*`` options (skorch's ``DataLoader``) are
      refused with several processes.

    Examples
    --------
    >>> import pytest
    >>> accelerate = pytest.importorskip("accelerate")
    >>> import numpy as np
    >>> from sklearn_cf.accelerate import AcceleratedContinualClassifier
    >>> X = np.random.default_rng(0).normal(size=(90, 4)).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = AcceleratedContinualClassifier(
    ...     accelerator=accelerate.Accelerator(cpu=True), strategy="replay+ewc",
    ...     hidden_units=(8,), max_epochs=2, random_state=0)
    >>> clf = clf.fit(X, y, months=[0] * 30 + [1] * 30 + [2] * 30)
    >>> clf.months_seen_, sorted(clf.module_.state_dict())[:2]
    ([0, 1, 2], ['layers.0.bias', 'layers.0.weight'])
    """

    def __init__(self, module=None, *, accelerator, device=None, **kwargs):
        if device is None:
            device = str(accelerator.device)
        super().__init__(module, accelerator=accelerator, device=device, **kwargs)

    def _get_param_names(self):
        # AccelerateMixin keeps a private flag in __dict__, where skorch
        # looks for hyperparameters.
        return [k for k in super()._get_param_names() if k != "_wrapped_with_accelerator"]

    # ------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------
    def _validate_params(self):
        ContinualClassifier._validate_params(self)  # not the mixin's device=None rule
        self._check_accelerator()

    def _check_accelerator(self):
        accelerator = self.accelerator
        kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))
        if kind not in _DDP_TYPES:
            raise ValueError(
                f"AcceleratedContinualClassifier trains with DDP; accelerate is set up "
                f"for {kind}. Launch without DeepSpeed/FSDP/XLA (e.g. `accelerate launch "
                "--multi_gpu --num_processes N` or `torchrun`)."
            )
        if accelerator.mixed_precision != "no":
            raise ValueError(
                f"mixed_precision={accelerator.mixed_precision!r} is not supported yet by "
                "AcceleratedContinualClassifier; use Accelerator(mixed_precision='no')."
            )
        if accelerator.gradient_accumulation_steps != 1:
            raise ValueError(
                f"gradient_accumulation_steps={accelerator.gradient_accumulation_steps} "
                "is not supported; use a larger batch_size (the global batch) instead."
            )
        mine, theirs = torch.device(self.device), torch.device(accelerator.device)
        if mine.type != theirs.type or (
            mine.index is not None and theirs.index is not None and mine.index != theirs.index
        ):
            raise ValueError(
                f"device={self.device!r} but this process's accelerator device is "
                f"{str(accelerator.device)!r}; pass device=None to use it."
            )

    def on_sequence_begin(self):
        if self.process_shard() is not None:
            # With random_state=None every process seeded itself; the plans
            # must be the main process's. (The weights are already the main
            # process's: DDP broadcasts them when it wraps the module.)
            self.rng_.bit_generator.state = _broadcast_from_main(
                self.rng_.bit_generator.state, self.accelerator.device)

    def initialize(self):
        """Initialize as ContinualClassifier does, then wrap the module.

        ``AccelerateMixin.initialize`` repeats skorch's steps without calling
        ``super()``, which would skip any set-up the classifier adds there.
        """
        ContinualClassifier.initialize(self)
        self._initialize_accelerator()
        return self

    def process_shard(self):
        """``(rank, world_size)`` with several processes, else None."""
        world_size = self.accelerator.num_processes
        return None if world_size == 1 else (self.accelerator.process_index, world_size)

    def _initialize_accelerator(self):
        """Wrap ``module_`` for DDP, keeping ``module_`` the plain module.

        The criterion (no parameters), the optimizer and LR schedulers are
        not prepared: without mixed precision or gradient accumulation their
        accelerate wrappers add nothing, and a prepared scheduler would step
        once per process.
        """
        wrapped = self.__dict__.get("distributed_module_")
        if wrapped is not None and getattr(wrapped, "module", wrapped) is self.module_:
            return self
        self._check_accelerator()  # before prepare_model changes anything
        self._unwrap_accelerator()
        wrapped = self.accelerator.prepare_model(self.module_)
        # object.__setattr__: skorch would register a module attribute as
        # one of the net's modules (and give its parameters to the optimizer).
        object.__setattr__(self, "distributed_module_", wrapped)
        self._wrapped_with_accelerator = True
        return self

    def _unwrap_accelerator(self):
        wrapped = self.__dict__.pop("distributed_module_", None)
        models = getattr(self.accelerator, "_models", None)
        if wrapped is not None and isinstance(models, list):
            # Let the wrapper (and DDP's hooks on the parameters) go: the
            # accelerator lists the module or its wrapper.
            inner = getattr(wrapped, "module", wrapped)
            models[:] = [m for m in models if m is not wrapped and m is not inner]
        self._wrapped_with_accelerator = False

    # ------------------------------------------------------------------
    # A month
    # ------------------------------------------------------------------
    @contextlib.contextmanager
    def month_context(self):
        """Only the main process prints; a failed month forgets the DDP
        wrapper it made."""
        models = getattr(self.accelerator, "_models", None)
        before = list(models) if isinstance(models, list) else None
        try:
            with _quiet(not self.accelerator.is_main_process):
                yield
        except BaseException:
            if before is not None:  # forget a wrapper the rolled-back month made
                models[:] = before
            raise

    def month_fisher(self, X, y, *, kind="empirical", sample_weight=None):
        """The month's Fisher summed over the processes' blocks of rows.

        Every process passes the same rows (EWC's sample is drawn with the
        same generator everywhere); each computes the mean over its block,
        and one all-reduce gives the mean over all rows. The Hessian kind
        clips negative entries of the *total*, so each process computes it
        on every row (exact, not faster).
        """
        shard = self.process_shard()
        if shard is None or kind == "hessian" or len(y) < shard[1]:
            return super().month_fisher(X, y, kind=kind, sample_weight=sample_weight)
        rank, world_size = shard
        block = _block(len(y), rank, world_size)
        # Blocks count by their rows, or by their weight.
        n_local, n_total = _block_counts(block, len(y), self.row_weights(y, sample_weight))
        trainable = [(name, p) for name, p in self.module_.named_parameters()
                     if p.requires_grad]
        return _mean_over_processes(
            trainable,
            lambda: super(AcceleratedContinualClassifier, self).month_fisher(
                X[block], y[block], kind=kind,
                sample_weight=None if sample_weight is None else sample_weight[block]),
            n_local, n_total)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # A fresh module (joint, ensemble) is wrapped again; after
        # unwrap_after_train, the month's module is.
        self._initialize_accelerator()
        shard = self.process_shard()
        if shard is not None and shard[0] > 0:
            self._reseed_dropout(shard[0])

    def _reseed_dropout(self, rank):
        """Give this process its own dropout masks (a function of the month's
        seed and the rank), not a copy of the main process's."""
        generators = {id(m.generator): m.generator for m in self.module_.modules()
                      if isinstance(m, GeneratorDropout) and m.generator is not None}
        for generator in generators.values():
            seed = np.random.SeedSequence([generator.initial_seed(), rank])
            generator.manual_seed(int(seed.generate_state(1, np.uint64)[0] >> np.uint64(1)))

    def get_iterator(self, dataset, training=False):
        # Not AccelerateMixin's: it would hand skorch DataLoaders to
        # accelerate, which shards rows with a per-process batch size.
        iterator = ContinualClassifier.get_iterator(self, dataset, training=training)
        shard = self.process_shard()
        if not training or shard is None:
            return iterator
        if not isinstance(iterator, EpochIterator):
            raise ValueError(
                "With several processes, training batches come from sklearn_cf's own "
                "iterator, which shards every global batch; remove the "
                "iterator_train__* options and the custom iterator_train."
            )
        iterator.shard = shard
        self.shard_iterator_ = iterator
        return iterator

    def infer(self, x, **fit_params):
        wrapped = self.__dict__.get("distributed_module_")
        if wrapped is None or wrapped is self.module_ or not torch.is_grad_enabled():
            return super().infer(x, **fit_params)
        # Training forward through DDP (which then averages the gradients);
        # everything else sees the plain module.
        module = self.module_
        self.module_ = wrapped
        try:
            return super().infer(x, **fit_params)
        finally:
            self.module_ = module

    def get_loss(self, y_pred, y_true, X=None, training=False):
        iterator = self.__dict__.get("shard_iterator_")
        if not training or iterator is None or self.process_shard() is None:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        n_local, n_global = get_len(y_true), iterator.global_batch_rows
        if n_local == 0:
            # The last global batch had fewer rows than processes: this one
            # still joins DDP's all-reduce, with zero gradients.
            return (y_pred.sum() * 0.0).reshape(())
        class_weights = self.__dict__.get("month_class_weight_")
        if isinstance(y_true, (tuple, list)) or class_weights is not None:
            return self._sharded_weighted_loss(y_pred, y_true, X, iterator, class_weights)
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        # DDP averages the processes' gradients; weighting each mean loss by
        # its share of the batch makes that average the whole batch's mean.
        share = n_local * self.accelerator.num_processes / n_global
        return loss if share == 1 else loss * share

    def _sharded_weighted_loss(self, y_pred, y_true, X, iterator, class_weights):
        """This process's part of the global batch's weighted loss.

        The global batch's loss is ``sum_i v_i l_i / V`` with ``V`` its
        *expected* weight: its number of rows times the epoch's mean row
        weight (``epoch_mean_weight_``, the same in every process: same
        plan), as in one process (see ``ContinualClassifier.get_loss``).
        Without it, ``V`` is the weight of all the global batch's rows
        (every process knows them: same plan, same shuffle). Each process
        returns ``world * sum_local v_i l_i / V``: DDP's average of the
        processes' gradients is then the gradient of the global batch's loss.
        """
        weights = None
        if isinstance(y_true, (tuple, list)):
            y_true, weights = y_true
        weights = self.row_weights(y_true, weights)
        total, _, reduction = self.weighted_loss(y_pred, y_true, weights, X, True)
        expected = self.__dict__.get("epoch_mean_weight_")
        if expected is not None:
            weight = iterator.global_batch_rows * expected
        else:
            labels, global_weights = iterator.data.labels_and_weights(
                iterator.global_batch_index)
            v = torch.ones(len(labels), dtype=torch.float64) if global_weights is None \
                else global_weights.double()
            if class_weights is not None:
                v = v * class_weights.cpu().double()[labels]
            weight = float(v.sum())
        world = self.accelerator.num_processes
        if reduction == "sum":
            loss = total * world
        else:
            loss = total * (world / max(weight, torch.finfo(torch.float32).tiny))
        # The strategy's terms (LwF's distillation, a user's autograd
        # penalty) as on the unweighted path: each process's term times its
        # share of the global batch, so DDP's average is the whole batch's.
        terms = self.strategy_terms(X, y_pred, y_true)
        if terms is not None:
            loss = loss + terms * (get_len(y_true) * world / iterator.global_batch_rows)
        return loss

    def train_step_single(self, batch, **fit_params):
        # ContinualClassifier's step (divergence check, closed-form L2/EWC
        # gradient added after backward, i.e. after DDP's averaging, row
        # count); its loss.backward() is DDP's all-reduce.
        step = ContinualClassifier.train_step_single(self, batch, **fit_params)
        if self.process_shard() is not None:
            # A non-finite loss is seen by one process only; the averaged
            # gradients it spoils are the same everywhere, so every process
            # stops (and rolls the month back) at this same step.
            grads = [p.grad for p in self.module_.parameters() if p.grad is not None]
            if grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
                self.raise_diverged(
                    "the gradients became NaN or infinite (the loss of this or another "
                    "process's rows)", unpack_data(batch)[0])
        return step

    def evaluation_step(self, batch, training=False):
        # Validation and prediction see every row in every process: no gather.
        return ContinualClassifier.evaluation_step(self, batch, training=training)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.__dict__.pop("shard_iterator_", None)
        if self.process_shard() is not None:
            rows = torch.tensor([self.rows_in_month_], dtype=torch.int64,
                                device=self.accelerator.device)
            self.rows_in_month_ = int(_all_reduce_sum(rows).item())
        return super().on_train_end(net, X=X, y=y, **kwargs)

    # ------------------------------------------------------------------
    # Checkpoints
    # ------------------------------------------------------------------
    def _plain_view(self):
        """This fitted model as a plain ContinualClassifier (sharing its
        objects), for the checkpoint writer."""
        plain = ContinualClassifier.__new__(ContinualClassifier)
        vars(plain).update({k: v for k, v in vars(self).items()
                            if k not in _ACCELERATE_ATTRIBUTES})
        return plain

    def save(self, path):
        """Write the checkpoint from the main process; every process waits.

        Call it in every process. The file is that of a plain
        :class:`~sklearn_cf.ContinualClassifier` (see
        :meth:`ContinualClassifier.save`). If the main process fails to
        write it, every process raises.

        Parameters
        ----------
        path : str or path-like
        """
        error = None
        if self.accelerator.is_main_process:
            try:
                _save_checkpoint(self._plain_view(), path)
            except Exception as exc:
                error = exc
        flag = torch.tensor([error is not None], dtype=torch.int64,
                            device=self.accelerator.device)
        failed = bool(_all_reduce_sum(flag).item())  # also the barrier
        if error is not None:
            raise error
        if failed:
            raise RuntimeError(f"The main process failed to write the checkpoint {path!r}.")

    def save_params(self, *args, **kwargs):
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            ContinualClassifier.save_params(self, *args, **kwargs)
        self.accelerator.wait_for_everyone()

    def load_params(self, *args, **kwargs):
        return ContinualClassifier.load_params(self, *args, **kwargs)
