#!/usr/bin/env python3
"""bench_report.py: the tables of scripts/bench.sh, read back from its raw log: medians per
contender (min, max, rounds), then issue 11's verdicts, met or not met, on the CPU, the GPU
and the evaluation's speed. bench.sh runs the contenders and calls this at the end;
`scripts/bench.sh --report LOG` (or this file with LOG) prints the tables of a saved log again.
It only reads and prints: it runs nothing and asserts nothing about speed.

The log (what bench.sh writes; any other line is a contender's own output and is kept as is):
  @meta KEY=VALUE ...        the run's settings and machine (date, commit, cpu, load averages, gpu)
  @skip part=cpu|gpu|eval what="..." reason="..."   rows not run, and why
  @run round=R contender=C [threads=T] [batch=B] [math=fp32|tf32] [optional=1]
  ...                        the contender's output: its `bench ...` line gives the figure
  @end rc=N wall_s=S         its exit status and wall time (the figure of the eval contenders)
Contenders: cuvae-cpu, gemms-cpu, pytorch-cpu (per thread count); cuvae-cuda, pytorch-eager,
pytorch-graph, pytorch-compile (per batch size and math); eval-train (once), eval-load,
eval-iw. A run that exits non-zero, has no `bench` line or no @end has failed; a failed run
of a contender that is not optional (only pytorch-compile is) makes the exit status 1.
"""
import re
import statistics
import sys

KV = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)')

CPU_GEMM_TARGET = 1.2      # cuvae's epoch over its GEMMs alone, at each thread count
CPU_TORCH_TARGET = 0.6     # cuvae's epoch over PyTorch's at PyTorch's best thread count
GPU_EPOCH_TARGET_MS = 15.0  # cuvae, FP32, batch 128, one 60,000-image epoch
GPU_GRAPH_SPEEDUP = 2.0    # over PyTorch with the whole step captured
GPU_EAGER_SPEEDUP = 10.0   # over PyTorch eager
EVAL_TARGET_S = 2.0        # cuvae eval --iw-samples 5000 over the 10,000 test images


def fields(line):
    """The KEY=VALUE pairs of a line as a dict, quotes taken off."""
    return {k: v[1:-1] if v.startswith('"') else v for k, v in KV.findall(line)}


class Run:
    def __init__(self, keys):
        self.keys = keys
        self.contender = keys.get("contender", "?")
        self.optional = keys.get("optional") == "1"
        self.bench = None  # the fields of the first `bench ` line
        self.rc = None
        self.wall = None
        self.last = ""  # the last line of its own output
        self.reason = ""  # a `bench-failed` line's reason
        self.profile = []  # a profile run's table: the `profile ...` line to "other (host)"

    def failed(self):
        if self.rc is None:
            return "no @end line (interrupted)"
        if self.rc != 0:
            return f"exit status {self.rc}"
        if not self.contender.startswith("eval-") and self.bench is None:
            return "no `bench` line"
        return None

    def value(self):
        """Seconds: the bench line's median per epoch, or the wall time of an eval run."""
        if self.failed():
            return None
        if self.contender.startswith("eval-"):
            return self.wall
        return float(self.bench["median_s_per_epoch"])


def parse(lines):
    meta, skips, runs, cur = {}, [], [], None
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("@meta "):
            meta.update(fields(line))
        elif line.startswith("@skip "):
            skips.append(fields(line))
        elif line.startswith("@run "):
            cur = Run(fields(line))
            runs.append(cur)
        elif line.startswith("@end ") and cur is not None:
            f = fields(line)
            cur.rc = int(f.get("rc", "1"))
            cur.wall = float(f["wall_s"]) if "wall_s" in f else None
            cur = None
        elif line.startswith("bench ") and cur is not None and cur.bench is None:
            cur.bench = fields(line)
        elif line.startswith("bench-failed ") and cur is not None:
            cur.reason = fields(line).get("reason", line)
        if cur is not None and line.strip() and not line.startswith("@"):
            cur.last = line.strip()[:200]
            if cur.contender.startswith("profile-") and (line.startswith("profile ") or cur.profile and
                                                          not cur.profile[-1].lstrip().startswith("other (host)")):
                cur.profile.append(line)
    return meta, skips, runs


