//! Revision names, as the reference's `revspec` resolver reads them.
//!
//! A base — `HEAD`; a full ref name under `refs/heads/`, `refs/tags/` or
//! `refs/remotes/<remote>/`; a short branch, tag or `<remote>/<branch>` name
//! (in that order); 64 hex digits naming a stored object; or a hex prefix of
//! at least four digits naming exactly one — then any number of `~[n]`
//! (n first parents) and `^[n]` (the n-th parent; `^0` the commit itself)
//! steps. No ranges, reflog or path syntax: the caller splits `A..B`.

use crate::mkit::Id;
use crate::mkit::id::HEX_LEN;
use crate::mkit::object::Object;
use crate::mkit::refs::{self, HEADS_PREFIX, REMOTES_PREFIX, RefError, TAGS_PREFIX};
use crate::mkit::repo::Repo;
use crate::mkit::store::StoreError;

/// Shortest hex prefix accepted for an object id.
pub const MIN_PREFIX: usize = 4;

/// Why a revision does not name an object. The messages are the reference's.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// Nothing by this name: no ref, no object.
    #[error("unknown revision '{0}'")]
    Unknown(String),
    /// A hex prefix that names more than one object; give more digits.
    #[error("ambiguous short hash '{0}' matches multiple objects")]
    Ambiguous(String),
    /// A `~`/`^` step that cannot be taken.
    #[error("revision '{spec}': {detail}")]
    BadStep {
        /// The whole revision as given.
        spec: String,
        /// Which step failed and why.
        detail: String,
    },
    /// A `~`/`^` step from an object that has no parents (a tree or blob).
    #[error("revision '{0}' resolves to a non-commit object; cannot walk parents")]
    NotACommit(String),
    /// `HEAD` could not be read.
    #[error("resolve HEAD: {0}")]
    Head(#[source] RefError),
    /// The object directory could not be listed for a prefix.
    #[error("scan objects: {0}")]
    Scan(#[source] crate::durable::IoError),
    /// A commit on the way could not be read.
    #[error("read object: {0}")]
    Store(#[source] StoreError),
}

/// The object `spec` names in `repo`.
pub fn resolve(repo: &Repo, spec: &str) -> Result<Id, RevisionError> {
    let split = spec.find(['~', '^']).unwrap_or(spec.len());
    let (base, mut steps) = spec.split_at(split);
    if base.is_empty() {
        return Err(RevisionError::Unknown(spec.to_owned()));
    }
    let mut at = resolve_base(repo, base)?;
    while let Some(op) = steps.chars().next() {
        if op != '~' && op != '^' {
            return Err(RevisionError::BadStep {
                spec: spec.to_owned(),
                detail: format!("unexpected character in suffix '{steps}'"),
            });
        }
        // `op` is one ASCII byte, so slicing after it stays on a boundary.
        let (count, digits) = leading_count(&steps[1..]);
        at = if op == '~' {
            first_parent_walk(repo, spec, at, count)?
        } else {
            nth_parent(repo, spec, at, count)?
        };
        steps = &steps[1 + digits..];
    }
    Ok(at)
}

/// A ref's value, with any failure to read it counted as absence (the
/// reference falls through to the next reading in that case).
fn ref_value(repo: &Repo, full_name: &str) -> Option<Id> {
    refs::read_ref(repo.mkit_dir(), full_name).ok().flatten()
}

fn resolve_base(repo: &Repo, base: &str) -> Result<Id, RevisionError> {
    let unknown = || RevisionError::Unknown(base.to_owned());
    if base == "HEAD" {
        return refs::resolve_head(repo.mkit_dir())
            .map_err(RevisionError::Head)?
            .ok_or_else(|| RevisionError::Unknown("HEAD".to_owned()));
    }
    if base.starts_with(HEADS_PREFIX) || base.starts_with(TAGS_PREFIX) {
        return ref_value(repo, base).ok_or_else(unknown);
    }
    if let Some(rest) = base.strip_prefix(REMOTES_PREFIX) {
        return match rest.split_once('/') {
            Some(_) => ref_value(repo, base).ok_or_else(unknown),
            None => Err(unknown()),
        };
    }
    if refs::check_ref_grammar(base).is_ok() {
        let short = [
            format!("{HEADS_PREFIX}{base}"),
            format!("{TAGS_PREFIX}{base}"),
        ];
        if let Some(id) = short.iter().find_map(|name| ref_value(repo, name)) {
            return Ok(id);
        }
        if base.contains('/')
            && let Some(id) = ref_value(repo, &format!("{REMOTES_PREFIX}{base}"))
        {
            return Ok(id);
        }
    }
    let is_hex = base.bytes().all(|b| b.is_ascii_hexdigit());
    if base.len() == HEX_LEN && is_hex {
        let id = Id::from_hex(&base.to_ascii_lowercase()).map_err(|_| unknown())?;
        return if repo.store().contains(&id) {
            Ok(id)
        } else {
            Err(unknown())
        };
    }
    if (MIN_PREFIX..HEX_LEN).contains(&base.len()) && is_hex {
        return unique_prefix(repo, base);
    }
    Err(unknown())
}

/// The one stored object whose id starts with `prefix`; only the prefix's
/// fan-out directory is listed.
fn unique_prefix(repo: &Repo, prefix: &str) -> Result<Id, RevisionError> {
    let lower = prefix.to_ascii_lowercase();
    let (fan, rest) = lower.split_at(2);
    let dir = repo.store().root().join(fan);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RevisionError::Unknown(prefix.to_owned()));
        }
        Err(e) => {
            return Err(RevisionError::Scan(crate::durable::IoError::new(
                "list", dir, e,
            )));
        }
    };
    let mut found = None;
    for entry in entries {
        let entry = entry
            .map_err(|e| RevisionError::Scan(crate::durable::IoError::new("list", &dir, e)))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.len() != HEX_LEN - 2 || !name.starts_with(rest) {
            continue;
        }
        let Ok(id) = Id::from_hex(&format!("{fan}{name}")) else {
            continue;
        };
        if found.replace(id).is_some() {
            return Err(RevisionError::Ambiguous(prefix.to_owned()));
        }
    }
    found.ok_or_else(|| RevisionError::Unknown(prefix.to_owned()))
}

