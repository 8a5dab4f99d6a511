//! Allocation and memory tests with a counting global allocator.
//!
//! The allocator counts per thread (the test harness runs tests on parallel threads),
//! so each test measures only what its own thread allocates.
//!
//! * Reads of keys in the read table (and of absent keys) allocate nothing.
//! * Memory per `u64 → u64` key after inserting and promoting is at most 64 bytes
//!   (run with `--nocapture` to see the figure; 1,000,000 keys in release builds,
//!   200,000 in debug builds, `ALLOC_KEYS=N` to choose).
//! * Under multi-threaded churn every value is dropped exactly once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use readmostly::{Promotion, SyncMap};

/// Counts allocations and live bytes of the current thread, then defers to `System`.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Requested bytes (net: allocations minus deallocations).
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Bytes with the chunk rounding of glibc's malloc (16-byte steps, 32 minimum, 8
    /// bytes of header), an estimate of what the process really pays.
    static LIVE_CHUNKS: Cell<i64> = const { Cell::new(0) };
}

fn chunk(size: usize) -> i64 {
    (((size + 8 + 15) & !15).max(32)) as i64
}

fn record(allocations: u64, bytes: i64, chunks: i64) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + allocations));
    let _ = LIVE.try_with(|c| c.set(c.get() + bytes));
    let _ = LIVE_CHUNKS.try_with(|c| c.set(c.get() + chunks));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and
// only updates thread-local counters besides (which never allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(1, layout.size() as i64, chunk(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(1, layout.size() as i64, chunk(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        record(0, -(layout.size() as i64), -chunk(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            record(
                1,
                new_size as i64 - layout.size() as i64,
                chunk(new_size) - chunk(layout.size()),
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn live() -> (i64, i64) {
    // The counters are per thread: large blocks must be freed by the thread that drops
    // them, not handed to readmostly's background thread.
    readmostly::set_background_free(false);
    (LIVE.with(Cell::get), LIVE_CHUNKS.with(Cell::get))
}

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn count_allocations(f: impl FnOnce()) -> u64 {
    let before = allocations();
    f();
    allocations() - before
}

fn rules() -> [Promotion; 3] {
    [
        Promotion::DirtyLen,
        Promotion::EveryMiss,
        Promotion::AfterMisses(NonZeroUsize::new(2).unwrap()),
    ]
}

/// A map of `n` keys, all promoted to the read table.
fn promoted(n: u64, promotion: Promotion) -> SyncMap<u64, u64> {
    let map = SyncMap::builder().promotion(promotion).build();
    for k in 0..n {
        map.insert(k, k * 3);
    }
    // Publish every key to the main table (the recent table holds the newest ones, and
    // reads of those would not promote them before enough of them happened).
    map.promote();
    for k in 0..n {
        assert_eq!(map.get_cloned(&k), Some(k * 3));
    }
    let s = map.stats();
    assert_eq!(
        (s.read_len, s.dirty_len),
        (n as usize, None),
        "not promoted: {s:?}"
    );
    map
}

#[test]
fn reads_allocate_nothing() {
    const N: u64 = 1_000;
    const READS: u64 = 100_000;
    for promotion in rules() {
        let map = promoted(N, promotion);
        // Warm up: the first pin of a thread may register it with the collector.
        black_box(map.pin().get(&0));

        let n = count_allocations(|| {
            for i in 0..READS {
                let m = map.pin();
                assert_eq!(black_box(m.get(&(i % N))), Some(&((i % N) * 3)));
            }
        });
        assert_eq!(
            n, 0,
            "{promotion:?}: allocations in {READS} pin().get() of present keys"
        );

        let n = count_allocations(|| {
            for i in 0..READS {
                let m = map.pin();
                assert_eq!(black_box(m.get(&(N + i))), None);
            }
        });
        assert_eq!(
            n, 0,
            "{promotion:?}: allocations in {READS} pin().get() of absent keys"
        );

        let n = count_allocations(|| {
            let m = map.pin();
            for i in 0..READS {
                assert!(black_box(m.get(&(i % (2 * N)))).is_some() == (i % (2 * N) < N));
            }
        });
        assert_eq!(
            n, 0,
            "{promotion:?}: allocations in {READS} gets through one pin"
        );

        // Deleted keys (still in the read table) read as absent without allocating.
        for k in (0..N).step_by(2) {
            map.remove(&k);
        }
        let n = count_allocations(|| {
            for i in 0..READS {
                let k = i % N;
                assert_eq!(black_box(map.pin().get(&k)).is_some(), k % 2 == 1);
            }
        });
        assert_eq!(n, 0, "{promotion:?}: allocations in gets of deleted keys");
    }
}

