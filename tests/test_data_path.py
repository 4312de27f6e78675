"""The training data path: which rows each batch holds, how often a row is
copied on its way into a batch, and month work that does not grow with the
history a month keeps (issue 15)."""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sklearn_cf._data import EpochIterator, MonthData, sorted_within_batches
from sklearn_cf.strategies import _replay
from sklearn_cf.strategies._replay import _draw

N_FEATURES = 3


def _sources(sizes, weighted=()):
    """Sources whose rows carry their global id: ``X[:, 0] = id``,
    ``y = id`` and, for the sources in ``weighted``, ``w = id + 0.5``."""
    sources, weights, start = [], [], 0
    for k, n in enumerate(sizes):
        ids = torch.arange(start, start + n)
        X = ids[:, None].float().repeat(1, N_FEATURES)
        sources.append((X, ids.clone()))
        weights.append(ids.float() + 0.5 if k in weighted else None)
        start += n
    return sources, weights


def _month(sizes, plan, weighted=()):
    sources, weights = _sources(sizes, weighted)
    data = MonthData(sources, lambda _, rng: plan, weights=weights if weighted else None)
    return data.resample(np.random.default_rng(0))


def _expected_batches(plan, batch_size, seed):
    """Oracle: the plan shuffled by the generator, cut into batches (today's
    definition of a batch's rows)."""
    order = torch.randperm(len(plan), generator=torch.Generator().manual_seed(seed))
    shuffled = torch.as_tensor(plan)[order]
    return [sorted(shuffled[s:s + batch_size].tolist())
            for s in range(0, len(plan), batch_size)]


class _Temporaries(TorchDispatchMode):
    """Counts rows of feature width written by torch ops, split into rows
    that land in new tensors (temporaries, e.g. ``X[idx]``) and rows written
    into existing memory (``out=``, in-place copies)."""

    def __init__(self):
        super().__init__()
        self.temporary_rows = 0
        self.written_rows = 0
        self.reads = []  # (source data_ptr, index) of index_select on features

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not inputs:  # a factory (empty): allocates, copies nothing
            return out
        storages = {t.untyped_storage().data_ptr() for t in inputs}
        for t in outputs:
            if t.dim() != 2 or t.shape[1] != N_FEATURES or not t.is_floating_point():
                continue
            if func.overloadpacket is torch.ops.aten.index_select:
                self.reads.append((args[0].untyped_storage().data_ptr(), args[2].clone()))
            elif func.overloadpacket is torch.ops.aten.index:  # X[index]
                self.reads.append((args[0].untyped_storage().data_ptr(), args[1][0].clone()))
            if t.untyped_storage().data_ptr() not in storages:
                self.temporary_rows += t.shape[0]
            elif func.overloadpacket is torch.ops.aten.index_select:
                self.written_rows += t.shape[0]
        return out


@pytest.fixture
def mixed_plan():
    """Three sources; the plan draws rows from all of them, some twice."""
    rng = np.random.default_rng(3)
    sizes = [40, 25, 30]
    plan = np.concatenate([rng.permutation(40), rng.integers(40, 95, size=50)])
    return sizes, plan


