//! Concurrent fuzzing: a single-threaded setup, then two operation sequences run at the
//! same time on two threads (`std::thread::scope`, started together by a spin barrier),
//! every call stamped with invocation and response times from one `SeqCst` clock.
//!
//! A map is a product of independent registers, so each recorded key's sub-history is
//! checked on its own: a search over the orders that respect real time (with
//! memoisation of `(operations done, register state)`; at most `MAX_OPS` operations per
//! thread, so at most `2 * MAX_OPS` per key) must find one that matches the sequential
//! semantics, and the key's final state must be the end state of such an order.
//! Multi-key operations are projected onto each key: `clear` is a removal at one
//! instant, `retain` a conditional removal at one instant, and an iteration a read at
//! one instant (a key it did not visit was absent at some instant during it).
//!
//! Writes use values never written before, so a result identifies the write it came
//! from. Unrecorded "noise" operations on other keys force promotions (reads of
//! dirty-only keys) and dirty-table rebuilds (new keys) while the race runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use arbitrary::Arbitrary;
use readmostly::SyncMap;

use crate::{Fixed, Rule};

/// Recorded keys.
const KEYS: u64 = 3;
/// Recorded operations per thread (noise and yields are not counted).
const MAX_OPS: usize = 8;
/// Entries (recorded or not) read per thread.
const MAX_ENTRIES: usize = 24;
const NOISE_BASE: u64 = 100;

