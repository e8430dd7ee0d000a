#!/usr/bin/env python3
"""The mutation suite's engine; scripts/mutants documents the command line,
the outcomes, the patch header lines and the exit status, and runs this.

    mutants.py ROOT WORK PATCH_DIR [options as in scripts/mutants]

ROOT is the repository, WORK the scratch folder (WORK/src is the scratch copy
of the tree, WORK/build its build, WORK/logs the logs of every step).
"""
import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

# The search plan, the same for the baseline and every mutant: per scenario
# a random-walk sweep from seed 1, then PCT (depth 3) with swarm-drawn faults
# from seed 1,000,000, each over the same seed budget.
STRATEGIES = [
    {"name": "random", "first_seed": 1, "args": ["--strategy", "random"]},
    {"name": "pct:3 --swarm", "first_seed": 1_000_000, "args": ["--strategy", "pct:3", "--swarm"]},
]

# Coverage comparison: a sweep is compared with the baseline's sweep of the
# same scenario and strategy only when it ran at least MIN_COMPARE_SEEDS
# seeds; a key changes sharply when its per-seed rate (runs / seeds run)
# moves by RATIO_SHARP or more either way (vanishing and appearing included),
# and the larger of its two run counts, scaled to the smaller of the two
# sweeps, is at least MIN_KEY_RUNS (fewer is noise).
MIN_COMPARE_SEEDS = 200
RATIO_SHARP = 4.0
MIN_KEY_RUNS = 20
SUMMARY_KEYS = 3

# Run outcomes seedpool-sim reports besides the checkers' rule names.
RUN_OUTCOMES = ["deadlock", "assertion", "task_exception", "step_budget", "time_budget", "decision_budget",
                "task_budget"]


def log(*parts):
    print(*parts, flush=True)


