//! Linearizability check over recorded concurrent histories.
//!
//! Several threads run random operations on a few keys of one map while every call is
//! stamped with an invocation and a response time taken from one shared `SeqCst`
//! counter. A map is a product of independent registers, so each key's sub-history is
//! checked on its own: a depth-first search (Wing & Gong, with Lowe's memoisation of
//! `(linearized set, register state)`) looks for an order of the operations that
//! respects real time and the sequential semantics of the map.
//!
//! Every write uses a value never written before (`thread << 32 | counter`), so a
//! result identifies the write it came from. Before the concurrent phase each key is
//! put, single-threaded, into a random state (absent, present, deleted or expunged; in
//! the read table's main table, in its recent table, or only in the dirty table), and
//! during it the threads also write unrecorded "noise" keys that force promotions,
//! dirty-table rebuilds and expunges.
//!
//! Each promotion rule runs with each recent-table setting ([`RecentKeys`]): the default
//! `Auto` (new keys readable without the lock through the recent table), `Off` (Go's
//! design: dirty-only keys, the `amended` flag, locked misses) and `AtMost(1)` (every
//! second new key finds the recent table full and promotes at once), plus `AtMost(16)`
//! with the recent table filled, before the concurrent phase, to just below the point
//! where its slot array doubles, so that histories run through the growth and the copy
//! of the old array (two slots per operation). With `Auto`, `Off` and `AtMost(16)` the
//! dirty table is rebuilt one entry per locked operation
//! ([`Builder::rebuild_step`](readmostly::Builder::rebuild_step) 1), so most histories
//! run while a rebuild is half done; with `AtMost(1)` it is rebuilt at once.
//!
//! `LIN_HISTORIES=N` sets the number of histories per test, i.e. per promotion rule and
//! recent-table setting (default 1500; the twelve tests take about 8 s in a debug build
//! on the 2-core development machine); `LIN_SEED=N`
//! fixes the random seed (the interleavings still differ from run to run).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, PoisonError};

use readmostly::{Promotion, RecentKeys, SyncMap};

/// Worker threads per history.
const THREADS: usize = 3;
/// Recorded keys per history.
const KEYS: u64 = 2;
/// Operations per thread per history (so about `THREADS * OPS / KEYS` per key).
const OPS: usize = 12;
/// Histories run by one set of worker threads.
const BATCH: usize = 50;
/// Unrecorded keys, used to force promotions and rebuilds.
const NOISE_BASE: u64 = 1_000;
const NOISE_KEYS: u64 = 8;
/// Unrecorded new keys that fill the recent table before a history ([`GROWING_RECENT`]).
const FILL_BASE: u64 = 2_000;
/// How many: a full array of 16 slots.
const FILLED: usize = 8;

/// A small, fast PRNG (xorshift64*), good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A barrier that spins briefly before yielding, so that the threads of a history are
/// all running when it opens (a blocking barrier wakes them one by one, too late to
/// overlap with operations that take microseconds).
///
/// If a worker panics, the others stop waiting and panic too (instead of spinning
/// forever), so a panic inside the map fails the test.
struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    threads: usize,
    broken: AtomicBool,
}

/// Breaks the barrier if the owning worker unwinds.
struct BreakOnPanic<'a>(&'a SpinBarrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, SeqCst);
        }
    }
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            threads,
            broken: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == self.threads {
            self.arrived.store(0, SeqCst);
            self.generation.fetch_add(1, SeqCst);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(SeqCst) == generation {
            assert!(!self.broken.load(SeqCst), "another worker panicked");
            if spins < 2_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// An operation and its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Get,
    /// `MapRef::insert`, returning the previous value.
    Insert(u64),
    GetOrInsert(u64),
    /// `compare_exchange(current, new)`.
    CompareExchange(u64, u64),
    /// `remove_if(|v| *v == expected)`.
    RemoveIf(u64),
    Remove,
    /// `update(|_| new)`, recording the value the stored call of the closure saw.
    Update(u64),
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    /// `get`, `insert` (previous), `remove_if`, `remove`.
    Value(Option<u64>),
    /// `get_or_insert`: the value and whether it was inserted.
    GetOrInsert(u64, bool),
    /// `compare_exchange`: the replaced value, or the value found.
    Cas(Result<u64, Option<u64>>),
    /// `update`: the value its stored closure call saw (`None`: absent, no call).
    Update(Option<u64>),
}

/// One completed operation.
#[derive(Clone, Copy, Debug)]
struct Event {
    thread: usize,
    key: u64,
    call: Call,
    ret: Ret,
    /// Clock value taken before the call.
    inv: u64,
    /// Clock value taken after it returned.
    resp: u64,
}

/// The register state after applying `call` in state `s`, if `ret` is what a sequential
/// map would return.
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
        // A read-modify-write: it must have seen the value it replaced.
        Call::Update(v) => (Ret::Update(s), s.map(|_| v)),
    };
    (ret == expected).then_some(next)
}