class TestBatchRows:
    @pytest.mark.parametrize("batch_size", [1, 7, 32, 200])
    @pytest.mark.parametrize("min_run_rows", [1, 10**9], ids=["direct", "gathered"])
    @pytest.mark.parametrize("weighted", [(), (0, 2)], ids=["unweighted", "weighted"])
    def test_every_batch_holds_the_rows_of_the_shuffled_plan(
            self, mixed_plan, batch_size, min_run_rows, weighted, monkeypatch):
        sizes, plan = mixed_plan
        data = _month(sizes, plan, weighted)
        monkeypatch.setattr(EpochIterator, "min_run_rows", min_run_rows, raising=False)
        monkeypatch.setattr(EpochIterator, "min_run_bytes", 0 if min_run_rows == 1 else 10**12)
        monkeypatch.setattr(EpochIterator, "chunk_rows", 64)  # several chunks
        it = EpochIterator(data, batch_size, generator=torch.Generator().manual_seed(5))
        batches = list(it)
        expected = _expected_batches(plan, batch_size, seed=5)
        assert len(batches) == len(expected) == len(it)
        for (X, y), rows in zip(batches, expected):
            if weighted:
                y, w = y
                # Unweighted sources weigh 1; X, y and w stay aligned.
                source = np.searchsorted(np.cumsum(sizes), y.numpy(), side="right")
                expected_w = np.where(np.isin(source, weighted), y.numpy() + 0.5, 1.0)
                np.testing.assert_array_equal(w.numpy(), expected_w)
            assert sorted(y.tolist()) == rows
            assert torch.equal(X, y[:, None].float().repeat(1, N_FEATURES))

    def test_a_batch_mixing_sources_is_in_increasing_row_order(self, mixed_plan):
        sizes, plan = mixed_plan
        data = _month(sizes, plan)
        for X, y in EpochIterator(data, 16, generator=torch.Generator().manual_seed(5)):
            assert torch.equal(y, torch.sort(y).values)

    def test_rows_of_one_source_keep_the_plan_order(self):
        # Replay with rehearsal_ratio=0 draws the new month only: its batches
        # are those of a one-source month, in the same order.
        sizes, plan = [30, 20], np.arange(30)
        data = _month(sizes, plan)
        alone = _month([30], plan)
        a = list(EpochIterator(data, 8, generator=torch.Generator().manual_seed(2)))
        b = list(EpochIterator(alone, 8, generator=torch.Generator().manual_seed(2)))
        assert [y.tolist() for _, y in a] == [y.tolist() for _, y in b]
        sizes, plan = [30, 20], 30 + np.arange(20)  # the second source only
        data = _month(sizes, plan)
        order = torch.randperm(20, generator=torch.Generator().manual_seed(2))
        got = [y.tolist() for _, y in EpochIterator(data, 8,
                                                    generator=torch.Generator().manual_seed(2))]
        assert sum(got, []) == (30 + order).tolist()

    @pytest.mark.parametrize("chunk_rows, chunk_bytes", [(10**6, 10**12), (16, 10**12),
                                                         (10**6, 3 * N_FEATURES * 4)],
                             ids=["one chunk", "two batches a chunk", "bytes bound"])
    def test_a_one_source_month_is_gathered_by_chunks_in_plan_order(
            self, chunk_rows, chunk_bytes, monkeypatch):
        # One gather per chunk of batches, then views: the batches are the
        # shuffled plan cut in order, whatever the chunk's size (a chunk of
        # 3 rows' bytes still holds one whole batch).
        monkeypatch.setattr(EpochIterator, "chunk_rows", chunk_rows)
        monkeypatch.setattr(EpochIterator, "chunk_bytes", chunk_bytes)
        plan = np.random.default_rng(7).integers(0, 50, size=61)
        data = _month([50], plan, weighted=(0,))
        batches = list(EpochIterator(data, 8, generator=torch.Generator().manual_seed(3)))
        order = torch.randperm(len(plan), generator=torch.Generator().manual_seed(3))
        shuffled = torch.as_tensor(plan)[order]
        assert [y.tolist() for _, (y, _) in batches] == [
            shuffled[s:s + 8].tolist() for s in range(0, len(plan), 8)]
        for X, (y, w) in batches:
            assert torch.equal(X[:, 0].long(), y)
            assert torch.equal(w, y.float() + 0.5)

    @pytest.mark.parametrize("min_run_rows", [1, 10**9], ids=["direct", "gathered"])
    def test_without_shuffle_batches_keep_the_plan_order(self, mixed_plan, min_run_rows,
                                                         monkeypatch):
        # Validation and prediction over a MonthData: rows in the plan's order,
        # as __getitem__ gives them.
        sizes, plan = mixed_plan
        data = _month(sizes, plan, weighted=(0,))
        monkeypatch.setattr(EpochIterator, "min_run_rows", min_run_rows, raising=False)
        monkeypatch.setattr(EpochIterator, "min_run_bytes", 0 if min_run_rows == 1 else 10**12)
        batches = list(EpochIterator(data, 16, shuffle=False))
        assert sum((y.tolist() for _, (y, _) in batches), []) == plan.tolist()
        assert all(torch.equal(X[:, 0].long(), y) for X, (y, _) in batches)
        assert [int(data[i][1][0]) for i in range(len(plan))] == plan.tolist()

    @pytest.mark.parametrize("min_run_rows", [1, 10**9], ids=["direct", "gathered"])
    @pytest.mark.parametrize("world", [2, 3])
    def test_shards_partition_every_global_batch_with_weights(self, mixed_plan, min_run_rows,
                                                              world, monkeypatch):
        sizes, plan = mixed_plan
        data = _month(sizes, plan, weighted=(1,))
        monkeypatch.setattr(EpochIterator, "min_run_rows", min_run_rows, raising=False)
        monkeypatch.setattr(EpochIterator, "min_run_bytes", 0 if min_run_rows == 1 else 10**12)
        whole = [(y.tolist(), w.tolist()) for _, (y, w) in
                 EpochIterator(data, 31, generator=torch.Generator().manual_seed(4))]
        for rank in range(world):
            it = EpochIterator(data, 31, generator=torch.Generator().manual_seed(4),
                               shard=(rank, world))
            for k, (X, (y, w)) in enumerate(it):
                assert y.tolist() == whole[k][0][rank::world]
                assert w.tolist() == whole[k][1][rank::world]
                assert torch.equal(X[:, 0].long(), y)
                # What the loss reads of the global batch: its rows, in order.
                labels, weights = data.labels_and_weights(it.global_batch_index)
                assert labels.tolist() == whole[k][0]
                assert weights.tolist() == whole[k][1]


