//! Multi-threaded stress test (the one ThreadSanitizer runs).
//!
//! Four threads hammer two maps under each promotion rule:
//!
//! * `owned`: every thread has private keys, on which it checks every result exactly
//!   against its own model (no other thread writes them), and shares a set of keys with
//!   the others. Its iterations must visit each private key of the iterating thread
//!   exactly once with its current value.
//! * `chaos`: every operation on shared keys, plus iteration, `retain`, `clear` and a
//!   stream of new keys that forces promotions, rebuilds and expunges.
//!
//! Every value encodes its key (`key << 32 | sequence`), so a value read for the wrong
//! key, a torn or freed value is caught. At the end the maps are checked for
//! consistency (`len`, iteration, statistics, each thread's private keys).
//!
//! `STRESS_ITERS=N` sets the operations per thread per map and rule (default 150,000
//! in release builds, 15,000 in debug builds).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::num::NonZeroUsize;

use readmostly::{Promotion, SyncMap};

const THREADS: u64 = 4;
/// Private keys per thread (in `owned`): `t * PRIVATE_STRIDE + 0..PRIVATE`.
const PRIVATE: u64 = 16;
const PRIVATE_STRIDE: u64 = 1_000;
/// Keys shared by all threads.
const SHARED_BASE: u64 = 100_000;
const SHARED: u64 = 32;
/// New keys streamed into `chaos`.
const FRESH_BASE: u64 = 200_000;
const FRESH: u64 = 4_096;

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

fn iters() -> u64 {
    std::env::var("STRESS_ITERS")
        .map(|s| s.parse().expect("STRESS_ITERS must be a number"))
        .unwrap_or(if cfg!(debug_assertions) {
            15_000
        } else {
            150_000
        })
}

/// Checks that `v` is a value written for `key`.
#[track_caller]
fn belongs(key: u64, v: u64) -> u64 {
    assert_eq!(v >> 32, key, "value {v:#x} read for key {key}");
    v
}

/// Value generator: `key << 32 | sequence`, unique per thread.
struct Values {
    thread: u64,
    seq: u64,
}

impl Values {
    fn next(&mut self, key: u64) -> u64 {
        self.seq += 1;
        key << 32 | (self.thread << 28) | (self.seq & 0x0FFF_FFFF)
    }
}

/// A thread's state for `owned`: its generators and the model of its private keys.
struct Owned {
    t: u64,
    rng: Rng,
    vals: Values,
    model: HashMap<u64, u64>,
}