/// Whether the single-key history `ops`, starting from `init`, is linearizable.
fn linearizable(init: Option<u64>, ops: &[Event]) -> bool {
    assert!(
        ops.len() <= 64,
        "the checker handles at most 64 operations per key"
    );
    let full = if ops.len() == 64 {
        u64::MAX
    } else {
        (1u64 << ops.len()) - 1
    };
    let mut failed = HashSet::new();
    search(ops, full, 0, init, &mut failed)
}

/// Depth-first search for a linearization of the operations not in `done`.
fn search(
    ops: &[Event],
    full: u64,
    done: u64,
    state: Option<u64>,
    failed: &mut HashSet<(u64, Option<u64>)>,
) -> bool {
    if done == full {
        return true;
    }
    if failed.contains(&(done, state)) {
        return false;
    }
    // An operation may go next only if no pending operation responded before it was
    // invoked (timestamps are distinct).
    let pending = || (0..ops.len()).filter(move |i| done & (1 << i) == 0);
    let first_resp = pending()
        .map(|i| ops[i].resp)
        .min()
        .expect("some operation is pending");
    for i in pending() {
        if ops[i].inv > first_resp {
            continue;
        }
        if let Some(next) = step(state, ops[i].call, ops[i].ret) {
            if search(ops, full, done | 1 << i, next, failed) {
                return true;
            }
        }
    }
    failed.insert((done, state));
    false
}

/// Checks every key's sub-history; on failure, describes the offending one.
fn check_history(init: &HashMap<u64, u64>, events: &[Event], context: &str) -> Result<(), String> {
    for key in 0..KEYS {
        let ops: Vec<Event> = events.iter().filter(|e| e.key == key).copied().collect();
        let start = init.get(&key).copied();
        if !linearizable(start, &ops) {
            let mut sorted = ops.clone();
            sorted.sort_by_key(|e| e.inv);
            let lines: Vec<String> = sorted
                .iter()
                .map(|e| {
                    format!(
                        "  [{:>5} ..{:>5}] t{} {:?} -> {:?}",
                        e.inv, e.resp, e.thread, e.call, e.ret
                    )
                })
                .collect();
            return Err(format!(
                "non-linearizable history for key {key} ({context}), initial state {start:?}:\n{}",
                lines.join("\n")
            ));
        }
    }
    Ok(())
}

/// Puts the recorded keys into random states, single-threaded, and returns the model.
/// With `fill` (for [`GROWING_RECENT`]), then promotes and adds eight new unrecorded
/// keys: the recent table's slot array (which starts at two slots and doubles at half
/// full) then has 16 slots, is full, and has copied its predecessor, so the history's
/// first new key doubles it again and the copy of its 16 slots (two per locked add)
/// runs under the history's operations.
fn setup(
    map: &SyncMap<u64, u64>,
    rng: &mut Rng,
    values: &mut u64,
    fill: bool,
) -> HashMap<u64, u64> {
    let mut model = HashMap::new();
    let mut fresh = || {
        *values += 1;
        *values
    };
    let m = map.pin();
    for _ in 0..rng.below(8) {
        let key = rng.below(KEYS);
        match rng.below(7) {
            0 | 1 => {
                let v = fresh();
                m.insert(key, v);
                model.insert(key, v);
            }
            2 => {
                m.remove(&key);
                model.remove(&key);
            }
            // A read: counts misses, may promote.
            3 => assert_eq!(m.get(&key), model.get(&key)),
            // A new noise key: rebuilds the dirty table after a promotion, which
            // expunges the deleted recorded keys.
            4 => {
                m.insert(NOISE_BASE + rng.below(NOISE_KEYS), 0);
            }
            // Iteration (promotes the dirty table with `RecentKeys::Off`).
            5 => assert_eq!(m.iter().count(), map.len()),
            // An explicit promotion.
            _ => {
                map.promote();
            }
        }
    }
    if fill {
        map.promote();
        for k in FILL_BASE..FILL_BASE + FILLED as u64 {
            m.insert(k, 0);
        }
        let s = map.stats();
        assert_eq!(
            (s.recent_len, s.recent_growth_pending),
            (FILLED, 0),
            "{s:?}"
        );
    }
    model
}

