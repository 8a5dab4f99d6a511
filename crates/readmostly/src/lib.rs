//! Concurrent hash maps for **read-mostly** data: configuration snapshots,
//! connection-pool state, per-tenant settings, routing tables, metadata caches — data
//! that is read constantly and changes rarely, with keys that live as long as the service.
//!
//! [`SyncMap`] is the design of Go's `sync.Map`, in Rust: reads of established keys take
//! no lock, allocate nothing and write no shared memory; writes that replace values of
//! established keys are a single compare-and-swap; new keys go into a small lock-free
//! table while it has room, and through a mutex-protected dirty table otherwise.
//! [`ShardedMap`] splits the key space over many such maps for key churn and many
//! tenants (see [Sharding](#sharding)). [`Stats`] and the [`monitor`] module tell an
//! operator what the map is doing (see [Observability](#observability)).
//!
//! # Usage
//!
//! ```
//! use readmostly::SyncMap;
//!
//! let settings: SyncMap<String, u32> = SyncMap::new();
//! settings.insert("max_connections".to_string(), 100);
//!
//! // One-call conveniences...
//! assert_eq!(settings.get_cloned("max_connections"), Some(100));
//! assert!(settings.contains_key("max_connections"));
//!
//! // ...or pin once and borrow: references live as long as the pin.
//! let s = settings.pin();
//! let max = s.get("max_connections").copied().unwrap_or(10);
//! let (timeout, inserted) = s.get_or_insert("timeout_ms".to_string(), 250);
//! assert_eq!((max, *timeout, inserted), (100, 250, true));
//!
//! // Atomic read-modify-write without a lock held across user code.
//! assert_eq!(s.compare_exchange("max_connections", &100, 200), Ok(&100));
//! for (key, value) in s.iter() {
//!     println!("{key} = {value}");
//! }
//! ```
//!
//! # How it works
//!
//! The map keeps two tables that share their entries:
//!
//! * the **read** table, immutable once published, behind an atomic pointer: lookups
//!   load the pointer and probe the table without any lock;
//! * the **dirty** table, behind a mutex, holding every live entry of the read table
//!   (and, in Go's design, the keys added since the last promotion).
//!
//! Each entry holds its value in an atomic slot, so replacing the value of a key that is
//! in the read table is a lock-free compare-and-swap seen through both tables. Go puts a
//! new key into the dirty table under the lock; here, beyond Go's design, it goes into
//! the read table's insert-only **recent table** (see [`RecentKeys`]) without the lock,
//! and lock-free readers probe that table when the main table misses: adding a new key,
//! reading it, and reading an absent key never take the lock while the recent table has
//! room. Every lookup that misses the main table while the recent table is
//! non-empty counts a *miss*; once misses reach the dirty table's size — or once the
//! recent table is full — the dirty table becomes the read table by one pointer swap (a
//! *promotion*, see [`Promotion`]). The next new key (or the promotion itself, when it
//! keeps the recent table apart: [`RecentKeys`]) starts rebuilding the dirty table
//! by copying the read table's live entries, turning deleted entries into *expunged*
//! ones that the next promotion drops for good (retired a step at a time by the
//! operations after it, [`Stats::expunged_pending`]). Go copies the whole table in that one
//! insert; here the copy advances a bounded step (64 entries by default, see
//! [`Builder::rebuild_step`]) per operation that takes the lock or adds a new key while
//! the lock is free, so no single insert pauses for the map's whole size while the copy
//! keeps up with the new keys (see "When not to use it" for when it does not). With [`RecentKeys::Off`] the map is Go's
//! `sync.Map`: a lookup that misses the read table while the dirty table holds newer
//! keys takes the lock.
//!
//! Replaced tables, removed entries and replaced values are reclaimed with
//! [seize](https://docs.rs/seize) once no thread can still see them: a [`MapRef`]
//! (from [`SyncMap::pin`]) keeps everything it returned alive until it is dropped.
//!
//! # Consistency
//!
//! * Every operation on a key is **linearizable**: it takes effect atomically at one
//!   instant between its call and its return. `get_or_insert` inserts exactly once among
//!   racing callers; `compare_exchange` and `remove_if` act only on the value they
//!   compared, and `update` stores its result only over the value it was computed from
//!   (concurrent updates are never lost).
//! * A reader sees a value only after it has been fully written, and keeps seeing the
//!   same value through its reference even after it is replaced or removed.
//! * [`MapRef::iter`] visits a snapshot of the key set: every key present for the whole
//!   iteration is visited exactly once, with a value it had during the iteration; keys
//!   inserted or removed during the iteration may or may not be visited; no key is
//!   visited twice. The map is never locked while iterating, so the loop body may call
//!   any method (unlike Go, where mutating inside `Range` is discouraged).
//! * [`SyncMap::len`] and [`SyncMap::stats`] are exact when no write is in flight and
//!   approximate while writers run (hit counts may undercount slightly when threads
//!   share a counter stripe).
//!
//! # Deadlock freedom and panics
//!
//! No method returns anything that holds a lock, and no user closure (`get_or_insert_with`,
//! `remove_if`, `retain`, `with`) runs with the lock held, so any of them may call back
//! into the map. `Hash` and `Eq` of keys run (briefly) under the lock on the slow path and
//! must not use the same map, nor wait for other threads: a thread that closes the
//! recent table (to grow or promote it) waits, holding the lock, for the lock-free adds
//! already in progress, and those compare keys with `Eq` (an `Eq` that takes a lock
//! another inserting thread holds could deadlock). (A panic in `Eq` while a new key is
//! being added frees the entry allocated for it.) A panic in `Hash`, `Eq`, `PartialEq`, `Clone`
//! or a closure leaves the map consistent and usable and leaks nothing: under the lock,
//! user code runs only between complete steps (a rebuild step, a growth, a promotion),
//! never inside one. (The key given to an insert that finds an equal key present is
//! dropped after the lock is released, so a key's `Drop` may use the map.) The one
//! exception is the
//! bulk load of an owned map (`Extend`, `FromIterator`, serde's `Deserialize`), which
//! calls the iterator, `Hash` and `Eq` as it goes. A panic there still leaves the map
//! consistent and leaks nothing, but which items stay depends on the path: `SyncMap`'s
//! one-pass bulk load (used for `collect()` and for large batches) keeps the
//! replacements of keys the map already held and drops every new key, since the table
//! holding them was not yet published; its one-by-one load (small batches) keeps the
//! pairs inserted so far, as `std`'s maps do; `ShardedMap` reads the whole iterator
//! before inserting anything, so a panic in the iterator, `Hash` or the router loads
//! nothing.
//!
//! # Async code
//!
//! [`SyncMap::pin`] returns a `!Send` handle: use it for a burst of operations, not across
//! `.await`. [`SyncMap::pin_owned`] returns a `Send + Sync` handle that may be held
//! across `.await` in multi-threaded executors. The one-call methods (`get_cloned`,
//! `insert`, `remove`, …) pin internally and hold nothing afterwards. Holding any pin for
//! a long time delays reclamation of memory retired meanwhile (never beyond the pin).
//!
//! **Memory under a long-lived pin.** While a guard is held (a [`MapRef`], or an [`Iter`]
//! borrowed from one), nothing retired by *any* thread after it was taken can be freed:
//! replaced values, removed entries and replaced read tables of every map sharing the
//! collector (all shards of a [`ShardedMap`]). Memory then grows with the write volume
//! for as long as the guard lives; reads and writes carry on unaffected. Nothing leaks:
//! dropping the guard releases it all. `tests/soak.rs` measures it with one thread
//! holding a pin and one an iterator while three others churn: about 200 bytes retained
//! per churn operation (36 MiB after 180,000), and back to the steady state as soon as
//! both are dropped. So pin for a burst of operations, not across waits or slow I/O,
//! and iterate promptly (or copy out what a slow consumer needs).
//!
//! # Performance
//!
//! * `get` of a key in the read table: one atomic load of the table pointer, a hash probe
//!   that reads the bucket's eight bytes of tags (an array an eighth of the table's size,
//!   which stays cached) and the 64-byte line of its eight entry pointers (requested
//!   before the tags are compared, so the two loads overlap), an atomic load of the
//!   entry's value slot; no allocation, no lock, no shared write (the hit
//!   statistic lives in a per-thread stripe). A key that is absent is usually answered
//!   from cached tags and overflow counts, without waiting for the line, and so is the
//!   recent table's share of the answer (a filter of one byte per slot in front of its
//!   slots). The counting-allocator test proves zero
//!   allocations per `get`.
//! * Each entry is allocated together with its first value, so a lookup of a key whose
//!   value was never replaced touches the table and one heap block.
//! * Overwrites of established keys: a compare-and-swap of the value slot, and the old
//!   value retired through seize (readers may still hold it). The new value goes into
//!   the entry's own block when one of its two in-block slots is free: the inline slot
//!   (the first value's) or, for values of one word (`u64`, `Arc<T>` or `Box<T>` of a
//!   sized `T`, …), a word-sized spare slot. A slot is free again once its old value is reclaimed, so
//!   overwrites of word-sized values allocate nothing (`tests/alloc.rs`) and a lookup
//!   still touches the table and one heap block — for keys rewritten less often than
//!   the writing thread retires a batch ([`Builder::retire_batch`], 512 objects by
//!   default) and not twice under one pin. A hotter key finds both slots busy and gets
//!   a box per write; wider values alternate between the inline slot and a box.
//! * A lookup that misses the main table probes the recent table too, but only while keys
//!   were added since the last promotion (an extra cache miss, no lock).
//! * New keys: no lock while the recent table has room — a reservation (one shared
//!   atomic counter), an entry allocation and a compare-and-swap into an empty slot. The
//!   lock is taken for the first new key after a promotion, to double the recent table's
//!   array (in O(1): the new array is published empty and the old one's entries are
//!   copied over in steps by the operations that follow, see below), and for the
//!   promotion a full recent table forces. After each promotion the
//!   dirty table is rebuilt from the read table (O(n), one promotion per half the map's
//!   size in new keys, or when misses reach the dirty table's size). The rebuild is
//!   spread over later operations, at most [`Builder::rebuild_step`] entries each, taken
//!   by lock-free adders only when the lock is free ([`Stats::longest_rebuild_step`]
//!   reports the longest step). The promotion a full recent table forces does not copy
//!   it: the new read table keeps its slot array, read-only, as a second level that
//!   lookups probe after the main table, and the rebuild copies that level in steps
//!   too. If the rebuild has not finished when the recent table is full (new keys come
//!   faster than lock-free adders find the lock free), the table goes past its limit,
//!   to three quarters of its array, and every new key takes the lock and a rebuild
//!   step until the rebuild is done, instead of a promotion finishing it in one go.
//!   Promotions driven by lookups or misses wait while more than 16 rebuild steps are
//!   left, each due check (or locked miss) taking a step meanwhile, so they never
//!   finish a lagging or stalled rebuild in one go; they move the recent table's entries
//!   into the new main table ([`Stats::longest_promotion_move`]), which the rebuild sized
//!   for them, so the move never rehashes the table, but at most 256 steps' worth
//!   (16,384 entries by default): a larger recent table is kept as a level like a full
//!   one. Explicit promotions ([`SyncMap::promote`]) finish the rebuild in steps of 16
//!   `rebuild_step`s, releasing the lock between them, then move the whole recent
//!   table (a pause bounded by its limit, [`RecentKeys`], plus an overflow while a
//!   rebuild lagged; a recent table larger than the rebuilt table has room for — 256
//!   steps' worth plus its power-of-two slack — is first kept as a level, and the
//!   rebuild that starts, sized for the whole limit, is stepped through too, so the
//!   caller rebuilds the map twice instead of rehashing it under the lock; past a cap
//!   on the steps, when other threads keep forcing
//!   promotions, they finish in one go); so does the promotion before an iteration with
//!   [`RecentKeys::Off`]. Bulk loads (the map to themselves: no one waits) finish the
//!   rebuild and move everything in one go. The entries
//!   a rebuild expunged (removed keys) are retired by the promotion after it, at most
//!   16,384 at once by default and the rest a step at a time with later rebuild steps
//!   ([`Stats::expunged_pending`]): retiring 1.4 M of them at once had held the lock
//!   for ~100 ms, and left one operation freeing them all. [`SyncMap::clear`] publishes
//!   empty tables at once and detaches the old entries in steps of 16 `rebuild_step`s,
//!   releasing the lock between them ([`Stats::longest_clear_step`]); under one hold of
//!   the lock it had taken 630–670 ms for 4 Mi keys, after which a writer that waited
//!   inside its guard froze for 1–3 s freeing them. Doubling the recent table's
//!   slot array copies nothing at once either: the new array is published empty, with
//!   the old one linked to it (lookups probe both, adds check the old one), and the
//!   operations that follow copy the old entries in steps of twice `rebuild_step` slots
//!   ([`Stats::longest_recent_growth`] reports the most one copied), paced so that the
//!   copy is done before the array fills; the larger arrays a growth will need are
//!   allocated ahead of time and zeroed in steps the same way (a large zeroed allocation
//!   is not always free: glibc clears heap blocks below its mmap threshold, 2–6 ms for
//!   8 MiB). So no single operation of a growing map copies or clears more than a few
//!   steps under the lock (with the recent table on; with [`RecentKeys::Off`] new keys
//!   go into the dirty table, whose every doubling rehashes it under the lock, as in
//!   Go): under the lock nothing took more than 0.8 ms in an
//!   instrumented run of a map growing to 4 Mi keys on the development machine (readers
//!   never wait). Nor does any operation free a large table: replaced tables and slot
//!   arrays of a megabyte or more are handed to a background thread that frees them
//!   ([`set_background_free`]); freeing ~100 MB returns its pages to the operating
//!   system, 4–5 ms that fell on whichever operation's guard ended last after the
//!   promotion. With that thread on a free core, the slowest insert into a map growing
//!   to 4 Mi keys on one thread took 0.4–0.5 ms (24–28 ms before the incremental
//!   doubling, 3.6–5.0 ms with inline frees; at 8 Mi keys 0.5–1.8 ms instead of
//!   10–12 ms); with every core busy the thread's work competes with the inserts' (2
//!   threads on the 2 cores: 4.0–5.8 ms instead of 5.9–8.5 ms). The promotion a full recent table forces only finishes a
//!   rebuild in one go when the recent table reaches three quarters of its array first
//!   (a rebuild step of one entry, or far more new keys per lock acquisition than the
//!   step covers). Copies under the lock go in prefetched batches (about 45 ns per
//!   entry of a million-key map on the development machine, `examples/rebuild_pause`),
//!   and new tables are allocated zeroed, so starting a rebuild writes no O(n) memory
//!   up front.
//! * Retired values, entries and tables are handed to seize in batches of 512 per thread
//!   ([`Builder::retire_batch`]): each hand-over costs a process-wide memory barrier (an
//!   interrupt to every CPU running the process, which the writer waits for), so smaller
//!   batches slow overwrite-heavy loads down and put the barrier into their P99.9 (at
//!   512, write50's P99.9 is the barrier: 4–19 µs on the development machine, under
//!   2.5 µs with 2048); larger ones hold more memory and keep in-block value slots busy
//!   for longer.
//! * A [`MapRef`] amortises the guard: pinning costs about as much as a lookup, so code
//!   that does several operations in a row should pin once. Code that looks up many keys
//!   at once should use [`MapRef::get_each`]: it prefetches the buckets and entries of 16
//!   keys before reading them, so a map larger than the caches costs about one memory
//!   wait per 16 keys instead of one or two per key (about 2× the reads of a held pin at
//!   64 Ki keys and 3× at 1 Mi on the development machine: 0.7–0.8× a frozen `HashMap`).
//! * Memory: one heap block per key (40 bytes for `u64 → u64`) plus 73 bytes of table per
//!   bucket of eight slots (a line of pointers, eight bytes of tags and an overflow
//!   count) of the read table (and of the dirty table while one exists; at most seven
//!   keys per bucket on average before a table doubles; a rebuilt dirty table, and so the
//!   read table it becomes, has room for 256 rebuild steps' worth of recent keys too,
//!   16,384 by default, rounded up to a power of two of buckets): 50–60 bytes per key
//!   requested from the allocator at steady state, measured by `tests/alloc.rs`. A bulk
//!   load through `Extend` on the owned map (or `collect()`) builds no dirty table at
//!   all; after loading through a shared reference, [`SyncMap::promote`] drops it until
//!   the next new key.
//!
//! See `BENCHMARKS.md` in the repository for measurements against `RwLock<HashMap>`,
//! dashmap, papaya and scc.
//!
//! # Sharding
//!
//! [`ShardedMap`] is a power-of-two number of read/dirty maps (shards; by default four
//! per hardware thread, 64 on a 16-thread machine as in the seed) with one hasher and one
//! reclamation domain, so one pin ([`ShardedRef`]) covers every shard. A key lives in one
//! shard, chosen by bits 32 and up of its hash ([`ByHash`]: independent of the bits the
//! tables inside each shard use) or by a tenant id ([`ByTenant`], set with
//! [`ShardedBuilder::route_by_tenant`]) so that all keys of a tenant share a shard. New
//! keys then take only their shard's lock, and a dirty-table rebuild copies only one
//! shard's keys: churn and tenant growth stop serialising on one mutex and one O(n) copy.
//! The API is `SyncMap`'s; per-key guarantees are the same; `len`, `stats`, `iter`,
//! `retain` and `clear` visit the shards in turn (`clear` is atomic per shard only; a map
//! with a capacity limit keeps one key count for all shards, which `len` and
//! `try_insert` read).
//!
//! ```
//! use readmostly::ShardedMap;
//!
//! // One map for every tenant's settings, each tenant's keys in one shard.
//! let settings = ShardedMap::builder()
//!     .route_by_tenant(|key: &(u64, &str)| key.0)
//!     .build();
//! settings.insert((42, "plan"), "enterprise");
//! settings.insert((42, "seats"), "250");
//! assert_eq!(settings.get_cloned(&(42, "plan")), Some("enterprise"));
//! assert_eq!(settings.shard_of(&(42, "plan")), settings.shard_of(&(42, "seats")));
//! println!("{}", settings.stats()); // all shards; `shard_stats()` for each
//! ```
//!
//! # Observability
//!
//! * [`SyncMap::stats`] / [`ShardedMap::stats`] return [`Stats`]: lock-free hits, slow
//!   reads, misses, promotions, dirty rebuilds and the entries they copied, expunged
//!   entries (and those not yet retired), new keys, overwrites, removes, table sizes and
//!   retired memory. Counters on
//!   the hot paths are striped per thread (approximate while writers run); a read
//!   answered by the read table adds one increment of its thread's stripe (looked up
//!   once per handle; [`Builder::hit_statistics`] turns it off). `Display` prints a
//!   one-screen summary.
//! * [`monitor::MissVelocityMonitor`] implements the seed's miss-velocity alert (misses
//!   per second over 10 s sampled every 5 s; `WARN` at `base × (1 + 0.3 × write_ratio) +
//!   120`, `CRIT` at 1.5×, base learned as the P95 of steady state), and
//!   [`monitor::GrowthGuard`] its dirty-table growth alert (50,000 entries, 2,000 per
//!   minute). Both run on a [`monitor::Clock`], report levels through a callback and a
//!   polled state, and are fed from `Stats` snapshots.
//! * A capacity limit ([`Builder::max_len`], [`ShardedBuilder::max_len`]) makes
//!   [`SyncMap::try_insert`] / [`ShardedMap::try_insert`] refuse new keys with a
//!   [`CapacityError`] instead of letting a leak grow until the process is killed.
//! * The `metrics` feature exports counters and gauges through the `metrics` facade
//!   (`readmostly_hits_total{map="…"}`, …; see the `metrics` module, which exists only
//!   with the feature); `examples/prometheus.rs` serves them over HTTP.
//!
//! ```
//! use readmostly::SyncMap;
//!
//! let sessions: SyncMap<u64, String> = SyncMap::builder().max_len(2).build();
//! sessions.try_insert(1, "a".into()).unwrap();
//! sessions.try_insert(2, "b".into()).unwrap();
//! let err = sessions.try_insert(3, "c".into()).unwrap_err();
//! assert_eq!(err.max_len, 2);
//! ```
//!
//! # When not to use it
//!
//! * **Growing maps and key churn on many threads.** New keys are added without the
//!   lock, but every half of the read table's size in new keys the map is promoted and
//!   the read table copied into a new dirty table (about two entry copies per new key),
//!   and that copy runs on one thread at a time. Measured at 16 threads
//!   (`readmostly-bench`, 64 Ki keys to start, see `BENCHMARKS.md`, session 14, medians
//!   of three alternated runs): `churn10` (5 % inserts, 5 % removes) 51 Mops/s against
//!   dashmap's 81; `ttl-cache` (5 % new keys, the map grows) 51 against 67;
//!   `insert-after-promote` (10 % new keys) 35 against 105. [`ShardedMap`] divides the
//!   copy by its shard count (`churn10` 81, `ttl-cache` 72, `insert-after-promote` 94),
//!   and lock-based sharded maps (dashmap, scc `HashMap`: 137 on `churn10` in another
//!   run that session) have no copy at all: use them when keys churn or a map grows by millions of keys on many
//!   threads. Growing a map to 4 Mi keys on 16 threads (`examples/rebuild_pause --grow
//!   4Mi --threads 16`), p99.9 of an insert is 1.1–1.2 ms and the slowest waited 16–21
//!   ms: new keys come faster than the rebuild advances, and each waits its turn for the
//!   lock to take a step (readers never wait). A [`RecentKeys::AtMost`] limit far below
//!   the map's size lets the rebuild fall behind (a limit of 2^16 keys in an 8 Mi-key
//!   map once made the promotion finish it in one go: 300 ms; new keys now take a step
//!   each instead, until the recent table is three quarters full).
//! * **Write-heavy workloads.** Each overwrite swaps the value slot and retires the old
//!   value through seize (word-sized values reuse the entry's two in-block slots and
//!   allocate nothing unless the key is rewritten within a retire batch, wider ones are
//!   boxed every other time): at 16 threads `write50`
//!   ran at 39 Mops/s against 72 for dashmap and 117 for scc `HashMap`, which update
//!   values in place (session 14, when every overwrite allocated; the in-block slots
//!   of session 16 added 24 % at 1 thread and 37 % at 2 on the development machine, not
//!   yet measured at 16). Every [`retire_batch`](Builder::retire_batch) retirements a
//!   writer also waits for a process-wide barrier that interrupts every CPU running the
//!   process: at the default 512 it is an overwrite-heavy load's P99.9 (`write50` on the
//!   2-core development machine: 4.3 µs at 1 thread, 18.8 µs at 2; 0.7 and 2.2 µs with a
//!   batch of 2048), and it costs more the more CPUs the process runs on.
//! * **The fastest possible reads, one call at a time.** A `get` through
//!   [`SyncMap::get_cloned`] or a fresh [`pin`](SyncMap::pin) per call enters and leaves
//!   the reclaimer's guard and reaches the value through a separately allocated entry
//!   (a second dependent cache line): at 16 threads read100 ran at 226 Mops/s per call
//!   and 351 with one pin per 64 reads, against 431 for scc `HashIndex`, which keeps
//!   keys and values in its buckets, and 863 for an unsynchronised `HashMap` (session
//!   14). Hold a [`MapRef`] across a batch of reads where you can. A `pin()` while the
//!   thread already holds a `pin()` handle of the same map up the stack only counts, with
//!   no locked instruction: on the 2-core development machine a lookup took 21 ns with a
//!   fresh pin, 16 ns with a nested one and 11 ns through a held handle (session 15).
//!   How much a fresh pin costs depends on the host: on another 2-core host (session
//!   17) one pin per `get` ran at 0.26–0.55× scc `HashIndex`, where one pin per 64 reads
//!   ran at 0.71–0.84× and [`MapRef::get_each`] at 1.4–1.6×.
//! * **Mostly-miss lookups** of keys that are never inserted are answered without the
//!   lock, but while the recent table is non-empty each one probes it too (an extra cache
//!   miss) until enough of them promote the dirty table.
//! * When you need a consistent snapshot of several keys at once, or ordered iteration.
//!
//! # Go `sync.Map` → readmostly
//!
//! | Go | readmostly |
//! |---|---|
//! | `Load(k)` | [`pin()`](SyncMap::pin)[`.get(&k)`](MapRef::get) → `Option<&V>`; [`get_cloned`](SyncMap::get_cloned), [`contains_key`](SyncMap::contains_key), [`with`](SyncMap::with) |
//! | `Store(k, v)` | [`insert(k, v)`](SyncMap::insert) |
//! | `Swap(k, v)` | [`pin().insert(k, v)`](MapRef::insert) → previous `Option<&V>` |
//! | `LoadOrStore(k, v)` | [`pin().get_or_insert(k, v)`](MapRef::get_or_insert) → `(&V, inserted)`; lazy: [`get_or_insert_with`](MapRef::get_or_insert_with), fallible: [`get_or_try_insert_with`](MapRef::get_or_try_insert_with) |
//! | `LoadAndDelete(k)` | [`pin().remove(&k)`](MapRef::remove) → `Option<&V>` |
//! | `Delete(k)` | [`remove(&k)`](SyncMap::remove) → `bool` |
//! | `CompareAndSwap(k, old, new)` | [`pin().compare_exchange(&k, &old, new)`](MapRef::compare_exchange) |
//! | `CompareAndDelete(k, old)` | [`pin().remove_if(&k, \|v\| *v == old)`](MapRef::remove_if) |
//! | `Range(f)` | [`pin().iter()`](MapRef::iter) (any method may be called in the loop) |
//! | `Clear()` | [`clear()`](SyncMap::clear) |
//! | — | [`pin().update(&k, \|v\| ..)`](MapRef::update) (atomic read-modify-write), [`len`](SyncMap::len), [`retain`](SyncMap::retain), [`stats`](SyncMap::stats), [`pin_owned`](SyncMap::pin_owned), [`get_key_value`](MapRef::get_key_value), [`keys`](MapRef::keys), [`values`](MapRef::values), `Clone`, `PartialEq`/`Eq`, `Debug`, `Default`, `FromIterator`, `Extend`, [`IntoIterator`](SyncMap::into_iter), `serde` (feature) |
//!
//! # Features
//!
//! * `serde`: `Serialize` (as a map) and `Deserialize` for [`SyncMap`] and [`ShardedMap`].
//! * `metrics`: the `metrics` module: [`Stats`] and monitor reports recorded through the
//!   [`metrics`](https://docs.rs/metrics) facade, with Prometheus-style names and a `map`
//!   label.
#![doc(test(attr(deny(warnings))))]

