#!/usr/bin/env bash
# Drives a binary linked with seedpool::sim_main (tests/driver/
# fixture_scenarios.cpp) through every verb of the driver, as a user would:
# list, run (--jobs, --shard, --json, --save-failures, --max-failures),
# replay (seed, seed file, folder, --log, --trace), shrink, check-determinism,
# merge; PCT's estimated K; systematic search (dfs:preemptions=P, delay:D)
# with its saved failure replayed; a seed that crashes its process under
# --jobs; an empty shard; bad
# input; and a sweep split into 4 shards run through GNU parallel and merged,
# which must equal the same sweep in one process.
# Usage: driver_cli_test.sh DRIVER_BINARY
set -uo pipefail

driver="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
failures=0

check() {  # check DESCRIPTION COMMAND...: the command must succeed
  if "${@:2}"; then
    echo "ok   $1"
  else
    echo "FAIL $1"
    failures=$((failures + 1))
  fi
}

# first_replay OUTFILE: the first replay command a run printed.
first_replay() { grep -m1 '  replay: ' "$1" | sed 's/^  replay: //'; }

# run_status EXPECTED OUTFILE ARGS...: runs the driver, keeps its output, and
# says whether it exited with EXPECTED.
run_status() {
  local expected="$1" out="$2"
  shift 2
  "$driver" "$@" >"$out" 2>&1
  local status=$?
  if [[ $status -ne $expected ]]; then
    echo "  '$driver $*' exited $status, expected $expected:"
    sed 's/^/    /' "$out" | head -20
    return 1
  fi
}

# ---- list: the binary's own scenarios, not the built-in pool ones
check "list shows the binary's scenarios" run_status 0 list.txt list
check "list names ticket-race" grep -q '^ticket-race ' list.txt
check "list leaves out the built-in pool scenarios" bash -c '! grep -q "^churn " list.txt'

# ---- run: a planted race, found, with a replay command that works as printed
check "run finds the race (exit 1)" run_status 1 run.txt run ticket-race --seeds 300 --quiet --save-failures found
check "run names the rule" grep -q '\[ticket-unique\]' run.txt
replay_line="$(first_replay run.txt)"
check "the replay command names this binary" bash -c "[[ '$replay_line' == '$driver replay ticket-race --seed '* ]]"
check "the printed replay command reproduces the failure (exit 1)" bash -c "$replay_line >replay.txt 2>&1; [[ \$? -eq 1 ]] && grep -q ticket-unique replay.txt"
seed_file="$(ls found/ticket-race-*.json | head -1)"
check "run --save-failures wrote seed files" test -f "$seed_file"

# ---- replay: a seed file (exactly, with a trace), a folder, a log
check "replay FILE --trace reproduces exactly" run_status 0 replay_file.txt replay "$seed_file" --trace t.json
check "replay FILE says so" grep -q 'reproduced exactly' replay_file.txt
check "the Perfetto trace has a lane per task with its waits" python3 -c "
import json
events = json.load(open('t.json'))['traceEvents']
names = {e['args']['name'] for e in events if e.get('ph') == 'M'}
assert any('teller 0' in n for n in names), names
assert any(e.get('ph') == 'X' and e['name'].startswith('blocked: ') for e in events)
assert any(e.get('ph') == 'i' and e['name'].startswith('FAILED: ') for e in events)
"
check "replay FOLDER replays every file" run_status 0 replay_dir.txt replay found
check "replay --log prints readable events" bash -c "'$driver' replay '$seed_file' --log | grep -q \"task 'teller 0'\""

# ---- shrink: smaller, and still the same failure
check "shrink FILE" run_status 0 shrink.txt shrink "$seed_file" -o shrunk.json
check "the shrunk file reproduces exactly" run_status 0 replay_shrunk.txt replay shrunk.json
check "the shrunk file keeps the failure" grep -q "\"outcome\": \"ticket-unique\"" shrunk.json

# ---- the binary's own fault sites, by name, in swarm coverage and in a failure's fault line
check "run --swarm" run_status 0 swarm.txt run quiet-counter --seeds 200 --swarm --quiet
check "the coverage report names the site" grep -q 'fault:counter.skip' swarm.txt
check "a failure's fault line names the sites it met" grep -q 'faults: teller.nap=' run.txt

