//! Panic safety: user code (`Hash`, `Eq`, `PartialEq` of values, closures) that panics
//! in the middle of an operation — including while the dirty-table mutex is held —
//! leaves the map usable, consistent with a model, free of deadlock and poison, and
//! leak-free (every key and value created is dropped exactly once).

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Once};
use std::time::Duration;

use readmostly::{Promotion, RecentKeys, SyncMap};

/// The payload of every injected panic (the panic hook keeps these quiet).
const INJECTED: &str = "injected panic";

thread_local! {
    /// Hashing a key with this id panics.
    static PANIC_ON_HASH: Cell<Option<u32>> = const { Cell::new(None) };
    /// Comparing two keys that both have this id panics (so only a lookup that reaches
    /// the stored key itself panics, not one that compares against other keys).
    static PANIC_ON_EQ: Cell<Option<u32>> = const { Cell::new(None) };
    /// Comparing two values panics.
    static PANIC_ON_VALUE_EQ: Cell<bool> = const { Cell::new(false) };
    /// Cloning a key or value panics once this many more clones have succeeded.
    static PANIC_ON_CLONE_AFTER: Cell<Option<u32>> = const { Cell::new(None) };
    /// This thread is inside [`expect_panic`]: keep injected panics quiet.
    static EXPECTING: Cell<bool> = const { Cell::new(false) };
}

fn disarm() {
    PANIC_ON_HASH.with(|c| c.set(None));
    PANIC_ON_EQ.with(|c| c.set(None));
    PANIC_ON_VALUE_EQ.with(|c| c.set(false));
    PANIC_ON_CLONE_AFTER.with(|c| c.set(None));
}

/// Counts a clone down; panics when the count is used up.
fn clone_countdown() {
    PANIC_ON_CLONE_AFTER.with(|c| match c.get() {
        Some(0) => injected_panic(),
        Some(n) => c.set(Some(n - 1)),
        None => {}
    });
}

fn injected_panic() -> ! {
    std::panic::panic_any(INJECTED)
}

/// Installs (once) a panic hook that stays silent for injected panics expected by
/// [`expect_panic`] and reports all others as usual.
fn quiet_injected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = EXPECTING.with(Cell::get)
                && info.payload().downcast_ref::<&str>() == Some(&INJECTED);
            if !expected {
                default(info);
            }
        }));
    });
}

/// Creation and drop counts of keys and values.
#[derive(Debug, Default)]
struct Counts {
    keys_made: AtomicUsize,
    keys_dropped: AtomicUsize,
    values_made: AtomicUsize,
    values_dropped: AtomicUsize,
}

impl Counts {
    fn assert_all_dropped(&self) {
        assert_eq!(
            self.keys_made.load(SeqCst),
            self.keys_dropped.load(SeqCst),
            "keys leaked or double-dropped"
        );
        assert_eq!(
            self.values_made.load(SeqCst),
            self.values_dropped.load(SeqCst),
            "values leaked or double-dropped"
        );
    }
}

/// A key whose `Hash` and `Eq` panic on demand.
#[derive(Debug)]
struct Key {
    id: u32,
    counts: Arc<Counts>,
}

