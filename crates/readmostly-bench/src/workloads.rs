//! Named workloads and the per-thread operation streams they generate.
//!
//! A workload is a list of `(operation, per mille, key source)` entries that sums to 1000.
//! Streams are generated before the timed region; the timed loop only walks a slice of
//! [`Op`]s. Key *indices* `0..keys` are the prefilled keys; every key that reaches a map is
//! mixed by [`mix64`](crate::keys::mix64).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::keys::{mix64, zipf_cached, Rng, Zipf};

/// Exponent of the Zipf key distribution.
pub const ZIPF_THETA: f64 = 0.99;

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// Look a key up.
    Get,
    /// Store a value for a key that is (normally) present: replaces the value.
    Overwrite,
    /// Store a value for a key that is (normally) new.
    Insert,
    /// Remove a key.
    Remove,
    /// Atomic get-or-insert (Go's `LoadOrStore`), value built only when absent where the map allows it.
    GetOrInsert,
    /// Cache-aside read: look up, and on a miss store a freshly "loaded" value.
    ReadOrFill,
    /// Visit every entry once.
    Iterate,
}

impl OpKind {
    /// All kinds, in display order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Get,
        OpKind::Overwrite,
        OpKind::Insert,
        OpKind::Remove,
        OpKind::GetOrInsert,
        OpKind::ReadOrFill,
        OpKind::Iterate,
    ];

    /// Whether the operation can change the map.
    pub fn writes(self) -> bool {
        !matches!(self, OpKind::Get | OpKind::Iterate)
    }

    /// Short name used in descriptions.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Overwrite => "overwrite",
            OpKind::Insert => "insert",
            OpKind::Remove => "remove",
            OpKind::GetOrInsert => "get_or_insert",
            OpKind::ReadOrFill => "read_or_fill",
            OpKind::Iterate => "iterate",
        }
    }
}

/// Where an operation's key comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeySrc {
    /// A prefilled key, chosen by the run's distribution.
    Present,
    /// An index in `0..factor * keys` (the first `keys` were prefilled), by the distribution.
    Space(u32),
    /// A key never prefilled, from `keys..(1 + factor) * keys`, by the distribution.
    Absent(u32),
    /// A key this thread has never used before (the map grows).
    Fresh,
    /// The key this thread most recently inserted from [`KeySrc::Fresh`] (a prefilled key
    /// before the first one).
    RecentFresh,
    /// Key index 0, shared by all threads.
    Hot,
    /// A key removed earlier by this thread (first in, first out), or a present key.
    Reinsert,
    /// `tenants × keys per tenant`: the tenant by the distribution, the key within it uniform.
    Tenant,
    /// No key (iteration).
    NoKey,
}

/// One `(operation, per mille, key source)` share of a workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// The operation.
    pub kind: OpKind,
    /// Its share in per mille (all shares of a workload sum to 1000).
    pub per_mille: u16,
    /// Where its keys come from.
    pub keys: KeySrc,
}

const fn s(kind: OpKind, per_mille: u16, keys: KeySrc) -> Share {
    Share {
        kind,
        per_mille,
        keys,
    }
}

/// Which family a workload belongs to (for `list` and the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Plain read/write mixes (the anchor workloads).
    Mix,
    /// The seed's scenarios.
    Scenario,
    /// Cases chosen to hurt the read/dirty design.
    Adversarial,
    /// Described on the command line (`advise`).
    Custom,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Mix => "mix",
            Family::Scenario => "scenario",
            Family::Adversarial => "adversarial",
            Family::Custom => "custom",
        })
    }
}

/// A named workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Name used on the command line and in reports.
    pub name: String,
    /// One-line description.
    pub about: String,
    /// Family.
    pub family: Family,
    /// Operation shares (sum 1000).
    pub shares: Vec<Share>,
}

use KeySrc::*;
use OpKind::*;