mod map;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod monitor;
mod raw;
#[cfg(feature = "serde")]
mod serde_impl;
mod sharded;
mod stats;
mod sync;

pub use map::{
    Builder, CapacityError, CompareExchangeError, DefaultHashBuilder, IntoIter, Iter, Keys, MapRef,
    Promotion, RecentKeys, SyncMap, Values,
};
pub use raw::reclaim::{LocalGuard, OwnedGuard};
pub use sharded::{
    ByHash, ByTenant, Router, ShardedBuilder, ShardedIter, ShardedMap, ShardedRef, MAX_SHARDS,
};
pub use stats::Stats;

/// Turns freeing of large blocks on a background thread on (the default) or off, for the
/// whole process, for blocks dropped from now on.
///
/// A map's tables are single heap blocks: 64 MiB for the read table of 4 Mi keys.
/// Freeing one is not free (the allocator gives the pages back to the operating system:
/// 5 ms for ~100 MB on the development machine), and a replaced table is freed by
/// whichever operation's guard happens to end last after the promotion that replaced
/// it. So blocks of a megabyte or more are handed to one thread, `readmostly-free`,
/// started the first time one is dropped, which frees them; the operation that drops
/// them only queues them. Smaller blocks are freed where they are dropped.
///
/// Turn it off to keep readmostly from starting a thread (or to free memory where it is
/// dropped, e.g. before measuring it; [`wait_for_background_free`] is the other way).
/// The thread is not used where it cannot be started, nor in a process created by
/// `fork` after it started (the child frees inline; blocks its parent had queued are
/// never freed in the child, which does not touch them). The thread is started by the
/// first thread that drops a large block and inherits its CPU affinity: pinned to that
/// thread's CPU, it competes with it (growing a map to 4 Mi keys on one thread on the
/// development machine, the slowest insert took 2.7–2.9 ms so, 0.4–0.5 ms with a core
/// free for the thread, 3.6–5.0 ms with inline frees). The queue is unbounded: blocks wait there only as
/// long as the thread takes to free the ones before them.
///
/// ```
/// readmostly::set_background_free(false);
/// let map: readmostly::SyncMap<u64, u64> = (0..1_000).map(|k| (k, k)).collect();
/// drop(map); // every table freed here
/// readmostly::set_background_free(true);
/// ```
pub fn set_background_free(enabled: bool) {
    raw::reaper::set_enabled(enabled);
}

/// Waits until every block handed to the background thread (see
/// [`set_background_free`]) before this call has been freed. For measurements of the
/// process's memory and for tests; maps never need it.
///
/// ```
/// let map: readmostly::SyncMap<u64, u64> = (0..100_000).map(|k| (k, k)).collect();
/// drop(map);
/// readmostly::wait_for_background_free();
/// assert_eq!(readmostly::background_free_pending_bytes(), 0); // nothing else frees here
/// ```
pub fn wait_for_background_free() {
    raw::reaper::wait_idle();
}

/// Bytes handed to the background thread (see [`set_background_free`]) and not yet
/// freed, across the process.
pub fn background_free_pending_bytes() -> usize {
    raw::reaper::pending_bytes()
}

#[cfg(test)]
mod tests;
