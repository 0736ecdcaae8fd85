//! The verify driver: audit the git side of a bridge state (SPEC-GIT-BRIDGE
//! §10), as `mkit git verify` does.
//!
//! The refs audited are those the state records: the export leases (`refs`,
//! "exported") and the last-seen import tips (`refs-import`, "imported"),
//! or the `--ref`s among them. Objects are read from the staging repository
//! `.mkit/git/<remote>/repo.git`, and from the destination when it is a
//! local repository (so a state whose staging repository is gone can still
//! be audited against its mirror). From each ref tip:
//!
//! - **shallow** (default): every commit and tag reachable through parents
//!   and tag targets is checked on its own. A bridge-translated one (no
//!   retained raw bytes) must rebuild from its carrier headers and its
//!   signature must verify strictly; it must rebuild to its mapped mkit twin
//!   when the map knows one, link to the mapped twins of its git tree,
//!   parents or target when the map knows them, and exist in the mkit store.
//!   An imported one (raw bytes retained, SPEC-GIT-IMPORT) must match its
//!   retained bytes, and its mkit twin must be signed by the pinned importer
//!   key and be exactly the translation of those bytes.
//! - **deep** (`--deep`): the whole closure of a bridge-translated tip is
//!   reconstructed (§9), every object's SHA-1 and every carried BLAKE3 link
//!   checked, every signature verified ([`crate::bridge::verify::Verifier`],
//!   which needs neither the map nor the store). Imported tips get the
//!   shallow checks.
//!
//! Every tip must rebuild to the mkit id its state records. An all-zero
//! signature is reported as unsigned, never as tampered, and is not a pass
//! (§10). Problems are collected, not fatal, so one run lists them all.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::bridge::import::{Translated, unsigned_commit, unsigned_tag};
use crate::bridge::reconstruct::{carried_commit, carried_tag};
use crate::bridge::verify::{GitSource, Verifier, shallow_verify};
use crate::git::parse::{CommitRef, TagRef};
use crate::git::sha1::{ObjectKind, Sha1, frame, object_id};
use crate::git::staging;
use crate::mkit::id::Id;
use crate::mkit::object::{Object, ObjectType};
use crate::mkit::repo::Repo;
use crate::mkit::sign::{self, SignatureStatus};
use crate::state::{self, Binding, StateError};

/// The export-lease ref the reference keeps for attestations; not a history ref.
const ATTESTATIONS_REF: &str = "refs/mkit/attestations";

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest<'a> {
    /// The state name; `None` picks the only state there is.
    pub remote: Option<&'a str>,
    /// Reconstruct whole closures instead of checking commits and tags alone.
    pub deep: bool,
    /// Full ref names to verify (each must be recorded); empty means all.
    pub refs: &'a [String],
}

/// Where a verified ref's tip was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// In `refs`: this state exported it.
    Exported,
    /// In `refs-import`: this state imported it.
    Imported,
}

impl Origin {
    /// `exported` or `imported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Exported => "exported",
            Origin::Imported => "imported",
        }
    }
}

/// One ref that was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRef {
    /// Full ref name.
    pub name: String,
    /// Which record it came from.
    pub origin: Origin,
    /// The recorded git tip.
    pub git: Sha1,
    /// The recorded mkit id.
    pub mkit: Id,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The git object it is about.
    pub object: Sha1,
    /// What is wrong.
    pub reason: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyOutcome {
    /// The state verified.
    pub remote: String,
    /// Where objects were read from, in order.
    pub sources: Vec<PathBuf>,
    /// The refs verified, exported first, each list in record order.
    pub refs: Vec<VerifiedRef>,
    /// Bridge-translated commits and tags whose signature was checked.
    pub bridge: usize,
    /// Of those, the unsigned ones (all-zero signature), in walk order.
    pub unsigned: Vec<Sha1>,
    /// Imported commits and tags checked against the importer key.
    pub imported: usize,
    /// Objects reconstructed by deep verification.
    pub reconstructed: usize,
    /// Every problem, in walk order.
    pub failures: Vec<Failure>,
}

impl VerifyOutcome {
    /// True when nothing failed and nothing was unsigned.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.unsigned.is_empty()
    }
}

