"""Denormal floats: does ``torch.set_flush_denormal(True)`` change the cost
of an epoch as training goes on? (issue 15)

A plain PyTorch loop (the default 256x256 MLP, Adam) on a clean label rule,
where logits grow and gradients shrink epoch after epoch, with the flag off
and on, each in a fresh process, alternated. A denormal slowdown shows as
epoch times that grow with the epoch number when the flag is off and stay
flat when it is on. Reported: last epoch / first epoch for each, and the
ratio of total times.
"""

import statistics
import time

from _timing import print_table, run_child

NAME = "denormal"

#: (lr, rows, features, epochs, label margin): a separable rule, trained long
#: enough for the logits to saturate.
CASES = {
    "clean rule, lr 1e-3": (1e-3, 100_000, 100, 8, 0.0),
    "separable with margin, lr 1e-2": (1e-2, 20_000, 100, 30, 3.0),
}


def child_epochs(flush, lr, rows, features, epochs, margin):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(flush)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 0] += np.where(y == 1, margin, -margin)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(features, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(rows)
        for s in range(0, rows, 256):
            index = order[s:s + 256]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_t[index]), y_t[index]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return {"epochs": times}


def run(quick=False, device="cpu", log=print):
    if device != "cpu":
        log("[denormal] a CPU benchmark; skipped on another device")
        return None
    repeats = 1 if quick else 3
    results, rows = {}, []
    for name, (lr, n, d, epochs, margin) in CASES.items():
        if quick:
            n, epochs = n // 4, max(4, epochs // 2)
        records = {False: [], True: []}
        for r in range(repeats):
            for flush in ((False, True) if r % 2 == 0 else (True, False)):
                record = run_child("bench_denormal", "child_epochs",
                                   {"flush": flush, "lr": lr, "rows": n, "features": d,
                                    "epochs": epochs, "margin": margin})
                records[flush].append(record["epochs"])
                log(f"[denormal] {name}, flush={flush}: "
                    f"{', '.join(f'{t:.2f}' for t in record['epochs'])} s")
        results[name] = {str(k): v for k, v in records.items()}
        growth = {flush: statistics.median(e[-1] / e[0] for e in records[flush])
                  for flush in records}
        total = statistics.median(sum(off) / sum(on) for off, on in
                                  zip(records[False], records[True]))
        rows.append([name, growth[False], growth[True], total])
    print_table("Denormals: epoch time growth without and with flush_denormal",
                ["case", "last/first epoch, off", "last/first epoch, on", "total off / on"],
                rows, note="> 1 in the first column and ~1 in the second would be a denormal "
                           "slowdown; total off / on > 1: flushing saves time.")
    return results
