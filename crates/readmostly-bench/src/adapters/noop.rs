//! A map that does nothing: its throughput is the harness's own ceiling (stream walk,
//! sampling timer, value construction), shown next to the real maps so that harness cost
//! cannot hide differences between them.

use std::hint::black_box;
use std::marker::PhantomData;

use super::{BenchMap, Handle, Hasher, Value};

/// Accepts every operation and stores nothing.
#[derive(Debug)]
pub struct Noop<V, S> {
    _types: PhantomData<fn() -> (V, S)>,
}

impl<V: Value, S: Hasher> BenchMap for Noop<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(_hasher: S) -> Self {
        Noop {
            _types: PhantomData,
        }
    }

    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        items.for_each(drop);
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &Noop<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        black_box(key) & 1 == 0
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        black_box(key);
        black_box(value);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        black_box(key) & 1 == 0
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, _make: F) -> bool {
        black_box(key) & 1 == 0
    }

    fn iterate(&mut self) -> usize {
        black_box(0)
    }
}