/// Operations `range` of one thread on `owned`: exact checks on private keys, loose ones
/// on shared keys.
fn owned_worker(map: &SyncMap<u64, u64>, st: &mut Owned, range: std::ops::Range<u64>) {
    let Owned {
        t,
        rng,
        vals,
        model,
    } = st;
    let t = *t;
    let mut long_pin = None;
    for i in range {
        if i % 64 == 0 {
            // Alternate between a pin per operation and one held for 64 operations.
            long_pin = (rng.below(2) == 0).then(|| map.pin());
        }
        let fresh_pin;
        let m = match &long_pin {
            Some(m) => m,
            None => {
                fresh_pin = map.pin();
                &fresh_pin
            }
        };
        if rng.below(4) == 0 {
            // Shared key: anything goes, but values must belong to the key.
            let k = SHARED_BASE + rng.below(SHARED);
            match rng.below(6) {
                0 => {
                    m.get(&k).map(|v| belongs(k, *v));
                }
                1 => {
                    m.insert(k, vals.next(k)).map(|v| belongs(k, *v));
                }
                2 => {
                    belongs(k, *m.get_or_insert(k, vals.next(k)).0);
                }
                3 => {
                    m.remove(&k).map(|v| belongs(k, *v));
                }
                4 => {
                    if let Some(&cur) = m.get(&k) {
                        match m.compare_exchange(&k, &cur, vals.next(k)) {
                            Ok(prev) => assert_eq!(*prev, cur),
                            Err(e) => {
                                e.current.map(|v| belongs(k, *v));
                            }
                        }
                    }
                }
                _ => {
                    m.remove_if(&k, |v| belongs(k, *v) % 2 == 0)
                        .map(|v| belongs(k, *v));
                }
            }
            continue;
        }
        let k = t * PRIVATE_STRIDE + rng.below(PRIVATE);
        let expected = model.get(&k).copied();
        match rng.below(10) {
            0 | 1 => assert_eq!(m.get(&k).copied(), expected, "get({k})"),
            2 => {
                let v = vals.next(k);
                assert_eq!(m.insert(k, v).copied(), model.insert(k, v), "insert({k})");
            }
            3 => {
                let v = vals.next(k);
                let (r, inserted) = m.get_or_insert(k, v);
                assert_eq!(
                    (*r, inserted),
                    expected.map_or((v, true), |e| (e, false)),
                    "get_or_insert({k})"
                );
                model.entry(k).or_insert(v);
            }
            4 => {
                let v = vals.next(k);
                let mut ran = false;
                let (r, inserted) = m.get_or_insert_with(k, || {
                    ran = true;
                    v
                });
                assert_eq!(
                    (*r, inserted, ran),
                    expected.map_or((v, true, true), |e| (e, false, false))
                );
                model.entry(k).or_insert(v);
            }
            5 => assert_eq!(m.remove(&k).copied(), model.remove(&k), "remove({k})"),
            6 => {
                let (cur, new) = (expected.unwrap_or(k << 32), vals.next(k));
                let cur = if rng.below(4) == 0 { cur ^ 1 } else { cur };
                match m.compare_exchange(&k, &cur, new) {
                    Ok(prev) => {
                        assert_eq!(
                            Some(*prev),
                            expected,
                            "compare_exchange({k}) succeeded wrongly"
                        );
                        model.insert(k, new);
                    }
                    Err(e) => {
                        assert_eq!(
                            e.current.copied(),
                            expected,
                            "compare_exchange({k}) current"
                        );
                        assert_ne!(expected, Some(cur), "compare_exchange({k}) failed wrongly");
                        assert_eq!(e.new, new);
                    }
                }
            }
            7 => {
                let odd = rng.below(2) == 1;
                let got = m.remove_if(&k, |v| v % 2 == u64::from(odd)).copied();
                let want = expected.filter(|v| v % 2 == u64::from(odd));
                assert_eq!(got, want, "remove_if({k})");
                if want.is_some() {
                    model.remove(&k);
                }
            }
            8 => assert_eq!(
                map.contains_key(&k),
                expected.is_some(),
                "contains_key({k})"
            ),
            _ if i % 16 == 0 => {
                // Iterate: my private keys must each be seen once, with their value.
                let mut mine = HashMap::new();
                let mut all = HashSet::new();
                for (k, v) in m.iter() {
                    assert!(all.insert(*k), "iteration visited {k} twice");
                    belongs(*k, *v);
                    if k / PRIVATE_STRIDE == t && *k < SHARED_BASE {
                        mine.insert(*k, *v);
                    }
                }
                assert_eq!(&mine, model, "iteration vs thread {t}'s private keys");
            }
            _ => assert_eq!(map.get_cloned(&k), expected, "get_cloned({k})"),
        }
    }
}