#[derive(Arbitrary, Debug)]
pub struct Input {
    rule: Rule,
    setup: Vec<SetupOp>,
    a: Vec<TOp>,
    b: Vec<TOp>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SetupOp {
    Insert(u8),
    Remove(u8),
    /// A read (a miss on a dirty-only key counts towards promotion).
    Get(u8),
    /// Promotes the dirty table (through iteration).
    Promote,
    /// A new noise key (after a promotion: rebuilds the dirty table, expunging deleted keys).
    Noise(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum TOp {
    Get(u8),
    Insert(u8),
    GetOrInsert(u8),
    GetOrInsertWith(u8),
    /// `compare_exchange(key, guess, fresh)`; the guess picks a value that may be current.
    CompareExchange(u8, u8),
    /// `remove_if(key, |v| v == guess)`.
    RemoveIf(u8, u8),
    Remove(u8),
    Iter,
    Retain(u8),
    Clear,
    /// Unrecorded: insert, read or remove a noise key.
    Noise(u8),
    /// Unrecorded: spin or yield, to shift the threads against each other.
    Pause(u8),
}

/// A recorded call, projected onto one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Get,
    Insert(u64),
    GetOrInsert(u64),
    CompareExchange(u64, u64),
    RemoveIf(u64),
    Remove,
    /// Removes the key at one instant.
    Clear,
    /// Removes the key at one instant if `keep(parity, value)` is false.
    Retain(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Value(Option<u64>),
    GetOrInsert(u64, bool),
    Cas(Result<u64, Option<u64>>),
    Unit,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    thread: usize,
    key: u64,
    call: Call,
    ret: Ret,
    inv: u64,
    resp: u64,
}

fn keep(r: u8, v: u64) -> bool {
    (v + u64::from(r)) % 2 == 0
}

/// The register state after `call` in state `s`, if `ret` is what a sequential map
/// would return.
fn step(s: Option<u64>, call: Call, ret: Ret) -> Option<Option<u64>> {
    let (expected, next) = match call {
        Call::Get => (Ret::Value(s), s),
        Call::Insert(v) => (Ret::Value(s), Some(v)),
        Call::GetOrInsert(v) => match s {
            Some(x) => (Ret::GetOrInsert(x, false), s),
            None => (Ret::GetOrInsert(v, true), Some(v)),
        },
        Call::CompareExchange(cur, new) => match s {
            Some(x) if x == cur => (Ret::Cas(Ok(x)), Some(new)),
            _ => (Ret::Cas(Err(s)), s),
        },
        Call::RemoveIf(e) => match s {
            Some(x) if x == e => (Ret::Value(s), None),
            _ => (Ret::Value(None), s),
        },
        Call::Remove => (Ret::Value(s), None),
        Call::Clear => (Ret::Unit, None),
        Call::Retain(r) => (Ret::Unit, s.filter(|&v| keep(r, v))),
    };
    (ret == expected).then_some(next)
}

/// The final states of every linearization of `ops` from `init` (empty: none exists).
fn linearizations(init: Option<u64>, ops: &[Event]) -> HashSet<Option<u64>> {
    fn search(
        ops: &[Event],
        done: u32,
        state: Option<u64>,
        visited: &mut HashSet<(u32, Option<u64>)>,
        finals: &mut HashSet<Option<u64>>,
    ) {
        if !visited.insert((done, state)) {
            return;
        }
        if done.count_ones() as usize == ops.len() {
            finals.insert(state);
            return;
        }
        let pending = || (0..ops.len()).filter(move |i| done & (1 << i) == 0);
        let first_resp = pending().map(|i| ops[i].resp).min().unwrap();
        for i in pending() {
            // Real time: an operation invoked after another responded comes after it.
            if ops[i].inv > first_resp {
                continue;
            }
            if let Some(next) = step(state, ops[i].call, ops[i].ret) {
                search(ops, done | 1 << i, next, visited, finals);
            }
        }
    }
    assert!(ops.len() <= 32);
    let mut finals = HashSet::new();
    search(ops, 0, init, &mut HashSet::new(), &mut finals);
    finals
}

/// Starts two threads together.
struct SpinBarrier(AtomicUsize);

impl SpinBarrier {
    fn wait(&self) {
        self.0.fetch_add(1, SeqCst);
        let mut spins = 0u32;
        while self.0.load(SeqCst) < 2 {
            spins += 1;
            if spins < 10_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

type Map = SyncMap<u64, u64, Fixed>;

/// Runs so far, and runs in which operations of the two threads overlapped in time
/// (for the tests of this crate, which report how often the race really happens).
pub static RUNS: AtomicU64 = AtomicU64::new(0);
pub static OVERLAPPING: AtomicU64 = AtomicU64::new(0);
pub static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Runs one input.
pub fn run(input: Input) {
    let Input { rule, setup, a, b } = input;
    let map: Map = SyncMap::builder()
        .hasher(Fixed)
        .promotion(rule.promotion())
        .recent_keys(rule.recent_keys())
        .rebuild_step(rule.rebuild_step())
        .build();

    // Setup, single-threaded (and checked like the differential target).
    let mut init: HashMap<u64, u64> = HashMap::new();
    for (i, op) in setup.iter().take(32).enumerate() {
        let value = 1_000 + i as u64;
        match *op {
            SetupOp::Insert(k) => {
                let k = u64::from(k) % KEYS;
                assert_eq!(map.pin().insert(k, value).copied(), init.insert(k, value));
            }
            SetupOp::Remove(k) => {
                let k = u64::from(k) % KEYS;
                assert_eq!(map.pin().remove(&k).copied(), init.remove(&k));
            }
            SetupOp::Get(k) => {
                let k = u64::from(k) % KEYS;
                assert_eq!(map.get_cloned(&k), init.get(&k).copied());
            }
            SetupOp::Promote => {
                map.pin().iter().next();
            }
            SetupOp::Noise(n) => {
                map.insert(NOISE_BASE + u64::from(n % 8), 0);
            }
        }
    }

    // Every value that can be current: the setup's and every write of both threads.
    let mut candidates: Vec<u64> = init.values().copied().collect();
    for t in 0..2u64 {
        candidates.extend((0..MAX_ENTRIES as u64).map(|i| fresh(t as usize, i)));
    }
    candidates.push(u64::MAX); // never written

    let clock = AtomicU64::new(0);
    let barrier = SpinBarrier(AtomicUsize::new(0));
    let (ea, eb) = std::thread::scope(|s| {
        let worker = |t: usize, ops: &[TOp]| {
            let (map, clock, barrier, candidates) = (&map, &clock, &barrier, &candidates);
            let ops = ops[..ops.len().min(MAX_ENTRIES)].to_vec();
            s.spawn(move || thread_ops(t, map, &ops, clock, barrier, candidates))
        };
        let ha = worker(0, &a);
        let hb = worker(1, &b);
        (ha.join().unwrap(), hb.join().unwrap())
    });

    // The final state, read quiescently (and `len` agrees with it).
    let mut after: HashMap<u64, u64> = HashMap::new();
    let m = map.pin();
    for (k, v) in m.iter() {
        assert!(after.insert(*k, *v).is_none(), "iter visited {k} twice");
        assert_eq!(m.get(k), Some(v), "get disagrees with iter for {k}");
    }
    assert_eq!(map.len(), after.len(), "len disagrees with iter: {after:?}");
    drop(m);

    RUNS.fetch_add(1, SeqCst);
    EVENTS.fetch_add((ea.len() + eb.len()) as u64, SeqCst);
    if ea
        .iter()
        .any(|x| eb.iter().any(|y| x.inv < y.resp && y.inv < x.resp))
    {
        OVERLAPPING.fetch_add(1, SeqCst);
    }
    let events: Vec<Event> = ea.into_iter().chain(eb).collect();
    for key in 0..KEYS {
        let ops: Vec<Event> = events.iter().filter(|e| e.key == key).copied().collect();
        let start = init.get(&key).copied();
        let finals = linearizations(start, &ops);
        let end = after.get(&key).copied();
        if finals.contains(&end) {
            continue;
        }
        let mut sorted = ops.clone();
        sorted.sort_by_key(|e| e.inv);
        let lines: Vec<String> = sorted
            .iter()
            .map(|e| {
                format!(
                    "  [{:>3} ..{:>3}] t{} {:?} -> {:?}",
                    e.inv, e.resp, e.thread, e.call, e.ret
                )
            })
            .collect();
        if finals.is_empty() {
            panic!(
                "key {key}: not linearizable from {start:?} ({:?}):\n{}",
                rule,
                lines.join("\n")
            );
        }
        panic!(
            "key {key}: final state {end:?} is not reachable (linearizations end in \
             {finals:?}) from {start:?} ({:?}):\n{}",
            rule,
            lines.join("\n")
        );
    }
}

/// The `i`-th value thread `t` writes.
fn fresh(t: usize, i: u64) -> u64 {
    ((t as u64 + 1) << 32) | i
}

fn thread_ops(
    t: usize,
    map: &Map,
    ops: &[TOp],
    clock: &AtomicU64,
    barrier: &SpinBarrier,
    candidates: &[u64],
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut recorded = 0;
    barrier.wait();
    for (i, op) in ops.iter().enumerate() {
        let value = fresh(t, i as u64);
        let key = |k: u8| u64::from(k) % KEYS;
        let guess = |g: u8| candidates[usize::from(g) % candidates.len()];
        if recorded == MAX_OPS {
            break;
        }
        let m = map.pin();
        let mut record = |key: u64, call: Call, ret: Ret, inv: u64, resp: u64| {
            events.push(Event {
                thread: t,
                key,
                call,
                ret,
                inv,
                resp,
            });
        };
        let inv = clock.fetch_add(1, SeqCst);
        match *op {
            TOp::Get(k) => {
                let ret = Ret::Value(m.get(&key(k)).copied());
                record(key(k), Call::Get, ret, inv, clock.fetch_add(1, SeqCst));
            }
            TOp::Insert(k) => {
                let ret = Ret::Value(m.insert(key(k), value).copied());
                record(
                    key(k),
                    Call::Insert(value),
                    ret,
                    inv,
                    clock.fetch_add(1, SeqCst),
                );
            }
            TOp::GetOrInsert(k) => {
                let (v, inserted) = m.get_or_insert(key(k), value);
                let ret = Ret::GetOrInsert(*v, inserted);
                record(
                    key(k),
                    Call::GetOrInsert(value),
                    ret,
                    inv,
                    clock.fetch_add(1, SeqCst),
                );
            }
            TOp::GetOrInsertWith(k) => {
                let (v, inserted) = m.get_or_insert_with(key(k), || value);
                let ret = Ret::GetOrInsert(*v, inserted);
                record(
                    key(k),
                    Call::GetOrInsert(value),
                    ret,
                    inv,
                    clock.fetch_add(1, SeqCst),
                );
            }
            TOp::CompareExchange(k, g) => {
                let cur = guess(g);
                let ret = Ret::Cas(
                    m.compare_exchange(&key(k), &cur, value)
                        .copied()
                        .map_err(|e| e.current.copied()),
                );
                let call = Call::CompareExchange(cur, value);
                record(key(k), call, ret, inv, clock.fetch_add(1, SeqCst));
            }
            TOp::RemoveIf(k, g) => {
                let e = guess(g);
                let ret = Ret::Value(m.remove_if(&key(k), |v| *v == e).copied());
                record(
                    key(k),
                    Call::RemoveIf(e),
                    ret,
                    inv,
                    clock.fetch_add(1, SeqCst),
                );
            }
            TOp::Remove(k) => {
                let ret = Ret::Value(m.remove(&key(k)).copied());
                record(key(k), Call::Remove, ret, inv, clock.fetch_add(1, SeqCst));
            }
            TOp::Iter => {
                let mut seen: HashMap<u64, u64> = HashMap::new();
                for (k, v) in m.iter() {
                    assert!(seen.insert(*k, *v).is_none(), "iter visited {k} twice");
                }
                let resp = clock.fetch_add(1, SeqCst);
                for k in 0..KEYS {
                    // A read at one instant during the iteration.
                    let ret = Ret::Value(seen.get(&k).copied());
                    record(k, Call::Get, ret, inv, resp);
                }
            }
            TOp::Retain(r) => {
                m.retain(|_, v| keep(r, *v));
                let resp = clock.fetch_add(1, SeqCst);
                for k in 0..KEYS {
                    record(k, Call::Retain(r), Ret::Unit, inv, resp);
                }
            }
            TOp::Clear => {
                m.clear();
                let resp = clock.fetch_add(1, SeqCst);
                for k in 0..KEYS {
                    record(k, Call::Clear, Ret::Unit, inv, resp);
                }
            }
            TOp::Noise(n) => {
                let k = NOISE_BASE + u64::from(n % 8);
                match n / 8 % 4 {
                    0 | 1 => {
                        m.insert(k, value);
                    }
                    2 => {
                        m.get(&k);
                    }
                    _ => {
                        m.remove(&k);
                    }
                }
                continue;
            }
            TOp::Pause(n) => {
                if n % 4 == 0 {
                    std::thread::yield_now();
                } else {
                    (0..u32::from(n) * 4).for_each(|_| std::hint::spin_loop());
                }
                continue;
            }
        }
        recorded += 1;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random inputs through the target (`cargo test --release` in `fuzz/`): no
    /// failure; reports how often the two threads' operations overlapped in time (it
    /// depends on two cores being free).
    #[test]
    fn random_inputs() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut bytes = vec![0u8; 64];
        for _ in 0..2_000 {
            for b in bytes.iter_mut() {
                *b = next() as u8;
            }
            let mut u = arbitrary::Unstructured::new(&bytes);
            let mut ops = || -> Vec<TOp> {
                (0..MAX_OPS)
                    .map(|_| TOp::arbitrary(&mut u).unwrap_or(TOp::Get(0)))
                    .collect()
            };
            let (a, b) = (ops(), ops());
            let setup = (0..4).map(SetupOp::Insert).collect();
            let rule = [Rule::DirtyLen, Rule::EveryMiss][(next() % 2) as usize];
            run(Input { rule, setup, a, b });
        }
        let (runs, overlapping) = (RUNS.load(SeqCst), OVERLAPPING.load(SeqCst));
        println!(
            "{overlapping} of {runs} runs with overlapping operations ({} events)",
            EVENTS.load(SeqCst)
        );
    }

    fn ev(thread: usize, call: Call, ret: Ret, inv: u64, resp: u64) -> Event {
        Event {
            thread,
            key: 0,
            call,
            ret,
            inv,
            resp,
        }
    }

    #[test]
    fn checker() {
        // A read overlapping an insert may see either value.
        for seen in [None, Some(1)] {
            let h = [
                ev(0, Call::Insert(1), Ret::Value(None), 0, 3),
                ev(1, Call::Get, Ret::Value(seen), 1, 2),
            ];
            assert_eq!(linearizations(None, &h), HashSet::from([Some(1)]));
        }
        // A stale read after the insert returned.
        let h = [
            ev(0, Call::Insert(1), Ret::Value(None), 0, 1),
            ev(1, Call::Get, Ret::Value(None), 2, 3),
        ];
        assert!(linearizations(None, &h).is_empty());
        // Clear racing an insert that saw the old value: insert → clear.
        let h = [
            ev(0, Call::Insert(1), Ret::Value(Some(5)), 0, 3),
            ev(1, Call::Clear, Ret::Unit, 1, 2),
        ];
        assert_eq!(linearizations(Some(5), &h), HashSet::from([None]));
        // A read racing both may see any of the three states.
        for seen in [Some(5), None, Some(1)] {
            let h = [
                ev(0, Call::Insert(1), Ret::Value(Some(5)), 0, 5),
                ev(1, Call::Clear, Ret::Unit, 1, 4),
                ev(1, Call::Get, Ret::Value(seen), 2, 3),
            ];
            assert!(!linearizations(Some(5), &h).is_empty(), "{seen:?}");
        }
        // The insert saw the clear (previous None): only clear → insert.
        let h = [
            ev(0, Call::Insert(1), Ret::Value(None), 0, 3),
            ev(1, Call::Clear, Ret::Unit, 1, 2),
        ];
        assert_eq!(linearizations(Some(5), &h), HashSet::from([Some(1)]));
        // Retain with r = 0 keeps even values.
        let h = [ev(0, Call::Retain(0), Ret::Unit, 0, 1)];
        assert_eq!(linearizations(Some(3), &h), HashSet::from([None]));
        assert_eq!(linearizations(Some(4), &h), HashSet::from([Some(4)]));
    }
}
