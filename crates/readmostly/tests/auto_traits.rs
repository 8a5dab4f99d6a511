//! The thread-safety traits the public types promise (checked at compile time; the
//! `compile_fail` examples on `SyncMap::pin` check the ones they must not have).

use readmostly::{
    DefaultHashBuilder, Iter, MapRef, OwnedGuard, ShardedIter, ShardedMap, ShardedRef, SyncMap,
};

fn send_sync<T: Send + Sync>() {}

#[test]
fn maps_and_owned_handles_are_send_and_sync() {
    send_sync::<SyncMap<String, Vec<u8>>>();
    send_sync::<ShardedMap<String, Vec<u8>>>();
    send_sync::<MapRef<'static, String, Vec<u8>, DefaultHashBuilder, OwnedGuard<'static>>>();
    send_sync::<
        ShardedRef<
            'static,
            String,
            Vec<u8>,
            DefaultHashBuilder,
            readmostly::ByHash,
            OwnedGuard<'static>,
        >,
    >();
    send_sync::<Iter<'static, String, Vec<u8>, OwnedGuard<'static>>>();
    send_sync::<ShardedIter<'static, String, Vec<u8>, OwnedGuard<'static>>>();
    send_sync::<readmostly::Stats>();
    send_sync::<readmostly::CapacityError<String, Vec<u8>>>();
}

#[test]
fn an_owned_handle_crosses_threads() {
    let map: SyncMap<u64, String> = (0..4).map(|k| (k, k.to_string())).collect();
    let m = map.pin_owned();
    std::thread::scope(|s| {
        let r = &m;
        s.spawn(move || assert_eq!(r.get(&3).map(String::as_str), Some("3")));
        s.spawn(move || assert_eq!(r.keys().count(), 4));
    });
    // An iterator started here and finished on another thread.
    let mut it = m.iter();
    let first = it.next().map(|(k, _)| *k);
    let rest: Vec<u64> = std::thread::scope(|s| {
        s.spawn(move || it.map(|(k, _)| *k).collect())
            .join()
            .unwrap()
    });
    let mut all: Vec<u64> = first.into_iter().chain(rest).collect();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3]);

    let sharded: ShardedMap<u64, String> = (0..4).map(|k| (k, k.to_string())).collect();
    let m = sharded.pin_owned();
    let values = m.values();
    std::thread::scope(|s| {
        s.spawn(move || assert_eq!(values.count(), 4));
    });
}
