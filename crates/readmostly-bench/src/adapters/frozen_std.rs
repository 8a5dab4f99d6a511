//! A `HashMap` filled once and then shared by reference with no synchronisation at all: the
//! upper limit for read-only workloads. The runner never gives it a workload that writes.

use std::collections::HashMap;
use std::hint::black_box;

use super::{BenchMap, Handle, Hasher, Value};

/// `&HashMap<u64, V, S>`, read-only once shared.
#[derive(Debug)]
pub struct FrozenStd<V, S> {
    map: HashMap<u64, V, S>,
}

impl<V: Value, S: Hasher> BenchMap for FrozenStd<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;
    const READ_ONLY: bool = true;

    fn build(hasher: S) -> Self {
        FrozenStd {
            map: HashMap::with_hasher(hasher),
        }
    }

    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.map.extend(items);
    }

    fn handle(&self) -> &Self {
        self
    }
}

const READ_ONLY: &str = "frozen-std is read-only: the runner skips workloads that write";

impl<V: Value, S: Hasher> Handle<V> for &FrozenStd<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        self.map.get(&key).map(|v| black_box(v.observe())).is_some()
    }

    fn insert(&mut self, _key: u64, _value: V) {
        unreachable!("{READ_ONLY}")
    }

    fn remove(&mut self, _key: u64) -> bool {
        unreachable!("{READ_ONLY}")
    }

    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, _key: u64, _make: F) -> bool {
        unreachable!("{READ_ONLY}")
    }

    fn iterate(&mut self) -> usize {
        super::visit(self.map.values())
    }
}