/// Serialises the history tests: with fewer runnable threads than cores' worth of
/// competition, the workers of one history really run at the same time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `histories` histories on maps with `promotion` and `recent`, and checks each.
fn run(promotion: Promotion, recent: RecentKeys, histories: usize) {
    // Rebuild the dirty table one entry per locked operation, so histories run against
    // partly rebuilt dirty tables, except with the one-key recent table (rebuilt at once:
    // the default step covers these small maps in one go).
    let step = if recent == ONE_RECENT_KEY {
        usize::MAX
    } else {
        1
    };
    let fill = recent == GROWING_RECENT;
    let mut grown = 0usize;
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let seed = std::env::var("LIN_SEED")
        .ok()
        .map(|s| s.parse().expect("LIN_SEED must be a number"))
        .unwrap_or_else(|| RandomState::new().hash_one(0u8));
    let context = format!(
        "promotion {promotion:?}, recent keys {recent:?}, rebuild step {step}, seed {seed}"
    );
    let mut main_rng = Rng::new(seed);
    let mut setup_values = 0u64;
    let mut overlapping = 0usize;
    let mut done = 0;
    let mut batch_no = 0u64;
    while done < histories {
        let n = BATCH.min(histories - done);
        let maps: Vec<SyncMap<u64, u64>> = (0..n)
            .map(|_| {
                SyncMap::builder()
                    .promotion(promotion)
                    .recent_keys(recent)
                    .rebuild_step(step)
                    .build()
            })
            .collect();
        let inits: Vec<HashMap<u64, u64>> = maps
            .iter()
            .map(|m| setup(m, &mut main_rng, &mut setup_values, fill))
            .collect();
        let clock = AtomicU64::new(0);
        let barrier = SpinBarrier::new(THREADS);
        let mut per_thread: Vec<Vec<Vec<Event>>> = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (maps, inits, clock, barrier) = (&maps, &inits, &clock, &barrier);
                    let mut rng = Rng::new(seed ^ (batch_no << 8) ^ (t as u64 + 1) << 40);
                    s.spawn(move || worker(t, maps, inits, clock, barrier, &mut rng))
                })
                .collect();
            per_thread = handles.into_iter().map(|h| h.join().unwrap()).collect();
        });
        for (r, init) in inits.iter().enumerate() {
            let mut events: Vec<Event> = per_thread
                .iter()
                .flat_map(|h| h[r].iter().copied())
                .collect();
            events.sort_by_key(|e| e.inv);
            if events
                .windows(2)
                .any(|w| w[0].thread != w[1].thread && w[1].inv < w[0].resp)
            {
                overlapping += 1;
            }
            if let Err(msg) =
                check_history(init, &events, &format!("{context}, history {}", done + r))
            {
                panic!("{msg}");
            }
            // More recent keys than a 16-slot array holds: it doubled (a promotion
            // meanwhile would have started a new, smaller table; those are not counted).
            grown += usize::from(fill && maps[r].stats().recent_len > FILLED);
        }
        drop(maps);
        done += n;
        batch_no += 1;
    }
    let grew = if fill {
        format!(", {grown} ending after a growth of the recent table")
    } else {
        String::new()
    };
    println!(
        "{histories} histories linearizable ({overlapping} with overlapping operations{grew}); {context}"
    );
    if fill {
        // The filled table must really double during the histories (setup checked that
        // none began with a copy). Counted only where no promotion followed the growth,
        // so a lower bound: about 97 % of histories with the default rule, 12 % and 4 %
        // with promotions after two misses and after every miss.
        assert!(
            grown * 100 >= histories,
            "only {grown} of {histories} histories grew"
        );
    }
}

