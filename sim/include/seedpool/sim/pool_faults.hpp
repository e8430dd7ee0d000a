#pragma once

// The pool's own fault sites: the ways simulated worker processes and the
// pool's callers go wrong. They are fault sites like any other (faults.hpp),
// declared as constants here because the pool's scenarios name them in their
// profiles; their indices are the first ones the registry hands out. Their
// use sites declare no rate, so a pool site is off unless the scenario's
// profile gives it one:
//
//   FaultOptions profile;
//   profile[pool_faults::call_crash] = 20'000;
//   ... ctx.faults.fire(pool_faults::caller_cancel) ...

#include <seedpool/sim/faults.hpp>

#include <array>
#include <cstddef>

namespace seedpool::sim {

class SimProcessHost;
struct WorkerBehavior;

namespace pool_faults {

// Launch() fails (a missing executable).
inline constexpr FaultSite launch_failure = FaultSite::reserved(0, "launch_failure");
// The startup is drawn from the heavy tail.
inline constexpr FaultSite slow_start = FaultSite::reserved(1, "slow_start");
// Init is answered with an error frame.
inline constexpr FaultSite init_error = FaultSite::reserved(2, "init_error");
// A crash during init, after a stderr burst.
inline constexpr FaultSite init_crash = FaultSite::reserved(3, "init_crash");
// Init is never answered.
inline constexpr FaultSite init_hang = FaultSite::reserved(4, "init_hang");
// Garbage on stdout during init.
inline constexpr FaultSite init_garbage = FaultSite::reserved(5, "init_garbage");
// A crash during a call.
inline constexpr FaultSite call_crash = FaultSite::reserved(6, "call_crash");
// A call is never answered.
inline constexpr FaultSite call_hang = FaultSite::reserved(7, "call_hang");
// Garbage on stdout instead of a reply.
inline constexpr FaultSite call_garbage = FaultSite::reserved(8, "call_garbage");
// Half a reply frame, then exit.
inline constexpr FaultSite call_truncated = FaultSite::reserved(9, "call_truncated");
// A reply with a stale request id.
inline constexpr FaultSite call_wrong_id = FaultSite::reserved(10, "call_wrong_id");
// An error frame for a call (the worker survives).
inline constexpr FaultSite call_error = FaultSite::reserved(11, "call_error");
// A reply after a long latency.
inline constexpr FaultSite call_slow = FaultSite::reserved(12, "call_slow");
// The worker stops answering pings.
inline constexpr FaultSite pings_ignored = FaultSite::reserved(13, "pings_ignored");
// The worker ignores SIGTERM.
inline constexpr FaultSite ignore_terminate = FaultSite::reserved(14, "ignore_terminate");
// The worker takes long to exit on shutdown.
inline constexpr FaultSite slow_shutdown = FaultSite::reserved(15, "slow_shutdown");
// A caller cancels its checkout.
inline constexpr FaultSite caller_cancel = FaultSite::reserved(16, "caller_cancel");
// A caller's deadline is very short.
inline constexpr FaultSite caller_short_deadline = FaultSite::reserved(17, "caller_short_deadline");
// A caller keeps its lease for a long time, then drops it.
inline constexpr FaultSite caller_vanish = FaultSite::reserved(18, "caller_vanish");
// A chaos task SIGKILLs a random worker.
inline constexpr FaultSite external_kill = FaultSite::reserved(19, "external_kill");
// A chaos task SIGKILLs every live worker at once.
inline constexpr FaultSite burst_kill = FaultSite::reserved(20, "burst_kill");
// A caller sends a call whose frame is over frame_bytes_max. Off unless a
// scenario's profile names it (its use site declares rate 0).
inline constexpr FaultSite caller_oversized_call = FaultSite::reserved(21, "caller_oversized_call");

// A worker writes a pong nobody pinged for before its reply (a frame the
// protocol forbids; the pool must replace the worker). Off unless a
// scenario's profile names it.
inline constexpr FaultSite call_stray_pong = FaultSite::reserved(22, "call_stray_pong");

// Every pool site, in index order: what the registry reserves.
inline constexpr std::array<FaultSite, 23> all = {
    launch_failure, slow_start,   init_error,     init_crash,    init_hang,        init_garbage,  call_crash,
    call_hang,      call_garbage, call_truncated, call_wrong_id, call_error,       call_slow,     pings_ignored,
    ignore_terminate, slow_shutdown, caller_cancel, caller_short_deadline, caller_vanish, external_kill, burst_kill,
    caller_oversized_call, call_stray_pong,
};

}  // namespace pool_faults

// Makes every later launch of `host` draw the pool's worker faults from
// `faults`: launch_failure, slow_start, the init and call sites,
// pings_ignored, ignore_terminate and slow_shutdown, with latencies on the
// run's grid. `faults` must outlive the host's processes.
void install_pool_faults(FaultInjector& faults, SimProcessHost& host);

// The behaviour install_pool_faults gives each launch, for a scenario that
// changes part of it. `faults` must outlive the process.
WorkerBehavior faulty_worker(FaultInjector& faults);

}  // namespace seedpool::sim