/// `(name, family, about, shares)` of every built-in workload.
const BUILTIN: &[(&str, Family, &str, &[Share])] = &[
    ("read100", Family::Mix, "100 % reads of present keys", &[s(Get, 1000, Present)]),
    ("read99", Family::Mix, "99 % reads, 1 % overwrites of present keys", &[s(Get, 990, Present), s(Overwrite, 10, Present)]),
    ("read95", Family::Mix, "95 % reads, 5 % overwrites of present keys", &[s(Get, 950, Present), s(Overwrite, 50, Present)]),
    ("read90", Family::Mix, "90 % reads, 10 % overwrites of present keys", &[s(Get, 900, Present), s(Overwrite, 100, Present)]),
    ("write50", Family::Mix, "50 % reads, 50 % overwrites of present keys", &[s(Get, 500, Present), s(Overwrite, 500, Present)]),
    (
        "churn10",
        Family::Mix,
        "90 % reads, 5 % inserts, 5 % removes, all over twice the key space (about half the inserts are new keys)",
        &[s(Get, 900, Space(2)), s(Insert, 50, Space(2)), s(Remove, 50, Space(2))],
    ),
    (
        "config-snapshot",
        Family::Scenario,
        "configuration snapshot: stable keys, 99.9 % reads, 0.1 % overwrites",
        &[s(Get, 999, Present), s(Overwrite, 1, Present)],
    ),
    (
        "ttl-cache",
        Family::Scenario,
        "TTL-less temporary cache (seed 3.2): 90 % reads, 5 % overwrites, 5 % stores of new keys, no deletes (the map grows)",
        &[s(Get, 900, Present), s(Overwrite, 50, Present), s(Insert, 50, Fresh)],
    ),
    (
        "multi-tenant",
        Family::Scenario,
        "many tenants x keys per tenant (seed 3.3): 95 % reads, 5 % overwrites; tenant by the distribution",
        &[s(Get, 950, Tenant), s(Overwrite, 50, Tenant)],
    ),
    (
        "hot-key",
        Family::Scenario,
        "miss storm on one key: 99 % cache-aside reads (get, fill on miss), 1 % invalidations (remove)",
        &[s(ReadOrFill, 990, Hot), s(Remove, 10, Hot)],
    ),
    (
        "insert-after-promote",
        Family::Adversarial,
        "a new key stored right after every promotion: 10 % stores of new keys, 90 % reads of the newest one",
        &[s(Get, 900, RecentFresh), s(Insert, 100, Fresh)],
    ),
    (
        "delete-insert",
        Family::Adversarial,
        "periodic delete + re-insert of the same keys: 98 % reads, 1 % removes, 1 % re-inserts (use --dram for a large map)",
        &[s(Get, 980, Present), s(Remove, 10, Present), s(Insert, 10, Reinsert)],
    ),
    (
        "mostly-miss",
        Family::Adversarial,
        "90 % reads of absent keys, 10 % reads of present keys",
        &[s(Get, 900, Absent(9)), s(Get, 100, Present)],
    ),
    (
        "goi-collide",
        Family::Adversarial,
        "get_or_insert collisions on one key: 99 % get_or_insert, 1 % remove, all on the same key",
        &[s(GetOrInsert, 990, Hot), s(Remove, 10, Hot)],
    ),
    (
        "iterate-heavy",
        Family::Adversarial,
        "98.9 % reads, 1 % overwrites, 0.1 % full iterations",
        &[s(Get, 989, Present), s(Overwrite, 10, Present), s(Iterate, 1, NoKey)],
    ),
];

/// Workloads of the `--quick` preset.
pub const QUICK: &[&str] = &["read100", "read99", "read95", "write50", "churn10"];

/// Workloads of the default full run.
pub const DEFAULT: &[&str] = &[
    "read100",
    "read99",
    "read95",
    "read90",
    "write50",
    "churn10",
    "config-snapshot",
    "ttl-cache",
    "multi-tenant",
    "hot-key",
    "insert-after-promote",
    "delete-insert",
    "mostly-miss",
    "goi-collide",
    "iterate-heavy",
];

impl Workload {
    /// Every built-in workload.
    pub fn all() -> Vec<Workload> {
        BUILTIN
            .iter()
            .map(|(name, family, about, shares)| Workload {
                name: (*name).to_string(),
                about: (*about).to_string(),
                family: *family,
                shares: shares.to_vec(),
            })
            .collect()
    }

    /// The built-in workload called `name`.
    pub fn by_name(name: &str) -> Option<Workload> {
        Self::all().into_iter().find(|w| w.name == name)
    }