# ---- check-determinism
check "check-determinism passes for a deterministic scenario" run_status 0 det.txt check-determinism quiet-counter --seeds 50 --jobs 2 --quiet

# ---- pct:D: the K estimated before the sweep, and named by every replay command
check "run --strategy pct:3" bash -c "'$driver' run ticket-race --seeds 300 --strategy pct:3 --quiet >pct.txt 2>&1; [[ \$? -le 1 ]]"
check "the sweep names its estimated K" grep -q 'strategy pct:3 (K = [0-9]*, estimated from 16 warm-up runs)' pct.txt
check "replay commands name pct:3:K" bash -c "! grep '  replay: ' pct.txt | grep -qv -- '--strategy pct:3:[0-9]'"
check "replay refuses pct:3 without K (exit 2)" run_status 2 pct_replay.txt replay ticket-race --seed 1 --strategy pct:3
check "the refusal asks for pct:3:K" grep -q 'give pct:3:K' pct_replay.txt

# ---- systematic search: every schedule within a bound; a failing one saved and replayed from its file
check "dfs:preemptions=0 is exhausted without the race (exit 0)" run_status 0 dfs0.txt run ticket-race --strategy dfs:preemptions=0 --quiet
check "it says it was exhausted" grep -q '^exhausted: [0-9]* schedules, no failure within bound 0 (dfs:preemptions=0)' dfs0.txt
check "dfs:preemptions=1 finds the race (exit 1)" run_status 1 dfs1.txt run ticket-race --strategy dfs:preemptions=1 --quiet --save-failures dfs-found
check "it names the failing schedule and the rule" grep -q '^failed at schedule [0-9]* of dfs:preemptions=1: \[ticket-unique\]' dfs1.txt
dfs_replay="$(first_replay dfs1.txt)"
check "its replay command is replay FILE of the saved seed file" bash -c "[[ '$dfs_replay' == '$driver replay dfs-found/ticket-race-dfs-preemptions-1-schedule-'*.json ]]"
check "the printed replay command reproduces the schedule exactly" bash -c "$dfs_replay >dfs_replay.txt 2>&1; grep -q 'reproduced exactly' dfs_replay.txt"
check "delay:1 finds the race too (exit 1)" run_status 1 delay1.txt run ticket-race --strategy delay:1 --quiet --json delay1.json
check "its JSON names the failure and its seed file" python3 -c "
import json
d = json.load(open('delay1.json'))
assert d['strategy'] == 'delay:1' and d['failure']['kind'] == 'ticket-unique' and d['failure']['seed_file'], d
"
check "the schedule budget ends a search (exit 0)" run_status 0 budget.txt run ticket-race --strategy dfs:preemptions=1 --max-schedules 1 --quiet
check "it says the budget was reached" grep -q '^schedule budget reached: 1 schedules, no failure; dfs:preemptions=1 not exhausted' budget.txt
check "a bad strategy is refused (exit 2)" run_status 2 badstrategy.txt run ticket-race --strategy dfs:2
check "the refusal names the accepted forms" grep -q "'dfs:preemptions=P' or 'delay:D'" badstrategy.txt

# ---- the simulator's switches for thread code travel with a failure
check "an if-where-while-belongs passes without spurious wakeups (exit 0)" run_status 0 ifw.txt run if-not-while --seeds 100 --quiet
check "--spurious-wakeups finds it (exit 1)" run_status 1 ifw_sp.txt run if-not-while --seeds 100 --spurious-wakeups --quiet --save-failures sp-found
check "the sweep says which switches it ran with" grep -q 'strategy random --spurious-wakeups' ifw_sp.txt
sp_replay="$(first_replay ifw_sp.txt)"
check "its replay command carries --spurious-wakeups" bash -c "[[ '$sp_replay' == *' --spurious-wakeups' ]]"
check "the printed replay command reproduces the failure (exit 1)" bash -c "$sp_replay >sp_replay.txt 2>&1; [[ \$? -eq 1 ]] && grep -q box-full sp_replay.txt"
sp_file="$(ls sp-found/if-not-while-*.json | head -1)"
check "its seed file records the switch" python3 -c "
import json
d = json.load(open('$sp_file'))
assert d['sync'] == {'spurious_wakeups': True}, d
"
check "replay FILE reproduces it exactly" run_status 0 sp_file.txt replay "$sp_file"
check "replay FILE says so" grep -q 'reproduced exactly' sp_file.txt
check "a seed file without the switch is a passing run of that seed" bash -c "python3 -c \"
import json, sys
d = json.load(open('$sp_file')); del d['sync']; d['expected']['outcome'] = 'ok'
json.dump(d, open('sp_nosync.json', 'w'))
\" && '$driver' replay sp_nosync.json 2>&1 | grep -q 'if-not-while seed [0-9]*: ok'"
check "an unknown switch in a seed file is refused (exit 2)" bash -c "python3 -c \"
import json
d = json.load(open('$sp_file')); d['sync'] = {'spurious': True}
json.dump(d, open('sp_bad.json', 'w'))
\"; '$driver' replay sp_bad.json >sp_bad.txt 2>&1; [[ \$? -eq 2 ]] && grep -q 'unknown switch \\\"spurious\\\"' sp_bad.txt"