def stats(vals):
    return (statistics.median(vals), min(vals), max(vals)) if vals else None


def group(runs, contender, **want):
    """The runs of one contender whose @run keys match want (values compared as strings)."""
    return [r for r in runs if r.contender == contender and all(r.keys.get(k) == str(v) for k, v in want.items())]


def summary(rs):
    """(median, min, max) of the runs that succeeded, or None; and 'ok/total' rounds."""
    vals = [r.value() for r in rs if r.value() is not None]
    return stats(vals), f"{len(vals)}/{len(rs)}"


def fmt_s(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def fmt_range_ms(s):
    return "-" if s is None else f"{s[1] * 1e3:.2f}-{s[2] * 1e3:.2f}"


def verdict(ratio, target, at_most):
    if ratio is None:
        return "n/a"
    met = ratio <= target if at_most else ratio >= target
    return f"{ratio:.2f} {'met' if met else 'not met'}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def skip_notes(skips, prefix):
    return [f"  not measured: {s.get('what', '?')}: {s.get('reason', '?')}" for s in skips
            if s.get("part", "") == prefix]


def thread_note(rs, threads):
    """A note where a contender's own threads= key differs from the thread count asked for."""
    seen = sorted({r.bench["threads"] for r in rs if r.bench and "threads" in r.bench and r.bench["threads"] != threads})
    return f" (ran with {','.join(seen)})" if seen else ""


def cpu_report(meta, skips, runs, out):
    threads = [t for t in meta.get("threads", "").split(",") if t]
    images = next((r.bench["images"] for r in runs if r.bench and "images" in r.bench), "?")
    out.append(f"CPU: {meta.get('cpu', '?')}, {meta.get('nproc', '?')} cores; {images} images per epoch, batch "
               f"{meta.get('batch', '?')}; seconds per epoch, median of the rounds (min, max)")
    names = [("cuvae-cpu", "cuvae (whole training step)"), ("gemms-cpu", "cuvae bench --gemm-only (the GEMMs alone)"),
             ("pytorch-cpu", "PyTorch CPU, data in one tensor")]
    rows, med = [], {}
    for t in threads:
        for c, label in names:
            rs = group(runs, c, threads=t)
            if not rs:
                continue
            s, n = summary(rs)
            med[(c, t)] = s[0] if s else None
            rows.append([label, t + thread_note(rs, t), fmt_s(s and s[0]), fmt_s(s and s[1]), fmt_s(s and s[2]), n])
    out.append(table(["contender", "threads", "median s/epoch", "min", "max", "rounds ok"], rows))
    out.extend(skip_notes(skips, "cpu"))
    torch_meds = [(v, t) for (c, t), v in med.items() if c == "pytorch-cpu" and v is not None]
    best = min(torch_meds) if torch_meds else None
    out.append("")
    out.append(f"CPU verdict (issue 11): at each thread count cuvae's epoch <= {CPU_GEMM_TARGET}x its GEMMs alone, "
               f"and <= {CPU_TORCH_TARGET}x PyTorch's epoch at PyTorch's best thread count"
               + (f" ({best[1]} here)" if best else ""))
    rows = []
    for t in threads:
        cu, ge, pt = (med.get((c, t)) for c, _ in names)
        rows.append([t, fmt_s(cu), fmt_s(ge), verdict(cu / ge if cu and ge else None, CPU_GEMM_TARGET, True),
                     fmt_s(pt), f"{fmt_s(best[0])} ({best[1]} thread{'s' * (best[1] != '1')})" if best else "-",
                     verdict(cu / best[0] if cu and best else None, CPU_TORCH_TARGET, True)])
    out.append(table(["threads", "cuvae s/epoch", "GEMMs alone s/epoch", f"cuvae/GEMMs (<= {CPU_GEMM_TARGET})",
                      "PyTorch s/epoch", "PyTorch best s/epoch", f"cuvae/PyTorch best (<= {CPU_TORCH_TARGET})"],
                     rows))


def gpu_report(meta, skips, runs, out):
    gpu = meta.get("gpu", "none")
    if gpu in ("none", "unusable"):
        out.append(f"GPU: {meta.get('gpu_reason', 'no GPU is present')}: the GPU figures were not measured; "
                   "the CPU figures stand alone.")
        return
    out.append(f"GPU: {gpu}; seconds per epoch, median of the rounds (min, max), data on the GPU")
    names = [("cuvae-cuda", "cuvae"), ("pytorch-eager", "PyTorch eager"),
             ("pytorch-graph", "PyTorch, step in a CUDA graph"), ("pytorch-compile", "PyTorch torch.compile reduce-overhead")]
    combos = []
    for r in runs:
        if r.contender in dict(names):
            key = (r.keys.get("batch", "?"), r.keys.get("math", "fp32"))
            if key not in combos:
                combos.append(key)
    rows, med = [], {}
    for b, m in combos:
        for c, label in names:
            rs = group(runs, c, batch=b, math=m)
            if not rs:
                continue
            s, n = summary(rs)
            med[(c, b, m)] = s[0] if s else None
            ks = sorted({r.bench["kernels_per_step"] for r in rs if r.bench and "kernels_per_step" in r.bench})
            rows.append([label, b, m, fmt_s(s and s[0], 4), fmt_s(s and s[0] * 1e3, 2),
                         fmt_range_ms(s), ",".join(ks) or "-", n])
    out.append(table(["contender", "batch", "math", "median s/epoch", "ms/epoch", "min-max ms", "kernels/step",
                      "rounds ok"], rows))
    out.extend(skip_notes(skips, "gpu"))
    out.append("")
    out.append(f"GPU verdict (issue 11): cuvae FP32 at batch 128 <= {GPU_EPOCH_TARGET_MS:g} ms per 60,000-image epoch; "
               f">= {GPU_GRAPH_SPEEDUP:g}x PyTorch with the step captured, >= {GPU_EAGER_SPEEDUP:g}x PyTorch eager "
               "(same batch, same run)")
    rows = []
    for b, m in combos:
        cu, ea, gr, co = (med.get((c, b, m)) for c, _ in names)
        epoch = "-"
        if (b, m) == ("128", "fp32"):
            epoch = "n/a" if cu is None else \
                f"{cu * 1e3:.2f} ms {'met' if cu * 1e3 <= GPU_EPOCH_TARGET_MS else 'not met'}"
        rows.append([b, m, fmt_s(cu and cu * 1e3, 2), fmt_s(ea and ea * 1e3, 2), fmt_s(gr and gr * 1e3, 2),
                     fmt_s(co and co * 1e3, 2), epoch,
                     verdict(gr / cu if cu and gr else None, GPU_GRAPH_SPEEDUP, False),
                     verdict(ea / cu if cu and ea else None, GPU_EAGER_SPEEDUP, False)])
    out.append(table(["batch", "math", "cuvae ms", "PyTorch eager ms", "PyTorch graph ms", "PyTorch compile ms",
                      f"epoch <= {GPU_EPOCH_TARGET_MS:g} ms", f"speed-up over graph (>= {GPU_GRAPH_SPEEDUP:g})",
                      f"speed-up over eager (>= {GPU_EAGER_SPEEDUP:g})"], rows))
    iw, load = group(runs, "eval-iw"), group(runs, "eval-load")
    if not iw and not load and not group(runs, "eval-train"):
        return
    out.append("")
    s_iw, n_iw = summary(iw)
    s_load, n_load = summary(load)
    k = meta.get("iw_samples", "5000")
    if meta.get("eval_batch", "default") != "default":
        k += f" --batch-size {meta['eval_batch']}"
    out.append(f"Evaluation (issue 11): cuvae eval --iw-samples {k} over the test images on the GPU, a model trained "
               f"for 1 epoch; target <= {EVAL_TARGET_S:g} s. cuvae eval prints no load time of its own, so the "
               "figure judged is the whole command's wall time (process start, data and model load included)")
    diff = s_iw[0] - s_load[0] if s_iw and s_load else None
    out.append(table(["command", "median wall s", "min", "max", "rounds ok"],
                     [[f"cuvae eval --iw-samples {k} (whole wall time)", fmt_s(s_iw and s_iw[0]),
                       fmt_s(s_iw and s_iw[1]), fmt_s(s_iw and s_iw[2]), n_iw],
                      ["cuvae eval without --iw-samples (load and ELBO)", fmt_s(s_load and s_load[0]),
                       fmt_s(s_load and s_load[1]), fmt_s(s_load and s_load[2]), n_load]]))
    out.append(f"  the difference, about the importance-weighted part alone: {fmt_s(diff)} s")
    if s_iw:
        out.append(f"  verdict on the whole wall time: {s_iw[0]:.3f} s, target <= {EVAL_TARGET_S:g} s: "
                   + ("met" if s_iw[0] <= EVAL_TARGET_S else "not met"))
    else:
        out.append("  verdict: n/a (no successful eval run)")
    out.extend(skip_notes(skips, "eval"))


def report(lines):
    """The report's lines and the exit status (0, or 1 when a contender that is not optional failed)."""
    meta, skips, runs = parse(lines)
    if not runs and "date" not in meta:
        return ["bench_report: no @meta or @run lines: not a log of scripts/bench.sh"], 2
    out = [f"== scripts/bench.sh {meta.get('date', '?')}, commit {meta.get('commit', '?')}, host {meta.get('host', '?')}",
           f"   data {meta.get('data', '?')}, {meta.get('rounds', '?')} rounds, each contender a fresh process: "
           f"1 warm-up epoch, then {meta.get('epochs', '?')} timed",
           f"   load average at start {meta.get('load_start', '?')}, at end {meta.get('load_end', '?')} "
           f"({meta.get('nproc', '?')} cores)"]
    if "cpu_backend" in meta or "torch" in meta:
        out.append(f"   cuvae's CPU backend: {meta.get('cpu_backend', '?')}; PyTorch {meta.get('torch', '?')}")
    out.append("")
    cpu_report(meta, skips, runs, out)
    out.append("")
    gpu_report(meta, skips, runs, out)
    profiles = [r for r in runs if r.contender.startswith("profile-") and r.profile]
    if profiles:
        out.append("")
        out.append("Per-op time per step (cuvae bench --profile after the rounds: one epoch after a warm-up, "
                   "every op timed on its own; read the shares)")
        for r in profiles:
            out.extend(r.profile)
    failed = [(r, r.failed()) for r in runs if r.failed()]
    status = 0
    if failed or meta.get("gpu") == "unusable":
        out.append("")
    if meta.get("gpu") == "unusable":
        out.append("FAILED: a GPU is present but cuvae cannot use it")
        status = 1
    groups = {}  # the failed runs of one contender, settings and cause, in log order
    for r, why in failed:
        desc = " ".join(f"{k}={v}" for k, v in r.keys.items() if k not in ("contender", "optional", "round"))
        cause = f"{why}: {r.reason or r.last}" if (r.reason or r.last) and r.rc else why
        groups.setdefault((r.optional, r.contender, desc, cause), []).append(r.keys.get("round", "?"))
    for (optional, contender, desc, cause), rounds in groups.items():
        out.append(f"{'failed (optional)' if optional else 'FAILED'}: {contender}{' ' + desc if desc else ''}, "
                   f"round{'s' * (len(rounds) > 1)} {','.join(rounds)}: {cause}")
        if not optional:
            status = 1
    return out, status


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: bench_report.py LOG   (LOG: the raw output of scripts/bench.sh)")
    try:
        with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        sys.exit(f"bench_report: {sys.argv[1]}: {e.strerror}")
    out, status = report(lines)
    print("\n".join(out))
    sys.exit(status)


if __name__ == "__main__":
    main()