/// One worker thread: runs its operations on every map of the batch in turn, the
/// threads starting each history together.
fn worker(
    t: usize,
    maps: &[SyncMap<u64, u64>],
    inits: &[HashMap<u64, u64>],
    clock: &AtomicU64,
    barrier: &SpinBarrier,
    rng: &mut Rng,
) -> Vec<Vec<Event>> {
    let _break_on_panic = BreakOnPanic(barrier);
    let mut counter = 0u64;
    let mut out = Vec::with_capacity(maps.len());
    for (r, map) in maps.iter().enumerate() {
        // The last value this thread saw per key, for compare_exchange / remove_if
        // arguments that can succeed.
        let mut seen: HashMap<u64, u64> = inits[r].clone();
        let mut events = Vec::with_capacity(OPS);
        let long_pin = (r % 2 == 1).then(|| map.pin());
        barrier.wait();
        for _ in 0..OPS {
            if rng.below(8) == 0 {
                noise(map, rng);
            }
            // Shift the threads against each other a little.
            match rng.below(16) {
                0 => std::thread::yield_now(),
                1..=4 => (0..rng.below(200)).for_each(|_| std::hint::spin_loop()),
                _ => {}
            }
            let key = rng.below(KEYS);
            let mut fresh = || {
                counter += 1;
                ((t as u64 + 1) << 32) | counter
            };
            let guess = |rng: &mut Rng| match seen.get(&key) {
                Some(&v) if rng.below(4) != 0 => v,
                _ => u64::MAX, // never written: the operation fails
            };
            let call = match rng.below(14) {
                0..=2 => Call::Get,
                3..=4 => Call::Insert(fresh()),
                5..=6 => Call::GetOrInsert(fresh()),
                7..=8 => Call::CompareExchange(guess(rng), fresh()),
                9..=10 => Call::RemoveIf(guess(rng)),
                11..=12 => Call::Update(fresh()),
                _ => Call::Remove,
            };
            let batched = rng.below(2) == 0;
            let others = [rng.below(KEYS), rng.below(KEYS), rng.below(KEYS)];
            let fresh_pin;
            let m = match &long_pin {
                Some(m) => m,
                None => {
                    fresh_pin = map.pin();
                    &fresh_pin
                }
            };
            let inv = clock.fetch_add(1, SeqCst);
            let ret = match call {
                // Half the reads through `get_each`, with the key last in a batch of
                // four, so its candidate entry is taken a few lookups before it is read.
                Call::Get if batched => {
                    let keys = [others[0], others[1], others[2], key];
                    let mut found = None;
                    m.get_each(&keys, |i, v| {
                        if i == 3 {
                            found = v.copied();
                        }
                    });
                    Ret::Value(found)
                }
                Call::Get => Ret::Value(m.get(&key).copied()),
                Call::Insert(v) => Ret::Value(m.insert(key, v).copied()),
                Call::GetOrInsert(v) => {
                    let (r, inserted) = m.get_or_insert(key, v);
                    Ret::GetOrInsert(*r, inserted)
                }
                Call::CompareExchange(cur, new) => Ret::Cas(
                    m.compare_exchange(&key, &cur, new)
                        .copied()
                        .map_err(|e| e.current.copied()),
                ),
                Call::RemoveIf(e) => Ret::Value(m.remove_if(&key, |v| *v == e).copied()),
                Call::Remove => Ret::Value(m.remove(&key).copied()),
                Call::Update(new) => {
                    // The closure may run more than once; the last call's value is the
                    // one the stored result replaced.
                    let mut saw = None;
                    let stored = m.update(&key, |v| {
                        saw = Some(*v);
                        new
                    });
                    assert!(
                        stored.is_none() || stored == Some(&new),
                        "update returned {stored:?}"
                    );
                    Ret::Update(stored.and(saw))
                }
            };
            let resp = clock.fetch_add(1, SeqCst);
            match ret {
                Ret::Value(Some(v))
                | Ret::GetOrInsert(v, _)
                | Ret::Cas(Ok(v))
                | Ret::Cas(Err(Some(v))) => {
                    seen.insert(key, v);
                }
                Ret::Update(Some(_)) => {
                    if let Call::Update(new) = call {
                        seen.insert(key, new);
                    }
                }
                _ => {}
            }
            events.push(Event {
                thread: t,
                key,
                call,
                ret,
                inv,
                resp,
            });
        }
        drop(long_pin);
        out.push(events);
    }
    out
}

