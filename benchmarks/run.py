"""Run the sklearn_cf performance benchmarks and write the raw numbers as JSON.

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--out FILE.json]
                             [--threads N] [--only NAME,NAME]

Each benchmark is a module ``benchmarks/bench_*.py`` with a ``run`` function
that prints its table and returns its numbers. Timings alternate the
candidates they compare (A, B, A, B, ...) and report best and median; the
ratios are formed from runs of the same process and round. Not part of
the test suite; no timing is asserted anywhere.

``--threads`` sets ``torch.set_num_threads`` (default 1). On a shared
2-core machine two intra-op threads make each step wait for both threads
to be scheduled, and measured throughput swings by 10-50x with other load;
one thread gives stable, comparable numbers. Pass ``--threads 2`` (or 0:
torch's default) on an idle machine.
"""

import argparse
import inspect
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# The seven of docs/performance.md first, then any other bench_*.py here.
_ORDER = ["throughput", "penalties", "fisher", "months", "memory", "search", "scale"]
BENCHMARKS = _ORDER + sorted(
    name[len("bench_"):-len(".py")] for name in os.listdir(HERE)
    if name.startswith("bench_") and name.endswith(".py")
    and name[len("bench_"):-len(".py")] not in _ORDER
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer repeats (a few minutes on 2 cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default=None, help="write the raw numbers to this JSON file")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0: torch's default); default 1")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"--device cuda: CUDA is not available to this torch build "
              f"({torch.__version__}); nothing was run.", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        # Children (memory/scale subprocesses, loky workers) follow suit.
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from _timing import dumps, machine_info

    names = BENCHMARKS if args.only is None else [s.strip() for s in args.only.split(",")]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {BENCHMARKS}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    report = {
        "command": " ".join([os.path.basename(sys.executable), "benchmarks/run.py"]
                            + (argv if argv is not None else sys.argv[1:])),
        "quick": args.quick,
        "threads": torch.get_num_threads(),
        "machine": machine_info(args.device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "benchmarks": {},
    }
    m = report["machine"]
    print(f"# {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
          f"({report['threads']} thread(s)), skorch {m['skorch']}, sklearn {m['sklearn']}, "
          f"device {args.device}, CUDA available: {m['cuda_available']}, "
          f"load average at start {tuple(round(x, 2) for x in m['loadavg_at_start'])}")
    total = time.perf_counter()
    for name in names:
        module = __import__(f"bench_{name}")
        kwargs = {"quick": args.quick, "device": args.device, "log": log}
        params = inspect.signature(module.run).parameters
        if "threads" in params:
            kwargs["threads"] = report["threads"]
        start = time.perf_counter()
        try:
            result = module.run(**kwargs)
            error = None
        except Exception as exc:  # keep going: one failure should not lose the rest
            import traceback

            traceback.print_exc()
            result, error = None, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        log(f"[{name}] done in {seconds:.0f} s")
        report["benchmarks"][name] = {"seconds": seconds, "result": result, "error": error,
                                      "loadavg_after": os.getloadavg()}
        if args.out:  # write as we go
            with open(args.out, "w") as fh:
                fh.write(dumps(report))
    report["total_seconds"] = time.perf_counter() - total
    print(f"\n# total {report['total_seconds']:.0f} s")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(dumps(report))
        print(f"# raw numbers written to {args.out}")
    failed = [n for n, b in report["benchmarks"].items() if b["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
