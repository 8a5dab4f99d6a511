use readmostly::SyncMap;
use std::hint::black_box;
type H = foldhash::fast::FixedState;
fn main() {
    let mut a = std::env::args().skip(1);
    let which = a.next().unwrap();
    let n: usize = a.next().unwrap().parse().unwrap();
    let keys = 1u64 << 16;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let ks: Vec<u64> = (0..n)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % keys
        })
        .collect();
    let mut s = 0u64;
    match which.as_str() {
        "sync" => {
            let m: SyncMap<u64, u64, H> = SyncMap::builder().hasher(H::with_seed(7)).build();
            for k in 0..keys {
                m.pin().insert(k, k);
            }
            m.promote();
            for &k in &ks {
                s += *m.pin().get(&k).unwrap();
            }
        }
        "sharded" => {
            let m: readmostly::ShardedMap<u64, u64, H> = readmostly::ShardedMap::builder()
                .hasher(H::with_seed(7))
                .build();
            for k in 0..keys {
                m.pin().insert(k, k);
            }
            m.promote();
            for &k in &ks {
                s += *m.pin().get(&k).unwrap();
            }
        }
        "ow" => {
            let m: SyncMap<u64, u64, H> = SyncMap::builder().hasher(H::with_seed(7)).build();
            for k in 0..keys {
                m.pin().insert(k, k);
            }
            m.promote();
            for &k in &ks {
                s += m.pin().insert(k, k + 1).is_some() as u64;
            }
        }
        "sccow" => {
            let m: scc::HashIndex<u64, u64, H> = scc::HashIndex::with_hasher(H::with_seed(7));
            for k in 0..keys {
                let _ = m.insert_sync(k, k);
            }
            for &k in &ks {
                if let scc::hash_index::Entry::Occupied(mut o) = m.entry_sync(k) {
                    o.update(k + 1);
                    s += 1;
                }
            }
        }
        "scc" => {
            let m: scc::HashIndex<u64, u64, H> = scc::HashIndex::with_hasher(H::with_seed(7));
            for k in 0..keys {
                let _ = m.insert_sync(k, k);
            }
            for &k in &ks {
                s += m.peek_with(&k, |_, v| *v).unwrap();
            }
        }
        _ => {}
    }
    black_box(s);
}