# ---- a seed that crashes its process: reported as crash under --jobs, every seed accounted
check "a crashing seed fails the sweep (exit 1)" run_status 1 crash.txt run crash-on-a-seed --seeds 200 --jobs 2 --quiet --json crash.json
check "the crash is reported with its seed and signal" grep -q '\[crash\] the process running seed [0-9]* killed by signal 11' crash.txt
check "no seed is lost to a crash" grep -q '^crash-on-a-seed: 200 seeds' crash.txt
crash_replay="$(first_replay crash.txt)"
check "the crash's replay command crashes the same way (SIGSEGV)" bash -c "$crash_replay >/dev/null 2>&1; [[ \$? -eq 139 ]]"

# ---- empty shard, bad input
check "an empty shard runs 0 seeds and passes" run_status 0 empty.txt run quiet-counter --seeds 3 --shard 5/8
check "an empty shard says 0 seeds" grep -q '0 seeds' empty.txt
check "a bad shard is refused (exit 2)" run_status 2 badshard.txt run quiet-counter --shard 4/4
check "the refusal names the shard" grep -q "invalid shard '4/4'" badshard.txt
check "an unknown scenario is refused (exit 2)" run_status 2 unknown.txt run no-such-scenario
check "the refusal lists the known scenarios" grep -q 'known scenarios: ticket-race' unknown.txt
check "a negative seed is refused, not wrapped (exit 2)" run_status 2 negseed.txt run quiet-counter --first-seed -5
check "the refusal names the value and the range" grep -q "'-5' is not a whole number in 0..18446744073709551615" negseed.txt
check "a seed past 64 bits is refused, not clamped (exit 2)" run_status 2 bigseed.txt replay quiet-counter --seed 18446744073709551616
check "a range running past the largest seed is refused (exit 2)" run_status 2 wrap.txt run quiet-counter --first-seed 18446744073709551615 --seeds 2
check "the refusal says so" grep -q 'runs past the largest seed' wrap.txt

# ---- 4 shards through GNU parallel, merged, equal one process
if command -v parallel >/dev/null; then
  check "4 shards run through GNU parallel" parallel --halt never "'$driver' run ticket-race --seeds 400 --jobs 1 --quiet --shard {}/4 --json shard-{}.json >/dev/null; test \$? -le 1" ::: 0 1 2 3
  check "merge the shards" run_status 1 merge.txt merge shard-0.json shard-1.json shard-2.json shard-3.json -o merged.json
  check "one process, the same seeds" run_status 1 whole.txt run ticket-race --seeds 400 --jobs 2 --quiet --json whole.json
  check "the merged result equals the single-process one" python3 - <<'EOF'
import json
merged, whole = json.load(open("merged.json")), json.load(open("whole.json"))
for key in ("seeds_run", "seeds_planned", "steps", "virtual_ns", "coverage"):
    assert merged[key] == whole[key], (key, merged[key], whole[key])
strip = lambda fs: [(f["seed"], f["kind"], f["trace_hash"], f["message"]) for f in fs]
assert strip(merged["failures"]) == strip(whole["failures"]), (strip(merged["failures"])[:3], strip(whole["failures"])[:3])
assert merged["failures"], "the race was found"
print(f"  merged = single process: {merged['seeds_run']} seeds, {len(merged['failures'])} failures")
EOF
else
  echo "FAIL GNU parallel is not installed (Debian package 'parallel')"
  failures=$((failures + 1))
fi

echo "$failures failed"
[[ $failures -eq 0 ]]