impl Key {
    fn new(id: u32, counts: &Arc<Counts>) -> Self {
        counts.keys_made.fetch_add(1, SeqCst);
        Key {
            id,
            counts: counts.clone(),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.counts.keys_dropped.fetch_add(1, SeqCst);
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        clone_countdown();
        Key::new(self.id, &self.counts)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if PANIC_ON_HASH.with(Cell::get) == Some(self.id) {
            injected_panic();
        }
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        if PANIC_ON_EQ.with(Cell::get) == Some(self.id) && other.id == self.id {
            injected_panic();
        }
        self.id == other.id
    }
}

impl Eq for Key {}

/// A value whose `PartialEq` panics on demand.
#[derive(Debug)]
struct Val {
    v: u32,
    counts: Arc<Counts>,
}

impl Val {
    fn new(v: u32, counts: &Arc<Counts>) -> Self {
        counts.values_made.fetch_add(1, SeqCst);
        Val {
            v,
            counts: counts.clone(),
        }
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        self.counts.values_dropped.fetch_add(1, SeqCst);
    }
}

impl Clone for Val {
    fn clone(&self) -> Self {
        clone_countdown();
        Val::new(self.v, &self.counts)
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        if PANIC_ON_VALUE_EQ.with(Cell::get) {
            injected_panic();
        }
        self.v == other.v
    }
}

type Map = SyncMap<Key, Val>;

/// Highest key id the tests use.
const KEYS: u32 = 8;

fn rules() -> [Promotion; 3] {
    [
        Promotion::DirtyLen,
        Promotion::EveryMiss,
        Promotion::AfterMisses(NonZeroUsize::new(2).unwrap()),
    ]
}

/// Runs `f`, which must panic with an injected panic; disarms every trigger afterwards.
fn expect_panic<R>(what: &str, f: impl FnOnce() -> R) {
    quiet_injected_panics();
    EXPECTING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    EXPECTING.with(|c| c.set(false));
    disarm();
    match result {
        Ok(_) => panic!("{what}: expected an injected panic"),
        Err(payload) => assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&INJECTED),
            "{what}: wrong panic"
        ),
    }
}

/// The map agrees with `model` (key id → value) through `get`, `iter` and `len`.
fn check(map: &Map, model: &HashMap<u32, u32>, counts: &Arc<Counts>, context: &str) {
    let m = map.pin();
    for id in 0..KEYS {
        let k = Key::new(id, counts);
        assert_eq!(
            m.get(&k).map(|v| v.v),
            model.get(&id).copied(),
            "{context}: get({id})"
        );
    }
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for (k, v) in m.iter() {
        assert!(
            seen.insert(k.id, v.v).is_none(),
            "{context}: key {} visited twice",
            k.id
        );
    }
    assert_eq!(&seen, model, "{context}: contents");
    assert_eq!(map.len(), model.len(), "{context}: len");
}

/// Every operation still works (on a fresh thread, so a lock left held by the panicking
/// thread would show as a deadlock, caught by a generous watchdog rather than a hang).
/// Returns the model updated by those operations.
fn check_usable_elsewhere(
    map: &Arc<Map>,
    model: &HashMap<u32, u32>,
    counts: &Arc<Counts>,
    context: &str,
) -> HashMap<u32, u32> {
    let (map, mut model, counts, context) = (
        map.clone(),
        model.clone(),
        counts.clone(),
        context.to_string(),
    );
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        exercise(&map, &mut model, &counts, &context);
        tx.send(()).unwrap();
        model
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        panic!("map unusable after a panic (deadlock or panic on another thread)");
    }
    worker.join().unwrap()
}

/// A round of every operation, checked against the model.
fn exercise(map: &Map, model: &mut HashMap<u32, u32>, counts: &Arc<Counts>, context: &str) {
    check(map, model, counts, context);
    let k = |id| Key::new(id, counts);
    let v = |x| Val::new(x, counts);
    let m = map.pin();
    for id in 0..KEYS {
        let prev = m.insert(k(id), v(100 + id)).map(|p| p.v);
        assert_eq!(prev, model.insert(id, 100 + id), "{context}: insert({id})");
    }
    for id in 0..KEYS {
        assert_eq!(
            m.get_or_insert(k(id), v(0)).0.v,
            100 + id,
            "{context}: get_or_insert({id})"
        );
        let (r, inserted) = m.get_or_insert_with(k(id), || unreachable!());
        assert_eq!((r.v, inserted), (100 + id, false));
        assert!(
            m.compare_exchange(&k(id), &v(100 + id), v(200 + id))
                .is_ok(),
            "{context}: compare_exchange({id})"
        );
        model.insert(id, 200 + id);
    }
    for id in (0..KEYS).step_by(2) {
        assert_eq!(
            m.remove(&k(id)).map(|p| p.v),
            model.remove(&id),
            "{context}: remove({id})"
        );
    }
    assert_eq!(
        m.remove_if(&k(1), |x| x.v == 201).map(|p| p.v),
        model.remove(&1)
    );
    m.retain(|key, _| key.id != 3);
    model.remove(&3);
    drop(m);
    check(map, model, counts, context);
    map.clear();
    model.clear();
    check(map, model, counts, context);
    for id in 0..KEYS / 2 {
        map.insert(k(id), v(id));
        model.insert(id, id);
    }
    check(map, model, counts, context);
}

