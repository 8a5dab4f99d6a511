//! `serde` support: a [`SyncMap`] or [`ShardedMap`] serializes as a map and
//! deserializes from one.
#![forbid(unsafe_code)]

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ShardedMap, SyncMap};

/// Serializes `entries` as a map with its length up front, which formats such as bincode
/// and postcard require. The entries are gathered first (references, under the caller's
/// pin), so the length is that of the entries written even while other threads change
/// the map (`len()` could differ from what the iteration visits).
fn serialize_entries<'a, K, V, Ser>(
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    serializer: Ser,
) -> Result<Ser::Ok, Ser::Error>
where
    K: Serialize + 'a,
    V: Serialize + 'a,
    Ser: Serializer,
{
    let entries: Vec<(&K, &V)> = entries.collect();
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Deserializes a map into any `M` built by `FromIterator` (both map types), without
/// buffering the entries here (a `ShardedMap`'s `FromIterator` groups them per shard).
fn deserialize_map<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
where
    M: FromIterator<(K, V)>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    /// `fn() -> ...`: the visitor owns nothing, so it is `Send`/`Sync` regardless.
    type Marker<M, K, V> = PhantomData<fn() -> (M, K, V)>;
    struct MapVisitor<M, K, V>(Marker<M, K, V>);

    impl<'de, M, K, V> Visitor<'de> for MapVisitor<M, K, V>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
    {
        type Value = M;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<M, A::Error> {
            let mut error = None;
            let map = std::iter::from_fn(|| match access.next_entry() {
                Ok(entry) => entry,
                Err(e) => {
                    error = Some(e);
                    None
                }
            })
            .collect();
            match error {
                Some(e) => Err(e),
                None => Ok(map),
            }
        }
    }

    deserializer.deserialize_map(MapVisitor(PhantomData))
}

impl<K, V, S> Serialize for SyncMap<K, V, S>
where
    K: Serialize + Hash + Eq,
    V: Serialize,
    S: BuildHasher,
{
    /// Serializes the entries [`iter`](crate::MapRef::iter) visits (no lock is held).
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        serialize_entries(self.pin().iter(), serializer)
    }
}

impl<'de, K, V, S> Deserialize<'de> for SyncMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_map(deserializer)
    }
}

impl<K, V, S, R> Serialize for ShardedMap<K, V, S, R>
where
    K: Serialize + Hash + Eq,
    V: Serialize,
    S: BuildHasher,
{
    /// Serializes the entries [`iter`](crate::ShardedRef::iter) visits (no lock is held).
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        serialize_entries(self.pin().iter(), serializer)
    }
}

/// Deserializes into a map with the default shard count, routed by key hash.
impl<'de, K, V, S> Deserialize<'de> for ShardedMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_map(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ShardedMap, SyncMap};

    #[test]
    fn round_trip_json() {
        let map: SyncMap<String, u32> = [("a".to_string(), 1), ("b".to_string(), 2)]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&map).unwrap();
        let back: SyncMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.get_cloned("a"), Some(1));
        assert_eq!(back.get_cloned("b"), Some(2));
    }

    #[test]
    fn sharded_round_trip_json() {
        let map: ShardedMap<String, u32> = (0..50).map(|i| (format!("k{i}"), i)).collect();
        let json = serde_json::to_string(&map).unwrap();
        let back: ShardedMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 50);
        assert_eq!(back.get_cloned("k7"), Some(7));
        // A sharded map and a plain one serialize to the same JSON object.
        let plain: SyncMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(plain.len(), 50);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let bad = r#"{"a": 1, "b": "not a number"}"#;
        assert!(serde_json::from_str::<SyncMap<String, u32>>(bad).is_err());
        assert!(serde_json::from_str::<ShardedMap<String, u32>>(bad).is_err());
        assert!(serde_json::from_str::<SyncMap<String, u32>>("[1, 2]").is_err());
    }
}
