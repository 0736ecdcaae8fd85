//! A refusal as a self-describing record, for caches that remember
//! refusals between runs (`refusals-cache`, see `spec/STATE.md`).
//!
//! Only refusals that are a pure function of upstream content and the import
//! options have a record: the tree, commit and tag rules and the size cap.
//! A missing or corrupt object depends on the staging mirror's state, a ref
//! name refusal is decided up front without reading anything, and an
//! unparsable or unrepresentable object carries a parser or encoder error
//! this format does not spell out: [`Record::of`] gives `None` for those,
//! and a cache simply does not remember them. A record is only ever made
//! when it reads back as the same refusal ([`Record::of`] checks the round
//! trip), so a record that decodes is exactly the refusal that was written.

use serde::{Deserialize, Serialize};

use super::{Refusal, TagNameRule};
use crate::git::{ObjectKind, Sha1};
use crate::mkit::object::{EntryMode, NameRule, ObjectType};

/// One refusal, with ids and byte strings in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum Record {
    BlobTooLarge {
        object: String,
        kind: String,
        size: u64,
    },
    Gitlink {
        object: String,
        name: String,
    },
    TreeEntryName {
        object: String,
        name: String,
        rule: String,
    },
    UnknownTreeMode {
        object: String,
        name: String,
        mode: String,
    },
    NormalizedModeInFork {
        object: String,
        name: String,
        mode: String,
    },
    TreeEntryKind {
        object: String,
        name: String,
        mode: u8,
        found: u8,
    },
    DuplicateTreeEntry {
        object: String,
        name: String,
    },
    TooManyTreeEntries {
        object: String,
        count: usize,
    },
    TreeTooDeep {
        object: String,
        depth: usize,
    },
    NegativeTimestamp {
        object: String,
        kind: String,
        timestamp: i64,
    },
    TooManyParents {
        object: String,
        count: usize,
    },
    AuthorPayload {
        object: String,
        kind: String,
        len: usize,
    },
    TagName {
        object: String,
        name: String,
        rule: String,
    },
    TagTarget {
        object: String,
        declared: String,
        found: u8,
    },
    TagChain {
        object: String,
        length: usize,
    },
}

const NAME_RULES: [NameRule; 7] = [
    NameRule::Empty,
    NameRule::TooLong,
    NameRule::ForbiddenByte,
    NameRule::DotOrDotDot,
    NameRule::TrailingDotOrSpace,
    NameRule::Reserved,
    NameRule::WindowsDevice,
];

const TAG_NAME_RULES: [TagNameRule; 9] = [
    TagNameRule::Empty,
    TagNameRule::TooLong,
    TagNameRule::Charset,
    TagNameRule::DotOrDotDot,
    TagNameRule::Head,
    TagNameRule::LockSuffix,
    TagNameRule::LeadingDot,
    TagNameRule::TrailingDot,
    TagNameRule::DoubleDot,
];

fn hex(bytes: &[u8]) -> String {
    crate::hex::encode(bytes)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    crate::hex::decode_lower_vec(s.as_bytes())
}

fn sha(s: &str) -> Option<Sha1> {
    Sha1::from_hex(s).ok()
}

fn kind(s: &str) -> Option<ObjectKind> {
    ObjectKind::from_name(s.as_bytes())
}

/// A rule by its variant name, among `all`.
fn rule<T: std::fmt::Debug + Copy>(all: &[T], s: &str) -> Option<T> {
    all.iter().copied().find(|r| format!("{r:?}") == s)
}

impl Record {
    /// The record of `r`, when it has one (see the module documentation).
    pub fn of(r: &Refusal) -> Option<Record> {
        let record = Record::encode(r)?;
        (record.decode().as_ref() == Some(r)).then_some(record)
    }

    fn encode(r: &Refusal) -> Option<Record> {
        Some(match r {
            Refusal::BlobTooLarge { object, kind, size } => Record::BlobTooLarge {
                object: object.to_hex(),
                kind: kind.name().to_owned(),
                size: *size,
            },
            Refusal::Gitlink { object, name } => Record::Gitlink {
                object: object.to_hex(),
                name: hex(name),
            },
            Refusal::TreeEntryName { object, name, rule } => Record::TreeEntryName {
                object: object.to_hex(),
                name: hex(name),
                rule: format!("{rule:?}"),
            },
            Refusal::UnknownTreeMode { object, name, mode } => Record::UnknownTreeMode {
                object: object.to_hex(),
                name: hex(name),
                mode: hex(mode),
            },
            Refusal::NormalizedModeInFork { object, name, mode } => Record::NormalizedModeInFork {
                object: object.to_hex(),
                name: hex(name),
                mode: hex(mode),
            },
            Refusal::TreeEntryKind {
                object,
                name,
                mode,
                found,
            } => Record::TreeEntryKind {
                object: object.to_hex(),
                name: hex(name),
                mode: *mode as u8,
                found: *found as u8,
            },
            Refusal::DuplicateTreeEntry { object, name } => Record::DuplicateTreeEntry {
                object: object.to_hex(),
                name: hex(name),
            },
            Refusal::TooManyTreeEntries { object, count } => Record::TooManyTreeEntries {
                object: object.to_hex(),
                count: *count,
            },
            Refusal::TreeTooDeep { object, depth } => Record::TreeTooDeep {
                object: object.to_hex(),
                depth: *depth,
            },
            Refusal::NegativeTimestamp {
                object,
                kind,
                timestamp,
            } => Record::NegativeTimestamp {
                object: object.to_hex(),
                kind: kind.name().to_owned(),
                timestamp: *timestamp,
            },
            Refusal::TooManyParents { object, count } => Record::TooManyParents {
                object: object.to_hex(),
                count: *count,
            },
            Refusal::AuthorPayload { object, kind, len } => Record::AuthorPayload {
                object: object.to_hex(),
                kind: kind.name().to_owned(),
                len: *len,
            },
            Refusal::TagName { object, name, rule } => Record::TagName {
                object: object.to_hex(),
                name: hex(name),
                rule: format!("{rule:?}"),
            },
            Refusal::TagTarget {
                object,
                declared,
                found,
            } => Record::TagTarget {
                object: object.to_hex(),
                declared: hex(declared),
                found: *found as u8,
            },
            Refusal::TagChain { object, length } => Record::TagChain {
                object: object.to_hex(),
                length: *length,
            },
            Refusal::Sha256Upstream
            | Refusal::RefName { .. }
            | Refusal::MissingObject { .. }
            | Refusal::CorruptObject { .. }
            | Refusal::Unparsable { .. }
            | Refusal::Unrepresentable { .. } => return None,
        })
    }

