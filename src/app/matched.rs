//! What a warm server remembers between keystrokes: the pairs each condition matched.
//!
//! A segment is a predicate over (person, installation-or-none) pairs, so the pairs matching an
//! `and` of conditions are the pairs each condition matches; the installations target counts the
//! matching installation pairs, and the persons target the persons with a matching pair (an
//! installation pair, or the one empty pair of a person without installations). The editor's
//! report (the segment, its channels, each condition alone, both targets) is therefore exact
//! bit arithmetic over one bitmap per top-level condition, and a keystroke that changes one
//! condition re-evaluates that condition only. Bitmaps are kept per as-of time in an LRU within a
//! byte budget; the snapshot is fixed by the workspace that owns the cache.

use crate::error::{Error, Result};
use crate::plan::TableSources;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A fixed-size set of indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    pub fn new(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Every index of `0..len`.
    pub fn all(len: usize) -> Bits {
        let mut b = Bits {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        if !len.is_multiple_of(64) {
            if let Some(last) = b.words.last_mut() {
                *last = (1u64 << (len % 64)) - 1;
            }
        }
        b
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn get(&self, i: usize) -> bool {
        (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// How many indices are in the set.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    pub fn and(&self, other: &Bits) -> Bits {
        debug_assert_eq!(self.len, other.len);
        Bits {
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a & b)
                .collect(),
            len: self.len,
        }
    }

    /// The indices in the set, ascending.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(k, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    k * 64 + bit
                })
            })
        })
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// The ids of one table, each with a dense index: the id less the smallest when the ids fill
/// a range (as generated and imported stores number them), else its rank.
#[derive(Debug)]
enum Index {
    Range { min: i64, len: usize },
    Sorted(Vec<i64>),
}

impl Index {
    /// `ids` must be distinct (they are a table's key).
    fn of(mut ids: Vec<i64>) -> Index {
        let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else {
            return Index::Range { min: 0, len: 0 };
        };
        if (max as i128 - min as i128 + 1) == ids.len() as i128 {
            return Index::Range {
                min,
                len: ids.len(),
            };
        }
        ids.sort_unstable();
        Index::Sorted(ids)
    }

    fn len(&self) -> usize {
        match self {
            Index::Range { len, .. } => *len,
            Index::Sorted(ids) => ids.len(),
        }
    }

    /// The id at index `i` (< len): indices ascend with ids.
    fn id(&self, i: usize) -> i64 {
        match self {
            Index::Range { min, .. } => min + i as i64,
            Index::Sorted(ids) => ids[i],
        }
    }

    fn position(&self, id: i64) -> Option<usize> {
        match self {
            Index::Range { min, len } => {
                let k = id.checked_sub(*min)?;
                (k >= 0 && (k as usize) < *len).then_some(k as usize)
            }
            Index::Sorted(ids) => ids.binary_search(&id).ok(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Index::Range { .. } => 0,
            Index::Sorted(ids) => ids.len() * 8,
        }
    }
}

/// The pairs of one snapshot: its installations (each with its person) and the persons
/// without installations, whose pair is the empty one.
#[derive(Debug)]
pub struct Universe {
    installations: Index,
    persons: Index,
    /// The person index of each installation index.
    person_of: Vec<u32>,
    /// Persons without installations.
    orphans: Bits,
}

/// The first column of `batch` as Int64 ids (a table key or a plan's key output).
fn ids(batch: &RecordBatch, what: &str) -> Result<Vec<i64>> {
    let c = batch.column(0);
    let a = c
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::Internal(format!("{what} ids are {}, not Int64", c.data_type())))?;
    if a.null_count() > 0 {
        return Err(Error::Internal(format!("a null {what} id")));
    }
    Ok(a.values().to_vec())
}

impl Universe {
    /// From batches of `(installation_id, person_id)` and of `(person_id)`.
    pub fn build(installations: &[RecordBatch], persons: &[RecordBatch]) -> Result<Universe> {
        let mut person_ids = Vec::new();
        for b in persons {
            person_ids.extend(ids(b, "person")?);
        }
        let persons = Index::of(person_ids);
        let mut installation_ids = Vec::new();
        let mut owners = Vec::new();
        for b in installations {
            installation_ids.extend(ids(b, "installation")?);
            owners.extend(ids(&b.project(&[1])?, "installation's person")?);
        }
        let index = Index::of(installation_ids.clone());
        let mut person_of = vec![0u32; index.len()];
        let mut orphans = Bits::all(persons.len());
        for (id, owner) in installation_ids.into_iter().zip(owners) {
            let p = persons.position(owner).ok_or_else(|| {
                Error::Internal(format!("installation {id} has no person {owner}"))
            })?;
            person_of[index.position(id).expect("an id of the index")] = p as u32;
            orphans.words[p / 64] &= !(1 << (p % 64));
        }
        Ok(Universe {
            installations: index,
            persons,
            person_of,
            orphans,
        })
    }

