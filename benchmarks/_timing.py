"""Shared helpers of the benchmarks: alternated timing, memory, tables.

Timings on a shared machine are noisy, so every comparison here runs its
candidates *alternated* (A, B, A, B, ... with the order rotated every round)
in one process, and reports the best and the median of the repeats. Ratios
are always formed from numbers measured side by side in the same call.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

__all__ = [
    "Timer",
    "alternate",
    "summary",
    "sync",
    "print_table",
    "machine_info",
    "run_child",
    "vm_status",
    "fmt",
]


def sync(device):
    """Wait for queued GPU work so that wall-clock times are complete."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Timer:
    """``with Timer(device) as t: ...``; ``t.seconds`` afterwards."""

    def __init__(self, device="cpu"):
        self.device = device
        self.seconds = None

    def __enter__(self):
        sync(self.device)
        self._cpu = time.process_time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = time.process_time() - self._cpu


def _as_record(result, elapsed, cpu):
    """A candidate returns None (time the call), seconds, or a dict with
    ``seconds`` and any extra numbers (rows, sub-timings, ``cpu_seconds``)."""
    if result is None:
        return {"seconds": elapsed, "cpu_seconds": cpu}
    if isinstance(result, (int, float)):
        return {"seconds": float(result)}
    record = dict(result)
    record.setdefault("seconds", elapsed)
    if "seconds" not in result:
        record.setdefault("cpu_seconds", cpu)
    return record


def alternate(candidates, repeats, warmup=0, log=None):
    """Run every candidate ``repeats`` times, alternated, rotating the order.

    Parameters
    ----------
    candidates : dict of str to callable
        Each callable takes no argument and returns None (its call is
        timed, wall clock and process CPU time), a float (the seconds it measured itself, so that it can
        leave its own setup out) or a dict holding ``seconds`` and other
        numbers.
    repeats : int
    warmup : int
        Untimed alternated rounds run first (allocator, caches, lazy init).
    log : callable or None
        Called with a short progress string after each run.

    Returns
    -------
    dict of str to list of dict
        The records of every timed run of each candidate, in run order.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    records = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            cpu = time.process_time()
            start = time.perf_counter()
            result = candidates[name]()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            records[name].append(_as_record(result, elapsed, cpu))
            if log is not None:
                log(f"  [{r + 1}/{repeats}] {name}: {records[name][-1]['seconds']:.3f} s")
    return records


def summary(records, key="seconds", best=min):
    """Best and median of one number over the runs of a candidate."""
    values = [float(rec[key]) for rec in records]
    return {"best": best(values), "median": statistics.median(values), "runs": values}


def paired_ratios(records_a, records_b, fn):
    """fn(rec_a, rec_b) for the runs of the same round (side-by-side ratios)."""
    return [fn(a, b) for a, b in zip(records_a, records_b)]


def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if value != value:
        return "nan"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def print_table(title, columns, rows, note=None):
    """Print a plain-text table: ``rows`` are lists aligned with ``columns``."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(str(col)), *(len(row[i]) for row in cells)) if cells else len(str(col))
        for i, col in enumerate(columns)
    ]
    print()
    print(f"== {title}")
    print("  ".join(str(col).rjust(w) for col, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    if note:
        print(note)
    sys.stdout.flush()


def vm_status(pid="self"):
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, unit = line.split()
                out[key[:-1]] = int(value) * 1024
    return out


def run_child(module, function, kwargs, timeout=3600):
    """Run ``module.function(**kwargs)`` in a fresh Python process.

    The function must return something JSON-serialisable; its result is
    read back from the child's last stdout line. A fresh process gives an
    honest peak RSS (VmHWM) per configuration.
    """
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        f"import {module} as m\n"
        f"out = m.{function}(**json.loads(sys.argv[1]))\n"
        "print('@@RESULT@@' + json.dumps(out))\n"
    )
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {module}.{function}({kwargs}) failed:\n{proc.stderr[-4000:]}"
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"child printed no result:\n{proc.stdout[-2000:]}")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device="cpu"):
    import sklearn
    import skorch

    info = {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": device,
        "loadavg_at_start": os.getloadavg(),
    }
    try:
        with open("/proc/meminfo") as fh:
            info["mem_total_bytes"] = int(fh.readline().split()[1]) * 1024
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def dumps(obj):
    """JSON with numpy scalars converted."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, torch.Tensor):
            return o.tolist()
        return str(o)

    return json.dumps(obj, indent=1, default=default)


def interleave(steppers, steps_per_chunk, rounds, warmup_rounds=1, device="cpu"):
    """Fine-grained alternation for steady-state per-step costs.

    ``steppers`` maps a name to ``fn(k)`` that performs ``k`` consecutive
    training steps. Every round runs each stepper for ``steps_per_chunk``
    steps, in a rotated order, so that a burst of load from other processes
    hits every candidate alike. Returns, per name, the list of seconds per
    step of each chunk (wall) and of process CPU time.
    """
    names = list(steppers)
    for _ in range(warmup_rounds):
        for name in names:
            steppers[name](steps_per_chunk)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            c0 = time.process_time()
            t0 = time.perf_counter()
            steppers[name](steps_per_chunk)
            sync(device)
            wall[name].append((time.perf_counter() - t0) / steps_per_chunk)
            cpu[name].append((time.process_time() - c0) / steps_per_chunk)
    return {"wall": wall, "cpu": cpu}


def paired_median_ratio(a, b):
    """Median over rounds of a[i] / b[i] (chunks of the same round)."""
    return float(statistics.median(x / y for x, y in zip(a, b)))