#[test]
fn one_call_reads_allocate_nothing() {
    const N: u64 = 1_000;
    const READS: u64 = 100_000;
    let map = promoted(N, Promotion::DirtyLen);
    black_box(map.contains_key(&0));
    let n = count_allocations(|| {
        for i in 0..READS {
            let k = i % (2 * N);
            assert_eq!(black_box(map.contains_key(&k)), k < N);
            assert_eq!(black_box(map.get_cloned(&k)), (k < N).then_some(k * 3));
            assert_eq!(
                black_box(map.with(&k, |v| *v + 1)),
                (k < N).then_some(k * 3 + 1)
            );
        }
    });
    assert_eq!(n, 0, "allocations in contains_key / get_cloned / with");
}

#[test]
fn overwrites_of_word_sized_values_allocate_nothing() {
    // Not a requirement of the read path, but the figure the docs promise: a value that
    // fits a word goes into whichever of its entry's two in-block slots is free (the
    // other one's retired value has been reclaimed by the time the key is written
    // again), so steady overwrites allocate nothing but the collector's occasional
    // batch — for keys rewritten less often than once per retire batch: here each key
    // once per two batches of the writing thread.
    let batch = SyncMap::<u64, u64>::new().retire_batch() as u64;
    let keys = 2 * batch;
    let writes = 10 * keys;
    let map = promoted(keys, Promotion::DirtyLen);
    map.insert(0, 0);
    let n = count_allocations(|| {
        for i in 0..writes {
            map.insert(i % keys, i);
        }
    });
    println!("{writes} overwrites of {keys} keys: {n} allocations");
    assert!(n <= writes / 100, "{n} allocations for {writes} overwrites");
    for k in 0..keys {
        assert_eq!(map.get_cloned(&k), Some(writes - keys + k));
    }
}

#[test]
fn hot_key_overwrites_box_each_value() {
    // The documented limit of the in-block slots: one key rewritten by one thread far
    // more often than its retire batch (512 by default) fills finds both slots busy (its
    // value before last not yet reclaimed) and boxes every value, as every overwrite did
    // before the slots existed — and nothing beyond that box and the collector's batch.
    const WRITES: u64 = 10_000;
    let map = promoted(1, Promotion::DirtyLen);
    let n = count_allocations(|| {
        for i in 0..WRITES {
            map.insert(0, i);
        }
    });
    println!("{WRITES} overwrites of one key: {n} allocations");
    assert!(
        n >= WRITES - 2,
        "{n}: each value is boxed once both slots are busy"
    );
    assert!(
        n <= WRITES + WRITES / 4,
        "{n} allocations for {WRITES} overwrites"
    );
    assert_eq!(map.get_cloned(&0), Some(WRITES - 1));
}

#[test]
fn overwrites_of_larger_values_box_only_the_value() {
    // Values wider than a word alternate between the inline slot and a box: every
    // other store allocates one box, and nothing else is allocated but the collector's
    // occasional batch.
    const N: u64 = 1_000;
    const WRITES: u64 = 10_000;
    let map: SyncMap<u64, [u64; 2]> = SyncMap::builder().promotion(Promotion::DirtyLen).build();
    for k in 0..N {
        map.insert(k, [k, k]);
    }
    for k in 0..N {
        assert!(map.contains_key(&k));
    }
    map.promote();
    let n = count_allocations(|| {
        for i in 0..WRITES {
            map.insert(i % N, [i, i]);
        }
    });
    println!("{WRITES} overwrites: {n} allocations");
    assert!(
        n >= WRITES / 2 - N,
        "{n}: every other stored value is boxed"
    );
    assert!(
        n <= WRITES / 2 + WRITES / 8,
        "{n} allocations for {WRITES} overwrites"
    );
    for k in 0..N {
        assert_eq!(map.get_cloned(&k), Some([WRITES - N + k; 2]));
    }
}

#[test]
fn bytes_per_key_u64() {
    let n: u64 = std::env::var("ALLOC_KEYS")
        .map(|s| s.parse().expect("ALLOC_KEYS must be a number"))
        .unwrap_or(if cfg!(debug_assertions) {
            200_000
        } else {
            1_000_000
        });
    let (before, before_chunks) = live();
    let map = promoted(n, Promotion::DirtyLen);
    let (after, after_chunks) = live();
    let per_key = (after - before) as f64 / n as f64;
    let per_key_chunks = (after_chunks - before_chunks) as f64 / n as f64;
    println!(
        "memory: {n} u64 -> u64 keys after promotion: {per_key:.1} B/key requested \
         ({per_key_chunks:.1} B/key with glibc malloc chunk rounding)"
    );
    assert!(
        per_key <= 64.0,
        "{per_key:.1} bytes per key (target: <= 64)"
    );
    drop(map);
    let (end, _) = live();
    // Everything the map allocated is freed with it (the collector's per-thread
    // bookkeeping may keep a little).
    assert!(
        end - before < 64 * 1024,
        "{} bytes still live after dropping the map",
        end - before
    );
}