/// A decimal count at the start of `s` and how many digits it took; an
/// absent count is 1. An overlong count saturates (the walk fails first).
fn leading_count(s: &str) -> (u32, usize) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (1, 0);
    }
    (s[..digits].parse().unwrap_or(u32::MAX), digits)
}

fn parents(repo: &Repo, spec: &str, id: &Id) -> Result<Vec<Id>, RevisionError> {
    match repo.store().read(id).map_err(RevisionError::Store)? {
        Object::Commit(c) => Ok(c.parents),
        Object::Remix(r) => Ok(r.parents),
        _ => Err(RevisionError::NotACommit(spec.to_owned())),
    }
}

fn first_parent_walk(repo: &Repo, spec: &str, mut at: Id, count: u32) -> Result<Id, RevisionError> {
    for _ in 0..count {
        at = *parents(repo, spec, &at)?
            .first()
            .ok_or_else(|| RevisionError::BadStep {
                spec: spec.to_owned(),
                detail: format!("commit {at} has no parent (history root reached)"),
            })?;
    }
    Ok(at)
}

fn nth_parent(repo: &Repo, spec: &str, at: Id, n: u32) -> Result<Id, RevisionError> {
    if n == 0 {
        return Ok(at);
    }
    let list = parents(repo, spec, &at)?;
    usize::try_from(n - 1)
        .ok()
        .and_then(|i| list.get(i).copied())
        .ok_or_else(|| RevisionError::BadStep {
            spec: spec.to_owned(),
            detail: format!(
                "commit {at} has no parent #{n} (only {} parent(s))",
                list.len()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mkit::object::{Commit, Identity};
    use crate::mkit::refs::{Head, RefCondition};

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path()).unwrap();
        (dir, repo)
    }

    fn commit(repo: &Repo, parents: Vec<Id>, seed: u8) -> Id {
        repo.store()
            .write(&Object::Commit(Commit {
                tree: Id([seed; 32]),
                parents,
                author: Identity::ed25519([0; 32]),
                message: vec![seed],
                timestamp: u64::from(seed),
                signer: [0; 32],
                message_hash: Id::ZERO,
                content_digest: Id::ZERO,
                signature: [0; 64],
            }))
            .unwrap()
    }

    fn set(repo: &Repo, name: &str, id: Id) {
        refs::write_ref(repo.mkit_dir(), name, &id, RefCondition::Any).unwrap();
    }

    #[test]
    fn names_resolve_in_the_reference_order() {
        let (_d, repo) = repo();
        let a = commit(&repo, vec![], 1);
        let b = commit(&repo, vec![a], 2);
        let c = commit(&repo, vec![b], 3);
        set(&repo, "refs/heads/main", c);
        set(&repo, "refs/heads/dup", a);
        set(&repo, "refs/tags/dup", b);
        set(&repo, "refs/tags/v1", b);
        set(&repo, "refs/remotes/upstream/main", a);
        assert_eq!(resolve(&repo, "HEAD").unwrap(), c);
        assert_eq!(resolve(&repo, "main").unwrap(), c);
        assert_eq!(
            resolve(&repo, "dup").unwrap(),
            a,
            "a branch wins over a tag"
        );
        assert_eq!(resolve(&repo, "refs/tags/dup").unwrap(), b);
        assert_eq!(resolve(&repo, "v1").unwrap(), b);
        assert_eq!(resolve(&repo, "upstream/main").unwrap(), a);
        assert_eq!(resolve(&repo, "refs/remotes/upstream/main").unwrap(), a);
        assert_eq!(resolve(&repo, &c.to_hex()).unwrap(), c);
        assert_eq!(resolve(&repo, &c.to_hex().to_uppercase()).unwrap(), c);
        assert_eq!(resolve(&repo, &c.to_hex()[..10]).unwrap(), c);
        assert!(matches!(
            resolve(&repo, &c.to_hex()[..3]),
            Err(RevisionError::Unknown(_))
        ));
        assert!(matches!(
            resolve(&repo, "nope"),
            Err(RevisionError::Unknown(_))
        ));
        assert_eq!(
            resolve(&repo, "refs/heads/nope").unwrap_err().to_string(),
            "unknown revision 'refs/heads/nope'"
        );
    }

    #[test]
    fn steps_walk_parents() {
        let (_d, repo) = repo();
        let a = commit(&repo, vec![], 1);
        let side = commit(&repo, vec![], 2);
        let m = commit(&repo, vec![a, side], 3);
        let tip = commit(&repo, vec![m], 4);
        set(&repo, "refs/heads/main", tip);
        assert_eq!(resolve(&repo, "HEAD~").unwrap(), m);
        assert_eq!(resolve(&repo, "HEAD~2").unwrap(), a);
        assert_eq!(resolve(&repo, "HEAD^^2").unwrap(), side);
        assert_eq!(resolve(&repo, "main~1^0").unwrap(), m);
        assert_eq!(
            resolve(&repo, "HEAD~3").unwrap_err().to_string(),
            format!("revision 'HEAD~3': commit {a} has no parent (history root reached)")
        );
        assert_eq!(
            resolve(&repo, "HEAD^3").unwrap_err().to_string(),
            format!("revision 'HEAD^3': commit {tip} has no parent #3 (only 1 parent(s))")
        );
        assert!(matches!(
            resolve(&repo, "HEAD~1x"),
            Err(RevisionError::BadStep { .. })
        ));
        assert!(matches!(
            resolve(&repo, "~1"),
            Err(RevisionError::Unknown(_))
        ));
        assert!(matches!(
            resolve(&repo, "HEAD~1é"),
            Err(RevisionError::BadStep { .. })
        ));
    }

    #[test]
    fn head_on_an_unborn_branch_is_unknown() {
        let (_d, repo) = repo();
        refs::write_head(repo.mkit_dir(), &Head::Symbolic("refs/heads/main".into())).unwrap();
        assert_eq!(
            resolve(&repo, "HEAD").unwrap_err().to_string(),
            "unknown revision 'HEAD'"
        );
    }
}