    /// The refusal this record describes, or `None` when a field does not
    /// decode.
    pub fn decode(&self) -> Option<Refusal> {
        Some(match self {
            Record::BlobTooLarge {
                object,
                kind: k,
                size,
            } => Refusal::BlobTooLarge {
                object: sha(object)?,
                kind: kind(k)?,
                size: *size,
            },
            Record::Gitlink { object, name } => Refusal::Gitlink {
                object: sha(object)?,
                name: unhex(name)?,
            },
            Record::TreeEntryName {
                object,
                name,
                rule: r,
            } => Refusal::TreeEntryName {
                object: sha(object)?,
                name: unhex(name)?,
                rule: rule(&NAME_RULES, r)?,
            },
            Record::UnknownTreeMode { object, name, mode } => Refusal::UnknownTreeMode {
                object: sha(object)?,
                name: unhex(name)?,
                mode: unhex(mode)?,
            },
            Record::NormalizedModeInFork { object, name, mode } => Refusal::NormalizedModeInFork {
                object: sha(object)?,
                name: unhex(name)?,
                mode: unhex(mode)?,
            },
            Record::TreeEntryKind {
                object,
                name,
                mode,
                found,
            } => Refusal::TreeEntryKind {
                object: sha(object)?,
                name: unhex(name)?,
                mode: EntryMode::from_byte(*mode).ok()?,
                found: ObjectType::from_byte(*found).ok()?,
            },
            Record::DuplicateTreeEntry { object, name } => Refusal::DuplicateTreeEntry {
                object: sha(object)?,
                name: unhex(name)?,
            },
            Record::TooManyTreeEntries { object, count } => Refusal::TooManyTreeEntries {
                object: sha(object)?,
                count: *count,
            },
            Record::TreeTooDeep { object, depth } => Refusal::TreeTooDeep {
                object: sha(object)?,
                depth: *depth,
            },
            Record::NegativeTimestamp {
                object,
                kind: k,
                timestamp,
            } => Refusal::NegativeTimestamp {
                object: sha(object)?,
                kind: kind(k)?,
                timestamp: *timestamp,
            },
            Record::TooManyParents { object, count } => Refusal::TooManyParents {
                object: sha(object)?,
                count: *count,
            },
            Record::AuthorPayload {
                object,
                kind: k,
                len,
            } => Refusal::AuthorPayload {
                object: sha(object)?,
                kind: kind(k)?,
                len: *len,
            },
            Record::TagName {
                object,
                name,
                rule: r,
            } => Refusal::TagName {
                object: sha(object)?,
                name: unhex(name)?,
                rule: rule(&TAG_NAME_RULES, r)?,
            },
            Record::TagTarget {
                object,
                declared,
                found,
            } => Refusal::TagTarget {
                object: sha(object)?,
                declared: unhex(declared)?,
                found: ObjectType::from_byte(*found).ok()?,
            },
            Record::TagChain { object, length } => Refusal::TagChain {
                object: sha(object)?,
                length: *length,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::refusal::tests::one_of_each;

    #[test]
    fn content_refusals_round_trip_and_mirror_state_has_no_record() {
        let o = Sha1([0x5a; 20]);
        for r in &one_of_each(o) {
            let recorded = !matches!(
                r,
                Refusal::MissingObject { .. }
                    | Refusal::CorruptObject { .. }
                    | Refusal::RefName { .. }
                    | Refusal::Unparsable { .. }
                    | Refusal::Unrepresentable { .. }
                    | Refusal::Sha256Upstream
            );
            if !recorded {
                assert_eq!(Record::of(r), None, "{r:?}");
                continue;
            }
            let record = Record::of(r).unwrap_or_else(|| panic!("no record for {r:?}"));
            let text = serde_json::to_string(&record).unwrap();
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back.decode().as_ref(), Some(r), "{text}");
            assert!(
                text.contains(&format!("\"refusal\":\"{}\"", r.name())),
                "{text}"
            );
        }
        // A record whose fields do not decode is no refusal.
        let bad = Record::TreeEntryName {
            object: o.to_hex(),
            name: "zz".into(),
            rule: "WindowsDevice".into(),
        };
        assert_eq!(bad.decode(), None);
        let bad = Record::TreeEntryName {
            object: o.to_hex(),
            name: "61".into(),
            rule: "NoSuchRule".into(),
        };
        assert_eq!(bad.decode(), None);
        assert!(serde_json::from_str::<Record>(r#"{"refusal":"Gitlink","object":"x"}"#).is_err());
    }
}