class TestOneCopyPerRow:
    def test_rows_go_from_their_source_straight_into_the_batch(self, monkeypatch):
        # Two sources, 64 rows each per batch: runs long enough for direct
        # copies (the byte threshold lifted: these test rows are narrow).
        monkeypatch.setattr(EpochIterator, "min_run_bytes", 0)
        sizes = [200, 300]
        rng = np.random.default_rng(0)
        plan = np.concatenate([rng.permutation(200), 200 + rng.permutation(300)[:200]])
        data = _month(sizes, plan)
        with _Temporaries() as spy:
            batches = list(EpochIterator(data, 128, generator=torch.Generator().manual_seed(0)))
        assert sum(len(y) for _, y in batches) == len(plan)
        # Every row is copied once, from its source into the batch's memory;
        # none passes through a temporary (the old path: X[idx], then a
        # scatter into the chunk, two copies of every row).
        assert spy.temporary_rows == 0
        assert spy.written_rows == len(plan)

    @pytest.mark.parametrize("min_run_bytes, direct", [(None, False), (64 * N_FEATURES * 4, True),
                                                       (64 * N_FEATURES * 4 + 1, False)])
    def test_narrow_rows_are_gathered_for_the_chunk(self, monkeypatch, min_run_bytes, direct):
        # Runs of about 64 rows of 3 float32 features (768 bytes): long in
        # rows but short in bytes, so by default (16 kB) each source is
        # gathered for the chunk, then put in place; copied straight into the
        # batches once the byte threshold is at most a run's bytes.
        if min_run_bytes is not None:
            monkeypatch.setattr(EpochIterator, "min_run_bytes", min_run_bytes)
        sizes = [256, 256]
        # In plan order (no shuffle), every batch of 128 holds a run of 64
        # rows of each source.
        plan = np.concatenate([np.r_[np.arange(64 * k, 64 * k + 64),
                                     256 + np.arange(64 * k, 64 * k + 64)] for k in range(4)])
        data = _month(sizes, plan)
        iterator = EpochIterator(data, 128, shuffle=False)
        with _Temporaries() as spy:
            batches = list(iterator)
        assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(plan.tolist())
        assert spy.temporary_rows == (0 if direct else len(plan))

    def test_each_source_is_read_in_increasing_row_order_within_a_batch(self):
        sizes = [200, 300]
        rng = np.random.default_rng(1)
        plan = np.concatenate([rng.permutation(200), 200 + rng.integers(0, 300, size=200)])
        data = _month(sizes, plan)
        ptrs = {X.untyped_storage().data_ptr() for X, _ in data.sources}
        with _Temporaries() as spy:
            list(EpochIterator(data, 128, generator=torch.Generator().manual_seed(0)))
        reads = [index for ptr, index in spy.reads if ptr in ptrs]
        assert sum(len(index) for index in reads) == len(plan)
        assert all(torch.equal(index, torch.sort(index).values) for index in reads)