    pub fn has_orphans(&self) -> bool {
        self.orphans.count() > 0
    }

    /// Bitmaps over persons from batches of `(person_id, flag 0, …, flag n-1)`: flag k's
    /// persons.
    pub fn person_flags(&self, batches: &[RecordBatch], n: usize) -> Result<Vec<Bits>> {
        flags(batches, n, &self.persons, "person")
    }

    /// Bitmaps over installations from batches of `(installation_id, flag 0, …)`.
    pub fn installation_flags(&self, batches: &[RecordBatch], n: usize) -> Result<Vec<Bits>> {
        flags(batches, n, &self.installations, "installation")
    }

    /// The pairs of a condition that reads no installation column: all of a matching person's.
    pub fn of_persons(&self, persons: &Bits) -> Matched {
        let mut installations = Bits::new(self.installations.len());
        for (i, &p) in self.person_of.iter().enumerate() {
            if persons.get(p as usize) {
                installations.set(i);
            }
        }
        Matched {
            installations,
            orphans: persons.and(&self.orphans),
            persons: persons.clone(),
            per_person: true,
        }
    }

    /// The pairs of a condition that reads installation columns: its installation pairs, and
    /// the persons without installations whose empty pair it matches (`orphans` may hold other
    /// persons: they are dropped).
    pub fn of_pairs(&self, installations: Bits, orphans: &Bits) -> Matched {
        let orphans = orphans.and(&self.orphans);
        Matched {
            persons: self.persons_of(&installations, &orphans),
            installations,
            orphans,
            per_person: false,
        }
    }

    /// Every pair.
    pub fn all(&self) -> Matched {
        Matched {
            installations: Bits::all(self.installations.len()),
            orphans: self.orphans.clone(),
            persons: Bits::all(self.persons.len()),
            per_person: true,
        }
    }

    /// The pairs every one of `parts` matches (all pairs when there is none).
    pub fn all_of(&self, parts: &[&Matched]) -> Matched {
        let Some((first, rest)) = parts.split_first() else {
            return self.all();
        };
        let mut m = (*first).clone();
        for p in rest {
            m.installations = m.installations.and(&p.installations);
            m.orphans = m.orphans.and(&p.orphans);
            m.persons = m.persons.and(&p.persons);
            m.per_person &= p.per_person;
        }
        // A person-only condition keeps all of a person's pairs or none, so with at most one
        // condition reading installations the persons are the intersection; with two, a
        // person may match each through a different installation and neither through one.
        if parts.iter().filter(|p| !p.per_person).count() > 1 {
            m.persons = self.persons_of(&m.installations, &m.orphans);
        }
        m
    }

    /// The persons with one of `installations`, and `orphans`.
    fn persons_of(&self, installations: &Bits, orphans: &Bits) -> Bits {
        let mut seen = orphans.clone();
        for i in installations.ones() {
            seen.set(self.person_of[i] as usize);
        }
        seen
    }

    /// The id of installation index `i`.
    pub fn installation_id(&self, i: usize) -> i64 {
        self.installations.id(i)
    }

    /// The person id of installation index `i`'s owner.
    pub fn owner_id(&self, i: usize) -> i64 {
        self.persons.id(self.person_of[i] as usize)
    }

    /// The id of person index `p`.
    pub fn person_id(&self, p: usize) -> i64 {
        self.persons.id(p)
    }

    /// An empty set of persons.
    pub fn no_persons(&self) -> Bits {
        Bits::new(self.persons.len())
    }

    pub fn bytes(&self) -> usize {
        self.installations.bytes()
            + self.persons.bytes()
            + self.person_of.len() * 4
            + self.orphans.bytes()
    }
}

