//! `papaya::HashMap`: lock-free reads and writes with epoch-style reclamation (seize), one
//! pin per call.

use std::hint::black_box;

use super::{BenchMap, Handle, Hasher, Value};

/// `papaya::HashMap<u64, V, S>`.
pub struct PapayaAdapter<V, S> {
    map: papaya::HashMap<u64, V, S>,
}

impl<V, S> std::fmt::Debug for PapayaAdapter<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PapayaAdapter")
    }
}

impl<V: Value, S: Hasher> BenchMap for PapayaAdapter<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        PapayaAdapter {
            map: papaya::HashMap::builder().hasher(hasher).build(),
        }
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &PapayaAdapter<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let m = self.map.pin();
        m.get(&key).map(|v| black_box(v.observe())).is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.map.pin().insert(key, value);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.pin().remove(&key).is_some()
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        let m = self.map.pin();
        match m.try_insert_with(key, make) {
            Ok(_) => true,
            Err(v) => {
                black_box(v.observe());
                false
            }
        }
    }

    fn iterate(&mut self) -> usize {
        let m = self.map.pin();
        super::visit(m.values())
    }
}