    /// Names of every built-in workload.
    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|b| b.0).collect()
    }

    /// A workload described by percentages (`advise`). Inserts are of new keys and removes of
    /// prefilled keys; when both are present, inserts, removes and reads all range over twice
    /// the key space so that the map keeps its size (the `churn10` shape).
    pub fn custom(read: f64, overwrite: f64, insert: f64, remove: f64) -> Result<Workload, String> {
        for (name, v) in [
            ("read", read),
            ("overwrite", overwrite),
            ("insert", insert),
            ("remove", remove),
        ] {
            if !(0.0..=100.0).contains(&v) || !v.is_finite() {
                return Err(format!("--{name} must be a percentage in 0..=100, got {v}"));
            }
            // Operation streams are drawn per mille: a share that rounds to zero would be
            // silently dropped.
            if v > 0.0 && (v * 10.0).round() == 0.0 {
                return Err(format!(
                    "--{name} {v} % is below the resolution of the operation mix (0.1 %, rounded): use at least 0.05"
                ));
            }
        }
        let total = read + overwrite + insert + remove;
        if (total - 100.0).abs() > 0.05 {
            return Err(format!(
                "--read + --overwrite + --insert + --remove must add up to 100, got {total}"
            ));
        }
        let pm = |v: f64| (v * 10.0).round() as u16;
        let (mut r, o, i, d) = (pm(read), pm(overwrite), pm(insert), pm(remove));
        // Rounding to per mille may leave the sum off by one: give the difference to reads.
        let sum = r + o + i + d;
        r = (r as i32 + 1000 - sum as i32).max(0) as u16;
        // Inserts and removes together: the `churn10` shape, where the map keeps its size.
        let churn = d > 0 && i > 0;
        let (read_src, ins_src, rm_src) = if churn {
            (Space(2), Space(2), Space(2))
        } else {
            (Present, Fresh, Present)
        };
        let mut shares = Vec::new();
        for (kind, v, src) in [
            (Get, r, read_src),
            (Overwrite, o, Present),
            (Insert, i, ins_src),
            (Remove, d, rm_src),
        ] {
            if v > 0 {
                shares.push(s(kind, v, src));
            }
        }
        let w = Workload {
            name: "custom".to_string(),
            about: format!(
                "{read} % reads, {overwrite} % overwrites, {insert} % inserts, {remove} % removes"
            ),
            family: Family::Custom,
            shares,
        };
        w.check()?;
        Ok(w)
    }

    /// Checks that the shares add up to 1000 per mille.
    pub fn check(&self) -> Result<(), String> {
        let sum: u32 = self.shares.iter().map(|s| s.per_mille as u32).sum();
        if sum != 1000 {
            return Err(format!(
                "workload {} has shares summing to {sum}, not 1000",
                self.name
            ));
        }
        Ok(())
    }

    /// Whether any operation can change the map (the frozen map refuses those).
    pub fn writes(&self) -> bool {
        self.shares
            .iter()
            .any(|s| s.kind.writes() && s.per_mille > 0)
    }

    /// Expected per-mille of each kind (summed over shares).
    pub fn per_mille(&self, kind: OpKind) -> u32 {
        self.shares
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.per_mille as u32)
            .sum()
    }

    /// Per-mille of operations that store a key the map (probably) does not hold: inserts
    /// of fresh keys count fully, inserts over twice the key space about half, re-inserts
    /// fully, and cache fills / get_or_insert on a key that is removed by 1 in `n` ops count
    /// with the remove rate.
    pub fn new_key_per_mille(&self) -> f64 {
        let mut n = 0.0;
        for sh in &self.shares {
            let pm = sh.per_mille as f64;
            match (sh.kind, sh.keys) {
                (Insert, Fresh | Reinsert) => n += pm,
                (Insert, Space(f)) => n += pm * (1.0 - 1.0 / f as f64),
                (Remove, Hot) => n += pm,
                _ => {}
            }
        }
        n
    }

    /// One-line description of the shares, e.g. `get 990 (present) + overwrite 10 (present)`.
    pub fn mix_text(&self) -> String {
        self.shares
            .iter()
            .map(|s| format!("{} {}‰ ({})", s.kind.name(), s.per_mille, src_text(s.keys)))
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

fn src_text(k: KeySrc) -> String {
    match k {
        Present => "present".into(),
        Space(f) => format!("{f}x key space"),
        Absent(_) => "absent".into(),
        Fresh => "new key".into(),
        RecentFresh => "newest key".into(),
        Hot => "one hot key".into(),
        Reinsert => "removed earlier".into(),
        Tenant => "tenant keys".into(),
        NoKey => "-".into(),
    }
}

/// Key distribution over a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent 0.99 (index 0 hottest; keys are mixed, so hot keys are spread).
    Zipf,
}