/// Operations `range` of one thread on `chaos`.
fn chaos_worker(
    map: &SyncMap<u64, u64>,
    rng: &mut Rng,
    vals: &mut Values,
    range: std::ops::Range<u64>,
) {
    for i in range {
        let m = map.pin();
        let k = if rng.below(8) == 0 {
            FRESH_BASE + rng.below(FRESH)
        } else {
            SHARED_BASE + rng.below(SHARED)
        };
        match rng.below(100) {
            0..=29 => {
                m.get(&k).map(|v| belongs(k, *v));
            }
            30..=44 => {
                m.insert(k, vals.next(k)).map(|v| belongs(k, *v));
            }
            45..=54 => {
                belongs(k, *m.get_or_insert(k, vals.next(k)).0);
            }
            55..=59 => {
                belongs(k, *m.get_or_insert_with(k, || vals.next(k)).0);
            }
            60..=74 => {
                m.remove(&k).map(|v| belongs(k, *v));
            }
            75..=82 => {
                if let Some(&cur) = m.get(&k) {
                    if let Err(e) = m.compare_exchange(&k, &cur, vals.next(k)) {
                        e.current.map(|v| belongs(k, *v));
                    }
                }
            }
            83..=89 => {
                m.remove_if(&k, |v| belongs(k, *v) % 3 == 0)
                    .map(|v| belongs(k, *v));
            }
            90..=93 => {
                black_box(map.contains_key(&k));
            }
            94..=96 if i % 8 == 0 => {
                let mut seen = HashSet::new();
                for (k, v) in m.iter() {
                    assert!(seen.insert(*k), "iteration visited {k} twice");
                    belongs(*k, *v);
                    if rng.below(16) == 0 {
                        m.remove(k); // mutate while iterating
                    }
                }
            }
            97 if i % 8 == 0 => m.retain(|k, v| belongs(*k, *v) % 4 != 0),
            98 if i % 256 == 0 => m.clear(),
            99 if i % 64 == 0 => {
                let s = map.stats();
                assert!(
                    s.dirty_len.is_none() || s.promotions + s.dirty_rebuilds > 0,
                    "{s:?}"
                );
            }
            _ => {
                black_box(map.get_cloned(&k));
            }
        }
    }
}

/// End-of-run consistency: iteration, `len`, `get` and statistics agree.
fn check_consistent(map: &SyncMap<u64, u64>, what: &str) -> HashMap<u64, u64> {
    let m = map.pin();
    let mut contents = HashMap::new();
    for (k, v) in m.iter() {
        assert!(
            contents.insert(*k, belongs(*k, *v)).is_none(),
            "{what}: {k} visited twice"
        );
    }
    for (k, v) in &contents {
        assert_eq!(
            m.get(k),
            Some(v),
            "{what}: get({k}) disagrees with iteration"
        );
    }
    assert_eq!(map.len(), contents.len(), "{what}: len");
    let s = map.stats();
    assert_eq!(s.len, contents.len(), "{what}: stats {s:?}");
    match s.dirty_len {
        Some(d) => assert!(d >= contents.len(), "{what}: {s:?}"),
        None => assert!(s.read_len >= contents.len(), "{what}: {s:?}"),
    }
    contents
}

