"""How many torch threads the estimator trains with (``n_threads``).

Torch's intra-op threads busy-wait for one another at every kernel: on a
machine whose cores are taken by other work, two threads of a small MLP can
be several times *slower* than one (a fit measured 544 s with two threads and
49 s with one on a busy 2-core machine), while on an idle machine two are
about 1.3x faster than one (docs/performance_log.md, section 10). ``n_threads="auto"`` therefore counts, when a
training call starts, the threads of *other* processes that are running at
that instant and leaves them their cores.
"""

import contextlib
import os
import time

import torch

__all__ = ["auto_threads", "other_running_threads", "resolve_threads", "torch_threads"]


def auto_threads(available, n_cpus, others):
    """Threads for a training call: at most ``available`` (torch's setting),
    at most the CPUs this process may use minus those other processes'
    running threads occupy, and at least 1.

    Parameters
    ----------
    available : int
        ``torch.get_num_threads()``: the user's or the launcher's ceiling
        (``OMP_NUM_THREADS``, joblib's limit inside a parallel search).
    n_cpus : int
        CPUs this process may run on.
    others : int
        Threads of other processes running right now.

    Returns
    -------
    int

    Examples
    --------
    >>> auto_threads(available=2, n_cpus=2, others=0)   # an idle machine
    2
    >>> auto_threads(available=2, n_cpus=2, others=1)   # one core busy
    1
    >>> auto_threads(available=8, n_cpus=16, others=3)  # torch's limit wins
    8
    """
    return max(1, min(int(available), int(n_cpus) - int(others)))


def _own_running_threads():
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        if stat[stat.rindex(")") + 2] == "R":
            count += 1
    return count


def other_running_threads(samples=3, interval=0.0005):
    """Threads of other processes running now (Linux), or None where the
    kernel does not say.

    The median over ``samples`` readings of the running count in
    ``/proc/loadavg`` minus this process's running threads (about 1.4 ms
    with the defaults, once per ``fit`` or ``partial_fit_month``).
    """
    try:
        readings = []
        for k in range(samples):
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            readings.append(max(0, running - _own_running_threads()))
            if k + 1 < samples:
                time.sleep(interval)
    except (OSError, ValueError, IndexError):
        return None
    return sorted(readings)[len(readings) // 2]


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(n_threads):
    """The thread count a training call uses for ``n_threads`` ("auto", an
    int, or None for torch's current setting)."""
    if n_threads is None:
        return torch.get_num_threads()
    if n_threads == "auto":
        others = other_running_threads()
        if others is None:
            return torch.get_num_threads()
        usable, every = _usable_cpus(), os.cpu_count() or 1
        if every > usable:
            # The kernel counts running threads on every CPU of the host;
            # this process runs on some of them: their share of the load.
            others = round(others * usable / every)
        return auto_threads(torch.get_num_threads(), usable, others)
    return int(n_threads)


@contextlib.contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch intra-op threads, then restore the
    previous setting (torch's setting is process-wide)."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