def warn(*parts):
    print("scripts/mutants:", *parts, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, args):
        self.args = args
        self.root = os.path.realpath(args.root)
        self.work = os.path.realpath(args.work)
        self.scratch = os.path.join(self.work, "src")
        self.build = os.path.join(self.work, "build")
        self.logs = os.path.join(self.work, "logs")
        self.sim = os.path.join(self.build, "bin", "seedpool-sim")
        os.makedirs(self.logs, exist_ok=True)

    # Paths as printed and stored: relative to the repository root, so that
    # nothing printed names this machine's folders.
    def rel(self, path):
        path = os.path.realpath(path)
        if path == self.root or path.startswith(self.root + os.sep):
            return os.path.relpath(path, self.root)
        return path

    def patch_ref(self, patch_file):
        path = os.path.realpath(patch_file)
        if path.startswith(self.root + os.sep):
            return os.path.relpath(path, self.root)
        return "$SEEDPOOL_MUTANTS_PATCHES/" + os.path.basename(path)

    def scrub(self, text):
        """Removes the scratch build's and the repository's absolute prefixes."""
        text = text.replace(self.build + "/", "build/").replace(self.scratch + "/", "")
        return text.replace(self.root + "/", "")

    def sync(self):
        subprocess.run([sys.executable, os.path.join(self.root, "scripts", "lib", "sync_tree.py"), self.root,
                        self.scratch], check=True)

    def build_sim(self, log_path):
        with open(log_path, "w") as out:
            if not os.path.isfile(os.path.join(self.build, "build.ninja")):
                rc = subprocess.run(["cmake", "-S", self.scratch, "-B", self.build, "-G", "Ninja",
                                     "-DCMAKE_BUILD_TYPE=Release", "-DSEEDPOOL_BUILD_TESTS=OFF",
                                     "-DSEEDPOOL_BUILD_BENCH=OFF", "-DSEEDPOOL_WERROR=OFF"],
                                    stdout=out, stderr=subprocess.STDOUT).returncode
                if rc != 0:
                    return False
            return subprocess.run(["cmake", "--build", self.build, "--target", "seedpool-sim", "--parallel",
                                   str(self.args.build_jobs)], stdout=out, stderr=subprocess.STDOUT).returncode == 0

    def scenarios(self):
        out = subprocess.run([self.sim, "list"], capture_output=True, text=True, check=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def known_kinds(self):
        """Rule names the checkers can report (quoted hyphenated names in the
        simulation's sources) plus the run outcomes; used only to read a
        patch's "# Expected catch:" prose when it has no "# Rule:" line."""
        kinds = set(RUN_OUTCOMES)
        for base, _, files in os.walk(os.path.join(self.scratch, "sim")):
            for name in files:
                if name.endswith((".cpp", ".hpp")):
                    with open(os.path.join(base, name), errors="replace") as f:
                        kinds.update(re.findall(r'"([a-z]+(?:-[a-z]+)+)"', f.read()))
        return kinds

    def sweep(self, label, scenario, strategy, seeds, jobs=None, suffix=""):
        """One seedpool-sim sweep. Returns a dict with status caught | passed |
        hang | crash, seeds_run, the first failure, and the coverage.

        With --jobs the failure seen first need not be the sweep's lowest
        failing seed; a caught sweep is then re-run on one job up to that
        seed, so that the seed reported (and the seed counts) are the ones a
        serial sweep finds, whatever the job count and timing."""
        jobs = jobs or self.args.sim_jobs
        json_path = os.path.join(self.work, "sweep.json")
        log_path = os.path.join(self.logs, f"{label}.{scenario}.{strategy['name'].split()[0].replace(':', '')}"
                                           f"{suffix}.log")
        if os.path.exists(json_path):
            os.remove(json_path)
        cmd = [self.sim, "run", scenario, "--seeds", str(seeds), "--first-seed", str(strategy["first_seed"]),
               *strategy["args"], "--max-failures", "1", "--quiet", "--json", json_path, "--jobs", str(jobs)]
        t = time.monotonic()
        with open(log_path, "w") as out:
            # A session of its own, so that a timeout kills the --jobs children too.
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=self.args.sweep_timeout)
            except subprocess.TimeoutExpired:
                rc = None
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        r = {"scenario": scenario, "strategy": strategy["name"], "first_seed": strategy["first_seed"],
             "seeds": seeds, "seconds": round(time.monotonic() - t, 1), "log": self.rel(log_path),
             "seeds_run": 0, "exit_status": rc, "coverage": None}
        if rc is None:
            r["status"] = "hang"
            r["detail"] = f"no answer within {self.args.sweep_timeout}s"
            return r
        doc = None
        if rc in (0, 1):
            try:
                with open(json_path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                doc = None
        if doc is None:
            r["status"] = "crash"
            r["detail"] = (f"seedpool-sim ended with status {rc}" if rc >= 0 else
                           f"seedpool-sim killed by signal {-rc}") + ("" if rc not in (0, 1) else ", no JSON")
            return r
        r["seeds_run"] = doc["seeds_run"]
        r["coverage"] = {k: v["runs"] for k, v in doc["coverage"].items()}
        if rc == 1 and doc["failures"]:
            f = doc["failures"][0]
            r["status"] = "caught"
            r["failure"] = {"seed": f["seed"], "kind": f["kind"], "message": self.scrub(f["message"].splitlines()[0][:300])
                            if f["message"] else "", "replay": self.scrub(f["replay"]),
                            "seeds_to_first_failure": f["seed"] - strategy["first_seed"] + 1}
            place = r["failure"]["seeds_to_first_failure"]
            if jobs > 1 and place > 1:
                serial = self.sweep(label, scenario, strategy, place, jobs=1, suffix=".serial")
                if serial["status"] == "caught":
                    r["failure"] = serial["failure"]
                    r["seconds"] = round(r["seconds"] + serial["seconds"], 1)
        elif rc == 0 and doc["seeds_run"] == seeds and not doc["failures"]:
            r["status"] = "passed"
        else:
            # Status 1 without a failure, or seeds missing from a clean sweep
            # (a --jobs child that died takes its seeds with it).
            r["status"] = "crash"
            r["detail"] = (f"seedpool-sim ended with status {rc} having reported {doc['seeds_run']} of {seeds} seeds"
                           f" and {len(doc['failures'])} failures" +
                           (" (a --jobs child died)" if rc == 0 and self.args.sim_jobs > 1 else ""))
        return r


def header_lines(patch_file):
    """The patch's leading comment block, without the '# '."""
    lines = []
    with open(patch_file, errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                break
            lines.append(line[1:].rstrip("\n")[1:] if line.startswith("# ") else line[1:].rstrip("\n"))
    return lines


def header_field(lines, key):
    """The text after 'KEY:' on the first line that starts with it, plus the
    comment lines that continue it (up to an empty line or the next KEY:)."""
    for i, line in enumerate(lines):
        if line.startswith(key + ":"):
            text = [line[len(key) + 1:].strip()]
            for more in lines[i + 1:]:
                if not more.strip() or re.match(r"^[A-Z][A-Za-z ]*:", more):
                    break
                text.append(more.strip())
            return " ".join(t for t in text if t)
    return None


def rules_of(lines, known):
    rule = header_field(lines, "Rule")
    if rule:
        return rule.split(), "Rule"
    expected = header_field(lines, "Expected catch")
    if expected:
        found = []
        for token in re.findall(r"[a-z_]+(?:-[a-z_]+)*", expected):
            if token in known and token not in found:
                found.append(token)
        if found:
            return found, "Expected catch"
    return [], None


def coverage_diff(base, mutant):
    """Compares two sweeps' coverage (key -> runs). Returns every key that
    vanished, appeared or changed sharply, largest change first."""
    nb, nm = base["seeds_run"], mutant["seeds_run"]
    n = min(nb, nm)
    changes = []
    for key in sorted(set(base["coverage"]) | set(mutant["coverage"])):
        b, m = base["coverage"].get(key, 0), mutant["coverage"].get(key, 0)
        rb, rm = b / nb, m / nm
        if b > 0 and m == 0:
            change = "vanished"
        elif b == 0 and m > 0:
            change = "appeared"
        elif b > 0 and (rm / rb >= RATIO_SHARP or rm / rb <= 1 / RATIO_SHARP):
            change = "up" if rm > rb else "down"
        else:
            continue
        sharp = max(rb, rm) * n >= MIN_KEY_RUNS
        if change in ("vanished", "appeared") and not sharp:
            change += " (rare)"
        elif not sharp:
            continue
        ratio = None if b == 0 or m == 0 else round(rm / rb, 3)
        changes.append({"key": key, "change": change, "sharp": sharp, "baseline_runs": b, "baseline_seeds": nb,
                        "mutant_runs": m, "mutant_seeds": nm, "ratio": ratio,
                        "magnitude": round(abs(math.log((rm + 1 / nm) / (rb + 1 / nb))) * max(rb, rm), 4)})
    changes.sort(key=lambda c: (not c["sharp"], -c["magnitude"]))
    return changes


def describe_counts(c):
    """'runs/seeds -> runs/seeds' of a change, with the rate ratio when both are nonzero."""
    ratio = f"x{c['ratio']:g}, " if c["ratio"] is not None else ""
    return f"{ratio}{c['baseline_runs']}/{c['baseline_seeds']} -> {c['mutant_runs']}/{c['mutant_seeds']} seeds"


def main():
    p = argparse.ArgumentParser(prog="scripts/mutants", add_help=False)
    p.add_argument("root")
    p.add_argument("work")
    p.add_argument("patch_dir")
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--seeds", type=int, default=2000)
    p.add_argument("--baseline-seeds", type=int, default=None)
    p.add_argument("--json", dest="json_out", default=None)
    p.add_argument("--sweep-timeout", type=float, default=600)
    p.add_argument("--build-jobs", type=int, default=2)
    p.add_argument("--sim-jobs", type=int, default=2)
    args = p.parse_args()
    if args.seeds < 1 or args.sweep_timeout <= 0 or args.build_jobs < 1 or args.sim_jobs < 1 or \
            (args.baseline_seeds is not None and args.baseline_seeds < 0):
        warn("--seeds, --sweep-timeout and the job counts must be positive, --baseline-seeds at least 0")
        return 2
    if args.baseline_seeds is None:
        args.baseline_seeds = args.seeds
    R = Runner(args)
    json_out = os.path.abspath(args.json_out or os.path.join(R.root, "build", "mutants.json"))
    os.makedirs(os.path.dirname(json_out), exist_ok=True)

    patches = []
    for name in sorted(os.listdir(args.patch_dir)):
        if not name.endswith(".patch"):
            continue
        stem = name[:-len(".patch")]
        if args.only and not any(o.removesuffix(".patch") == stem or stem.startswith(o.removesuffix(".patch") + "-")
                                 for o in args.only):
            continue
        patches.append(os.path.join(args.patch_dir, name))
    if not patches:
        warn(f"no patch in {args.patch_dir} matches {' '.join(args.only) or 'anything'}")
        return 2

    run_start = time.monotonic()
    log(f"== scratch tree {R.rel(R.scratch)}, build {R.rel(R.build)}")
    R.sync()
    t = time.monotonic()
    if not R.build_sim(os.path.join(R.logs, "pristine.log")):
        warn(f"the unpatched tree does not build; see {R.rel(os.path.join(R.logs, 'pristine.log'))}")
        with open(os.path.join(R.logs, "pristine.log"), errors="replace") as f:
            sys.stderr.write("".join(f.readlines()[-30:]))
        return 2
    log(f"== built the unpatched seedpool-sim in {time.monotonic() - t:.1f}s")
    scenarios = R.scenarios()
    known = R.known_kinds()

    # The baseline: the unpatched tree over the mutants' plan. Every sweep
    # must pass (else a "caught" below means nothing); its coverage is the
    # reference the mutants' coverage is compared with.
    baseline = {}
    baseline_problems = []
    if args.baseline_seeds > 0:
        t = time.monotonic()
        for s in scenarios:
            for strategy in STRATEGIES:
                r = R.sweep("baseline", s, strategy, args.baseline_seeds)
                baseline[(s, strategy["name"])] = r
                if r["status"] != "passed":
                    what = r.get("failure") or {"detail": r.get("detail")}
                    baseline_problems.append({"scenario": s, "strategy": strategy["name"], "status": r["status"],
                                              **what})
                    warn(f"the UNPATCHED pool: {s} {strategy['name']}: {r['status']}: "
                         f"{what.get('kind', '')} {what.get('message', what.get('detail', ''))}".rstrip())
                    if r.get("failure"):
                        warn(f"  replay: {r['failure']['replay']}")
        log(f"== unpatched pool: {len(scenarios)} scenarios x {len(STRATEGIES)} strategies x "
            f"{args.baseline_seeds} seeds in {time.monotonic() - t:.1f}s, {len(baseline_problems)} not passing")
    else:
        log("== unpatched pool not swept (--baseline-seeds 0): no check of the baseline, no coverage comparison")

    rows = []
    for patch_file in patches:
        name = os.path.basename(patch_file)[:-len(".patch")]
        ref = R.patch_ref(patch_file)
        lines = header_lines(patch_file)
        rules, rules_from = rules_of(lines, known)
        not_caught_reason = header_field(lines, "Not caught")
        hinted = (header_field(lines, "Scenarios") or "").split()
        row = {"mutant": name, "patch": ref, "rules": rules, "rules_from": rules_from,
               "documented_not_caught": not_caught_reason, "outcome": None, "build_seconds": None,
               "sweep_seconds": 0.0, "seeds_total": 0, "sweeps": [], "notes": [], "flagged": False,
               "coverage_summary": "-"}
        rows.append(row)
        log(f"== {name}")
        R.sync()  # back to the unpatched sources (only the files that differ are copied)
        patch_log = os.path.join(R.logs, f"{name}.patch.log")
        with open(patch_file, "rb") as pf, open(patch_log, "w") as out:
            ok = subprocess.run(["patch", "-d", R.scratch, "-p1", "--batch", "--forward", "--fuzz=0", "--dry-run",
                                 "-s"], stdin=pf, stdout=out, stderr=subprocess.STDOUT).returncode == 0
            if ok:
                pf.seek(0)
                ok = subprocess.run(["patch", "-d", R.scratch, "-p1", "--batch", "--forward", "--fuzz=0", "-s",
                                     "--no-backup-if-mismatch"], stdin=pf, stdout=out,
                                    stderr=subprocess.STDOUT).returncode == 0
        if not ok:
            with open(patch_log, errors="replace") as f:
                detail = R.scrub(f.read()).strip()
            row.update(outcome="apply-failed", detail=detail[:2000], log=R.rel(patch_log))
            warn(f"MUTANT {name}: {ref} does not apply to the pool sources (update it so it re-introduces its "
                 f"bug in the current code):\n{detail}")
            continue
        t = time.monotonic()
        build_log = os.path.join(R.logs, f"{name}.build.log")
        built = R.build_sim(build_log)
        row["build_seconds"] = round(time.monotonic() - t, 1)
        if not built:
            with open(build_log, errors="replace") as f:
                errors = [R.scrub(line.rstrip()) for line in f if "error" in line][:20]
            row.update(outcome="build-failed", detail="\n".join(errors), log=R.rel(build_log))
            warn(f"MUTANT {name}: the patched tree does not build; see {R.rel(build_log)}")
            for e in errors:
                print("  " + e, file=sys.stderr)
            continue

        # The search order: the scenarios the "# Scenarios:" line names, in
        # its order, then the others in `seedpool-sim list` order; per
        # scenario the strategies in STRATEGIES order. It stops at the first
        # sweep that fails; a sweep that hangs or crashes is recorded and the
        # search goes on.
        order = []
        for s in hinted + scenarios:
            if s in scenarios and s not in order:
                order.append(s)
        unknown = [s for s in hinted if s not in scenarios]
        if unknown:
            row["notes"].append(f"unknown scenarios in its Scenarios line: {' '.join(unknown)}")
        t = time.monotonic()
        caught = None
        for s in order:
            for strategy in STRATEGIES:
                r = R.sweep(name, s, strategy, args.seeds)
                row["seeds_total"] += r["failure"]["seeds_to_first_failure"] if r["status"] == "caught" \
                    else r["seeds_run"]
                coverage = r.pop("coverage")
                base = baseline.get((s, strategy["name"]))
                if coverage is None:
                    r["coverage_diff"] = "no coverage (the sweep did not finish)"
                elif base is None or base["coverage"] is None:
                    r["coverage_diff"] = "no baseline to compare with"
                elif base["seeds_run"] < MIN_COMPARE_SEEDS:
                    r["coverage_diff"] = f"too few baseline seeds to compare ({base['seeds_run']} < {MIN_COMPARE_SEEDS})"
                elif r["seeds_run"] < MIN_COMPARE_SEEDS:
                    r["coverage_diff"] = f"too few seeds to compare ({r['seeds_run']} < {MIN_COMPARE_SEEDS})"
                else:
                    r["coverage_diff"] = coverage_diff(base, {"seeds_run": r["seeds_run"], "coverage": coverage})
                row["sweeps"].append(r)
                if r["status"] in ("hang", "crash"):
                    row["notes"].append(f"{r['status']} in {s} {strategy['name']}")
                    log(f"   {s} {strategy['name']}: {r['status'].upper()}: {r['detail']} (log {r['log']}); going on")
                if r["status"] == "caught":
                    caught = r
                    break
            if caught:
                break
        row["sweep_seconds"] = round(time.monotonic() - t, 1)

        statuses = [r["status"] for r in row["sweeps"]]
        if caught:
            f = caught["failure"]
            row["outcome"] = "caught"
            row.update(scenario=caught["scenario"], strategy=caught["strategy"], seed=f["seed"],
                       failure_kind=f["kind"], message=f["message"],
                       seeds_to_first_failure=f["seeds_to_first_failure"],
                       replay=f"patch -p1 < {ref} && cmake --build build --target seedpool-sim && {f['replay']}")
            if not_caught_reason:
                row["notes"].append("documented as not caught, yet caught: drop its Not caught line")
        elif "hang" in statuses:
            row["outcome"] = "hang"
        elif "crash" in statuses:
            row["outcome"] = "crash"
        else:
            row["outcome"] = "not-caught (documented)" if not_caught_reason else "not-caught"

        sharp = [(f"{r['scenario']} {r['strategy']}", c) for r in row["sweeps"] if isinstance(r["coverage_diff"], list)
                 for c in r["coverage_diff"] if c["sharp"]]
        compared = [r for r in row["sweeps"] if isinstance(r["coverage_diff"], list)]
        row["coverage_sweeps_compared"] = len(compared)
        row["coverage_sharp_changes"] = len(sharp)
        row["flagged"] = row["outcome"].startswith("not-caught") and bool(sharp)
        if not compared:
            reasons = sorted({r["coverage_diff"] for r in row["sweeps"]})
            row["coverage_summary"] = "; ".join(reasons) if reasons else "no sweep ran"
        elif not sharp:
            row["coverage_summary"] = f"no sharp change over {len(compared)} compared sweeps"
        else:
            # Grouped by key and direction, largest total change first.
            groups = {}
            for where, c in sharp:
                groups.setdefault((c["key"], c["change"]), []).append((where, c))
            ranked = sorted(groups.items(), key=lambda g: -sum(c["magnitude"] for _, c in g[1]))
            parts = []
            for (key, change), members in ranked[:SUMMARY_KEYS]:
                members.sort(key=lambda wc: -wc[1]["magnitude"])
                where, c = members[0]
                parts.append(f"{key} {change} in {len(members)} sweep{'s' if len(members) > 1 else ''} "
                             f"(largest: {where}, {describe_counts(c)})")
            more = f"; {len(ranked) - SUMMARY_KEYS} more keys" if len(ranked) > SUMMARY_KEYS else ""
            row["coverage_summary"] = (f"{len(sharp)} sharp changes in {len(compared)} compared sweeps: "
                                       + "; ".join(parts) + more)
        if row["outcome"] == "caught":
            state = (f"caught by {row['scenario']} {row['strategy']} ({row['failure_kind']}) at seed {row['seed']}, "
                     f"{row['seeds_to_first_failure']} seeds into that sweep, {row['seeds_total']} over the search")
        else:
            state = f"{row['outcome'].upper()} after {row['seeds_total']} seeds over {len(row['sweeps'])} sweeps"
        log(f"   {state}; build {row['build_seconds']}s, sweeps {row['sweep_seconds']}s")
        log(f"   coverage: {'FLAGGED (not caught, coverage moved sharply): ' if row['flagged'] else ''}"
            f"{row['coverage_summary']}")
    R.sync()  # leave the scratch copy unpatched

    total = time.monotonic() - run_start
    outcomes = [r["outcome"] for r in rows]
    if any(o in ("apply-failed", "build-failed") for o in outcomes):
        status = 2
    elif baseline_problems or any(o in ("not-caught", "hang", "crash") for o in outcomes):
        status = 1
    else:
        status = 0

    # Per rule: the mutants that name it, which of them were caught and under
    # which failure kind.
    by_rule = {}
    for r in rows:
        for rule in r["rules"] or ["(none)"]:
            by_rule.setdefault(rule, []).append(r)
    named = {rule for r in rows for rule in r["rules"]}
    unnamed_kinds = {}
    for r in rows:
        if r["outcome"] == "caught" and r["failure_kind"] not in named:
            unnamed_kinds.setdefault(r["failure_kind"], []).append(r["mutant"])
    rules_doc = [{"rule": rule, "mutants": [r["mutant"] for r in rs],
                  "caught": [{"mutant": r["mutant"], "failure_kind": r["failure_kind"]} for r in rs
                             if r["outcome"] == "caught"]} for rule, rs in sorted(by_rule.items())]

    doc = {"seed_budget_per_sweep": args.seeds, "baseline_seeds_per_sweep": args.baseline_seeds,
           "strategies": [{"strategy": s["name"], "first_seed": s["first_seed"]} for s in STRATEGIES],
           "sweep_timeout_seconds": args.sweep_timeout, "sim_jobs": args.sim_jobs,
           "coverage_rules": {"min_compare_seeds": MIN_COMPARE_SEEDS, "sharp_ratio": RATIO_SHARP,
                              "min_key_runs": MIN_KEY_RUNS},
           "total_seconds": round(total, 1), "exit_status": status,
           "baseline": {"swept": bool(baseline), "problems": baseline_problems,
                        "sweeps": [{k: v for k, v in r.items() if k != "coverage"} |
                                   {"coverage_runs": r["coverage"]} for r in baseline.values()]},
           "all_caught": all(o == "caught" for o in outcomes),
           "mutants": rows, "rules": rules_doc, "failure_kinds_named_by_no_rule": unnamed_kinds}
    with open(json_out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    log("")
    log("| mutant | outcome | scenario (strategy) | failure kind | seeds to first failure / over the search "
        "| wall s (build + sweeps) | coverage vs unpatched | replay (from the repository root) |")
    log("|---|---|---|---|---:|---:|---|---|")
    for r in rows:
        outcome = r["outcome"] if r["outcome"] == "caught" else f"**{r['outcome']}**"
        if r["flagged"]:
            outcome += " **FLAGGED**"
        if r["outcome"] == "caught":
            where = f"{r['scenario']} ({r['strategy']})"
            seeds_col = f"{r['seeds_to_first_failure']} / {r['seeds_total']}"
            replay = f"`{r['replay']}`"
        else:
            where, seeds_col, replay = "-", f"- / {r['seeds_total']}", ""
        notes = "; ".join(r["notes"])
        if r["outcome"] in ("apply-failed", "build-failed"):
            first = (r.get("detail") or "").strip().splitlines()
            notes = "; ".join(([first[0][:120]] if first else []) + r["notes"])
        kind = r.get("failure_kind") or "-"
        bs = r["build_seconds"] or 0
        cov = r.get("coverage_summary", "-")
        if r["outcome"] in ("apply-failed", "build-failed"):
            cov = f"see {r['log']}"
        wall = "-" if r["build_seconds"] is None else f"{bs + r['sweep_seconds']:.1f} ({bs:.0f} + {r['sweep_seconds']:.1f})"
        notes = notes.replace("|", "\\|")
        log(f"| {r['mutant']} | {outcome}{' (' + notes + ')' if notes else ''} | {where} | {kind} | {seeds_col} | "
            f"{wall} | {cov} | {replay} |")
    log("")
    log("| rule | mutants naming it | caught (failure kind) | not caught |")
    log("|---|---|---|---|")
    for rule, rs in sorted(by_rule.items()):
        caught = [f"{r['mutant']} ({r['failure_kind']})" for r in rs if r["outcome"] == "caught"]
        missed = [f"{r['mutant']} ({r['outcome']})" for r in rs if r["outcome"] != "caught"]
        log(f"| {rule} | {', '.join(r['mutant'] for r in rs)} | {', '.join(caught) or '-'} | "
            f"{', '.join(missed) or '-'} |")
    if unnamed_kinds:
        log("")
        log("Failure kinds that caught mutants but are named by no Rule line: " +
            "; ".join(f"{k} ({', '.join(ms)})" for k, ms in sorted(unnamed_kinds.items())))
    log("")
    counts = {}
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    flagged = [r["mutant"] for r in rows if r["flagged"]]
    log(f"{counts.get('caught', 0)} of {len(rows)} mutants caught ("
        + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) + f") in {total:.0f}s; JSON in {R.rel(json_out)}")
    if flagged:
        log(f"FLAGGED (not caught, coverage moved sharply: a rule may be missing): {', '.join(flagged)}")
    if baseline_problems:
        warn(f"the unpatched pool did not pass {len(baseline_problems)} sweeps: fix that first")
    return status


if __name__ == "__main__":
    sys.exit(main())
