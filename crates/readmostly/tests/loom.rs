//! Loom models of the read/dirty protocol.
//!
//! Run with (see `ci/loom.sh`):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p readmostly --test loom
//! ```
//!
//! Under `--cfg loom` the crate's `sync` shim swaps the read-table pointer, the entry
//! slots, the `amended` flag, the recent table's slot array, slots and length, and the
//! dirty-table mutex for loom's, and reclamation is deferred to the map's drop, so loom
//! explores every interleaving of the protocol's atomic operations (up to
//! `LOOM_MAX_PREEMPTIONS` preemptions, read from the environment by `loom::model`).
//!
//! Each model builds its map inside the model, drives it into the state whose race it
//! is about (promotion pending, entry deleted in the read table, dirty-only key, key in
//! the recent table …) with single-threaded operations, runs the racing operations on
//! two threads, and then checks both the values each operation returned and the final
//! contents (through `get`, `iter` and `len`) against the outcomes the possible
//! linearizations allow.
//!
//! The recent table ([`RecentKeys`]) changes where a new key lives before the next
//! promotion, so the models say which setting they run under:
//!
//! * models of Go's states — a *dirty-only* key, the `amended` flag, misses that take
//!   the lock and promote — build their maps with [`RecentKeys::Off`] (Go's behaviour);
//!   with the recent table on, those keys would be in the recent table instead;
//! * models whose race exists in both designs (expunge vs. store, rebuild vs. remove,
//!   `clear`, iteration) run with `Off`, with the default [`RecentKeys::Auto`] and with
//!   `AtMost(1)` (where a new key may find the recent table full and promote at once:
//!   [`model_each_recent`]);
//! * the recent-table models (section "recent table") run with `Auto` or
//!   `AtMost(1)`: lock-free reads of new and absent keys racing the insert that fills a
//!   slot (and allocates the slot array, on the first new key), the promotion a full
//!   recent table triggers, reader-driven promotion, lock-free removal of a recent key,
//!   and iteration walking the recent table while a slot is filled;
//! * the lock-free new-key models (section "lock-free new keys"): two adds of the same
//!   key meeting at one slot, and adds racing the close of the recent table by an
//!   explicit promotion (of the first recent table and of a later one), a full-table
//!   promotion, the doubling of its slot array and `clear`;
//! * the models of section "levels and a lagging rebuild": two adds of one key into a
//!   full recent table that overflows while the rebuild lags, and reads and iteration
//!   racing the overflow and the promotion that keeps the table as a level.
//!
//! The hasher is a fixed `DefaultHasher` so that every loom iteration hashes alike.
//!
//! What these models can and cannot catch: they catch lost or doubled updates, wrong
//! state transitions and missing re-checks under the lock (seeded bugs of each kind —
//! no re-check of the read table in the slow paths, an unexpunged entry not put back
//! into the dirty table, a lock-free store over *expunged*, a swap where a CAS is
//! needed, a non-atomic expunge, `clear` not detaching dirty entries; for the recent
//! table: a Relaxed publication of a slot's entry pointer or of the slot array, a
//! promotion, growth or `clear` that reads the slots without closing the array first
//! (sealing its empty slots, before the O(1) close; now: without waiting for the adds in
//! flight), iteration
//! skipping the recent table, a full recent table neither promoting nor setting
//! `amended`, lookups not probing a level — each fail at least one model). The recent table's slot array
//! pointer, slots and length are loom atomics, so a too-weak ordering on them is caught:
//! loom reports an entry or a slot read without a happens-before edge to its creation,
//! and a reader that sees the second of two new keys must see the first. They cannot
//! catch a too-weak ordering on memory loom does not track (the hash tables and boxed
//! values are plain memory), nor reclamation bugs (the loom collector frees at drop):
//! Miri and the sanitizers cover those.
#![cfg(loom)]

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use loom::sync::Arc;
use loom::thread;
use readmostly::{Promotion, RecentKeys, SyncMap};

type Map = SyncMap<u64, u64, BuildHasherDefault<DefaultHasher>>;

fn new_map(promotion: Promotion, recent: RecentKeys) -> Arc<Map> {
    Arc::new(
        SyncMap::builder()
            .hasher(BuildHasherDefault::default())
            .promotion(promotion)
            .recent_keys(recent)
            .build(),
    )
}

/// `RecentKeys::AtMost(n)`.
fn at_most(n: usize) -> RecentKeys {
    RecentKeys::AtMost(NonZeroUsize::new(n).unwrap())
}

/// Runs `f` under `loom::model` twice, with `swap` false and true (see [`race`]), and
/// reports how many interleavings were explored.
fn model(name: &str, f: impl Fn(bool) + Send + Sync + Copy + 'static) {
    for swap in [false, true] {
        let iterations = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = iterations.clone();
        let start = Instant::now();
        // Loom stops an execution after `max_branches` scheduling points (default 1,000,
        // meant to catch spin loops). The models that drive a recent table through
        // overflow and a promotion while another thread iterates need ~1,100; the limit
        // is raised for them (a spin loop would still be stopped, a little later).
        let mut builder = loom::model::Builder::new();
        builder.max_branches = builder.max_branches.max(4_000);
        builder.check(move || {
            counter.fetch_add(1, Relaxed);
            f(swap);
        });
        eprintln!(
            "loom model {name} (swap={swap}): {} iterations in {:.2?} (LOOM_MAX_PREEMPTIONS={})",
            iterations.load(Relaxed),
            start.elapsed(),
            std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "unbounded".into()),
        );
    }
}

/// Runs [`model`] with [`RecentKeys::Off`] (Go's design), the default
/// [`RecentKeys::Auto`] and `AtMost(1)`, for models whose race exists in both designs.
/// With the recent table on, the new keys that the model's operations insert go into the
/// recent table instead of setting `amended`, or (`AtMost(1)`, once it holds a key)
/// promote the dirty table at once.
fn model_each_recent(name: &str, f: impl Fn(bool, RecentKeys) + Send + Sync + Copy + 'static) {
    for recent in [RecentKeys::Off, RecentKeys::Auto, at_most(1)] {
        model(&format!("{name} (recent {recent:?})"), move |swap| {
            f(swap, recent)
        });
    }
}

/// Runs `a` and `b` concurrently, one on a spawned thread and one on the model's main
/// thread, and returns both results.
///
/// Loom's first schedule runs the main thread until it blocks, and its DPOR only
/// revisits a point when it sees a later *dependent* access; a load followed by
/// another thread's load-then-write of the same atomic is not seen as one (it tracks
/// only the last access). So every model runs twice, once with `a` starting first and
/// once with `b` starting first (`swap`), and loom explores the interleavings around
/// each starting order.
fn race<RA, RB>(
    swap: bool,
    a: impl FnOnce() -> RA + Send + 'static,
    b: impl FnOnce() -> RB + Send + 'static,
) -> (RA, RB)
where
    RA: Send + 'static,
    RB: Send + 'static,
{
    if swap {
        let b = thread::spawn(b);
        let ra = a();
        (ra, b.join().unwrap())
    } else {
        let a = thread::spawn(a);
        let rb = b();
        (a.join().unwrap(), rb)
    }
}

/// The map's contents through `iter`, sorted; also checks that no key is visited twice
/// and that `len` agrees (the test is quiescent when this is called).
fn contents(map: &Map) -> Vec<(u64, u64)> {
    let mut seen: Vec<(u64, u64)> = map.pin().iter().map(|(k, v)| (*k, *v)).collect();
    seen.sort_unstable();
    let mut keys: Vec<u64> = seen.iter().map(|(k, _)| *k).collect();
    keys.dedup();
    assert_eq!(keys.len(), seen.len(), "iter visited a key twice: {seen:?}");
    assert_eq!(map.len(), seen.len(), "len disagrees with iter: {seen:?}");
    for &(k, v) in &seen {
        assert_eq!(
            map.get_cloned(&k),
            Some(v),
            "get disagrees with iter for key {k}"
        );
    }
    seen
}