/// Why a verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyRunError {
    /// A state file could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// No state directory exists.
    #[error("no git bridge state here (run `mkit-bridge export` or `mkit-bridge import` first)")]
    NoState,
    /// The named state does not exist.
    #[error("no bridge state '{0}' here")]
    NoSuchState(String),
    /// Several states exist and none was named.
    #[error("several bridge states ({}); pick one with --remote-name", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// The state records no ref.
    #[error("state '{0}' records no refs")]
    NoRefs(String),
    /// A `--ref` the state does not record.
    #[error("{name}: not recorded in state '{remote}'")]
    UnknownRef {
        /// The ref.
        name: String,
        /// The state.
        remote: String,
    },
    /// Neither the staging repository nor a local destination can be read.
    #[error(
        "state '{remote}' has no staging repository ({}) and no local destination to verify against",
        path.display()
    )]
    NoSource {
        /// The state.
        remote: String,
        /// The missing staging repository.
        path: PathBuf,
    },
}

/// Verify the refs of a bridge state in `repo`.
pub fn verify(repo: &Repo, req: &VerifyRequest<'_>) -> Result<VerifyOutcome, VerifyRunError> {
    let mkit_dir = repo.mkit_dir();
    let remote = match req.remote {
        Some(name) => {
            let dir = state::state_dir(mkit_dir, name)?;
            if !dir.is_dir() {
                return Err(VerifyRunError::NoSuchState(name.to_owned()));
            }
            name.to_owned()
        }
        None => {
            let names = state::list_states(mkit_dir)?;
            match names.as_slice() {
                [] => return Err(VerifyRunError::NoState),
                [one] => one.clone(),
                _ => return Err(VerifyRunError::Ambiguous(names)),
            }
        }
    };
    let state_dir = state::state_dir(mkit_dir, &remote)?;

    let mut refs: Vec<VerifiedRef> = Vec::new();
    for s in state::load_ref_state(&state_dir)? {
        if s.name != ATTESTATIONS_REF {
            refs.push(VerifiedRef {
                name: s.name,
                origin: Origin::Exported,
                git: s.git,
                mkit: s.mkit,
            });
        }
    }
    for s in state::load_import_ref_state(&state_dir)? {
        if !refs.iter().any(|r| r.name == s.name && r.git == s.git) {
            refs.push(VerifiedRef {
                name: s.name,
                origin: Origin::Imported,
                git: s.git,
                mkit: s.mkit,
            });
        }
    }
    if !req.refs.is_empty() {
        refs.retain(|r| req.refs.contains(&r.name));
        for name in req.refs {
            if !refs.iter().any(|r| &r.name == name) {
                return Err(VerifyRunError::UnknownRef {
                    name: name.clone(),
                    remote,
                });
            }
        }
    }
    if refs.is_empty() {
        return Err(VerifyRunError::NoRefs(remote));
    }

    let source = Mirrors::open(&state_dir)?;
    if source.repos.is_empty() {
        return Err(VerifyRunError::NoSource {
            remote,
            path: staging::mirror_path(&state_dir),
        });
    }
    let mut audit = Audit {
        repo,
        state_dir: &state_dir,
        source: &source,
        inverse: state::load_map_inverse(&state_dir)?,
        pinned: state::read_signer(&state_dir)?,
        seen: HashSet::new(),
        outcome: VerifyOutcome {
            remote: remote.clone(),
            sources: source.paths.clone(),
            ..VerifyOutcome::default()
        },
        verifier: Verifier::new(),
    };
    for r in &refs {
        audit.target(r, req.deep);
    }
    audit.outcome.refs = refs;
    Ok(audit.outcome)
}

/// The repositories objects are read from: staging, then a local destination.
struct Mirrors {
    repos: Vec<gix::Repository>,
    paths: Vec<PathBuf>,
}

impl Mirrors {
    fn open(state_dir: &Path) -> Result<Mirrors, VerifyRunError> {
        let mut candidates = vec![staging::mirror_path(state_dir)];
        if let Some(dest) = state::read_binding(state_dir, Binding::Dest)? {
            // A local destination's identity is its resolved path, with a
            // `.git` suffix stripped (SPEC-GIT-IMPORT §8).
            if dest.starts_with('/') {
                candidates.push(PathBuf::from(&dest));
                candidates.push(PathBuf::from(format!("{dest}.git")));
            }
        }
        let mut out = Mirrors {
            repos: Vec::new(),
            paths: Vec::new(),
        };
        for path in candidates {
            if path.join("objects").is_dir()
                && let Ok(repo) = gix::open(&path)
            {
                out.repos.push(repo);
                out.paths.push(path);
            }
        }
        Ok(out)
    }
}

impl GitSource for Mirrors {
    fn get(&self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        for repo in &self.repos {
            if let Ok(Some(obj)) = repo.try_find_object(gix::ObjectId::from(id.0)) {
                let kind = match obj.kind {
                    gix::object::Kind::Blob => ObjectKind::Blob,
                    gix::object::Kind::Tree => ObjectKind::Tree,
                    gix::object::Kind::Commit => ObjectKind::Commit,
                    gix::object::Kind::Tag => ObjectKind::Tag,
                };
                return Some((kind, obj.detach().data));
            }
        }
        None
    }
}

