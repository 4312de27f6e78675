"""Medians over several ``run.py --out`` JSON files, as Markdown tables.

    python benchmarks/summarize.py run1.json run2.json [...]

Each cell is the median over the files of that run's own number (itself a
best/median over alternated repeats); the number of runs is printed.
"""

import json
import statistics
import sys

MIB = 2**20


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def pct(v):
    if v is None:
        return "-"
    return f"{100 * v:+.1f}%" if abs(v) < 0.1 else f"{100 * v:+.0f}%"


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def results(runs, name, needs=None):
    out = [r["benchmarks"][name]["result"] for r in runs
           if name in r["benchmarks"] and r["benchmarks"][name]["result"]]
    if needs is not None:  # skip runs written by an older layout of the benchmark
        out = [r for r in out if needs(r)]
    return out


def labels(dicts):
    """Keys of several dicts, in first-seen order (rows some runs lack)."""
    out = []
    for d in dicts:
        out += [k for k in d if k not in out]
    return out


def throughput(runs):
    res = results(runs, "throughput")
    if not res:
        return
    rows = []
    for bs in res[0]["cases"]:
        cases = [r["cases"][bs] for r in res]
        g = lambda key: med([c[key] for c in cases])  # noqa: E731
        ratio = g("ratio_month_best")
        rows.append([bs, fmt(med([c["plain_rows_per_s"]["best"] for c in cases])),
                     fmt(med([c["classifier_rows_per_s"]["best"] for c in cases])),
                     fmt(ratio), fmt(g("ratio_month_median_paired")),
                     fmt(g("ratio_steady_paired_median")),
                     fmt(1000 * g("fixed_overhead_seconds_median")),
                     f"{100 * g('fixed_overhead_share_median'):.2f}%",
                     fmt(g("fused_adam_speedup_best")),
                     "met" if ratio >= 0.9 else "MISSED"])
    table(f"1. Naive fine-tune month vs plain loop ({res[0]['rows']:,} rows x "
          f"{res[0]['features']}, {res[0]['epochs']} epochs; {len(res)} runs)",
          ["batch", "plain rows/s", "classifier rows/s", "ratio (best)", "ratio (paired median)",
           "ratio steady state", "fixed ms/month", "fixed share", "fused Adam speed-up",
           "target >= 0.9"], rows)


def penalties(runs):
    res = results(runs, "penalties")
    if not res:
        return
    rows = []
    for bs in res[0]["cases"]:
        for label in labels(r["cases"][bs]["strategies"] for r in res):
            infos = [r["cases"][bs]["strategies"][label] for r in res
                     if label in r["cases"][bs]["strategies"]]
            over = med([i["overhead_paired_median"] for i in infos])
            target = "-"
            if label.startswith(("l2", "ewc")):
                target = "met" if over <= 0.15 else "MISSED"
            rows.append([bs, label, fmt(med([i["rows_per_s_median"] for i in infos])),
                         pct(over), pct(med([i["overhead_cpu_median"] for i in infos])),
                         pct(med([i["month_overhead_best"] for i in infos])),
                         fmt(med([i["month_seconds_incl_end_month"]["median"] for i in infos])),
                         target])
    table(f"2. Per-training-row cost vs naive ({res[0]['rows']:,} new rows; {len(res)} runs)",
          ["batch", "strategy", "rows/s", "overhead (steady, paired median)", "overhead (CPU)",
           "overhead (whole month, best)", "month s incl. Fisher", "target <= 15%"], rows)


def fisher(runs):
    res = results(runs, "fisher")
    if not res:
        return
    rows = []
    for key in res[0]["candidates"]:
        infos = [r["candidates"][key] for r in res]
        x_epoch = med([i["x_epoch_paired_median"] for i in infos])
        x_floor = med([i["x_floor_paired_median"] for i in infos])
        target = "-"
        if key == "fisher empirical":
            target = "met" if x_epoch <= 1.0 and x_floor <= 1.5 else "MISSED"
        rows.append([key, fmt(med([i["seconds"]["median"] for i in infos])),
                     fmt(x_epoch), fmt(x_floor), target])
    table(f"3. fisher_diagonal, {res[0]['rows']:,} rows x {res[0]['features']} "
          f"({len(res)} runs)", ["what", "seconds (median)", "x one epoch", "x floor",
                                 "targets (<= 1.0x epoch, <= 1.5x floor)"], rows)