/// A map in a rich state: keys `0..4` promoted to the read table, key 4 deleted in the
/// read table, key 5 inserted after the promotion (dirty table and recent table).
fn populated(promotion: Promotion, counts: &Arc<Counts>) -> (Arc<Map>, HashMap<u32, u32>) {
    populated_with(promotion, RecentKeys::Auto, counts)
}

/// [`populated`] with the given recent-table setting (with [`RecentKeys::Off`], key 5 is
/// in the dirty table only: found under the lock).
fn populated_with(
    promotion: Promotion,
    recent: RecentKeys,
    counts: &Arc<Counts>,
) -> (Arc<Map>, HashMap<u32, u32>) {
    let map: Map = SyncMap::builder()
        .promotion(promotion)
        .recent_keys(recent)
        .build();
    let mut model = HashMap::new();
    for id in 0..5 {
        map.insert(Key::new(id, counts), Val::new(id, counts));
        model.insert(id, id);
    }
    assert_eq!(map.pin().iter().count(), 5);
    // With the recent table off, the iteration promoted the dirty table already.
    assert!(map.promote() || recent == RecentKeys::Off);
    map.remove(&Key::new(4, counts));
    model.remove(&4);
    map.insert(Key::new(5, counts), Val::new(5, counts)); // rebuild: expunges key 4
    model.insert(5, 5);
    let s = map.stats();
    assert_eq!((s.read_len, s.dirty_len), (5, Some(5)), "{s:?}");
    (Arc::new(map), model)
}

/// Every keyed operation, each a closure over the map and key id `id`.
type KeyedOp = (&'static str, fn(&Map, u32, &Arc<Counts>));

fn keyed_ops() -> Vec<KeyedOp> {
    vec![
        ("get", |m, id, c| {
            let _ = m.pin().get(&Key::new(id, c)).map(|v| v.v);
        }),
        ("insert", |m, id, c| {
            let _ = m
                .pin()
                .insert(Key::new(id, c), Val::new(77, c))
                .map(|v| v.v);
        }),
        ("SyncMap::insert", |m, id, c| {
            let _ = m.insert(Key::new(id, c), Val::new(77, c));
        }),
        ("get_or_insert", |m, id, c| {
            let _ = m.pin().get_or_insert(Key::new(id, c), Val::new(77, c)).0.v;
        }),
        ("get_or_insert_with", |m, id, c| {
            let _ = m
                .pin()
                .get_or_insert_with(Key::new(id, c), || Val::new(77, c))
                .0
                .v;
        }),
        ("get_or_try_insert_with", |m, id, c| {
            let _ = m
                .pin()
                .get_or_try_insert_with(Key::new(id, c), || Ok::<_, ()>(Val::new(77, c)))
                .map(|(v, _)| v.v);
        }),
        ("remove", |m, id, c| {
            let _ = m.pin().remove(&Key::new(id, c)).map(|v| v.v);
        }),
        ("SyncMap::remove", |m, id, c| {
            let _ = m.remove(&Key::new(id, c));
        }),
        ("compare_exchange", |m, id, c| {
            let _ = m
                .pin()
                .compare_exchange(&Key::new(id, c), &Val::new(id, c), Val::new(77, c))
                .is_ok();
        }),
        ("remove_if", |m, id, c| {
            let _ = m.pin().remove_if(&Key::new(id, c), |_| true).map(|v| v.v);
        }),
        ("update", |m, id, c| {
            let _ = m
                .pin()
                .update(&Key::new(id, c), |v| Val::new(v.v + 1, c))
                .map(|v| v.v);
        }),
        ("contains_key", |m, id, c| {
            let _ = m.contains_key(&Key::new(id, c));
        }),
        ("with", |m, id, c| {
            let _ = m.with(&Key::new(id, c), |v| v.v);
        }),
    ]
}

#[test]
fn hash_panic_in_every_keyed_operation() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        // Key 0: read table; 4: deleted then expunged; 5: dirty only; 7: absent.
        for id in [0, 4, 5, 7] {
            for (name, op) in keyed_ops() {
                let (map, model) = populated(promotion, &counts);
                let context = format!("{promotion:?}, hash panic, {name}({id})");
                PANIC_ON_HASH.with(|c| c.set(Some(id)));
                expect_panic(&context, || op(&map, id, &counts));
                check(&map, &model, &counts, &context);
                check_usable_elsewhere(&map, &model, &counts, &context);
            }
        }
    }
    counts.assert_all_dropped();
}