struct Audit<'a> {
    repo: &'a Repo,
    state_dir: &'a Path,
    source: &'a Mirrors,
    /// sha1 → mkit twin, from the map.
    inverse: state::Sha1ToBlake,
    pinned: Option<[u8; 32]>,
    /// Commits and tags already checked (shallow walks share them).
    seen: HashSet<Sha1>,
    outcome: VerifyOutcome,
    verifier: Verifier,
}

impl Audit<'_> {
    fn fail(&mut self, object: &Sha1, reason: impl Into<String>) {
        self.outcome.failures.push(Failure {
            object: *object,
            reason: reason.into(),
        });
    }

    /// Read an object and check that its bytes hash to its id.
    fn read(&mut self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        let Some((kind, body)) = self.source.get(id) else {
            self.fail(
                id,
                "missing from the staging repository and the destination",
            );
            return None;
        };
        match object_id(kind, &body) {
            Ok(found) if found == *id => Some((kind, body)),
            Ok(found) => {
                self.fail(
                    id,
                    format!("its bytes hash to {found}; the repository is corrupt"),
                );
                None
            }
            Err(e) => {
                self.fail(id, e.to_string());
                None
            }
        }
    }

    fn is_imported(&self, id: &Sha1) -> bool {
        state::has_raw(self.state_dir, id).unwrap_or(false)
    }

    fn target(&mut self, r: &VerifiedRef, deep: bool) {
        if deep && !self.is_imported(&r.git) {
            match self.verifier.verify(self.source, &r.git) {
                Ok(report) => {
                    self.outcome.reconstructed += report.objects;
                    for s in &report.signatures {
                        self.outcome.bridge += 1;
                        match s.status {
                            SignatureStatus::Valid => {}
                            SignatureStatus::Unsigned => self.outcome.unsigned.push(s.git),
                            SignatureStatus::Invalid => {
                                self.fail(&s.git, "embedded signature does NOT verify")
                            }
                        }
                    }
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
                        crate::bridge::verify::VerifyError::Missing { object }
                        | crate::bridge::verify::VerifyError::Corrupt { object, .. }
                        | crate::bridge::verify::VerifyError::KindMismatch { object, .. }
                        | crate::bridge::verify::VerifyError::Reconstruct { object, .. }
                        | crate::bridge::verify::VerifyError::Signing { object, .. } => *object,
                        _ => r.git,
                    };
                    self.fail(&object, e.to_string());
                }
            }
            return;
        }
        self.walk(r);
    }

    /// Shallow: every commit and tag reachable from the tip.
    fn walk(&mut self, r: &VerifiedRef) {
        let mut stack = vec![(r.git, true)];
        while let Some((id, is_tip)) = stack.pop() {
            if !self.seen.insert(id) {
                continue;
            }
            let Some((kind, body)) = self.read(&id) else {
                continue;
            };
            let imported = self.is_imported(&id);
            let rebuilt = match kind {
                ObjectKind::Commit => {
                    if let Ok(c) = CommitRef::parse(&body) {
                        stack.extend(c.parents.iter().rev().map(|p| (*p, false)));
                    }
                    if imported {
                        self.check_imported(&id, kind, &body)
                    } else {
                        self.check_bridge(&id, kind, &body)
                    }
                }
                ObjectKind::Tag => {
                    if let Ok(t) = TagRef::parse(&body) {
                        stack.push((t.object, false));
                    }
                    if imported {
                        self.check_imported(&id, kind, &body)
                    } else {
                        self.check_bridge(&id, kind, &body)
                    }
                }
                // A blob or tree tip carries no signature: its mkit id is
                // the reconstruction, checked below.
                ObjectKind::Blob | ObjectKind::Tree => {
                    self.seen.remove(&id);
                    crate::bridge::reconstruct::reconstruct(kind, &body, |g| {
                        self.inverse.get(g).copied()
                    })
                    .ok()
                    .map(|rec| rec.id)
                }
            };
            if is_tip
                && let Some(mkit) = rebuilt
                && mkit != r.mkit
            {
                self.fail(
                    &id,
                    format!(
                        "{} reconstructs to {mkit}, not the recorded {}",
                        r.name, r.mkit
                    ),
                );
            }
        }
    }

    /// §10 shallow verification of a bridge-translated commit or tag, and
    /// its correspondence with the map and the store. Returns its mkit id.
    fn check_bridge(&mut self, id: &Sha1, kind: ObjectKind, body: &[u8]) -> Option<Id> {
        self.outcome.bridge += 1;
        let check = match shallow_verify(kind, body) {
            Ok(c) => c,
            Err(e) => {
                self.fail(id, format!("not a bridge-translated object: {e}"));
                return None;
            }
        };
        match check.status {
            SignatureStatus::Valid => {}
            SignatureStatus::Unsigned => self.outcome.unsigned.push(*id),
            SignatureStatus::Invalid => self.fail(id, "embedded signature does NOT verify"),
        }
        if let Some(twin) = self.inverse.get(id).copied()
            && twin != check.mkit
        {
            self.fail(
                id,
                format!("reconstructs to {}, not its mapped twin {twin}", check.mkit),
            );
        }
        // The git edges must lead to the signed mkit edges, where the map
        // knows the git side.
        let edges: Vec<(Sha1, Id)> = match kind {
            ObjectKind::Commit => carried_commit(body)
                .map(|c| {
                    std::iter::once((c.tree, c.commit.tree))
                        .chain(
                            c.parents
                                .iter()
                                .copied()
                                .zip(c.commit.parents.iter().copied()),
                        )
                        .collect()
                })
                .unwrap_or_default(),
            _ => carried_tag(body)
                .map(|t| vec![(t.target, t.tag.target)])
                .unwrap_or_default(),
        };
        for (git, mkit) in edges {
            if let Some(mapped) = self.inverse.get(&git).copied()
                && mapped != mkit
            {
                self.fail(
                    id,
                    format!("git edge {git} maps to {mapped}, but the signed mkit edge is {mkit}"),
                );
            }
        }
        if !self.repo.store().contains(&check.mkit) {
            self.fail(
                id,
                format!(
                    "reconstructs to {}, which is not in the mkit store",
                    check.mkit
                ),
            );
        }
        Some(check.mkit)
    }

    /// An imported commit or tag: retained bytes, importer signature, and
    /// exact correspondence with its signed twin. Returns the twin.
    fn check_imported(&mut self, id: &Sha1, kind: ObjectKind, body: &[u8]) -> Option<Id> {
        self.outcome.imported += 1;
        match state::read_raw(self.state_dir, id) {
            Ok(Some(raw)) if raw == frame(kind, body) => {}
            Ok(_) => {
                self.fail(id, "retained raw bytes differ from the repository's");
                return None;
            }
            Err(e) => {
                self.fail(id, format!("retained raw bytes unreadable: {e}"));
                return None;
            }
        }
        let Some(twin) = self.inverse.get(id).copied() else {
            self.fail(id, "no mkit twin recorded in the map");
            return None;
        };
        let Some(pinned) = self.pinned else {
            self.fail(id, "imported object but no importer key is pinned");
            return None;
        };
        let mut actual = match self.repo.store().read(&twin) {
            Ok(o) => o,
            Err(e) => {
                self.fail(id, format!("mkit twin {twin} unreadable: {e}"));
                return None;
            }
        };
        let signer = match &actual {
            Object::Commit(c) if kind == ObjectKind::Commit => c.signer,
            Object::Tag(t) if kind == ObjectKind::Tag => t.signer,
            _ => {
                self.fail(id, format!("mkit twin {twin} is of another kind"));
                return None;
            }
        };
        if signer != pinned {
            self.fail(id, "twin signer is NOT the pinned importer key");
        } else if sign::verify_object(&actual).ok().flatten() != Some(SignatureStatus::Valid) {
            self.fail(id, "importer signature does not verify");
        }
        let store = self.repo.store();
        let inverse = &self.inverse;
        let lookup = |g: &Sha1| {
            let mkit = *inverse.get(g)?;
            let kind = store.read(&mkit).ok()?.object_type();
            Some(Translated {
                id: mkit,
                kind,
                depth: usize::from(kind == ObjectType::Tag),
            })
        };
        let expected = match kind {
            ObjectKind::Commit => unsigned_commit(id, body, pinned, lookup).map(Object::Commit),
            _ => unsigned_tag(id, body, pinned, lookup).map(|t| Object::Tag(t.tag)),
        };
        match &mut actual {
            Object::Commit(c) => c.signature = [0; 64],
            Object::Tag(t) => t.signature = [0; 64],
            _ => {}
        }
        match expected {
            Ok(e) if e == actual => {}
            Ok(_) => self.fail(
                id,
                "signed twin is NOT the translation of the retained git bytes",
            ),
            Err(e) => self.fail(
                id,
                format!("cannot derive the imported correspondence: {e}"),
            ),
        }
        Some(twin)
    }
}