/// Where the key under test sits before the race starts.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// Present in the read table (inserted, then promoted by a read), in a map with the
    /// given recent-table setting.
    Read(RecentKeys),
    /// Present in the dirty table only (inserted, not yet promoted), with the `amended`
    /// flag set: Go's state, so the map has [`RecentKeys::Off`] (with the recent table on,
    /// the key would be in the recent table: [`Setup::Recent`]).
    DirtyOnly,
    /// In the dirty table and the read table's recent table (inserted, not yet promoted;
    /// [`RecentKeys::Auto`]): lock-free operations find it without the lock.
    Recent,
    /// In the read table, *deleted* (inserted, promoted, removed), in a map with the
    /// given recent-table setting.
    Deleted(RecentKeys),
}

impl Setup {
    fn recent_keys(self) -> RecentKeys {
        match self {
            Setup::Read(recent) | Setup::Deleted(recent) => recent,
            Setup::DirtyOnly => RecentKeys::Off,
            Setup::Recent => RecentKeys::Auto,
        }
    }
}

/// A map (promoting on every miss) holding key 1 with `value` in the state `setup`.
fn map_with_key(setup: Setup, value: u64) -> Arc<Map> {
    let map = new_map(Promotion::EveryMiss, setup.recent_keys());
    assert!(!map.insert(1, value));
    match setup {
        Setup::DirtyOnly | Setup::Recent => {
            let stats = map.stats();
            let in_recent = usize::from(matches!(setup, Setup::Recent));
            assert_eq!(
                (stats.read_len, stats.recent_len, stats.dirty_len),
                (0, in_recent, Some(1)),
                "{setup:?}"
            );
        }
        Setup::Read(_) | Setup::Deleted(_) => {
            // A miss (locked with `Off`, answered by the recent table otherwise): with
            // `EveryMiss` it promotes the dirty table at once.
            assert_eq!(map.get_cloned(&1), Some(value));
            assert_eq!(map.stats().promotions, 1);
            if let Setup::Deleted(_) = setup {
                assert!(map.remove(&1));
            }
        }
    }
    map
}

// ----------------------------------------------------------------------- (a)

