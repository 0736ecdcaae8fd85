//! The refusal cache: what the last run refused, so that a fetch does not
//! walk a refused ref's history again while the ref's tip is unchanged.
//!
//! Refused objects are never in the map, so without this every fetch walks
//! (and, before the walk settled refusals, translated) the whole closure of
//! every refused ref, and the refusal report traces their history again:
//! 18 to 40 s for a fetch of git.git that changed nothing. But a refusal is a
//! pure function of the tip's content-addressed closure, the import options
//! and the rules of this build, and the report's causes are a pure function
//! of the skipped refs (names, tips, refusals) and upstream content. So the
//! state directory keeps `refusals-cache` (`crate::state::refusals`), whose
//! body, JSON, holds:
//!
//! - the key it is valid under: `import_spec`, `bridge` (this crate's version
//!   and [`RULES`]) and `fork` (the fork-mode option);
//! - `tips`: each refused tip (40 hex) with its refusal
//!   ([`crate::bridge::refusal::Record`]; refusals that depend on the
//!   mirror's state, a missing or corrupt object, are not kept);
//! - `skipped`: a digest of the skipped refs in upstream order (name, tip,
//!   refusal) and `causes`: the causes traced for exactly that list.
//!
//! A run answers refused tips from the cache only when the map is trusted,
//! the file is whole and written under the same key, every importable ref is
//! either a cached tip or was imported by the previous run (a new ref, a
//! moved or deleted refused ref means a full walk), and the skipped list it
//! predicts is the one the causes were traced for. The answered tips are not
//! walked; their refusals are given to the run as the walk would have found
//! them. The causes are reused whenever the run's skipped list has the
//! cached digest; when it does not and tips were answered, the answered
//! closures are walked after all (read-only) before tracing. A cache can only
//! ever make a run skip a ref that an earlier run of this build refused at
//! the same tip; it never makes anything importable.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bridge::cause::{Cause, CauseKey, Introduction, Moved, Skipped};
use crate::bridge::refusal::{Record, Refusal};
use crate::git::Sha1;
use crate::state::{self, CacheFile, StateError};

use super::MapVerdict;
use super::setup::{Mapped, Prepared};

/// Bumped whenever a refusal rule, the order in which a translation checks
/// them, or the cause tracer changes: a cache written under other rules is
/// not read.
pub const RULES: u32 = 1;