/// An unrecorded operation on a noise key: new keys rebuild the dirty table (and fill
/// the recent table, promoting when it is full), reads of keys added since the last
/// promotion count misses and promote, removals of dirty-only keys (`Off`) detach
/// entries.
fn noise(map: &SyncMap<u64, u64>, rng: &mut Rng) {
    let key = NOISE_BASE + rng.below(NOISE_KEYS);
    match rng.below(4) {
        0 | 1 => {
            map.insert(key, 0);
        }
        2 => {
            map.remove(&key);
        }
        _ => {
            map.contains_key(&key);
        }
    }
}

fn histories() -> usize {
    std::env::var("LIN_HISTORIES")
        .map_or(1500, |s| s.parse().expect("LIN_HISTORIES must be a number"))
}

const AFTER_TWO_MISSES: Promotion = Promotion::AfterMisses(NonZeroUsize::new(2).unwrap());
/// A recent table of one key: every second new key promotes.
const ONE_RECENT_KEY: RecentKeys = RecentKeys::AtMost(NonZeroUsize::new(1).unwrap());

#[test]
fn linearizable_default_promotion() {
    run(Promotion::DirtyLen, RecentKeys::Auto, histories());
}

#[test]
fn linearizable_promote_every_miss() {
    run(Promotion::EveryMiss, RecentKeys::Auto, histories());
}

#[test]
fn linearizable_promote_after_two_misses() {
    run(AFTER_TWO_MISSES, RecentKeys::Auto, histories());
}

// Go's design: no recent table, dirty-only keys behind the lock.

#[test]
fn linearizable_default_promotion_no_recent_table() {
    run(Promotion::DirtyLen, RecentKeys::Off, histories());
}

#[test]
fn linearizable_promote_every_miss_no_recent_table() {
    run(Promotion::EveryMiss, RecentKeys::Off, histories());
}

#[test]
fn linearizable_promote_after_two_misses_no_recent_table() {
    run(AFTER_TWO_MISSES, RecentKeys::Off, histories());
}

// A recent table of one key: full-table promotions racing everything else.

// A recent table about to double: lookups, adds, removals and promotions racing the
// growth and the copy of the old slot array.

/// Sixteen recent keys: a first slot array of 16 slots, doubled when a 13th key comes.
const GROWING_RECENT: RecentKeys = RecentKeys::AtMost(NonZeroUsize::new(16).unwrap());

#[test]
fn linearizable_default_promotion_growing_recent_table() {
    run(Promotion::DirtyLen, GROWING_RECENT, histories());
}

#[test]
fn linearizable_promote_every_miss_growing_recent_table() {
    run(Promotion::EveryMiss, GROWING_RECENT, histories());
}

#[test]
fn linearizable_promote_after_two_misses_growing_recent_table() {
    run(AFTER_TWO_MISSES, GROWING_RECENT, histories());
}

#[test]
fn linearizable_default_promotion_one_recent_key() {
    run(Promotion::DirtyLen, ONE_RECENT_KEY, histories());
}

#[test]
fn linearizable_promote_every_miss_one_recent_key() {
    run(Promotion::EveryMiss, ONE_RECENT_KEY, histories());
}

#[test]
fn linearizable_promote_after_two_misses_one_recent_key() {
    run(AFTER_TWO_MISSES, ONE_RECENT_KEY, histories());
}

// ------------------------------------------------------------------ the checker itself

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
fn checker_accepts_overlapping_histories() {
    // A read overlapping an insert may see the old or the new value.
    for seen in [None, Some(1)] {
        let h = [
            ev(0, Call::Insert(1), Ret::Value(None), 0, 3),
            ev(1, Call::Get, Ret::Value(seen), 1, 2),
        ];
        assert!(linearizable(None, &h), "read saw {seen:?}");
    }
    // Two racing get_or_insert: one inserts, the other loads its value (either order).
    let h = [
        ev(0, Call::GetOrInsert(1), Ret::GetOrInsert(2, false), 0, 3),
        ev(1, Call::GetOrInsert(2), Ret::GetOrInsert(2, true), 1, 2),
    ];
    assert!(linearizable(None, &h));
    // Two racing compare_exchange from the same value: one wins, the other sees its value.
    let h = [
        ev(0, Call::CompareExchange(5, 1), Ret::Cas(Err(Some(2))), 0, 3),
        ev(1, Call::CompareExchange(5, 2), Ret::Cas(Ok(5)), 1, 2),
    ];
    assert!(linearizable(Some(5), &h));
    // remove_if racing an insert that replaced the expected value: it may fail.
    let h = [
        ev(0, Call::RemoveIf(5), Ret::Value(None), 0, 3),
        ev(1, Call::Insert(6), Ret::Value(Some(5)), 1, 2),
        ev(1, Call::Get, Ret::Value(Some(6)), 4, 5),
    ];
    assert!(linearizable(Some(5), &h));
}