fn flags(batches: &[RecordBatch], n: usize, index: &Index, what: &str) -> Result<Vec<Bits>> {
    let mut out = vec![Bits::new(index.len()); n];
    for b in batches {
        if b.num_columns() != n + 1 {
            return Err(Error::Internal(format!(
                "{} columns where a key and {n} flags were expected",
                b.num_columns()
            )));
        }
        let keys = ids(b, what)?;
        let rows: Vec<usize> = keys
            .iter()
            .map(|&id| {
                index
                    .position(id)
                    .ok_or_else(|| Error::Internal(format!("{what} {id} is not in the snapshot")))
            })
            .collect::<Result<_>>()?;
        for (k, bits) in out.iter_mut().enumerate() {
            let flag = b.column(k + 1).as_boolean_opt().ok_or_else(|| {
                Error::Internal(format!("flag {k} is {}", b.column(k + 1).data_type()))
            })?;
            for (r, &i) in rows.iter().enumerate() {
                if flag.is_valid(r) && flag.value(r) {
                    bits.set(i);
                }
            }
        }
    }
    Ok(out)
}

/// The pairs one condition matches: installation pairs by installation index, empty pairs by
/// person index, and the persons with a matching pair of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub installations: Bits,
    pub orphans: Bits,
    pub persons: Bits,
    /// Whether it matches all of a person's pairs or none (it reads no installation column).
    pub per_person: bool,
}

impl Matched {
    fn bytes(&self) -> usize {
        self.installations.bytes() + self.orphans.bytes() + self.persons.bytes()
    }
}

/// What a workspace keeps warm: the pairs, the persons without installations as a table of
/// their own (so that evaluating a condition on their empty pairs reads only them), and the
/// matched pairs of recent conditions.
pub struct MatchedCache {
    budget: usize,
    warm: tokio::sync::OnceCell<Arc<Warm>>,
    entries: Mutex<Entries>,
}

pub struct Warm {
    pub universe: Universe,
    /// The snapshot's tables with `persons` holding only the persons without installations.
    pub orphan_sources: TableSources,
}

#[derive(Default)]
struct Entries {
    /// (as-of µs, condition) → (pairs, last use).
    map: HashMap<(i64, String), (Arc<Matched>, u64)>,
    tick: u64,
    bytes: usize,
}

impl MatchedCache {
    /// A cache keeping at most about `budget` bytes of matched pairs.
    pub fn new(budget: usize) -> MatchedCache {
        MatchedCache {
            budget,
            warm: tokio::sync::OnceCell::new(),
            entries: Mutex::default(),
        }
    }