#[test]
fn eq_panic_on_the_lock_free_path() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        // Key 0 is in the read table: found there, compared there, no lock taken.
        for (name, op) in keyed_ops() {
            let (map, model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, eq panic, {name}(0)");
            PANIC_ON_EQ.with(|c| c.set(Some(0)));
            expect_panic(&context, || op(&map, 0, &counts));
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

/// Key 5 is only in the dirty table: every lookup of it misses the read table, takes
/// the dirty-table mutex and compares against the stored key there — and panics with
/// the mutex held. Later operations, on this and other threads, must neither deadlock
/// nor see a poisoned lock, and the map must be unchanged.
#[test]
fn eq_panic_while_dirty_mutex_held() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        for (name, op) in keyed_ops() {
            let (map, model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, eq panic under the lock, {name}(5)");
            let before = map.stats();
            PANIC_ON_EQ.with(|c| c.set(Some(5)));
            expect_panic(&context, || op(&map, 5, &counts));
            // The dirty table is still there and unchanged (no promotion happened).
            let after = map.stats();
            assert_eq!(
                (after.read_len, after.dirty_len),
                (before.read_len, before.dirty_len),
                "{context}"
            );
            // Every operation, from another thread (behind a watchdog) and then from
            // this one.
            let mut model = check_usable_elsewhere(&map, &model, &counts, &context);
            exercise(&map, &mut model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

/// A panic with the lock held in the middle of a stream of slow-path operations from
/// several threads: none of them may deadlock or observe poison.
#[test]
fn eq_panic_under_lock_with_concurrent_writers() {
    let counts = Arc::new(Counts::default());
    let (map, model) = populated(Promotion::DirtyLen, &counts);
    let running = AtomicUsize::new(2);
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let (map, counts, running) = (&map, &counts, &running);
            s.spawn(move || {
                for i in 0..500u32 {
                    let id = 100 + t * 1000 + i % 50; // new keys: slow path, lock
                    map.insert(Key::new(id, counts), Val::new(i, counts));
                    map.remove(&Key::new(id, counts));
                }
                running.fetch_sub(1, SeqCst);
            });
        }
        let mut panics = 0;
        while running.load(SeqCst) > 0 || panics < 20 {
            // Key 5 starts in the dirty table only; the writers' misses may promote
            // it, after which the panic comes from the lock-free path instead.
            PANIC_ON_EQ.with(|c| c.set(Some(5)));
            expect_panic("contains_key(5)", || {
                map.contains_key(&Key::new(5, &counts))
            });
            panics += 1;
        }
    });
    check(&map, &model, &counts, "after concurrent writers");
    check_usable_elsewhere(&map, &model, &counts, "after concurrent writers");
    drop(map);
    counts.assert_all_dropped();
}

/// Dirty-table rebuilds and promotions reuse each entry's stored hash: a key whose
/// `Hash` panics is never hashed again once inserted.
#[test]
fn rebuild_and_promotion_never_call_user_hash() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        let (map, mut model) = populated(promotion, &counts);
        PANIC_ON_HASH.with(|c| c.set(Some(0)));
        for round in 0..20u32 {
            // Misses promote, new keys rebuild; key 0 sits in every table.
            let id = 10 + round;
            map.insert(Key::new(id, &counts), Val::new(id, &counts));
            model.insert(id, id);
            assert!(map.contains_key(&Key::new(id, &counts)));
            map.remove(&Key::new(id, &counts));
            model.remove(&id);
            assert_eq!(map.pin().iter().count(), model.len());
        }
        map.clear();
        disarm();
        assert!(
            map.stats().dirty_rebuilds >= 2 && map.stats().promotions >= 2,
            "{:?}",
            map.stats()
        );
    }
    counts.assert_all_dropped();
}