impl Dist {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        }
    }

    /// Parses `uniform` or `zipf`.
    pub fn parse(s: &str) -> Option<Dist> {
        match s {
            "uniform" => Some(Dist::Uniform),
            "zipf" => Some(Dist::Zipf),
            _ => None,
        }
    }
}

/// One pre-generated operation. `key` is already mixed; when `fresh` is set the runner
/// salts the key per lap of the stream, so that a stream replayed in `--duration` mode
/// still stores new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The (mixed) key.
    pub key: u64,
    /// The operation.
    pub kind: OpKind,
    /// Whether the key is one of this thread's fresh keys.
    pub fresh: bool,
}

/// Number of tenants in `multi-tenant` (fewer for tiny key counts).
pub fn tenants(keys: u64) -> u64 {
    (keys / 16).clamp(1, 256)
}

/// Per-thread key-index samplers for one run.
#[derive(Debug, Clone)]
pub struct KeyGen {
    keys: u64,
    dist: Dist,
    zipf_present: Option<Arc<Zipf>>,
    zipf_space: Vec<(u32, Arc<Zipf>)>,
    zipf_tenant: Option<Arc<Zipf>>,
}

impl KeyGen {
    /// Samplers for `workload` over `keys` prefilled keys with distribution `dist`.
    pub fn new(workload: &Workload, keys: u64, dist: Dist) -> KeyGen {
        let keys = keys.max(1);
        let mut g = KeyGen {
            keys,
            dist,
            zipf_present: None,
            zipf_space: Vec::new(),
            zipf_tenant: None,
        };
        if dist == Dist::Zipf {
            for sh in &workload.shares {
                match sh.keys {
                    Present | Reinsert | RecentFresh => {
                        g.zipf_present
                            .get_or_insert_with(|| zipf_cached(keys, ZIPF_THETA));
                    }
                    Space(f) | Absent(f) if !g.zipf_space.iter().any(|(x, _)| *x == f) => {
                        g.zipf_space
                            .push((f, zipf_cached(keys * f as u64, ZIPF_THETA)));
                    }
                    Tenant => {
                        g.zipf_tenant
                            .get_or_insert_with(|| zipf_cached(tenants(keys), ZIPF_THETA));
                    }
                    _ => {}
                }
            }
        }
        g
    }

    fn pick(&self, n: u64, zipf: Option<&Arc<Zipf>>, rng: &mut Rng) -> u64 {
        match (self.dist, zipf) {
            (Dist::Zipf, Some(z)) => z.sample(rng),
            _ => rng.below(n),
        }
    }

    fn present(&self, rng: &mut Rng) -> u64 {
        self.pick(self.keys, self.zipf_present.as_ref(), rng)
    }

    fn space(&self, f: u32, rng: &mut Rng) -> u64 {
        let z = self
            .zipf_space
            .iter()
            .find(|(x, _)| *x == f)
            .map(|(_, z)| z);
        self.pick(self.keys * f as u64, z, rng)
    }
}

/// Base of fresh key indices: far above any prefilled or absent index.
const FRESH_BASE: u64 = 1 << 62;