    /// The pairs, built by `build` on first use.
    pub async fn warm<F, Fut>(&self, build: F) -> Result<Arc<Warm>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Warm>>,
    {
        self.warm
            .get_or_try_init(|| async { build().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// The pairs, when they were built.
    pub fn warmed(&self) -> Option<Arc<Warm>> {
        self.warm.get().cloned()
    }

    pub fn get(&self, as_of: i64, condition: &str) -> Option<Arc<Matched>> {
        let mut e = self.entries.lock().ok()?;
        e.tick += 1;
        let tick = e.tick;
        let hit = e.map.get_mut(&(as_of, condition.to_string()))?;
        hit.1 = tick;
        Some(hit.0.clone())
    }

    /// Keeps `m`, dropping the least recently used entries past the budget (an entry larger
    /// than the whole budget is not kept).
    pub fn put(&self, as_of: i64, condition: String, m: Arc<Matched>) {
        let size = m.bytes() + condition.len();
        if size > self.budget {
            return;
        }
        let Ok(mut e) = self.entries.lock() else {
            return;
        };
        e.tick += 1;
        let tick = e.tick;
        if let Some((old, _)) = e.map.insert((as_of, condition.clone()), (m, tick)) {
            e.bytes -= old.bytes() + condition.len();
        }
        e.bytes += size;
        while e.bytes > self.budget {
            let Some(oldest) = e
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = e.map.remove(&oldest) {
                e.bytes -= old.bytes() + oldest.1.len();
            }
        }
    }

    /// Bytes held by cached pairs.
    pub fn bytes(&self) -> usize {
        self.entries.lock().map(|e| e.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Int64Array};
    use std::sync::Arc as StdArc;

    fn batch(cols: Vec<arrow::array::ArrayRef>) -> RecordBatch {
        let fields: Vec<_> = (0..cols.len()).map(|k| format!("c{k}")).collect();
        RecordBatch::try_from_iter(fields.into_iter().zip(cols)).unwrap()
    }

    fn universe() -> Universe {
        // Persons 10, 20, 30 (30 has no installation); installations 5 → 10, 6 → 10, 7 → 20.
        let inst = batch(vec![
            StdArc::new(Int64Array::from(vec![5, 6, 7])),
            StdArc::new(Int64Array::from(vec![10, 10, 20])),
        ]);
        let persons = batch(vec![StdArc::new(Int64Array::from(vec![30, 10, 20]))]);
        Universe::build(&[inst], &[persons]).unwrap()
    }

    #[test]
    fn bits_count_and_iterate() {
        let mut b = Bits::new(130);
        for i in [0, 63, 64, 129] {
            b.set(i);
        }
        assert_eq!(b.count(), 4);
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        assert_eq!(Bits::all(130).count(), 130);
        assert_eq!(Bits::all(128).count(), 128);
        assert_eq!(b.and(&Bits::all(130)), b);
    }

    #[test]
    fn sparse_ids_are_ranked() {
        let i = Index::of(vec![40, -3, 1000]);
        assert_eq!(
            [-3, 40, 1000, 7].map(|id| i.position(id)),
            [Some(0), Some(1), Some(2), None]
        );
        let r = Index::of(vec![12, 10, 11]);
        assert!(matches!(r, Index::Range { min: 10, len: 3 }));
        assert_eq!(r.position(9), None);
        assert_eq!(r.position(13), None);
    }

    fn installations(u: &Universe, ids: Vec<i64>) -> Matched {
        let n = ids.len();
        let flags = u
            .installation_flags(
                &[batch(vec![
                    StdArc::new(Int64Array::from(ids)),
                    StdArc::new(BooleanArray::from(vec![Some(true); n])),
                ])],
                1,
            )
            .unwrap();
        u.of_pairs(flags[0].clone(), &u.no_persons())
    }

    fn count(m: &Matched) -> (u64, u64) {
        (m.installations.count(), m.persons.count())
    }

    #[test]
    fn persons_count_once_and_orphans_by_their_empty_pair() {
        let u = universe();
        assert_eq!(count(&u.all()), (3, 3));
        assert_eq!(count(&u.all_of(&[])), (3, 3));
        // Installations 5 and 6 (both person 10) match: one person.
        let m = installations(&u, vec![6, 5]);
        assert_eq!(count(&m), (2, 1));
        // A person-only condition matching persons 20 and 30: installation 7, and 30's empty pair.
        let p = u
            .person_flags(
                &[batch(vec![
                    StdArc::new(Int64Array::from(vec![20, 30])),
                    StdArc::new(BooleanArray::from(vec![Some(true), Some(true)])),
                ])],
                1,
            )
            .unwrap();
        let q = u.of_persons(&p[0]);
        assert_eq!(count(&q), (1, 2));
        // Their `and` matches nothing: the persons differ.
        assert_eq!(count(&u.all_of(&[&m, &q])), (0, 0));
        assert_eq!(count(&u.all_of(&[&q, &u.all()])), (1, 2));
    }

    #[test]
    fn two_installation_conditions_meet_on_one_installation() {
        let u = universe();
        // Person 10 matches each through a different installation, so not both.
        let (five, six) = (installations(&u, vec![5]), installations(&u, vec![6]));
        assert_eq!((count(&five), count(&six)), ((1, 1), (1, 1)));
        assert_eq!(count(&u.all_of(&[&five, &six])), (0, 0));
        let five_or_six = installations(&u, vec![5, 6]);
        assert_eq!(count(&u.all_of(&[&five, &five_or_six])), (1, 1));
    }

    #[test]
    fn flags_reject_unknown_ids_and_null_flags_are_false() {
        let u = universe();
        let unknown = batch(vec![
            StdArc::new(Int64Array::from(vec![99])),
            StdArc::new(BooleanArray::from(vec![Some(true)])),
        ]);
        assert!(u.installation_flags(&[unknown], 1).is_err());
        let nulls = batch(vec![
            StdArc::new(Int64Array::from(vec![5, 7])),
            StdArc::new(BooleanArray::from(vec![None, Some(false)])),
        ]);
        assert_eq!(u.installation_flags(&[nulls], 1).unwrap()[0].count(), 0);
    }

    #[test]
    fn the_lru_keeps_the_budget() {
        let m = || {
            StdArc::new(Matched {
                installations: Bits::new(64 * 10),
                orphans: Bits::new(64),
                persons: Bits::new(64),
                per_person: false,
            })
        };
        // One entry: 96 bytes of bits plus its key.
        let cache = MatchedCache::new(200);
        cache.put(0, "a".into(), m());
        cache.put(0, "b".into(), m());
        assert!(cache.get(0, "a").is_some());
        cache.put(0, "c".into(), m());
        // "b" was used least recently.
        assert!(cache.get(0, "b").is_none());
        assert!(cache.get(0, "a").is_some() && cache.get(0, "c").is_some());
        assert!(cache.get(1, "a").is_none(), "keyed by as-of");
        assert!(cache.bytes() <= 200);
    }
}