#[test]
fn get_or_insert_with_closure_panics() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        // Absent, deleted-then-expunged, and a key that is present (closure not run).
        for id in [7, 4] {
            let (map, mut model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, get_or_insert_with({id}) panics");
            expect_panic(&context, || {
                map.pin()
                    .get_or_insert_with(Key::new(id, &counts), || injected_panic())
                    .0
                    .v
            });
            check(&map, &model, &counts, &context);
            // A closure that builds a value, uses the map, then panics: the value is
            // dropped, the nested insert stays.
            expect_panic(&context, || {
                map.pin().get_or_insert_with(Key::new(id, &counts), || {
                    let _v = Val::new(1, &counts);
                    map.insert(Key::new(6, &counts), Val::new(6, &counts));
                    injected_panic()
                });
            });
            model.insert(6, 6);
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
        let (map, model) = populated(promotion, &counts);
        let m = map.pin();
        let (v, inserted) = m.get_or_insert_with(Key::new(0, &counts), || injected_panic());
        assert_eq!((v.v, inserted), (0, false));
        drop(m);
        check(&map, &model, &counts, "present key");
    }
    counts.assert_all_dropped();
}

/// A panic in `update`'s closure: nothing was claimed yet, the value stays, and every
/// key and value is dropped once. Also a closure that panics on its *second* call, after
/// a concurrent writer replaced the value it saw (its first result must be dropped); that
/// writer runs on another thread while the closure waits for it, so a lock held around
/// the closure would deadlock (key 5 with `RecentKeys::Off` is found under the lock).
#[test]
fn update_closure_panics() {
    let counts = Arc::new(Counts::default());
    for (promotion, recent) in rules()
        .into_iter()
        .flat_map(|p| [(p, RecentKeys::Auto), (p, RecentKeys::Off)])
    {
        for id in [0, 5] {
            let (map, model) = populated_with(promotion, recent, &counts);
            let context = format!("{promotion:?}, {recent:?}, update({id}) closure panics");
            expect_panic(&context, || {
                map.pin()
                    .update(&Key::new(id, &counts), |_| injected_panic())
                    .is_some()
            });
            check(&map, &model, &counts, &context);

            let mut model = model.clone();
            let context = format!("{promotion:?}, {recent:?}, update({id}) panics on retry");
            let mut calls = 0;
            expect_panic(&context, || {
                map.pin()
                    .update(&Key::new(id, &counts), |v| {
                        calls += 1;
                        if calls > 1 {
                            injected_panic();
                        }
                        // Another writer replaces the value before this result is stored.
                        std::thread::scope(|s| {
                            s.spawn(|| map.insert(Key::new(id, &counts), Val::new(900, &counts)));
                        });
                        Val::new(v.v + 1, &counts)
                    })
                    .is_some()
            });
            model.insert(id, 900);
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

#[test]
fn remove_if_predicate_panics() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        for id in [0, 5] {
            let (map, model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, remove_if({id}) predicate panics");
            expect_panic(&context, || {
                map.pin()
                    .remove_if(&Key::new(id, &counts), |_| injected_panic())
                    .is_some()
            });
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

#[test]
fn retain_closure_panics_midway() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        for after in 0..4 {
            let (map, mut model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, retain panics after {after} entries");
            let mut removed = Vec::new();
            expect_panic(&context, || {
                map.retain(|k, _| {
                    if removed.len() == after {
                        injected_panic();
                    }
                    removed.push(k.id);
                    false
                });
            });
            for id in &removed {
                model.remove(id);
            }
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

/// A panic in `K::clone` or `V::clone` while cloning the map drops the partial clone and
/// leaves the map as it was; so does a panic in `V::eq` while comparing two maps.
#[test]
fn clone_and_map_eq_panics() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        // Five entries: ten clones; the last clone succeeds.
        for after in 0..10 {
            let (map, model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, clone panics after {after} clones");
            PANIC_ON_CLONE_AFTER.with(|c| c.set(Some(after)));
            expect_panic(&context, || Map::clone(&map));
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
        let (map, model) = populated(promotion, &counts);
        let context = format!("{promotion:?}, map == clone, value eq panics");
        let copy = Map::clone(&map);
        assert!(*map == copy, "{context}: a clone equals its original");
        PANIC_ON_VALUE_EQ.with(|c| c.set(true));
        expect_panic(&context, || *map == copy);
        check(&map, &model, &counts, &context);
        check(&copy, &model, &counts, &context);
        check_usable_elsewhere(&map, &model, &counts, &context);
    }
    counts.assert_all_dropped();
}

#[test]
fn compare_exchange_value_eq_panics() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        for id in [0, 5] {
            let (map, model) = populated(promotion, &counts);
            let context = format!("{promotion:?}, compare_exchange({id}) value eq panics");
            PANIC_ON_VALUE_EQ.with(|c| c.set(true));
            expect_panic(&context, || {
                map.pin()
                    .compare_exchange(
                        &Key::new(id, &counts),
                        &Val::new(id, &counts),
                        Val::new(99, &counts),
                    )
                    .is_ok()
            });
            check(&map, &model, &counts, &context);
            check_usable_elsewhere(&map, &model, &counts, &context);
        }
    }
    counts.assert_all_dropped();
}

#[test]
fn panics_in_with_and_in_loop_bodies() {
    let counts = Arc::new(Counts::default());
    for promotion in rules() {
        let (map, model) = populated(promotion, &counts);
        expect_panic("with", || {
            map.with(&Key::new(0, &counts), |_| injected_panic())
        });
        expect_panic("iteration body", || {
            for (k, _) in map.pin().iter() {
                if k.id == 5 {
                    injected_panic();
                }
            }
        });
        // A panic while a long-lived pin holds references.
        expect_panic("with a pin held", || {
            let m = map.pin();
            let r = m.get(&Key::new(1, &counts)).unwrap();
            m.insert(Key::new(1, &counts), Val::new(1, &counts)); // replaces what r points to
            assert_eq!(r.v, 1);
            injected_panic()
        });
        check(&map, &model, &counts, &format!("{promotion:?}"));
        check_usable_elsewhere(&map, &model, &counts, &format!("{promotion:?}"));
    }
    counts.assert_all_dropped();
}

thread_local! {
    /// Comparisons of two different [`SameHash`] keys left before one panics.
    static OTHER_KEY_EQ_LEFT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Keys that all hash alike, so looking one up or adding it compares it with every key
/// in the recent table's probe run; the `n`th such comparison panics on demand.
#[derive(Debug)]
struct SameHash(u32);

impl Hash for SameHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        0u8.hash(state);
    }
}

impl PartialEq for SameHash {
    fn eq(&self, other: &Self) -> bool {
        if self.0 != other.0 {
            if let Some(left) = OTHER_KEY_EQ_LEFT.with(Cell::get) {
                if left == 0 {
                    OTHER_KEY_EQ_LEFT.with(|c| c.set(None));
                    injected_panic();
                }
                OTHER_KEY_EQ_LEFT.with(|c| c.set(Some(left - 1)));
            }
        }
        self.0 == other.0
    }
}

impl Eq for SameHash {}

/// A panic in `Eq` anywhere in the insert of a new key (the lock-free lookup, the
/// lock-free add into the recent table, the lookup under the lock, the add under the
/// lock after the slot array grew) leaves the recent table's length right: an add that
/// took a reservation and unwound gives it back, so the table does not report itself
/// full (and promote) a key early. Every comparison in turn is made to panic.
#[test]
fn eq_panic_while_adding_a_new_key_gives_the_reservation_back() {
    quiet_injected_panics();
    let recent = readmostly::RecentKeys::AtMost(NonZeroUsize::new(4).unwrap());
    // Three keys in an eight-slot array (room for a fourth without the lock), and two
    // keys in a four-slot array (the third must take the lock and grow the array).
    for keys in [3, 2] {
        for n in 0..12 {
            let map: SyncMap<SameHash, u32> = SyncMap::builder().recent_keys(recent).build();
            for k in 0..keys {
                map.insert(SameHash(k), k);
            }
            OTHER_KEY_EQ_LEFT.with(|c| c.set(Some(n)));
            let r = catch_unwind(AssertUnwindSafe(|| {
                EXPECTING.with(|c| c.set(true));
                map.insert(SameHash(100), 100)
            }));
            EXPECTING.with(|c| c.set(false));
            OTHER_KEY_EQ_LEFT.with(|c| c.set(None));
            let context = format!("{keys} keys, panic at comparison {n}");
            let s = map.stats();
            let added = u32::from(r.is_ok());
            assert_eq!(map.len() as u32, keys + added, "{context}: {s}");
            assert_eq!(s.recent_len as u32, keys + added, "{context}: {s}");
            assert_eq!(s.promotions, 0, "{context}: {s}");
            // Up to four keys fit without a promotion.
            for k in map.len() as u32..4 {
                map.insert(SameHash(k + 10), k);
            }
            let s = map.stats();
            assert_eq!((s.recent_len, s.promotions), (4, 0), "{context}: {s}");
        }
    }
}

/// Tests that leak on purpose return early under a leak checker (CI's AddressSanitizer
/// run sets `READMOSTLY_LEAK_CHECK`).
fn leak_checked() -> bool {
    std::env::var_os("READMOSTLY_LEAK_CHECK").is_some()
}

/// A value whose drop panics for one id (while armed).
struct Bomb(u64);

static BOMB_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 == 666 && BOMB_ARMED.load(SeqCst) {
            injected_panic();
        }
    }
}

/// A value's `Drop` that panics while `into_iter` takes the map apart (the value retired
/// by an overwrite, dropped when the collector is) unwinds out of `into_iter` like a
/// panic in `drop(map)`: no abort, no use of freed memory; what was not dropped yet
/// leaks. (Review found that reclaiming retired values inside `into_iter` first made
/// the collector's own drop reclaim again after such a panic and dereference a marker
/// address.)
#[test]
fn into_iter_with_a_panicking_drop_of_a_retired_value() {
    if leak_checked() {
        return;
    }
    for shards in [0, 4] {
        BOMB_ARMED.store(false, SeqCst);
        let run = |take: &dyn Fn() -> usize| {
            BOMB_ARMED.store(true, SeqCst);
            expect_panic("into_iter drops a panicking retired value", take);
            BOMB_ARMED.store(false, SeqCst);
        };
        if shards == 0 {
            let map: SyncMap<u64, Bomb> = SyncMap::new();
            map.insert(1, Bomb(666));
            map.insert(1, Bomb(2)); // Bomb(666) retired, waiting in this thread's batch
            map.insert(3, Bomb(3));
            let map = std::cell::Cell::new(Some(map));
            run(&|| map.take().unwrap().into_iter().count());
        } else {
            let map: readmostly::ShardedMap<u64, Bomb> =
                readmostly::ShardedMap::builder().shards(shards).build();
            map.insert(1, Bomb(666));
            map.insert(1, Bomb(2));
            map.insert(3, Bomb(3));
            let map = std::cell::Cell::new(Some(map));
            run(&|| map.take().unwrap().into_iter().count());
        }
    }
}

/// A forgotten guard (safe code) cannot make `into_iter` free an entry that a value
/// retired under that guard still needs: the pairs come out, and the retired value and
/// its entry's block leak with the guard.
#[test]
fn into_iter_after_a_forgotten_guard() {
    if leak_checked() {
        return;
    }
    let map: SyncMap<u64, String> = SyncMap::builder().retire_batch(1).build();
    let m = map.pin_owned();
    m.insert(1, "a".into());
    m.insert(1, "b".into());
    m.insert(2, "c".into());
    std::mem::forget(m);
    let mut pairs: Vec<(u64, String)> = map.into_iter().collect();
    pairs.sort();
    assert_eq!(pairs, [(1, "b".to_string()), (2, "c".to_string())]);
}