fn stress(promotion: Promotion) {
    let iters = iters();
    let owned: SyncMap<u64, u64> = SyncMap::builder().promotion(promotion).build();
    let chaos: SyncMap<u64, u64> = SyncMap::builder().promotion(promotion).build();
    let models: Vec<HashMap<u64, u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (owned, chaos) = (&owned, &chaos);
                s.spawn(move || {
                    let mut st = Owned {
                        t,
                        rng: Rng::new(t + 1),
                        vals: Values { thread: t, seq: 0 },
                        model: HashMap::new(),
                    };
                    let (mut rng, mut vals) = (Rng::new(0xC4A0 + t), Values { thread: t, seq: 0 });
                    // Alternate between the two maps in slices.
                    let mut done = 0;
                    while done < iters {
                        let end = (done + 1_024).min(iters);
                        chaos_worker(chaos, &mut rng, &mut vals, done..end);
                        owned_worker(owned, &mut st, done..end);
                        done = end;
                    }
                    st.model
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let contents = check_consistent(&owned, "owned");
    for (t, model) in models.iter().enumerate() {
        let mine: HashMap<u64, u64> = contents
            .iter()
            .filter(|(k, _)| **k / PRIVATE_STRIDE == t as u64 && **k < SHARED_BASE)
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(&mine, model, "thread {t}'s private keys after the run");
    }
    check_consistent(&chaos, "chaos");
    // Still fully usable: clear, refill, read back.
    chaos.clear();
    assert!(chaos.is_empty() && chaos.pin().iter().next().is_none());
    for k in 0..100 {
        chaos.insert(k, k << 32);
    }
    assert_eq!(check_consistent(&chaos, "chaos refilled").len(), 100);
}

#[test]
fn stress_default_promotion() {
    stress(Promotion::DirtyLen);
}

#[test]
fn stress_promote_every_miss() {
    stress(Promotion::EveryMiss);
}

#[test]
fn stress_promote_after_misses() {
    stress(Promotion::AfterMisses(NonZeroUsize::new(8).unwrap()));
}

/// Word-sized values that own heap memory (`Box<u64>`), overwritten, compared-and-swapped,
/// removed and re-added by every thread on a few shared keys, with the collector handed
/// every retired object at once (`retire_batch(1)`): each value goes into one of its
/// entry's two in-block slots, which are reused as soon as their previous values are
/// reclaimed. A reader that saw a slot reused too early would read a value of another
/// key (or, under the sanitizers, race with the writer or read freed memory); a value
/// dropped twice or never is caught by AddressSanitizer.
#[test]
fn stress_word_sized_values_reuse_slots() {
    let iters = iters();
    let map: SyncMap<u64, Box<u64>> = SyncMap::builder().retire_batch(1).build();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let map = &map;
            s.spawn(move || {
                let (mut rng, mut vals) = (Rng::new(0xB0C5 + t), Values { thread: t, seq: 0 });
                for _ in 0..iters {
                    let k = SHARED_BASE + rng.below(SHARED / 4);
                    let m = map.pin();
                    match rng.below(8) {
                        0..=2 => {
                            if let Some(old) = m.insert(k, Box::new(vals.next(k))) {
                                belongs(k, **old);
                            }
                        }
                        3 => {
                            if let Some(cur) = m.get(&k) {
                                let seen = Box::new(**cur);
                                let _ = m.compare_exchange(&k, &seen, Box::new(vals.next(k)));
                            }
                        }
                        4 => {
                            if let Some(old) = m.remove(&k) {
                                belongs(k, **old);
                            }
                        }
                        5 => {
                            let (v, _) = m.get_or_insert(k, Box::new(vals.next(k)));
                            belongs(k, **v);
                        }
                        _ => {
                            if let Some(v) = m.get(&k) {
                                belongs(k, **v);
                            }
                        }
                    }
                }
            });
        }
    });
    for (k, v) in map.pin().iter() {
        belongs(*k, **v);
    }
}

/// `into_iter` after four threads overwrote, removed and re-added keys of a map whose
/// retired values wait in the threads' batches (the default retire batch) and in both
/// in-block slots and boxes (`Box<u64>` values fit the spare slot; `[u64; 2]` do not):
/// taking the map apart reclaims the retired values first, then moves every present pair
/// out once. AddressSanitizer (CI) catches a value freed twice or read after its free,
/// LeakSanitizer one never freed.
#[test]
fn stress_into_iter_after_concurrent_writes() {
    fn run<V: Send + Sync>(make: fn(u64) -> V, read: fn(&V) -> u64) {
        let iters = iters() / 4;
        let map: SyncMap<u64, V> = SyncMap::new();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let map = &map;
                s.spawn(move || {
                    let (mut rng, mut vals) = (Rng::new(0x1A7E + t), Values { thread: t, seq: 0 });
                    for _ in 0..iters {
                        let k = SHARED_BASE + rng.below(SHARED * 8);
                        let m = map.pin();
                        match rng.below(6) {
                            0..=2 => {
                                m.insert(k, make(vals.next(k)));
                            }
                            3 => {
                                m.remove(&k);
                            }
                            _ => {
                                if let Some(v) = m.get(&k) {
                                    belongs(k, read(v));
                                }
                            }
                        }
                    }
                });
            }
        });
        let len = map.len();
        let mut seen = HashSet::new();
        let it = map.into_iter();
        assert_eq!(it.len(), len);
        for (k, v) in it {
            assert!(seen.insert(k), "key {k} taken twice");
            belongs(k, read(&v));
        }
    }
    run(Box::new, |v| **v);
    run(
        |v| [v, v],
        |v| {
            assert_eq!(v[0], v[1], "torn value");
            v[0]
        },
    );
}