/// A value that counts how often it is created and dropped.
struct Counted {
    id: u64,
    counts: Arc<(AtomicUsize, AtomicUsize)>,
}

impl Counted {
    fn new(id: u64, counts: &Arc<(AtomicUsize, AtomicUsize)>) -> Self {
        counts.0.fetch_add(1, SeqCst);
        Counted {
            id,
            counts: counts.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts.1.fetch_add(1, SeqCst);
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

#[test]
fn every_value_dropped_exactly_once_under_churn() {
    const THREADS: u64 = 4;
    let ops: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    for promotion in rules() {
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let map: SyncMap<u64, Counted> = SyncMap::builder().promotion(promotion).build();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (map, counts) = (&map, &counts);
                s.spawn(move || {
                    let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for i in 0..ops {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = x % 64;
                        let v = || Counted::new(i, counts);
                        let m = map.pin();
                        match (x >> 8) % 16 {
                            0..=3 => {
                                m.insert(k, v());
                            }
                            4..=6 => {
                                m.remove(&k);
                            }
                            7..=8 => {
                                m.get_or_insert(k, v());
                            }
                            9 => {
                                m.get_or_insert_with(k, v);
                            }
                            10 => {
                                if let Some(cur) = m.get(&k) {
                                    let _ =
                                        m.compare_exchange(&k, &Counted::new(cur.id, counts), v());
                                }
                            }
                            11 => {
                                m.remove_if(&k, |c| c.id % 2 == 0);
                            }
                            12 if i % 512 == 0 => m.clear(),
                            12 if i % 64 == 0 => m.retain(|k, _| k % 3 != 0),
                            13 if i % 64 == 0 => {
                                assert!(m.iter().count() <= 64 + 1_000);
                            }
                            // New keys: rebuilds and detaches of dirty-only entries.
                            14 => {
                                m.insert(1_000 + (x >> 20) % 1_000, v());
                                m.remove(&(1_000 + (x >> 30) % 1_000));
                            }
                            _ => {
                                black_box(m.get(&k));
                            }
                        }
                    }
                });
            }
        });
        let live = map.pin().iter().count();
        assert_eq!(live, map.len(), "{promotion:?}: len after churn");
        let (made, dropped) = (counts.0.load(SeqCst), counts.1.load(SeqCst));
        assert!(
            made - dropped >= live,
            "{promotion:?}: values still in the map were dropped"
        );
        map.clear();
        drop(map);
        let (made, dropped) = (counts.0.load(SeqCst), counts.1.load(SeqCst));
        assert_eq!(
            made, dropped,
            "{promotion:?}: created {made} values, dropped {dropped}"
        );
    }
}

#[test]
fn churn_memory_is_bounded() {
    const N: u64 = 1_000;
    const ROUNDS: u64 = 40;
    for promotion in rules() {
        let mut after_round = Vec::with_capacity(ROUNDS as usize); // allocated before measuring
        let (start, _) = live();
        let map = promoted(N, promotion);
        for round in 0..ROUNDS {
            // New keys (rebuild), reads (promotion), removals (expunge on the next
            // rebuild), overwrites of old keys (retired values).
            let base = (round + 1) * 1_000_000;
            for k in base..base + N {
                map.insert(k, k);
            }
            for k in base..base + N {
                assert_eq!(map.get_cloned(&k), Some(k));
            }
            for k in base..base + N {
                assert!(map.remove(&k));
            }
            for k in 0..N {
                map.insert(k, k + round);
            }
            after_round.push(live().0 - start);
        }
        drop(map);
        let early = *after_round[..ROUNDS as usize / 4].iter().max().unwrap();
        let late = *after_round[ROUNDS as usize / 2..].iter().max().unwrap();
        println!("{promotion:?}: live bytes over churn rounds: {after_round:?}");
        assert!(
            late <= early + early / 4,
            "{promotion:?}: memory grows under churn: {after_round:?}"
        );
    }
}

/// What an empty shard costs, as `ShardedMap`'s docs state it: about 1.5 KiB plus
/// 128 bytes per statistics stripe (bound checked: 1.75 KiB plus the stripes; run with
/// `--nocapture` to see the figures).
#[test]
fn empty_shard_memory_matches_the_docs() {
    const SHARDS: usize = 1024;
    for stripes in [1usize, 4, 16, 64] {
        let (before, _) = live();
        let map: readmostly::ShardedMap<u64, u64> = readmostly::ShardedMap::builder()
            .shards(SHARDS)
            .stripes_per_shard(stripes)
            .build();
        let (after, _) = live();
        let per_shard = (after - before) as usize / SHARDS;
        println!("empty shard, {stripes} stripes: {per_shard} bytes");
        assert!(
            per_shard <= 1792 + 128 * stripes,
            "{per_shard} bytes per empty shard with {stripes} stripes"
        );
        drop(map);
    }
}