/// The body of `refusals-cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    import_spec: u32,
    bridge: String,
    fork: bool,
    tips: BTreeMap<String, Record>,
    skipped: String,
    causes: Vec<StoredCause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCause {
    key: StoredKey,
    path: Option<String>,
    introduced: Vec<StoredIntroduction>,
    moved: Vec<StoredMoved>,
    blocked: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
enum StoredKey {
    Path { refusal: String, path: String },
    Object { refusal: String, object: String },
    Ref { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredIntroduction {
    commit: String,
    refs: usize,
    time: Option<i64>,
    subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMoved {
    path: String,
    commits: Vec<String>,
}

/// What a run made of the cache.
#[derive(Debug, Default)]
pub(super) struct Reuse {
    /// The cache as read, when whole and written under this run's key.
    body: Option<Body>,
    /// A cache file existed (whole or not).
    present: bool,
    /// Refused tips answered from the cache, not walked.
    pub answered: HashMap<Sha1, Refusal>,
}

/// The key's `bridge` field for this build.
fn bridge_key() -> String {
    format!("mkit-bridge {} rules {RULES}", env!("CARGO_PKG_VERSION"))
}

/// Read the cache of `state_dir` for a run with the fork option `fork`.
/// Anything short of a whole file written under this key is no cache.
fn read(state_dir: &Path, fork: bool) -> (Option<Body>, bool) {
    let bytes = match state::load_refusal_cache(state_dir) {
        Ok(CacheFile::Body(bytes)) => bytes,
        Ok(CacheFile::Missing) => return (None, false),
        Ok(CacheFile::Damaged(_)) | Err(_) => return (None, true),
    };
    let body = serde_json::from_slice::<Body>(&bytes).ok().filter(|b| {
        b.import_spec == state::IMPORT_SPEC_VERSION && b.bridge == bridge_key() && b.fork == fork
    });
    (body, true)
}

/// Digest of a skipped list, in its order: what the causes are a function
/// of, besides upstream content.
fn digest<'a>(list: impl IntoIterator<Item = (&'a str, Option<Sha1>, &'a Refusal)>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"mkit-bridge skipped refs v1\0");
    for (name, tip, refusal) in list {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(
            tip.map_or_else(|| "-".to_owned(), |t| t.to_hex())
                .as_bytes(),
        );
        h.update(b"\0");
        h.update(refusal.name().as_bytes());
        h.update(b"\0");
        h.update(refusal.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// Decide which refused tips of `mapped` the run answers from the cache
/// (see the module documentation for when).
pub(super) fn plan(p: &Prepared, mapped: &[Mapped]) -> Reuse {
    let fork = p.direction == Some(state::Direction::Fork);
    let (body, present) = read(&p.state_dir, fork);
    let mut reuse = Reuse {
        body,
        present,
        answered: HashMap::new(),
    };
    let Some(body) = reuse
        .body
        .as_ref()
        .filter(|_| p.verdict == MapVerdict::Trusted)
    else {
        return reuse;
    };
    let mut answered = HashMap::new();
    let mut predicted: Vec<(&str, Sha1, Refusal)> = Vec::new();
    for (r, mapping) in mapped {
        match mapping {
            Err(refusal) => predicted.push((&r.name, r.target, refusal.clone())),
            Ok(_) => match body.tips.get(&r.target.to_hex()) {
                Some(record) => {
                    let Some(refusal) = record.decode() else {
                        return reuse;
                    };
                    predicted.push((&r.name, r.target, refusal.clone()));
                    answered.insert(r.target, refusal);
                }
                // Imported last time: walked (it stops at once when unchanged).
                None if p.previous.contains_key(&r.name) => {}
                // A new ref, or one refused by a refusal not kept: walk all.
                None => return reuse,
            },
        }
    }
    let predicted_digest = digest(predicted.iter().map(|(n, t, r)| (*n, Some(*t), r)));
    if predicted_digest == body.skipped {
        reuse.answered = answered;
    }
    reuse
}

/// The cached causes, when the cache holds causes traced for exactly
/// `list`.
pub(super) fn causes(reuse: &Reuse, list: &[Skipped<'_>]) -> Option<Vec<Cause>> {
    let body = reuse.body.as_ref()?;
    if digest(list.iter().map(|s| (s.name, s.tip, s.refusal))) != body.skipped {
        return None;
    }
    let by_name: HashMap<&str, &Refusal> = list.iter().map(|s| (s.name, s.refusal)).collect();
    body.causes.iter().map(|c| restore(c, &by_name)).collect()
}

/// A stored cause back as the tracer made it. Its refusal is its first
/// blocked ref's (as the tracer takes it); a key's rule name is one of the
/// skipped refusals' names.
fn restore(c: &StoredCause, by_name: &HashMap<&str, &Refusal>) -> Option<Cause> {
    let rule = |s: &str| by_name.values().map(|r| r.name()).find(|n| *n == s);
    let key = match &c.key {
        StoredKey::Path { refusal, path } => CauseKey::Path {
            refusal: rule(refusal)?,
            path: unhex(path)?,
        },
        StoredKey::Object { refusal, object } => CauseKey::Object {
            refusal: rule(refusal)?,
            object: Sha1::from_hex(object).ok()?,
        },
        StoredKey::Ref { name } => CauseKey::Ref { name: name.clone() },
    };
    let refusal = (*by_name.get(c.blocked.first()?.as_str())?).clone();
    if c.blocked.iter().any(|b| !by_name.contains_key(b.as_str())) {
        return None;
    }
    let introduced = c
        .introduced
        .iter()
        .map(|i| {
            Some(Introduction {
                commit: Sha1::from_hex(&i.commit).ok()?,
                refs: i.refs,
                time: i.time,
                subject: i.subject.clone(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let moved = c
        .moved
        .iter()
        .map(|m| {
            Some(Moved {
                path: unhex(&m.path)?,
                commits: m
                    .commits
                    .iter()
                    .map(|s| Sha1::from_hex(s).ok())
                    .collect::<Option<Vec<_>>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Cause {
        key,
        refusal,
        path: match &c.path {
            Some(p) => Some(unhex(p)?),
            None => None,
        },
        introduced,
        moved,
        blocked: c.blocked.clone(),
        reported: false,
    })
}

fn store_cause(c: &Cause) -> StoredCause {
    let hex = crate::hex::encode;
    StoredCause {
        key: match &c.key {
            CauseKey::Path { refusal, path } => StoredKey::Path {
                refusal: (*refusal).to_owned(),
                path: hex(path),
            },
            CauseKey::Object { refusal, object } => StoredKey::Object {
                refusal: (*refusal).to_owned(),
                object: object.to_hex(),
            },
            CauseKey::Ref { name } => StoredKey::Ref { name: name.clone() },
        },
        path: c.path.as_deref().map(hex),
        introduced: c
            .introduced
            .iter()
            .map(|i| StoredIntroduction {
                commit: i.commit.to_hex(),
                refs: i.refs,
                time: i.time,
                subject: i.subject.clone(),
            })
            .collect(),
        moved: c
            .moved
            .iter()
            .map(|m| StoredMoved {
                path: hex(&m.path),
                commits: m.commits.iter().map(Sha1::to_hex).collect(),
            })
            .collect(),
        blocked: c.blocked.clone(),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    crate::hex::decode_lower_vec(s.as_bytes())
}

/// Record this run's refusals and causes for the next run, when they
/// differ from what the cache holds (a repository that never refused
/// anything gets no file). The body is plain data: encoding it cannot fail
/// (an empty body would only read as no cache).
pub(super) fn store(
    p: &Prepared,
    reuse: &Reuse,
    list: &[Skipped<'_>],
    causes: &[Cause],
) -> Result<(), StateError> {
    let tips = list
        .iter()
        .filter_map(|s| Some((s.tip?.to_hex(), Record::of(s.refusal)?)))
        .collect();
    let body = Body {
        import_spec: state::IMPORT_SPEC_VERSION,
        bridge: bridge_key(),
        fork: p.direction == Some(state::Direction::Fork),
        tips,
        skipped: digest(list.iter().map(|s| (s.name, s.tip, s.refusal))),
        causes: causes.iter().map(store_cause).collect(),
    };
    if reuse.body.as_ref() == Some(&body) || (!reuse.present && list.is_empty()) {
        return Ok(());
    }
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    state::store_refusal_cache(&p.state_dir, &bytes)
}
