//! The walk: every commit and tag reachable from a tip, and the content
//! under imported (and, in a fork audit, bridge) commits.
//!
//! The checks, their order and their failure messages are those of 0.5.0's
//! `mkit git verify`, so a failure reads the same from either tool; checks
//! 0.5.0 lacks (a tip that rebuilds to another id than its record, bytes in
//! a mirror that hash to another id) are ours and say so in their own words.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::source::Mirrors;
use super::{Failure, VerifiedRef, VerifyOutcome};
use crate::bridge::import::{
    MAX_OBJECT_BYTES, MAX_TREE_DEPTH, Translated, unsigned_commit, unsigned_tag,
};
use crate::bridge::verify::{
    DeriveError, GitSource, Verifier, VerifyError, carried_edges, derive_content, shallow_verify,
};
use crate::git::parse::{CommitRef, TagRef, parse_tree};
use crate::git::sha1::{ObjectKind, Sha1, object_id, unframe};
use crate::mkit::id::Id;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::sign::{self, SignatureStatus};
use crate::mkit::store::Store;
use crate::state::{self, Sha1ToBlake};

/// Most objects one audit visits (0.5.0's `MAX_REACHABLE`).
const MAX_REACHABLE: usize = 10_000_000;

/// One audit over a state, shared by all its refs.
pub(super) struct Audit<'a> {
    store: &'a Store,
    state_dir: &'a Path,
    source: &'a Mirrors,
    /// sha1 → mkit twin, from the map (both directions).
    inverse: Sha1ToBlake,
    pinned: Option<[u8; 32]>,
    /// Re-derive the content of bridge commits too (fork audit).
    bridge_content: bool,
    /// Objects already checked: refs sharing history share the work.
    seen: HashSet<Sha1>,
    /// Types of twins already read from the store.
    kinds: HashMap<Id, ObjectType>,
    verifier: Verifier,
    outcome: VerifyOutcome,
}