class TestHistoryIndependentWork:
    """Month work must be in the rows trained, not in the rows kept: sources
    of 10**12 virtual rows (a stride-0 view, no memory) make any pass over
    all the rows kept fail (a concatenation would allocate terabytes)."""

    @staticmethod
    def _huge_history():
        n_huge = 10**12
        new = _sources([50])[0][0]
        huge = (torch.zeros(1, N_FEATURES).expand(n_huge, N_FEATURES),
                torch.ones(1, dtype=torch.long).expand(n_huge))
        plan = np.concatenate([np.arange(50), 50 + np.array([0, 7, 10**11, n_huge - 1])])
        return [new, huge], plan

    def test_plan_labels_and_weights_read_only_the_plan(self):
        sources, plan = self._huge_history()
        weights = [torch.arange(50, dtype=torch.float32), None]
        data = MonthData(sources, lambda _, rng: plan, weights=weights)
        data.resample(np.random.default_rng(0))
        expected = np.r_[np.arange(50), [1, 1, 1, 1]]
        np.testing.assert_array_equal(data.plan_labels().numpy(), expected)
        np.testing.assert_array_equal(data.plan_weights().numpy(),
                                      np.r_[np.arange(50), [1, 1, 1, 1]])
        labels, w = data.labels_and_weights(torch.tensor([3, 50 + 10**11, 49]))
        assert labels.tolist() == [3, 1, 49] and w.tolist() == [3.0, 1.0, 49.0]
        # The unweighted source's weights take no memory.
        assert data.weights[1].untyped_storage().nbytes() == 4

    def test_batches_read_only_the_plan(self):
        sources, plan = self._huge_history()
        data = MonthData(sources, lambda _, rng: plan).resample(np.random.default_rng(0))
        rows = sorted(y for _, batch in EpochIterator(data, 16) for y in batch.tolist())
        assert rows == sorted(list(range(50)) + [1, 1, 1, 1])

    def test_past_rows_are_drawn_without_touching_the_population(self):
        rng = np.random.default_rng(0)
        drawn = _draw(rng, 10**15, 20_000)
        assert len(np.unique(drawn)) == 20_000
        assert drawn.min() >= 0 and drawn.max() < 10**15


class TestDraw:
    @pytest.mark.parametrize("population, k", [(40_000, 2_000), (100_000, 24_000)])
    def test_a_large_population_is_sampled_uniformly_without_replacement(self, population, k):
        # Oracle: every index is drawn with probability k / population, and
        # the draws of an epoch are distinct; the order is a random one.
        rng = np.random.default_rng(0)
        n_draws = 60
        counts = np.zeros(population)
        first = []
        for _ in range(n_draws):
            drawn = _draw(rng, population, k)
            assert len(drawn) == k and len(np.unique(drawn)) == k
            counts[drawn] += 1
            first.append(drawn[0])
        p = k / population
        # Counts per block of 1000 indices: binomial(1000 * n_draws, p).
        blocks = counts.reshape(-1, 1000).sum(1)
        mean, sd = 1000 * n_draws * p, np.sqrt(1000 * n_draws * p * (1 - p))
        assert np.all(np.abs(blocks - mean) < 5 * sd)
        # Not sorted: the first index drawn is uniform over the population.
        assert np.mean(first) == pytest.approx(population / 2, rel=0.25)

    def test_small_populations_draw_as_numpy_choice(self):
        # Same random stream as before for small memories and dense draws.
        for population, k in [(5_000, 100), (50_000, 20_000)]:
            a = _draw(np.random.default_rng(7), population, k)
            b = np.random.default_rng(7).choice(population, size=k, replace=False)
            np.testing.assert_array_equal(a, b)
        assert _replay.SMALL_POPULATION == 10_000

    def test_more_rows_than_the_population_are_drawn_with_replacement(self):
        drawn = _draw(np.random.default_rng(0), 10, 25)
        assert len(drawn) == 25 and set(drawn) <= set(range(10))


def test_sorted_within_batches_keeps_each_batch_rows():
    plan = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    out = sorted_within_batches(plan, 10)
    for s in range(0, 103, 10):
        assert out[s:s + 10].tolist() == sorted(plan[s:s + 10].tolist())