#[test]
fn checker_rejects_stale_read() {
    let h = [
        ev(0, Call::Insert(1), Ret::Value(None), 0, 1),
        ev(1, Call::Get, Ret::Value(None), 2, 3),
    ];
    assert!(!linearizable(None, &h));
    // Real-time order of two writes, then a read of the older one.
    let h = [
        ev(0, Call::Insert(1), Ret::Value(None), 0, 1),
        ev(0, Call::Insert(2), Ret::Value(Some(1)), 2, 3),
        ev(1, Call::Get, Ret::Value(Some(1)), 4, 5),
    ];
    assert!(!linearizable(None, &h));
}

#[test]
fn checker_rejects_double_insert_by_get_or_insert() {
    let h = [
        ev(0, Call::GetOrInsert(1), Ret::GetOrInsert(1, true), 0, 3),
        ev(1, Call::GetOrInsert(2), Ret::GetOrInsert(2, true), 1, 2),
    ];
    assert!(!linearizable(None, &h));
}

#[test]
fn checker_rejects_lost_compare_exchange() {
    // Both racing compare_exchange calls claim to have replaced 5: a non-atomic CAS.
    let h = [
        ev(0, Call::CompareExchange(5, 1), Ret::Cas(Ok(5)), 0, 3),
        ev(1, Call::CompareExchange(5, 2), Ret::Cas(Ok(5)), 1, 2),
    ];
    assert!(!linearizable(Some(5), &h));
}

/// Two updates that both replaced the initial value: one update was lost.
#[test]
fn checker_rejects_lost_update() {
    let h = [
        ev(0, Call::Update(1), Ret::Update(Some(5)), 0, 3),
        ev(1, Call::Update(2), Ret::Update(Some(5)), 1, 2),
    ];
    assert!(!linearizable(Some(5), &h));
    // One saw the other's value: fine in either order of invocation.
    let h = [
        ev(0, Call::Update(1), Ret::Update(Some(2)), 0, 3),
        ev(1, Call::Update(2), Ret::Update(Some(5)), 1, 2),
        ev(2, Call::Get, Ret::Value(Some(1)), 4, 5),
    ];
    assert!(linearizable(Some(5), &h));
    // An update of an absent key stores nothing.
    let h = [
        ev(0, Call::Update(1), Ret::Update(None), 0, 1),
        ev(1, Call::Get, Ret::Value(Some(1)), 2, 3),
    ];
    assert!(!linearizable(None, &h));
}

#[test]
fn checker_rejects_value_surviving_remove_if() {
    let h = [
        ev(0, Call::RemoveIf(1), Ret::Value(Some(1)), 0, 1),
        ev(1, Call::Get, Ret::Value(Some(1)), 2, 3),
    ];
    assert!(!linearizable(Some(1), &h));
    // A longer history with overlap everywhere except the final stale read.
    let h = [
        ev(0, Call::Insert(10), Ret::Value(None), 0, 5),
        ev(1, Call::Insert(11), Ret::Value(Some(10)), 1, 6),
        ev(2, Call::Remove, Ret::Value(Some(11)), 2, 7),
        ev(0, Call::Get, Ret::Value(Some(10)), 8, 9),
    ];
    assert!(!linearizable(None, &h));
}

#[test]
fn check_history_reports_the_failing_key() {
    let init = HashMap::new();
    let bad = [Event {
        thread: 0,
        key: 1,
        call: Call::Get,
        ret: Ret::Value(Some(7)),
        inv: 0,
        resp: 1,
    }];
    let msg = check_history(&init, &bad, "hand-built").unwrap_err();
    assert!(msg.contains("key 1") && msg.contains("hand-built"), "{msg}");
}