/// Generates `n` operations of `workload` for thread `thread` (deterministic in `seed`).
pub fn generate(workload: &Workload, gen: &KeyGen, thread: usize, n: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ mix64(thread as u64 + 1));
    // Cumulative per-mille table.
    let mut cum = Vec::with_capacity(workload.shares.len());
    let mut acc = 0u32;
    for sh in &workload.shares {
        acc += sh.per_mille as u32;
        cum.push(acc);
    }
    let total = acc.max(1) as u64;
    let fresh_base = FRESH_BASE | ((thread as u64) << 40);
    let mut fresh_seq = 0u64;
    let mut last_fresh: Option<u64> = None;
    let mut removed: VecDeque<u64> = VecDeque::new();
    let tenants = tenants(gen.keys);
    let per_tenant = (gen.keys / tenants).max(1);
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let roll = rng.below(total) as u32;
        let i = cum.iter().position(|&c| roll < c).unwrap_or(cum.len() - 1);
        let sh = workload.shares[i];
        let (index, fresh) = match sh.keys {
            Present => (gen.present(&mut rng), false),
            Space(f) => (gen.space(f, &mut rng), false),
            Absent(f) => (gen.keys + gen.space(f, &mut rng), false),
            Fresh => {
                let k = fresh_base + fresh_seq;
                fresh_seq += 1;
                last_fresh = Some(k);
                (k, true)
            }
            RecentFresh => match last_fresh {
                Some(k) => (k, true),
                None => (gen.present(&mut rng), false),
            },
            Hot => (0, false),
            Reinsert => match removed.pop_front() {
                Some(k) => (k, false),
                None => (gen.present(&mut rng), false),
            },
            Tenant => {
                let t = gen.pick(tenants, gen.zipf_tenant.as_ref(), &mut rng);
                (t * per_tenant + rng.below(per_tenant), false)
            }
            NoKey => (0, false),
        };
        if sh.kind == Remove && sh.keys == Present {
            removed.push_back(index);
        }
        ops.push(Op {
            key: mix64(index),
            kind: sh.kind,
            fresh,
        });
    }
    ops
}

/// Counts the operations of a stream by kind.
pub fn count_kinds(ops: &[Op]) -> std::collections::BTreeMap<OpKind, usize> {
    let mut m = std::collections::BTreeMap::new();
    for op in ops {
        *m.entry(op.kind).or_insert(0) += 1;
    }
    m
}

/// The key of prefilled index `i`.
#[inline]
pub fn prefill_key(i: u64) -> u64 {
    mix64(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_shares_sum_to_1000() {
        for w in Workload::all() {
            w.check().unwrap();
        }
        for name in QUICK.iter().chain(DEFAULT) {
            assert!(Workload::by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn fresh_keys_are_distinct_across_threads() {
        let w = Workload::by_name("ttl-cache").unwrap();
        let g = KeyGen::new(&w, 1000, Dist::Uniform);
        let a = generate(&w, &g, 0, 5000, 1);
        let b = generate(&w, &g, 1, 5000, 1);
        let fa: std::collections::HashSet<u64> = a
            .iter()
            .filter(|o| o.kind == Insert)
            .map(|o| o.key)
            .collect();
        assert!(b
            .iter()
            .filter(|o| o.kind == Insert)
            .all(|o| !fa.contains(&o.key)));
        let prefilled: std::collections::HashSet<u64> = (0..1000).map(prefill_key).collect();
        assert!(fa.iter().all(|k| !prefilled.contains(k)));
    }

    #[test]
    fn reinsert_uses_removed_keys() {
        let w = Workload::by_name("delete-insert").unwrap();
        let g = KeyGen::new(&w, 1000, Dist::Uniform);
        let ops = generate(&w, &g, 0, 20_000, 3);
        let removed: Vec<u64> = ops
            .iter()
            .filter(|o| o.kind == Remove)
            .map(|o| o.key)
            .collect();
        let inserted: Vec<u64> = ops
            .iter()
            .filter(|o| o.kind == Insert)
            .map(|o| o.key)
            .collect();
        let common = inserted.iter().filter(|k| removed.contains(k)).count();
        assert!(
            common * 10 >= inserted.len() * 8,
            "{common} of {}",
            inserted.len()
        );
    }

    #[test]
    fn custom_rejects_bad_sums() {
        assert!(Workload::custom(90.0, 5.0, 5.0, 5.0).is_err());
        assert!(Workload::custom(-1.0, 101.0, 0.0, 0.0).is_err());
        // A share below the per-mille resolution is refused, not dropped.
        assert!(Workload::custom(99.96, 0.04, 0.0, 0.0).is_err());
        assert_eq!(
            Workload::custom(99.9, 0.1, 0.0, 0.0)
                .unwrap()
                .per_mille(Overwrite),
            1
        );
        let w = Workload::custom(90.0, 5.0, 5.0, 0.0).unwrap();
        assert_eq!(w.per_mille(Get), 900);
        assert_eq!(w.new_key_per_mille(), 50.0);
    }
}
