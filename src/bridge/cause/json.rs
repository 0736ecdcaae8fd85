//! The JSON shape of a [`Cause`] (`causes[]` in `import`, `fetch`, `pull`
//! and `mirror` output, and in dry-run plans). One shape for every command,
//! so scripts that read one read them all.

use serde::{Serialize, Serializer};

use super::{Cause, CauseKey};

/// One introducing commit.
#[derive(Serialize)]
struct Introduction {
    commit: String,
    refs: usize,
    date: Option<String>,
    subject: String,
}

/// Another path the offending entry was moved or copied to.
#[derive(Serialize)]
struct Moved {
    path: String,
    commits: Vec<String>,
}

/// The serialized view of a cause.
#[derive(Serialize)]
struct View<'a> {
    /// The refusal's name, as in `skipped[].refusal`.
    refusal: &'static str,
    spec: &'static str,
    /// The offending path from the root tree, when the cause lies in a tree.
    path: Option<String>,
    /// The refused object, when the cause is one object.
    object: Option<String>,
    summary: String,
    introduced: Vec<Introduction>,
    /// Other paths the entry was moved or copied to.
    also_at: Vec<Moved>,
    /// How many refs it blocks.
    refs: usize,
    blocked: &'a [String],
    /// The full refusal message of the first blocked ref.
    reason: String,
    remedy: String,
    reported_before: bool,
}

/// A path in JSON: JSON strings carry any text, so it is escaped only when
/// it is not UTF-8.
fn json_path(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s) => s.to_owned(),
        Err(_) => path.escape_ascii().to_string(),
    }
}

impl<'a> From<&'a Cause> for View<'a> {
    fn from(c: &'a Cause) -> Self {
        View {
            refusal: c.refusal.name(),
            spec: c.refusal.spec(),
            path: c.path.as_deref().map(json_path),
            object: match &c.key {
                CauseKey::Object { object, .. } => Some(object.to_hex()),
                _ => None,
            },
            summary: c.refusal.summary(),
            introduced: c
                .introduced
                .iter()
                .map(|i| Introduction {
                    commit: i.commit.to_hex(),
                    refs: i.refs,
                    date: i.date(),
                    subject: i.subject.clone(),
                })
                .collect(),
            also_at: c
                .moved
                .iter()
                .map(|m| Moved {
                    path: json_path(&m.path),
                    commits: m.commits.iter().map(|c| c.to_hex()).collect(),
                })
                .collect(),
            refs: c.blocked.len(),
            blocked: &c.blocked,
            reason: c.refusal.to_string(),
            remedy: c.remedy(),
            reported_before: c.reported,
        }
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        View::from(self).serialize(s)
    }
}