/// A read of a dirty-only key (a locked miss that promotes the dirty table) racing an
/// insert of a new key and reads on another thread. Every read must see its key's value
/// whatever the order of the promotion, the pointer swap and the insert (which may have
/// to rebuild the dirty table right after the promotion). Go's states: `RecentKeys::Off`
/// (see `read_racing_reader_promotion` for the recent table's version).
#[test]
fn read_racing_promotion() {
    model("read_racing_promotion", |swap| {
        let map = map_with_key(Setup::DirtyOnly, 10);
        let (m1, m2) = (map.clone(), map.clone());
        let (read, (inserted, reread, other)) = race(
            swap,
            move || m1.pin().get(&1).copied(),
            move || {
                let m = m2.pin();
                let inserted = m.insert(2, 20).is_none();
                (inserted, m.get(&2).copied(), m.get(&1).copied())
            },
        );
        assert_eq!(read, Some(10), "the promoting read lost its key");
        assert_eq!((inserted, reread, other), (true, Some(20), Some(10)));
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

/// Two reads of two dirty-only keys, each a locked miss that may promote: whichever
/// promotes first, the other must find its key (in the new read table or, re-checked
/// under the lock, in the dirty table). Go's states: `RecentKeys::Off` (see
/// `reads_racing_reader_promotion` for the recent table's version).
#[test]
fn reads_racing_promotion() {
    model("reads_racing_promotion", |swap| {
        let map = new_map(Promotion::EveryMiss, RecentKeys::Off);
        map.insert(1, 10);
        map.insert(2, 20);
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(
            swap,
            move || m1.pin().get(&1).copied(),
            move || m2.pin().get(&2).copied(),
        );
        assert_eq!((a, b), (Some(10), Some(20)));
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

// ----------------------------------------------------------------------- (b)

/// A store to a deleted entry racing the dirty-table rebuild that expunges it.
///
/// Key 1 is deleted in the read table and there is no dirty table. One thread inserts
/// a new key, which rebuilds the dirty table and expunges key 1's entry; the other
/// stores key 1 again. If the store lands first the entry is live and copied into the
/// dirty table; if the rebuild wins, the store must see *expunged* and put the entry
/// back into the dirty table under the lock. Either way key 1 must end up present with
/// the stored value, through `get` and `iter`, and survive the next promotion and rebuild.
/// Run with and without the recent table (the new key sets `amended` or fills a recent
/// slot; the rebuild is the same).
#[test]
fn store_to_expunged_racing_rebuild() {
    model_each_recent("store_to_expunged_racing_rebuild", |swap, recent| {
        let map = map_with_key(Setup::Deleted(recent), 10);
        let (m1, m2) = (map.clone(), map.clone());
        let (new_key, (prev, seen)) = race(
            swap,
            move || m1.pin().insert(2, 20).copied(),
            move || {
                let m = m2.pin();
                let prev = m.insert(1, 11).copied();
                (prev, m.get(&1).copied())
            },
        );
        assert_eq!(new_key, None);
        assert_eq!(prev, None, "key 1 was deleted");
        assert_eq!(seen, Some(11), "a store is visible to its own thread");
        assert_eq!(map.get_cloned(&1), Some(11));
        assert_eq!(map.get_cloned(&2), Some(20));
        assert_eq!(contents(&map), [(1, 11), (2, 20)]);
        // Another promotion + rebuild cycle must keep key 1 (it was put back correctly).
        map.promote();
        assert!(!map.insert(3, 30));
        assert_eq!(map.get_cloned(&3), Some(30));
        assert_eq!(contents(&map), [(1, 11), (2, 20), (3, 30)]);
    });
}

// ----------------------------------------------------------------------- (c)

/// `remove(1)` racing `get_or_insert(1, 12)`, with key 1 starting in `setup`
/// (value 10 unless deleted). The results must match one of the two orders, and the map
/// keeps working through another promotion and rebuild cycle afterwards.
fn remove_racing_get_or_insert(setup: Setup, swap: bool) {
    let map = map_with_key(setup, 10);
    let initially_present = !matches!(setup, Setup::Deleted(_));
    let (m1, m2) = (map.clone(), map.clone());
    let (removed, (got, inserted)) = race(
        swap,
        move || m1.pin().remove(&1).copied(),
        move || {
            let m = m2.pin();
            let (v, inserted) = m.get_or_insert(1, 12);
            (*v, inserted)
        },
    );
    let after = contents(&map);
    if initially_present {
        // The remove always takes 10: either before get_or_insert (which then inserts 12
        // and keeps it) or after it (get_or_insert loaded 10, nothing is left).
        assert_eq!(removed, Some(10), "{setup:?}");
        if inserted {
            assert_eq!(got, 12, "{setup:?}");
            assert_eq!(after, [(1, 12)], "{setup:?}: remove → get_or_insert");
        } else {
            assert_eq!(got, 10, "{setup:?}");
            assert_eq!(after, [], "{setup:?}: get_or_insert → remove");
        }
    } else {
        // Absent at first: get_or_insert always inserts 12; the remove either ran first
        // (found nothing, 12 stays) or after (took 12, nothing is left).
        assert_eq!((got, inserted), (12, true), "{setup:?}");
        match removed {
            None => assert_eq!(after, [(1, 12)], "{setup:?}: remove → get_or_insert"),
            Some(12) => assert_eq!(after, [], "{setup:?}: get_or_insert → remove"),
            Some(other) => panic!("{setup:?}: remove returned {other}, never stored"),
        }
    }
    // A promotion, a new key (rebuilding the dirty table, which expunges a deleted key 1),
    // then key 1 stored again (unexpunged if it was expunged).
    map.promote();
    assert!(!map.insert(2, 20), "{setup:?}");
    let prev = map.pin().insert(1, 13).copied();
    assert_eq!(prev, after.first().map(|&(_, v)| v), "{setup:?}");
    assert_eq!(contents(&map), [(1, 13), (2, 20)], "{setup:?}");
}

#[test]
fn remove_racing_get_or_insert_read() {
    model_each_recent("remove_racing_get_or_insert_read", |swap, recent| {
        remove_racing_get_or_insert(Setup::Read(recent), swap)
    });
}

/// Go's dirty-only key (`RecentKeys::Off`): both operations take the lock.
#[test]
fn remove_racing_get_or_insert_dirty_only() {
    model("remove_racing_get_or_insert_dirty_only", |swap| {
        remove_racing_get_or_insert(Setup::DirtyOnly, swap)
    });
}

#[test]
fn remove_racing_get_or_insert_deleted() {
    model_each_recent("remove_racing_get_or_insert_deleted", |swap, recent| {
        remove_racing_get_or_insert(Setup::Deleted(recent), swap)
    });
}

// ----------------------------------------------------------------------- (d)

/// `compare_exchange(1, &0, new)` from one thread, with its outcome copied out.
fn cas(map: &Map, new: u64) -> Result<u64, (Option<u64>, u64)> {
    match map.pin().compare_exchange(&1, &0, new) {
        Ok(prev) => Ok(*prev),
        Err(e) => Err((e.current.copied(), e.new)),
    }
}

/// Two `compare_exchange(1, &0, new)` calls from the same expected value: exactly one
/// succeeds (and sees 0), the other fails and sees the winner's value, and the map ends
/// with the winner's value.
fn compare_exchange_race(setup: Setup, swap: bool) {
    let map = map_with_key(setup, 0);
    let (m1, m2) = (map.clone(), map.clone());
    let outcome = race(swap, move || cas(&m1, 1), move || cas(&m2, 2));
    // The loser sees the winner's value and gets its own value back.
    let winner = match outcome {
        (Ok(0), Err((Some(1), 2))) => 1,
        (Err((Some(2), 1)), Ok(0)) => 2,
        outcome => panic!("{setup:?}: not exactly one winner: {outcome:?}"),
    };
    assert_eq!(contents(&map), [(1, winner)], "{setup:?}");
}

#[test]
fn compare_exchange_race_read() {
    model_each_recent("compare_exchange_race_read", |swap, recent| {
        compare_exchange_race(Setup::Read(recent), swap)
    });
}

/// Go's dirty-only key (`RecentKeys::Off`): both calls miss under the lock, and the
/// first miss promotes.
#[test]
fn compare_exchange_race_dirty_only() {
    model("compare_exchange_race_dirty_only", |swap| {
        compare_exchange_race(Setup::DirtyOnly, swap)
    });
}

/// `update(1, |v| v + add)` from one thread: the value it stored.
fn add(map: &Map, add: u64) -> Option<u64> {
    map.pin().update(&1, |v| v + add).copied()
}

/// Two `update`s of one key: neither is lost (the key ends at 0 + 1 + 10), and the
/// second to store saw the first's value.
fn update_race(setup: Setup, swap: bool) {
    let map = map_with_key(setup, 0);
    let (m1, m2) = (map.clone(), map.clone());
    let outcome = race(swap, move || add(&m1, 1), move || add(&m2, 10));
    assert!(
        matches!(outcome, (Some(1), Some(11)) | (Some(11), Some(10))),
        "{setup:?}: an update was lost: {outcome:?}"
    );
    assert_eq!(contents(&map), [(1, 11)], "{setup:?}");
}

#[test]
fn update_race_read() {
    model_each_recent("update_race_read", |swap, recent| {
        update_race(Setup::Read(recent), swap)
    });
}

/// Go's dirty-only key: both lookups miss under the lock, and the first miss promotes.
#[test]
fn update_race_dirty_only() {
    model("update_race_dirty_only", |swap| {
        update_race(Setup::DirtyOnly, swap)
    });
}

/// A key of the recent table; with `EveryMiss` each lookup through the recent table
/// also promotes, racing the other thread's update.
#[test]
fn update_race_recent() {
    model("update_race_recent", |swap| {
        update_race(Setup::Recent, swap)
    });
}

/// An update racing a removal of its key: either the update stores first (and the
/// removal returns its value) or finds the key absent; the map ends empty either way.
#[test]
fn update_racing_remove() {
    model_each_recent("update_racing_remove", |swap, recent| {
        let map = map_with_key(Setup::Read(recent), 0);
        let (m1, m2) = (map.clone(), map.clone());
        let outcome = race(
            swap,
            move || add(&m1, 1),
            move || m2.pin().remove(&1).copied(),
        );
        assert!(
            matches!(outcome, (Some(1), Some(1)) | (None, Some(0))),
            "{recent:?}: {outcome:?}"
        );
        assert_eq!(contents(&map), [], "{recent:?}");
    });
}

// ----------------------------------------------------------------------- extras

/// Two `get_or_insert` calls on a deleted key (the lock-free CAS path on the deleted
/// slot): exactly one inserts, and both return the winner's value.
#[test]
fn get_or_insert_race_deleted() {
    model_each_recent("get_or_insert_race_deleted", |swap, recent| {
        let map = map_with_key(Setup::Deleted(recent), 10);
        let goi = |map: Arc<Map>, v: u64| {
            move || {
                let m = map.pin();
                let (v, inserted) = m.get_or_insert(1, v);
                (*v, inserted)
            }
        };
        let outcome = race(swap, goi(map.clone(), 11), goi(map.clone(), 12));
        let winner = match outcome {
            ((11, true), (11, false)) => 11,
            ((12, false), (12, true)) => 12,
            outcome => panic!("not exactly one insert: {outcome:?}"),
        };
        assert_eq!(contents(&map), [(1, winner)]);
    });
}

/// `clear` racing a store to a key of the read table: the store is ordered either
/// before the clear (it replaced 10 and was then cleared) or after it (it found the key
/// absent and its value stays).
#[test]
fn clear_racing_insert() {
    model_each_recent("clear_racing_insert", |swap, recent| {
        let map = map_with_key(Setup::Read(recent), 10);
        let (m1, m2) = (map.clone(), map.clone());
        let ((), prev) = race(
            swap,
            move || m1.clear(),
            move || m2.pin().insert(1, 11).copied(),
        );
        match prev {
            Some(10) => assert_eq!(contents(&map), [], "insert → clear"),
            None => assert_eq!(contents(&map), [(1, 11)], "clear → insert"),
            Some(other) => panic!("insert replaced {other}, never stored"),
        }
        // The map stays usable after the race.
        assert!(!map.insert(2, 20));
        assert_eq!(map.get_cloned(&2), Some(20));
    });
}

/// Iteration racing an insert of a new key that rebuilds the dirty table (expunging a
/// deleted entry). With `Off` the insert sets `amended` and an iteration that sees it
/// promotes first; with the recent table on, the insert allocates the (new) read
/// table's slot array and fills a slot, which the iteration walks after the main table
/// (`AtMost(1)`: same, the table holds one key). Key 1, present for the whole
/// iteration, is seen exactly once with its value; the deleted key 0 is never seen;
/// the new key may or may not be.
#[test]
fn iter_racing_rebuild() {
    model_each_recent("iter_racing_rebuild", |swap, recent| {
        let map = new_map(Promotion::EveryMiss, recent);
        map.insert(0, 0);
        map.insert(1, 10);
        assert_eq!(map.get_cloned(&1), Some(10)); // promotes both keys
        assert!(map.remove(&0)); // key 0: deleted in the read table
        let (m1, m2) = (map.clone(), map.clone());
        let (seen, prev) = race(
            swap,
            move || {
                let m = m1.pin();
                let mut seen: Vec<(u64, u64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
                seen.sort_unstable();
                seen
            },
            move || m2.pin().insert(2, 20).copied(),
        );
        assert_eq!(prev, None);
        assert!(
            seen == [(1, 10)] || seen == [(1, 10), (2, 20)],
            "iter saw {seen:?}"
        );
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

/// `clear` racing an insert of a new key (which builds a dirty table from the read
/// table): key 1 is always gone, key 2 is present exactly when the insert came after the
/// clear, and `len` agrees with `iter` (every detached entry was counted once).
#[test]
fn clear_racing_new_key() {
    model_each_recent("clear_racing_new_key", |swap, recent| {
        let map = map_with_key(Setup::Read(recent), 10);
        let (m1, m2) = (map.clone(), map.clone());
        let ((), prev) = race(
            swap,
            move || m1.clear(),
            move || m2.pin().insert(2, 20).copied(),
        );
        assert_eq!(prev, None);
        let after = contents(&map);
        assert!(
            after.is_empty() || after == [(2, 20)],
            "after clear: {after:?}"
        );
        // Whatever survived, the map keeps working through another rebuild cycle.
        assert!(!map.insert(3, 30));
        assert_eq!(map.get_cloned(&3), Some(30));
        assert_eq!(map.get_cloned(&1), None);
    });
}

/// A remove of a read-table key racing the rebuild triggered by a new key: the removed
/// entry is either copied into the dirty table as deleted or expunged by the rebuild.
/// Either way the key is gone afterwards, and storing it again brings it back (through
/// the unexpunge path when it was expunged).
#[test]
fn remove_racing_rebuild() {
    model_each_recent("remove_racing_rebuild", |swap, recent| {
        let map = map_with_key(Setup::Read(recent), 10);
        let (m1, m2) = (map.clone(), map.clone());
        let (removed, prev) = race(
            swap,
            move || m1.pin().remove(&1).copied(),
            move || m2.pin().insert(2, 20).copied(),
        );
        assert_eq!((removed, prev), (Some(10), None));
        assert_eq!(contents(&map), [(2, 20)]);
        assert!(!map.insert(1, 11));
        assert_eq!(contents(&map), [(1, 11), (2, 20)]);
    });
}

/// Model (b) with a third thread reading the key being re-stored: the reader sees the
/// key absent or with the new value, never a stale or freed one, while the rebuild
/// and the unexpunge race.
#[test]
fn store_to_expunged_racing_rebuild_and_read() {
    model_each_recent(
        "store_to_expunged_racing_rebuild_and_read",
        |swap, recent| {
            let map = map_with_key(Setup::Deleted(recent), 10);
            let reader = {
                let map = map.clone();
                thread::spawn(move || map.pin().get(&1).copied())
            };
            let (m1, m2) = (map.clone(), map.clone());
            let (new_key, prev) = race(
                swap,
                move || m1.pin().insert(2, 20).copied(),
                move || m2.pin().insert(1, 11).copied(),
            );
            let seen = reader.join().unwrap();
            assert_eq!((new_key, prev), (None, None));
            assert!(seen.is_none() || seen == Some(11), "reader saw {seen:?}");
            assert_eq!(contents(&map), [(1, 11), (2, 20)]);
        },
    );
}

// ------------------------------------------------------------------ recent table

/// `n` distinct keys (from 1 up) whose hashes start their probe at the same slot of a
/// recent table of `slots` slots, so that a lookup of one walks past the slots filled by
/// the others (`RecentKeys::Auto` gives a read table of fewer than 64 entries 8 keys in
/// 16 slots). Only makes the races more interesting: the models check the same outcomes
/// whatever the slots.
fn keys_sharing_a_slot(n: usize, slots: u64) -> Vec<u64> {
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let home = |k: u64| hasher.hash_one(k) & (slots - 1);
    let first = (1..).find(|&k| (1..).filter(|&j| home(j) == home(k)).take(n).count() == n);
    let slot = home(first.unwrap());
    (1..).filter(|&k| home(k) == slot).take(n).collect()
}

/// (a) Lock-free reads of new keys racing the inserts that put them into the recent
/// table (`RecentKeys::Auto`, `DirtyLen` so that no read promotes). One thread inserts
/// key 1, then key 2; the other reads key 2, then key 1, without the lock. Each read sees
/// nothing or the value; a reader that saw key 2 must see key 1 (it was inserted before:
/// message passing through the slot's Release/Acquire entry pointer, and the length
/// stored before it); after the join both are found.
#[test]
fn get_racing_recent_insert() {
    model("get_racing_recent_insert", |swap| {
        let map = new_map(Promotion::DirtyLen, RecentKeys::Auto);
        let (m1, m2) = (map.clone(), map.clone());
        let ((first, second), (seen2, seen1)) = race(
            swap,
            // `insert` returns whether it replaced a value.
            move || (m1.insert(1, 10), m1.insert(2, 20)),
            move || {
                let m = m2.pin();
                (m.get(&2).copied(), m.get(&1).copied())
            },
        );
        assert_eq!((first, second), (false, false));
        assert!(seen1.is_none() || seen1 == Some(10), "key 1: {seen1:?}");
        assert!(seen2.is_none() || seen2 == Some(20), "key 2: {seen2:?}");
        assert!(
            seen2.is_none() || seen1.is_some(),
            "saw key 2 but not key 1, inserted before it"
        );
        let stats = map.stats();
        assert_eq!(
            (stats.promotions, stats.recent_len, stats.slow_reads),
            (0, 2, 0),
            "both keys in the recent table, no read took the lock"
        );
        assert_eq!(map.get_cloned(&1), Some(10));
        assert_eq!(map.get_cloned(&2), Some(20));
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

/// (g) Lock-free reads racing the growth of the recent table's slot array: with
/// `AtMost(4)` the array starts with two slots (one key), so inserting key 2 doubles it,
/// publishing a copy and retiring the old array. Key 1, present before the race, is found
/// whichever array the reader loads; key 2 is found or not; no read takes the lock and
/// nothing is promoted. A second doubling (key 3) follows the race.
#[test]
fn reads_racing_recent_growth() {
    model("reads_racing_recent_growth", |swap| {
        let map = new_map(Promotion::DirtyLen, at_most(4));
        map.insert(1, 10);
        let (m1, m2) = (map.clone(), map.clone());
        let (second, (seen2, seen1)) = race(
            swap,
            move || m1.insert(2, 20),
            move || {
                let m = m2.pin();
                (m.get(&2).copied(), m.get(&1).copied())
            },
        );
        assert!(!second);
        assert_eq!(seen1, Some(10), "key 1 lost while the slot array grew");
        assert!(seen2.is_none() || seen2 == Some(20), "key 2: {seen2:?}");
        assert!(!map.insert(3, 30));
        let stats = map.stats();
        assert_eq!(
            (stats.promotions, stats.recent_len, stats.slow_reads),
            (0, 3, 0)
        );
        assert_eq!(contents(&map), [(1, 10), (2, 20), (3, 30)]);
    });
}

/// (b) A lock-free read of an absent key racing an insert of a different new key into
/// the recent table: the read always finds nothing (and never takes the lock). The
/// absent key, the new key and a key already in the recent table share their first
/// probe slot, so the read walks past the slot being filled.
#[test]
fn absent_get_racing_recent_insert() {
    model("absent_get_racing_recent_insert", |swap| {
        let keys = keys_sharing_a_slot(3, 16);
        let (old, new, absent) = (keys[0], keys[1], keys[2]);
        let map = new_map(Promotion::DirtyLen, RecentKeys::Auto);
        map.insert(old, 1);
        let (m1, m2) = (map.clone(), map.clone());
        let (replaced, (missing, found)) = race(
            swap,
            move || m1.insert(new, 2),
            move || {
                let m = m2.pin();
                (m.get(&absent).copied(), m.get(&old).copied())
            },
        );
        assert!(!replaced);
        assert_eq!(missing, None, "absent key {absent} found");
        assert_eq!(found, Some(1), "key {old} of the recent table lost");
        let stats = map.stats();
        assert_eq!((stats.recent_len, stats.slow_reads), (2, 0));
        assert_eq!(map.get_cloned(&absent), None);
        let mut expected = [(old, 1), (new, 2)];
        expected.sort_unstable();
        assert_eq!(contents(&map), expected);
    });
}

/// (c) A lock-free read racing the promotion triggered by a full recent table
/// (`RecentKeys::AtMost(1)`): key 1 fills the recent table; the insert of key 2 finds it
/// full, promotes the dirty table under the lock (key 1 moves into the new main table)
/// and adds key 2 to the new read table's recent table. A read of key 1 finds it in the
/// old recent table or the new main table; a read of key 2 finds nothing (old table: not
/// in its recent table, not amended) or the value (new table). The writer reads its own
/// key back.
fn get_racing_recent_full_promotion(key: u64, swap: bool) {
    let map = new_map(Promotion::DirtyLen, at_most(1));
    map.insert(1, 10);
    assert_eq!(map.stats().recent_len, 1);
    let (m1, m2) = (map.clone(), map.clone());
    let ((inserted, own), seen) = race(
        swap,
        move || {
            let m = m1.pin();
            (m.insert(2, 20).is_none(), m.get(&2).copied())
        },
        move || m2.pin().get(&key).copied(),
    );
    assert_eq!((inserted, own), (true, Some(20)));
    if key == 1 {
        assert_eq!(seen, Some(10), "key 1 lost by the promotion");
    } else {
        assert!(seen.is_none() || seen == Some(20), "key 2: {seen:?}");
    }
    let stats = map.stats();
    assert_eq!(
        (
            stats.promotions,
            stats.recent_full_promotions,
            stats.slow_reads
        ),
        (1, 1, 0),
        "the full recent table promoted once; no read took the lock"
    );
    assert_eq!((stats.read_len, stats.recent_len), (1, 1));
    assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    // The next new key finds the recent table full again: key 2 is promoted, key 3 fills
    // the new recent table.
    assert!(!map.insert(3, 30));
    assert_eq!((map.stats().read_len, map.stats().recent_len), (2, 1));
    assert_eq!(contents(&map), [(1, 10), (2, 20), (3, 30)]);
}

#[test]
fn get_racing_recent_full_promotion_first_key() {
    model("get_racing_recent_full_promotion_first_key", |swap| {
        get_racing_recent_full_promotion(1, swap)
    });
}

#[test]
fn get_racing_recent_full_promotion_second_key() {
    model("get_racing_recent_full_promotion_second_key", |swap| {
        get_racing_recent_full_promotion(2, swap)
    });
}

/// (c2) Two inserts of one new key when the recent table has room for one more key
/// (`AtMost(4)`, three keys in it, eight slots): one reserves the room and adds without
/// the lock, the
/// other finds no room, takes the lock, does not find the key (the first has not filled
/// its slot yet) and finds the table full. The promotion that follows must not publish
/// two entries for the key: exactly one insert finds the key absent, and the map holds
/// it once. (Adding the key to the dirty table before promoting published both.)
#[test]
fn same_new_key_racing_a_full_recent_table() {
    model("same_new_key_racing_a_full_recent_table", |swap| {
        let map = new_map(Promotion::DirtyLen, at_most(4));
        for k in 1..4 {
            map.insert(k, k * 10);
        }
        assert_eq!(map.stats().recent_len, 3);
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(swap, move || m1.insert(7, 70), move || m2.insert(7, 71));
        assert!(a != b, "both inserts found key 7 absent (or both present)");
        map.promote();
        let seen = contents(&map);
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[3] == (7, 70) || seen[3] == (7, 71), "{seen:?}");
    });
}

/// (d) `remove(1)` racing `get_or_insert(1, 12)` with key 1 in the recent table: both
/// work on the entry without the lock (the remove deletes it in place; the entry stays
/// in the dirty table); afterwards a promotion and the follow-up rebuild expunge a
/// deleted entry, and storing key 1 again unexpunges it.
#[test]
fn remove_racing_get_or_insert_recent() {
    model("remove_racing_get_or_insert_recent", |swap| {
        remove_racing_get_or_insert(Setup::Recent, swap)
    });
}

/// Two `compare_exchange` calls on a key of the recent table; with `EveryMiss` each
/// lookup through the recent table also promotes (reader-driven promotion racing the
/// other thread's CAS).
#[test]
fn compare_exchange_race_recent() {
    model("compare_exchange_race_recent", |swap| {
        compare_exchange_race(Setup::Recent, swap)
    });
}

/// (e) Iteration racing an insert of a new key while the recent table holds key 3
/// (`RecentKeys::Auto`): the iteration walks the main table, then the recent table's
/// slots without the lock, so it sees keys 1 (main table) and 3 (recent table) exactly
/// once, and key 2 or not depending on whether its slot was filled before the walk read
/// it. (`iter_racing_rebuild` covers the recent table's first key, which allocates the
/// slot array.)
#[test]
fn iter_racing_recent_insert() {
    model("iter_racing_recent_insert", |swap| {
        let map = new_map(Promotion::DirtyLen, RecentKeys::Auto);
        map.insert(1, 10);
        assert!(map.promote()); // key 1 in the main table
        map.insert(3, 30); // rebuild; key 3 in the recent table
        let stats = map.stats();
        assert_eq!((stats.read_len, stats.recent_len), (1, 1));
        let (m1, m2) = (map.clone(), map.clone());
        let (seen, prev) = race(
            swap,
            move || {
                let m = m1.pin();
                let mut seen: Vec<(u64, u64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
                seen.sort_unstable();
                seen
            },
            move || m2.pin().insert(2, 20).copied(),
        );
        assert_eq!(prev, None);
        assert!(
            seen == [(1, 10), (3, 30)] || seen == [(1, 10), (2, 20), (3, 30)],
            "iter saw {seen:?}"
        );
        assert_eq!(contents(&map), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(map.stats().promotions, 1, "iteration promoted");
    });
}

/// (f) Reader-driven promotion racing a new-key insert (`EveryMiss`, `Auto`): key 1 is
/// in the recent table; a lock-free read of it counts a recent lookup and, with
/// `EveryMiss`, takes the lock and promotes. The other thread inserts key 2 (into the
/// old recent table, promoted with it, or, after the promotion, rebuilding the dirty
/// table into the new one) and reads both keys back. The recent table's version of
/// `read_racing_promotion`.
#[test]
fn read_racing_reader_promotion() {
    model("read_racing_reader_promotion", |swap| {
        let map = map_with_key(Setup::Recent, 10);
        let (m1, m2) = (map.clone(), map.clone());
        let (read, (inserted, reread, other)) = race(
            swap,
            move || m1.pin().get(&1).copied(),
            move || {
                let m = m2.pin();
                let inserted = m.insert(2, 20).is_none();
                (inserted, m.get(&2).copied(), m.get(&1).copied())
            },
        );
        assert_eq!(read, Some(10), "the promoting read lost its key");
        assert_eq!((inserted, reread, other), (true, Some(20), Some(10)));
        let stats = map.stats();
        assert!(stats.promotions >= 1, "no read promoted");
        assert_eq!(stats.slow_reads, 0, "a read took the slow path");
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

/// Two lock-free reads of two keys of the recent table, each promoting (`EveryMiss`):
/// whichever promotes first, the other finds its key in the old recent table or the new
/// main table. The recent table's version of `reads_racing_promotion`.
#[test]
fn reads_racing_reader_promotion() {
    model("reads_racing_reader_promotion", |swap| {
        let map = new_map(Promotion::EveryMiss, RecentKeys::Auto);
        map.insert(1, 10);
        map.insert(2, 20);
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(
            swap,
            move || m1.pin().get(&1).copied(),
            move || m2.pin().get(&2).copied(),
        );
        assert_eq!((a, b), (Some(10), Some(20)));
        let stats = map.stats();
        assert!(
            (1..=2).contains(&stats.promotions),
            "promotions: {}",
            stats.promotions
        );
        assert_eq!(stats.slow_reads, 0);
        assert_eq!(contents(&map), [(1, 10), (2, 20)]);
    });
}

// --------------------------------------------------------------- rebuild in steps

/// A dirty-table rebuild in steps of one entry, half done. Keys 1 and 2 are in the read
/// table, key 1 deleted; new key 3 started the rebuild, which visited one of the two
/// entries (which one depends on the bucket order). One thread inserts new key 4, whose
/// step visits the other entry (expunging key 1's, or copying key 2's); the other thread
/// stores key 1 again (lock-free if its entry is still deleted, through the unexpunge
/// path if the rebuild got there first) and removes key 2 (lock-free either way). Every
/// order must end with {1: 11, 3: 30, 4: 40}, and the promotion that finishes the
/// rebuild and the next rebuild must keep it. With `AtMost(1)` the insert of key 4
/// finds the recent table full and promotes instead, finishing the rebuild under the
/// other thread's feet.
#[test]
fn stores_racing_rebuild_step() {
    model_each_recent("stores_racing_rebuild_step", |swap, recent| {
        let map = Arc::new(
            SyncMap::builder()
                .hasher(BuildHasherDefault::default())
                .promotion(Promotion::DirtyLen)
                .recent_keys(recent)
                .rebuild_step(1)
                .build(),
        );
        assert!(!map.insert(1, 10));
        assert!(!map.insert(2, 20));
        map.promote();
        assert!(map.remove(&1));
        // (With `AtMost(1)` key 2 found the recent table full: that promotion's rebuild
        // already visited key 1's entry; count only the new rebuild's visits.)
        let s0 = map.stats();
        assert!(!map.insert(3, 30));
        let s = map.stats();
        assert_eq!(
            (
                s.rebuild_copied + s.expunged - s0.rebuild_copied - s0.expunged,
                s.longest_rebuild_step
            ),
            (1, 1)
        );
        let (m1, m2) = (map.clone(), map.clone());
        let (new_key, (prev1, removed2)) = race(
            swap,
            move || m1.pin().insert(4, 40).copied(),
            move || {
                let m = m2.pin();
                (m.insert(1, 11).copied(), m.remove(&2).copied())
            },
        );
        assert_eq!((new_key, prev1, removed2), (None, None, Some(20)));
        assert_eq!(contents(&map), [(1, 11), (3, 30), (4, 40)]);
        map.promote();
        assert_eq!(map.stats().dirty_len, None);
        assert_eq!(contents(&map), [(1, 11), (3, 30), (4, 40)]);
        assert!(!map.insert(5, 50));
        map.promote();
        assert_eq!(contents(&map), [(1, 11), (3, 30), (4, 40), (5, 50)]);
    });
}

// ------------------------------------------------------------- lock-free new keys

/// A map (`Auto`, `DirtyLen`: no read promotes) whose recent table already holds key
/// 100, so its slot array exists and new keys are added without the lock.
fn map_with_recent_array() -> Arc<Map> {
    let map = new_map(Promotion::DirtyLen, RecentKeys::Auto);
    assert!(!map.insert(100, 1000));
    map
}

/// (h) Two lock-free inserts of the same new key: both reserve room and race to fill a
/// slot by compare-and-swap; the loser finds the winner's entry in that slot and stores
/// into it. One insert sees the key absent, the other replaces its value; the map holds
/// the loser's value; the loser's reservation is given back (the recent table counts two
/// keys); no operation takes the lock.
#[test]
fn insert_racing_insert_of_new_key() {
    model("insert_racing_insert_of_new_key", |swap| {
        let map = map_with_recent_array();
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(
            swap,
            move || m1.pin().insert(1, 10).copied(),
            move || m2.pin().insert(1, 20).copied(),
        );
        let last = match (a, b) {
            (None, Some(10)) => 20,
            (Some(20), None) => 10,
            other => panic!("inserts returned {other:?}"),
        };
        let s = map.stats();
        assert_eq!((s.new_keys, s.overwrites), (2, 1), "{s:?}");
        assert_eq!((s.recent_len, s.slow_reads, s.promotions), (2, 0, 0));
        assert_eq!(contents(&map), [(1, last), (100, 1000)]);
    });
}

/// (i) Two lock-free `get_or_insert` calls of the same new key: exactly one inserts, and
/// both return the value it inserted.
#[test]
fn get_or_insert_racing_get_or_insert_of_new_key() {
    model("get_or_insert_racing_get_or_insert_of_new_key", |swap| {
        let map = map_with_recent_array();
        let (m1, m2) = (map.clone(), map.clone());
        let ((va, ia), (vb, ib)) = race(
            swap,
            move || {
                let m = m1.pin();
                let (v, inserted) = m.get_or_insert(1, 10);
                (*v, inserted)
            },
            move || {
                let m = m2.pin();
                let (v, inserted) = m.get_or_insert(1, 20);
                (*v, inserted)
            },
        );
        assert!(ia != ib, "exactly one inserts: {ia} {ib}");
        let winner = if ia { 10 } else { 20 };
        assert_eq!((va, vb), (winner, winner));
        assert_eq!(map.stats().recent_len, 2);
        assert_eq!(contents(&map), [(1, winner), (100, 1000)]);
    });
}

/// (j) A lock-free insert of a new key racing an explicit promotion, which closes the
/// recent table and moves its entries into the new main table: the insert either
/// reserved room before the close (which waits for it, and its key is moved with the
/// others) or finds the table closed and inserts under the lock into the new read table
/// (rebuilding the dirty table). The key is never lost or doubled.
#[test]
fn new_key_racing_promotion() {
    model("new_key_racing_promotion", |swap| {
        insert_racing_promotion(map_with_recent_array(), swap, &[(100, 1000)]);
    });
}

/// Races a lock-free insert of key 1 with an explicit promotion of `map`, whose recent
/// table holds a key; checks that key 1 ends up in the map once, beside `present`.
fn insert_racing_promotion(map: Arc<Map>, swap: bool, present: &[(u64, u64)]) {
    let (m1, m2) = (map.clone(), map.clone());
    let (prev, promoted) = race(
        swap,
        move || m1.pin().insert(1, 10).copied(),
        move || m2.promote(),
    );
    assert_eq!(prev, None);
    assert!(promoted, "the recent table held a key");
    let s = map.stats();
    assert_eq!(s.read_len + s.recent_len, present.len() + 1, "{s:?}");
    assert_eq!(s.new_keys as usize, present.len() + 1);
    let mut expected = present.to_vec();
    expected.push((1, 10));
    expected.sort_unstable();
    assert_eq!(contents(&map), expected);
    map.promote();
    assert_eq!(contents(&map), expected);
}

/// (k) A lock-free insert racing the growth of the recent table's slot array. With
/// `AtMost(8)` the array starts with two slots and doubles when more than half full, so
/// after keys 1 to 3 it has 8 slots, 3 filled. Whichever insert reserves the 4th place
/// adds without the lock; the other finds no room and doubles the array under the lock,
/// closing the old one before linking it to the new one, whose first migration step
/// (default steps: 128 slots) copies it whole. The lock-free add reserved before the close
/// (which waits for it; it is copied) or finds the array closed or replaced and retries
/// under the lock.
/// Both keys end up in the recent table; nothing is promoted.
#[test]
fn new_key_racing_recent_growth() {
    model("new_key_racing_recent_growth", |swap| {
        let map = new_map(Promotion::DirtyLen, at_most(8));
        for k in 1..=3 {
            assert!(!map.insert(k, k * 10));
        }
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(
            swap,
            move || m1.pin().insert(4, 40).copied(),
            move || m2.pin().insert(5, 50).copied(),
        );
        assert_eq!((a, b), (None, None));
        let s = map.stats();
        assert_eq!((s.recent_len, s.promotions, s.new_keys), (5, 0, 5), "{s:?}");
        let expected: Vec<(u64, u64)> = (1..=5).map(|k| (k, k * 10)).collect();
        assert_eq!(contents(&map), expected);
    });
}

/// (l2) A lock-free insert racing the promotion a full recent table triggers: `Auto` with
/// an empty read table allows 8 recent keys; 7 are there. Whichever insert reserves the
/// 8th place adds without the lock; the other finds the table full and promotes under the
/// lock, closing the recent table and keeping it as the new read table's level, then adds
/// its own key. The lock-free add reserved before the close (which waits for it; its key
/// is in the level) or finds the table closed and inserts into the new read table. No key
/// is lost.
#[test]
fn new_key_racing_full_promotion() {
    model("new_key_racing_full_promotion", |swap| {
        let map = new_map(Promotion::DirtyLen, RecentKeys::Auto);
        for k in 1..=7 {
            assert!(!map.insert(k, k * 10));
        }
        let (m1, m2) = (map.clone(), map.clone());
        let (a, b) = race(
            swap,
            move || m1.pin().insert(8, 80).copied(),
            move || m2.pin().insert(9, 90).copied(),
        );
        assert_eq!((a, b), (None, None));
        let s = map.stats();
        assert_eq!((s.promotions, s.recent_full_promotions), (1, 1), "{s:?}");
        assert_eq!((s.read_len + s.recent_len, s.new_keys), (9, 9), "{s:?}");
        let expected: Vec<(u64, u64)> = (1..=9).map(|k| (k, k * 10)).collect();
        assert_eq!(contents(&map), expected);
    });
}

/// (l) A lock-free insert of a new key racing `clear`, which closes the recent table
/// before detaching its entries: the insert is ordered before the clear (its key is
/// cleared) or after it (it finds the table closed, or the new empty table, and its key
/// stays).
/// `len` agrees with `iter` either way (every entry detached was counted once).
#[test]
fn new_key_racing_clear() {
    model("new_key_racing_clear", |swap| {
        let map = map_with_recent_array();
        let (m1, m2) = (map.clone(), map.clone());
        let (prev, ()) = race(
            swap,
            move || m1.pin().insert(1, 10).copied(),
            move || m2.clear(),
        );
        assert_eq!(prev, None);
        let after = contents(&map);
        assert!(
            after.is_empty() || after == [(1, 10)],
            "after clear: {after:?}"
        );
        assert!(!map.insert(2, 20));
        assert_eq!(map.get_cloned(&100), None);
    });
}

// ------------------------------------------------- levels and a lagging rebuild

/// A map (`AtMost(4)`, `DirtyLen`, one entry per rebuild step) bulk-loaded with keys
/// 0..16 whose recent table was then filled to its limit (keys 100..104): the rebuild
/// started by the first of those has visited four of the sixteen entries, so the next
/// new key finds the recent table full while the rebuild lags.
fn map_with_full_recent_and_lagging_rebuild() -> Arc<Map> {
    let mut map: Map = SyncMap::builder()
        .hasher(BuildHasherDefault::default())
        .promotion(Promotion::DirtyLen)
        .recent_keys(at_most(4))
        .rebuild_step(1)
        .build();
    map.extend((0..16).map(|k| (k, k)));
    for k in 100..104 {
        assert!(!map.insert(k, k));
    }
    let s = map.stats();
    assert_eq!((s.recent_len, s.promotions), (4, 0), "{s:?}");
    assert!(s.rebuild_pending > 0, "{s:?}");
    Arc::new(map)
}

/// (m) Two inserts of one new key into a full recent table while the rebuild lags: both
/// are refused room without the lock and add under it, past the table's limit, without
/// a promotion (each takes a rebuild step). Exactly one finds the key absent; the map
/// holds it once, before and after the explicit promotion that moves the overflowed
/// table into the main table.
#[test]
fn same_new_key_racing_into_an_overflowing_recent_table() {
    model(
        "same_new_key_racing_into_an_overflowing_recent_table",
        |swap| {
            let map = map_with_full_recent_and_lagging_rebuild();
            let (m1, m2) = (map.clone(), map.clone());
            let (a, b) = race(swap, move || m1.insert(50, 500), move || m2.insert(50, 501));
            assert!(a != b, "both inserts found key 50 absent (or both present)");
            let s = map.stats();
            assert_eq!((s.recent_len, s.promotions), (5, 0), "{s:?}");
            let seen = contents(&map);
            assert_eq!(seen.len(), 21, "{seen:?}");
            assert!(
                seen.contains(&(50, 500)) || seen.contains(&(50, 501)),
                "{seen:?}"
            );
            map.promote();
            assert_eq!(contents(&map), seen);
        },
    );
}

/// (n) A lock-free read and iteration racing the insert that overflows the recent
/// table (as in (m)), then the promotion that keeps the table as a level: the reader
/// sees key 50 absent or present, never a wrong value; the iteration sees every other key
/// exactly once (`contents` checks for doubles) and key 50 at most once.
#[test]
fn reads_racing_overflow_and_level() {
    model("reads_racing_overflow_and_level", |swap| {
        let map = map_with_full_recent_and_lagging_rebuild();
        let (m1, m2) = (map.clone(), map.clone());
        let (_, (got, n)) = race(
            swap,
            move || {
                m1.insert(50, 500);
                // The rebuild has 16 - 5 entries left: finish it with new keys (one step
                // each), until the table, three quarters full, forces the promotion that
                // keeps it as a level.
                let mut k = 200;
                while m1.stats().promotions == 0 {
                    m1.insert(k, k);
                    k += 1;
                }
            },
            move || {
                let got = m2.get_cloned(&50);
                let n = m2
                    .pin()
                    .iter()
                    .filter(|(k, _)| **k < 16 || **k == 50)
                    .count();
                (got, n)
            },
        );
        assert!(got.is_none() || got == Some(500), "{got:?}");
        assert!(n == 16 || n == 17, "iteration saw {n} of keys 0..16 and 50");
        assert_eq!(map.get_cloned(&50), Some(500));
        let s = map.stats();
        // The promotion was the one a full recent table forces: it kept the table.
        assert_eq!(
            (s.recent_full_promotions, s.longest_promotion_move),
            (1, 0),
            "{s:?}"
        );
        let seen = contents(&map);
        assert!(
            seen.contains(&(50, 500)) && seen.contains(&(103, 103)),
            "{seen:?}"
        );
    });
}

/// (o) An insert and then a remove of a new key, racing `get_or_insert` of the same key
/// when the recent table has room for one more key (`AtMost(4)`, three keys in it): the
/// insert may take the last room without the lock while `get_or_insert`, refused room,
/// finds the table full and promotes, keeping the table as a level and starting the
/// next rebuild, whose first step expunges the key if the remove came in between. It
/// must then put the entry back instead of storing into an expunged entry (which
/// panicked here). Outcomes: `get_or_insert` inserts 60 (before the insert, or after the
/// remove) or finds 50 (between them); the key stays only if it inserted after the
/// remove.
#[test]
fn get_or_insert_racing_insert_and_remove_at_a_full_recent_table() {
    model(
        "get_or_insert_racing_insert_and_remove_at_a_full_recent_table",
        |swap| {
            let map = new_map(Promotion::DirtyLen, at_most(4));
            for k in 1..4 {
                assert!(!map.insert(k, k * 10));
            }
            let (m1, m2) = (map.clone(), map.clone());
            let (_, got) = race(
                swap,
                move || {
                    m1.insert(5, 50);
                    m1.remove(&5);
                },
                move || {
                    let pinned = m2.pin();
                    let (v, inserted) = pinned.get_or_insert(5, 60);
                    (*v, inserted)
                },
            );
            let seen = contents(&map);
            let base = [(1, 10), (2, 20), (3, 30)];
            match got {
                (60, true) => assert!(seen == base || seen == [(1, 10), (2, 20), (3, 30), (5, 60)]),
                (50, false) => assert_eq!(seen, base),
                other => panic!("get_or_insert returned {other:?}"),
            }
        },
    );
}

/// (p) As (j), one promotion later: the recent table being closed is the second one, so
/// the close must discount the first table's fills (`fills_base` > 0) when it waits for
/// the lock-free add in flight. Key 100 went through the first recent table (promoted),
/// key 101 is in the second; the insert of key 1 races the promotion of the second.
#[test]
fn new_key_racing_promotion_of_a_second_recent_table() {
    model(
        "new_key_racing_promotion_of_a_second_recent_table",
        |swap| {
            let map = map_with_recent_array();
            assert!(map.promote());
            assert!(!map.insert(101, 1010));
            assert_eq!(map.stats().recent_len, 1);
            insert_racing_promotion(map, swap, &[(100, 1000), (101, 1010)]);
        },
    );
}

/// A map (`DirtyLen`, `AtMost(max)`, rebuild steps of `step` entries: migration steps of
/// `2 × step` slots) holding `keys` in its recent table.
fn map_with_migration(max: usize, step: usize, keys: &[u64]) -> Arc<Map> {
    let map = Arc::new(
        SyncMap::builder()
            .hasher(BuildHasherDefault::default())
            .promotion(Promotion::DirtyLen)
            .recent_keys(at_most(max))
            .rebuild_step(step)
            .build(),
    );
    for &k in keys {
        assert!(!map.insert(k, k * 10));
    }
    map
}

/// The first key (from 1) whose home slot in a recent slot array of `slots` slots is
/// `slot`, other than those in `not`. The map mixes the hasher's output before using it
/// (`raw::spread`, private: the same formula, the 128-bit product with 2^64/φ folded).
fn key_at_home(slot: u64, slots: u64, not: &[u64]) -> u64 {
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let spread = |h: u64| {
        let product = u128::from(h) * 0x9e37_79b9_7f4a_7c15;
        (product as u64) ^ ((product >> 64) as u64)
    };
    (1..)
        .find(|&k| spread(hasher.hash_one(k)) & (slots - 1) == slot && !not.contains(&k))
        .unwrap()
}

/// The keys of models (q) and (s): `a` at home slot 3 of 4 (left uncopied by the first
/// two-slot step after the doubling to 8 slots), `b` at home 0 of 4, `c` and `d` at homes
/// 1 and 2 of 8.
fn migration_keys() -> [u64; 4] {
    let a = key_at_home(3, 4, &[]);
    let b = key_at_home(0, 4, &[a]);
    let c = key_at_home(1, 8, &[a, b]);
    [a, b, c, key_at_home(2, 8, &[a, b, c])]
}

/// (q) Lock-free reads racing the migration step that finishes copying a grown slot
/// array's old entries and unlinks the old array. `AtMost(16)` with two-slot steps: the
/// third key doubles the array from 4 slots to 8 and copies only the old array's first
/// two slots, so key `a` (home slot 3 of 4) is still only in the old array. The insert
/// of a fourth key finds the lock-free limit reached (the copy is behind), takes the lock
/// and finishes the copy. A reader that loaded the old array only after probing the new
/// one could miss `a` (not copied yet when probed, and the old array unlinked when
/// loaded); loading the old array first, it finds `a` there, or the old array gone and
/// `a` copied.
#[test]
fn reads_racing_a_migration_step() {
    model("reads_racing_a_migration_step", |swap| {
        let [a, b, c, d] = migration_keys();
        let map = map_with_migration(16, 1, &[a, b, c]);
        assert_eq!(map.stats().recent_growth_pending, 2, "{:?}", map.stats());
        let (m1, m2) = (map.clone(), map.clone());
        let (added, (seen_a, seen_b)) = race(
            swap,
            move || m1.pin().insert(d, d * 10).copied(),
            move || {
                let m = m2.pin();
                (m.get(&a).copied(), m.get(&b).copied())
            },
        );
        assert_eq!(added, None);
        assert_eq!(
            seen_a,
            Some(a * 10),
            "key a lost while its array was copied"
        );
        assert_eq!(seen_b, Some(b * 10));
        let s = map.stats();
        assert_eq!(
            (
                s.recent_growth_pending,
                s.recent_len,
                s.promotions,
                s.slow_reads
            ),
            (0, 4, 0, 0),
            "{s:?}"
        );
        let mut expected: Vec<(u64, u64)> = [a, b, c, d].iter().map(|&k| (k, k * 10)).collect();
        expected.sort_unstable();
        assert_eq!(contents(&map), expected);
    });
}

/// (r) Two inserts of one new key `x` racing at a recent table one key short of its
/// slot array's limit (`AtMost(16)`, four-slot migration steps: 3 keys in 8 slots, limit
/// 4, the last growth's copy done). The insert that reserves the last place adds `x` to
/// the array without the lock; the other finds no room, takes the lock and doubles the
/// array, closing the old one (waiting for that add) and copying only four slots of it
/// (the pace needs two); `x` (home slot 7) is not among them. It must then find `x` in the old array before adding its own entry to
/// the new one (else the key would have two entries): one insert adds, the other
/// replaces.
#[test]
fn same_new_key_racing_a_growth() {
    model("same_new_key_racing_a_growth", |swap| {
        let keys: Vec<u64> = (0..3).map(|i| key_at_home(i, 8, &[])).collect();
        let x = key_at_home(7, 8, &keys);
        let map = map_with_migration(16, 2, &keys);
        let s = map.stats();
        assert_eq!((s.recent_len, s.recent_growth_pending), (3, 0), "{s:?}");
        let (m1, m2) = (map.clone(), map.clone());
        let (first, second) = race(
            swap,
            move || m1.pin().insert(x, 1).copied(),
            move || m2.pin().insert(x, 2).copied(),
        );
        assert!(
            matches!((first, second), (None, Some(1)) | (Some(2), None)),
            "one insert adds, the other replaces: {first:?} {second:?}"
        );
        let s = map.stats();
        assert_eq!((s.recent_len, s.new_keys, s.promotions), (4, 4, 0), "{s:?}");
        let mut expected: Vec<(u64, u64)> = keys.iter().map(|&k| (k, k * 10)).collect();
        expected.push((x, if first.is_none() { 2 } else { 1 }));
        expected.sort_unstable();
        assert_eq!(contents(&map), expected);
    });
}

/// (s) Iteration racing the migration step of (q): the iteration walks the old array
/// (if still linked when it starts), then the new one, skipping the entries it copied;
/// each key is seen exactly once, the new key `d` or not.
#[test]
fn iter_racing_a_migration_step() {
    model("iter_racing_a_migration_step", |swap| {
        let [a, b, c, d] = migration_keys();
        let map = map_with_migration(16, 1, &[a, b, c]);
        assert_eq!(map.stats().recent_growth_pending, 2);
        let (m1, m2) = (map.clone(), map.clone());
        let (added, seen) = race(
            swap,
            move || m1.pin().insert(d, d * 10).copied(),
            move || {
                let mut seen: Vec<u64> = m2.pin().iter().map(|(k, _)| *k).collect();
                seen.sort_unstable();
                seen
            },
        );
        assert_eq!(added, None);
        let mut old = vec![a, b, c];
        old.sort_unstable();
        let mut all = vec![a, b, c, d];
        all.sort_unstable();
        assert!(seen == old || seen == all, "iter saw {seen:?}");
    });
}