impl<'a> Audit<'a> {
    /// An audit of the state at `state_dir`, reading git objects from
    /// `source` and mkit objects from `store`.
    pub(super) fn new(
        store: &'a Store,
        state_dir: &'a Path,
        source: &'a Mirrors,
        inverse: Sha1ToBlake,
        pinned: Option<[u8; 32]>,
        bridge_content: bool,
    ) -> Audit<'a> {
        Audit {
            store,
            state_dir,
            source,
            inverse,
            pinned,
            bridge_content,
            seen: HashSet::new(),
            kinds: HashMap::new(),
            verifier: Verifier::new(),
            outcome: VerifyOutcome::default(),
        }
    }

    /// What the audit found so far.
    pub(super) fn finish(self) -> VerifyOutcome {
        self.outcome
    }

    /// Record a failure about `object`.
    pub(super) fn fail(&mut self, object: &Sha1, reason: impl Into<String>) {
        self.outcome.failures.push(Failure {
            object: *object,
            reason: reason.into(),
        });
    }

    /// The mapped twin of `id`, if the map has one.
    pub(super) fn twin_of(&self, id: &Sha1) -> Option<Id> {
        self.inverse.get(id).copied()
    }

    /// Whether `id`'s raw bytes are retained, i.e. it was imported.
    pub(super) fn is_imported(&self, id: &Sha1) -> bool {
        state::has_raw(self.state_dir, id).unwrap_or(false)
    }

    /// The mapped twin of `id`; a failure when the map has none.
    fn twin(&mut self, id: &Sha1) -> Option<Id> {
        let twin = self.twin_of(id);
        if twin.is_none() {
            self.fail(id, "no mkit twin recorded in the map");
        }
        twin
    }

    /// The type of the stored object `id`, read once.
    fn kind_of(&mut self, id: &Id) -> Result<ObjectType, String> {
        if let Some(k) = self.kinds.get(id) {
            return Ok(*k);
        }
        let kind = self
            .store
            .read(id)
            .map_err(|e| e.to_string())?
            .object_type();
        self.kinds.insert(*id, kind);
        Ok(kind)
    }

    /// Walk ref `r` from its tip, then check the tip rebuilds to its record.
    pub(super) fn target(&mut self, r: &VerifiedRef) {
        let rebuilt = self.walk(&r.git).or_else(|| self.twin_of(&r.git));
        if let Some(mkit) = rebuilt
            && mkit != r.mkit
        {
            self.fail(
                &r.git,
                format!(
                    "{} rebuilds to {mkit}, not the recorded {} (ours: the state's record disagrees with the map)",
                    r.name, r.mkit
                ),
            );
        }
    }

    /// Every commit and tag reachable from `tip`; the content of imported
    /// commits, and of bridge commits in a fork audit. Returns the mkit id
    /// the tip rebuilt to, when it was checked in this walk.
    fn walk(&mut self, tip: &Sha1) -> Option<Id> {
        let mut tip_id = None;
        let mut stack = vec![*tip];
        while let Some(id) = stack.pop() {
            if self.seen.len() >= MAX_REACHABLE {
                self.fail(&id, "audit closure exceeds the traversal limit");
                break;
            }
            if !self.seen.insert(id) {
                continue;
            }
            let Some((kind, body)) = self.read(&id) else {
                continue;
            };
            let rebuilt = match kind {
                ObjectKind::Commit => {
                    let parsed = match CommitRef::parse(&body) {
                        Ok(c) => c,
                        Err(e) => {
                            self.fail(&id, format!("unparsable commit: {e}"));
                            continue;
                        }
                    };
                    let rebuilt = if self.is_imported(&id) {
                        let twin = self.check_imported(&id, kind, &body);
                        self.audit_content(&parsed.tree);
                        twin
                    } else {
                        let twin = self.check_bridge(&id, kind, &body);
                        if self.bridge_content {
                            self.audit_content(&parsed.tree);
                        }
                        twin
                    };
                    stack.extend(parsed.parents.iter().copied());
                    rebuilt
                }
                ObjectKind::Tag => {
                    let rebuilt = if self.is_imported(&id) {
                        self.check_imported(&id, kind, &body)
                    } else {
                        self.check_bridge(&id, kind, &body)
                    };
                    if let Ok(t) = TagRef::parse(&body) {
                        stack.push(t.object);
                    }
                    rebuilt
                }
                ObjectKind::Blob | ObjectKind::Tree => {
                    self.seen.remove(&id);
                    self.audit_content(&id);
                    None
                }
            };
            if id == *tip {
                tip_id = rebuilt;
            }
        }
        tip_id
    }

    /// Read a commit or tag from the mirrors, checking its bytes hash to its id.
    fn read(&mut self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        let Some((kind, body)) = self.source.get(id) else {
            self.fail(
                id,
                "unreadable in staging: missing from the staging repository (and the destination)",
            );
            return None;
        };
        match object_id(kind, &body) {
            Ok(found) if found == *id => Some((kind, body)),
            Ok(found) => {
                self.fail(
                    id,
                    format!("unreadable in staging: its bytes hash to {found}; the repository is corrupt"),
                );
                None
            }
            Err(e) => {
                self.fail(id, format!("unreadable in staging: {e}"));
                None
            }
        }
    }

    /// An imported commit or tag: its retained bytes, then the importer
    /// signature on its twin and the exact translation of those bytes
    /// (SPEC-GIT-IMPORT §4). A correspondence found in the map alone proves
    /// nothing. Returns the twin.
    fn check_imported(&mut self, id: &Sha1, kind: ObjectKind, body: &[u8]) -> Option<Id> {
        match self.retained(id) {
            Ok(raw) => match unframe(&raw) {
                Some((k, b)) if b == body && object_id(k, b).is_ok_and(|f| f == *id) => {}
                Some(_) => {
                    self.fail(
                        id,
                        "retained raw bytes hash to a DIFFERENT sha1 or differ from staging",
                    );
                    return None;
                }
                None => {
                    self.fail(id, "retained raw bytes are not framed git bytes");
                    return None;
                }
            },
            Err(e) => {
                self.fail(id, format!("retained raw bytes unreadable: {e}"));
                return None;
            }
        }
        let twin = self.twin(id)?;
        let Some(pinned) = self.pinned else {
            self.fail(id, "imported object but no importer key pinned");
            return None;
        };
        let expected = self.expected_import(id, kind, body, pinned);
        let mut actual = match self.store.read(&twin) {
            Ok(o) => o,
            Err(e) => {
                self.fail(id, format!("mkit twin missing from store: {e}"));
                return None;
            }
        };
        let signer = match (&actual, kind) {
            (Object::Commit(c), ObjectKind::Commit) => Some(c.signer),
            (Object::Tag(t), ObjectKind::Tag) => Some(t.signer),
            _ => None,
        };
        match signer {
            None => self.fail(id, "mkit twin has a different object kind"),
            Some(signer) if signer != pinned => {
                self.fail(id, "twin signer is NOT the pinned importer key");
            }
            Some(_) => {
                if sign::verify_object(&actual).ok().flatten() != Some(SignatureStatus::Valid) {
                    self.fail(id, "importer signature does not verify");
                }
            }
        }
        match &mut actual {
            Object::Commit(c) => c.signature = [0; 64],
            Object::Tag(t) => t.signature = [0; 64],
            _ => {}
        }
        match expected {
            Ok(e) if e == actual => {}
            Ok(_) => self.fail(
                id,
                "signed twin is NOT the translation of the retained Git bytes",
            ),
            Err(e) => self.fail(id, format!("cannot derive imported correspondence: {e}")),
        }
        self.outcome.imported += 1;
        Some(twin)
    }

    /// The retained framed bytes of `id`, refusing more than an object may hold.
    fn retained(&self, id: &Sha1) -> Result<Vec<u8>, String> {
        let path = state::raw_path(self.state_dir, id);
        let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        if len > MAX_OBJECT_BYTES + 64 {
            return Err("retained raw bytes exceed the object limit".to_owned());
        }
        match state::read_raw(self.state_dir, id) {
            Ok(Some(raw)) => Ok(raw),
            Ok(None) => Err(format!("{} vanished", path.display())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// What the importer must have made of `body`, unsigned, from the map's
    /// twins of its tree and parents or its target.
    fn expected_import(
        &mut self,
        id: &Sha1,
        kind: ObjectKind,
        body: &[u8],
        pinned: [u8; 32],
    ) -> Result<Object, String> {
        let links: Vec<Sha1> = match kind {
            ObjectKind::Commit => CommitRef::parse(body)
                .map(|c| std::iter::once(c.tree).chain(c.parents).collect())
                .map_err(|e| e.to_string())?,
            _ => vec![TagRef::parse(body).map_err(|e| e.to_string())?.object],
        };
        let mut known: HashMap<Sha1, Translated> = HashMap::new();
        for git in links {
            let Some(mkit) = self.twin_of(&git) else {
                return Err(format!("integrity: missing child correspondence for {git}"));
            };
            let kind = self.kind_of(&mkit)?;
            known.insert(
                git,
                Translated {
                    id: mkit,
                    kind,
                    depth: usize::from(kind == ObjectType::Tag),
                },
            );
        }
        let lookup = |g: &Sha1| known.get(g).copied();
        match kind {
            ObjectKind::Commit => unsigned_commit(id, body, pinned, lookup).map(Object::Commit),
            _ => unsigned_tag(id, body, pinned, lookup).map(|t| Object::Tag(t.tag)),
        }
        .map_err(|e| e.to_string())
    }

    /// A bridge-translated commit or tag: §10 shallow verification, then its
    /// correspondence with the map and the store. Returns its mkit id.
    fn check_bridge(&mut self, id: &Sha1, kind: ObjectKind, body: &[u8]) -> Option<Id> {
        let check = match shallow_verify(kind, body) {
            Ok(c) => c,
            Err(e) => {
                self.fail(id, format!("not bridge-shaped: {e}"));
                return None;
            }
        };
        match check.status {
            SignatureStatus::Valid => {}
            SignatureStatus::Unsigned => self.outcome.unsigned.push(*id),
            SignatureStatus::Invalid => self.fail(id, "embedded signature does NOT verify"),
        }
        if let Some(twin) = self.twin(id)
            && twin != check.mkit
        {
            self.fail(id, "reconstructs to a hash OTHER than its mapped twin");
        }
        let edges_match = carried_edges(kind, body).is_ok_and(|edges| {
            !edges.is_empty()
                && edges
                    .iter()
                    .all(|(git, mkit)| self.twin_of(git) == Some(*mkit))
        });
        if !edges_match {
            self.fail(
                id,
                "Git tree/parent/target edges differ from the signed mkit edges",
            );
        }
        if let Err(e) = self.store.read(&check.mkit) {
            self.fail(id, format!("reconstructed twin missing from store: {e}"));
        }
        self.outcome.bridge += 1;
        Some(check.mkit)
    }

    /// Re-derive every tree and blob under `root` from its git bytes and
    /// compare with its mapped twin, whose stored bytes must be the git
    /// bytes (SPEC-GIT-BRIDGE §14.3 step 3). Iterative, bounded in depth.
    fn audit_content(&mut self, root: &Sha1) {
        let mut pending = vec![(*root, 0usize)];
        while let Some((id, depth)) = pending.pop() {
            if depth > MAX_TREE_DEPTH || self.seen.len() >= MAX_REACHABLE {
                self.fail(&id, "audit content exceeds the traversal limit");
                return;
            }
            if !self.seen.insert(id) {
                continue;
            }
            let Some(twin) = self.twin(&id) else {
                continue;
            };
            let Some((kind, body)) = self.source.get(&id) else {
                self.fail(
                    &id,
                    "object not found in the staging repository (or the destination)",
                );
                continue;
            };
            if !object_id(kind, &body).is_ok_and(|found| found == id) {
                self.fail(&id, "staging content hash mismatch");
                continue;
            }
            if kind == ObjectKind::Tree
                && let Ok(entries) = parse_tree(&body)
            {
                pending.extend(entries.iter().map(|e| (e.id, depth + 1)));
            }
            let derived = derive_content(&id, kind, &body, |child| {
                let mkit = self
                    .inverse
                    .get(child)
                    .copied()
                    .ok_or(DeriveError::UnmappedChild { child: *child })?;
                let kind = match self.kinds.get(&mkit) {
                    Some(k) => *k,
                    None => {
                        let k = self
                            .store
                            .read(&mkit)
                            .map_err(|e| DeriveError::UnreadableChild {
                                child: *child,
                                twin: mkit,
                                detail: e.to_string(),
                            })?
                            .object_type();
                        self.kinds.insert(mkit, k);
                        k
                    }
                };
                Ok((mkit, kind))
            });
            match derived {
                Ok(h) if h == twin => {
                    // The twin's identity alone does not prove its bytes (or
                    // a manifest's chunks) are in the store.
                    let stored = if kind == ObjectKind::Blob {
                        match read_content(self.store, &twin) {
                            Ok(bytes) if bytes == body => Ok(()),
                            Ok(_) => Err("stored content differs from Git bytes".to_owned()),
                            Err(e) => Err(e),
                        }
                    } else {
                        self.store.read(&twin).map(drop).map_err(|e| e.to_string())
                    };
                    if let Err(e) = stored {
                        self.fail(&id, e);
                    }
                    self.outcome.derived += 1;
                }
                Ok(_) => self.fail(&id, "content twin is NOT the translation of the Git bytes"),
                Err(e) => self.fail(&id, e.to_string()),
            }
        }
    }

    /// Ours (`--deep`): reconstruct the whole closure of a bridge tip by §9
    /// and check it rebuilds to the recorded id. Signature verdicts are the
    /// walk's to report; structural problems are failures here.
    pub(super) fn reconstruct(&mut self, r: &VerifiedRef) {
        if self.is_imported(&r.git) {
            return;
        }
        match self.verifier.verify(self.source, &r.git) {
            Ok(report) => {
                self.outcome.reconstructed += report.objects;
                if report.root != r.mkit {
                    self.fail(
                        &r.git,
                        format!(
                            "{} reconstructs to {}, not the recorded {}",
                            r.name, report.root, r.mkit
                        ),
                    );
                }
            }
            Err(e) => {
                let object = match &e {
                    VerifyError::Missing { object }
                    | VerifyError::Corrupt { object, .. }
                    | VerifyError::KindMismatch { object, .. }
                    | VerifyError::Reconstruct { object, .. }
                    | VerifyError::Signing { object, .. } => *object,
                    VerifyError::NotSigned(_) | VerifyError::Collision(_) => r.git,
                };
                self.fail(&object, e.to_string());
            }
        }
    }
}

/// The bytes of the file content `id` holds: a blob's data, or a chunked
/// blob's chunks in order (their total must match the manifest).
fn read_content(store: &Store, id: &Id) -> Result<Vec<u8>, String> {
    match store.read(id).map_err(|e| e.to_string())? {
        Object::Blob(b) => Ok(b.data),
        Object::ChunkedBlob(m) => {
            let mut out = Vec::new();
            for chunk in &m.chunks {
                match store.read(chunk).map_err(|e| e.to_string())? {
                    Object::Blob(b) => out.extend_from_slice(&b.data),
                    other => {
                        return Err(format!(
                            "chunk {chunk} of {id} is a {}, not a blob",
                            other.object_type().name()
                        ));
                    }
                }
            }
            if out.len() as u64 != m.total_size {
                return Err(format!(
                    "chunked blob {id} holds {} bytes, not its recorded {}",
                    out.len(),
                    m.total_size
                ));
            }
            Ok(out)
        }
        other => Err(format!(
            "{id} is a {}, not file content",
            other.object_type().name()
        )),
    }
}