def months(runs):
    res = results(runs, "months", lambda r: "seconds_median" in r["strategies"]["naive"])
    if not res:
        return
    rows = []
    for label in labels(r["strategies"] for r in res):
        infos = [r["strategies"][label] for r in res if label in r["strategies"]]
        g = lambda key: med([i[key] for i in infos])  # noqa: E731
        target = "-"
        if label.startswith("replay epoch_size"):
            target = "met" if g("finetune_month_x_naive") <= 1.10 else "MISSED"
        rows.append([label, fmt(infos[0]["rows"]), fmt(g("rows_x_naive")),
                     fmt(g("seconds_median")), fmt(g("seconds_x_naive")),
                     fmt(g("seconds_x_joint")), fmt(g("finetune_month_seconds_median")),
                     fmt(g("finetune_month_x_naive")), fmt(g("finetune_month_x_naive_cpu")),
                     target])
    r0 = res[0]
    table(f"4. End to end, {r0['months']} months x {r0['rows_per_month']:,} rows x "
          f"{r0['features']}, {r0['epochs']} epochs/month ({len(res)} runs)",
          ["strategy", "rows", "rows x naive", "seconds", "s x naive", "s x joint",
           "s / fine-tune month", "month x naive", "month x naive (CPU)",
           "target <= 1.10"], rows)


def memory(runs):
    res = results(runs, "memory")
    if not res:
        return
    rows = []
    for label in res[0]["strategies"]:
        traces = [r["strategies"][label]["trace"] for r in res]
        rows.append([label]
                    + [fmt(med([t[i]["peak_rss"] / MIB for t in traces])) for i in (0, 2, 5, 11)]
                    + [fmt(med([t[11]["strategy_bytes"] / MIB for t in traces]))])
    r0 = res[0]
    table(f"5. Peak RSS above the pre-training RSS, MiB ({r0['months']} months x "
          f"{r0['rows_per_month']:,} rows x {r0['features']} = {r0['month_data_mib']:.0f} MiB "
          f"per month; {len(res)} runs)",
          ["strategy", "month 1", "month 3", "month 6", "month 12", "kept by strategy, month 12"],
          rows)


def search(runs):
    res = results(runs, "search", lambda r: "cores_used_median" in r["configs"]["n_jobs=1"])
    if not res:
        return
    rows = []
    for label in res[0]["configs"]:
        infos = [r["configs"][label] for r in res]
        rows.append([label, fmt(med([i["seconds"]["median"] for i in infos])),
                     fmt(med([i["seconds"]["best"] for i in infos])),
                     fmt(med([i["speedup_vs_n_jobs_1_paired_median"] for i in infos])),
                     fmt(med([i.get("cores_used_median") for i in infos])),
                     fmt(all(i["same_best_params"] for i in infos))])
    table(f"6. GridSearchCV, 4 candidates x 3 splits, {res[0]['rows']:,} rows ({len(res)} runs)",
          ["configuration", "s (median)", "s (best)", "speed-up vs n_jobs=1", "cores used",
           "same results"], rows)


def scale(runs):
    res = results(runs, "scale")
    if not res:
        return
    g = lambda key: med([r[key] for r in res])  # noqa: E731
    table(f"7. Scale: one fine-tune epoch, {res[0]['rows']:,} rows x {res[0]['features']} "
          f"({len(res)} runs)",
          ["data MiB", "month s", "rows/s", "plain loop rows/s", "peak RSS MiB",
           "peak above data MiB", "__getitem__ calls", "tensors only"],
          [[fmt(g("data_bytes") / MIB), fmt(g("month_seconds")), fmt(g("rows_per_s")),
            fmt(g("plain_rows_per_s")), fmt(g("peak_rss_after_month") / MIB),
            fmt(g("month_peak_above_data") / MIB), fmt(int(max(r["getitem_calls"] for r in res))),
            fmt(all(r["rows_stay_tensors"] for r in res))]])


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    m = runs[0]["machine"]
    print(f"{len(runs)} run(s): {', '.join(paths)}; {m['cpu']}, {m['logical_cpus']} CPUs, "
          f"torch {m['torch']} ({runs[0]['threads']} thread), skorch {m['skorch']}; "
          f"total seconds per run: {[round(r.get('total_seconds', 0)) for r in runs]}")
    for fn in (throughput, penalties, fisher, months, memory, search, scale):
        fn(runs)


if __name__ == "__main__":
    main(sys.argv[1:])
