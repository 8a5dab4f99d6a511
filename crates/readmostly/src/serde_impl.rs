//! `serde` support: a [`SyncMap`] serializes as a map and deserializes from one.
#![forbid(unsafe_code)]

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SyncMap;

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

#[cfg(test)]
mod tests {
    use crate::SyncMap;

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
}
