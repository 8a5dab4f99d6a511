//! `serde` support: a [`SyncMap`] or [`ShardedMap`] serializes as a map and
//! deserializes from one.
#![forbid(unsafe_code)]

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Router, ShardedMap, SyncMap};

impl<K, V, S> Serialize for SyncMap<K, V, S>
where
    K: Serialize + Hash + Eq,
    V: Serialize,
    S: BuildHasher,
{
    /// Serializes the entries [`iter`](crate::MapRef::iter) visits (no lock is held).
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let pinned = self.pin();
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in pinned.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K, V, S> Deserialize<'de> for SyncMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// `fn() -> ...`: the visitor owns nothing, so it is `Send`/`Sync` regardless.
        type Marker<K, V, S> = PhantomData<fn() -> (K, V, S)>;
        struct MapVisitor<K, V, S>(Marker<K, V, S>);

        impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
        where
            K: Deserialize<'de> + Hash + Eq,
            V: Deserialize<'de>,
            S: BuildHasher + Default,
        {
            type Value = SyncMap<K, V, S>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let map = SyncMap::with_hasher(S::default());
                {
                    let pinned = map.pin();
                    while let Some((k, v)) = access.next_entry()? {
                        pinned.insert(k, v);
                    }
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
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
        let pinned = self.pin();
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in pinned.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
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
        /// `fn() -> ...`: the visitor owns nothing, so it is `Send`/`Sync` regardless.
        type Marker<K, V, S> = PhantomData<fn() -> (K, V, S)>;
        struct MapVisitor<K, V, S>(Marker<K, V, S>);

        impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
        where
            K: Deserialize<'de> + Hash + Eq,
            V: Deserialize<'de>,
            S: BuildHasher + Default,
        {
            type Value = ShardedMap<K, V, S>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let map = ShardedMap::with_hasher(S::default());
                insert_all(&map, &mut access)?;
                Ok(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Inserts every entry of `access` into `map`.
fn insert_all<'de, K, V, S, R, A>(
    map: &ShardedMap<K, V, S, R>,
    access: &mut A,
) -> Result<(), A::Error>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher,
    R: Router<K>,
    A: MapAccess<'de>,
{
    let pinned = map.pin();
    while let Some((k, v)) = access.next_entry()? {
        pinned.insert(k, v);
    }
    Ok(())
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
}
