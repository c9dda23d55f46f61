#!/usr/bin/env python3
"""criterion_verdicts.py: one verdict per Criterion test case, read from the output of
test programs run with --verbose=1: either `ctest -V` output (lines prefixed "N: ") or
one program's own output. Used by scripts/gpu_check.sh to count checks. Not a test
runner: it only reads output.

  criterion_verdicts.py FILE [--program NAME] [--gpu]

Prints one line per case: "PASS prog suite::name", "FAIL prog suite::name: why",
"SKIP prog suite::name: why". Cases a --filter left out ("Test is disabled") are not
checks and are not printed. With --gpu (this machine has a GPU), a CUDA case that
skipped (a test_cuda_* program, or a skip saying "no CUDA device") is a FAIL. From
ctest output it also fails a program that ctest saw fail, time out or crash while none
of its cases failed (a crash, or a library that did not load), and a program that
printed no case at all.
"""
import re
import sys

CASE = re.compile(r"^(?:(\d+): )?\[(PASS|FAIL|SKIP)\] (\S+?::\S+?)(?:: (.*))?$")
START = re.compile(r"^\s*Start\s+(\d+): (\S+)")
RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#(\d+): (\S+) \.+\s*(?:\*\*\*)?(.+?)\s+[\d.]+ sec")


def main(argv):
    path, program, gpu = None, "", False
    args = iter(argv)
    for a in args:
        if a == "--program":
            program = next(args)
        elif a == "--gpu":
            gpu = True
        else:
            path = a
    if path is None:
        sys.exit("usage: criterion_verdicts.py FILE [--program NAME] [--gpu]")
    names, results, cases = {}, {}, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = START.match(line)
            if m:
                names[m.group(1)] = m.group(2)
                continue
            m = RESULT.match(line)
            if m:
                names[m.group(1)] = m.group(2)
                results[m.group(2)] = m.group(3)
                continue
            m = CASE.match(line)
            if m:
                num, status, case, why = m.groups()
                prog = names.get(num, program) if num else program
                cases.append((prog, status, case, why or ""))
    failed_progs, seen_progs = set(), set()
    for prog, status, case, why in cases:
        seen_progs.add(prog)
        if status == "SKIP" and why.startswith("Test is disabled"):
            continue
        cuda = prog.startswith("test_cuda_") or "no CUDA device" in why
        if status == "SKIP" and gpu and cuda:
            status, why = "FAIL", "skipped on a machine with a GPU: " + why
        if status == "FAIL":
            failed_progs.add(prog)
        print(f"{status} {prog} {case}" + (f": {why}" if why else ""))
    for prog, result in sorted(results.items()):
        if prog not in seen_progs:
            print(f"FAIL {prog}: printed no test case (ctest: {result}); see the log")
        elif result not in ("Passed", "Skipped") and prog not in failed_progs:
            print(f"FAIL {prog}: ctest says {result} though no case failed (a crash or a library that did not load?); see the log")


if __name__ == "__main__":
    main(sys.argv[1:])
