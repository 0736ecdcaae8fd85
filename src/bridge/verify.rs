//! Verifying exported history (SPEC-GIT-BRIDGE §10).
//!
//! Carried signatures never verify over git bytes: verification rebuilds
//! the mkit object from a bridge-emitted git object
//! ([`crate::bridge::reconstruct`]) and checks its Ed25519 signature with the
//! strict predicate under the object's signing domain. Two modes:
//!
//! - **shallow** ([`shallow_verify`]): one commit or tag on its own. Proves the
//!   carried fields are what the signer signed; says nothing about whether
//!   the git tree and parent ids around it hold the matching content.
//! - **deep** ([`deep_verify`], [`Verifier`]): walk the closure of a git
//!   object through a [`GitSource`], reconstruct every object children first,
//!   check every carried BLAKE3 link and every object's SHA-1, then verify
//!   every signature. Proves the translated graph is the signed original.
//!
//! An all-zero signature is reported as [`SignatureStatus::Unsigned`], never
//! as invalid. Structural problems are errors ([`VerifyError`]); signature
//! outcomes are reported, so an audit sees every unsigned or bad signature
//! at once. No I/O: the source is the caller's.
//!
//! Two more pieces serve the bridge-state audit (`mkit-bridge verify`,
//! SPEC-GIT-BRIDGE §14.3): [`carried_edges`], the git → mkit links a
//! bridge commit or tag signs, for comparison with the map; and
//! [`derive_content`], which re-derives the mkit twin of a git blob or tree
//! by the import rules (SPEC-GIT-IMPORT §3.1, §3.3), so an audit can tell a
//! swapped or forged content mapping from the real one.

use std::collections::HashMap;

use crate::bridge::export;
use crate::bridge::import::{ImportOptions, Translated, translate_tree};
use crate::bridge::reconstruct::{
    CarriedCommit, CarriedTag, ReconstructError, Reconstructed, carried_commit, carried_tag,
    parse_tree_strict, reconstruct_blob, reconstruct_tree,
};
use crate::bridge::refusal::Refusal;
use crate::git::encode::GitMode;
use crate::git::sha1::{CollisionDetected, ObjectKind, Sha1, object_id};
use crate::mkit::content;
use crate::mkit::id::Id;
use crate::mkit::object::{ObjectError, ObjectType};
use crate::mkit::sign::{self, SignatureStatus};

/// Why verification could not reach a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Shallow verification of a blob or tree, which carry no signature.
    #[error(
        "a git {0} carries no signature; shallow verification takes a commit or a tag (SPEC-GIT-BRIDGE §10)"
    )]
    NotSigned(ObjectKind),
    /// An object of the closure is not in the source.
    #[error(
        "git object {object} is missing from the mirror; deep verification needs the whole closure (SPEC-GIT-BRIDGE §10)"
    )]
    Missing {
        /// The missing object.
        object: Sha1,
    },
    /// The source's bytes for an id hash to another id.
    #[error(
        "the mirror's bytes for git object {object} hash to {found}; the mirror is corrupt or tampered (SPEC-GIT-BRIDGE §2, §10)"
    )]
    Corrupt {
        /// The id asked for.
        object: Sha1,
        /// The id of the bytes returned.
        found: Sha1,
    },
    /// The object's bytes carry a SHA-1 collision-attack pattern.
    #[error("git object bytes carry a sha-1 collision-attack pattern: {0} (SPEC-GIT-BRIDGE §2)")]
    Collision(CollisionDetected),
    /// An object is of another kind than its referrer says.
    #[error(
        "git object {object} is a {found}, but the object naming it expects a {expected} (SPEC-GIT-BRIDGE §9)"
    )]
    KindMismatch {
        /// The object.
        object: Sha1,
        /// The kind the referrer implies.
        expected: ObjectKind,
        /// The kind the source holds.
        found: ObjectKind,
    },
    /// An object is not a bridge-emitted one, or does not link up.
    #[error("git object {object}: {error}")]
    Reconstruct {
        /// The object.
        object: Sha1,
        /// Why reconstruction refused it.
        error: ReconstructError,
    },
    /// The signing bytes could not be formed (a guard: reconstruction
    /// already validated the object).
    #[error("git object {object}: cannot form the signing bytes: {error}")]
    Signing {
        /// The object.
        object: Sha1,
        /// What the encoder refused.
        error: ObjectError,
    },
}

/// The signature verdict on one commit or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The git object.
    pub git: Sha1,
    /// The mkit object it reconstructs to.
    pub mkit: Id,
    /// Commit or tag.
    pub kind: ObjectType,
    /// The carried signer key.
    pub signer: [u8; 32],
    /// Valid, unsigned (all-zero signature) or invalid.
    pub status: SignatureStatus,
}

fn reconstruct_err(object: &Sha1) -> impl FnOnce(ReconstructError) -> VerifyError + '_ {
    move |error| VerifyError::Reconstruct {
        object: *object,
        error,
    }
}

fn check_signature(git: &Sha1, rec: &Reconstructed) -> Result<SignatureCheck, VerifyError> {
    let signer = match &rec.object {
        crate::mkit::object::Object::Commit(c) => c.signer,
        crate::mkit::object::Object::Tag(t) => t.signer,
        other => {
            return Err(VerifyError::NotSigned(
                export::git_kind(other.object_type()).unwrap_or(ObjectKind::Blob),
            ));
        }
    };
    let status = sign::verify_object(&rec.object)
        .map_err(|error| VerifyError::Signing {
            object: *git,
            error,
        })?
        .ok_or(VerifyError::NotSigned(ObjectKind::Blob))?;
    Ok(SignatureCheck {
        git: *git,
        mkit: rec.id,
        kind: rec.object.object_type(),
        signer,
        status,
    })
}

/// Shallow verification (§10) of one bridge-emitted commit or tag of `kind`
/// with `body`: rebuild the mkit object from the carried headers, message and
/// timestamp alone, and verify its signature strictly. The report's `mkit`
/// is the id the mkit object has.
pub fn shallow_verify(kind: ObjectKind, body: &[u8]) -> Result<SignatureCheck, VerifyError> {
    let git = object_id(kind, body).map_err(VerifyError::Collision)?;
    let rec = match kind {
        ObjectKind::Commit => carried_commit(body).and_then(CarriedCommit::into_unlinked),
        ObjectKind::Tag => carried_tag(body).and_then(CarriedTag::into_unlinked),
        other => return Err(VerifyError::NotSigned(other)),
    }
    .map_err(reconstruct_err(&git))?;
    check_signature(&git, &rec)
}

/// Where deep verification reads git objects from: the kind and body of an
/// object, or `None` when the source does not have it.
pub trait GitSource {
    /// The object `id`'s kind and body.
    fn get(&self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)>;
}

impl<S: std::hash::BuildHasher> GitSource for HashMap<Sha1, (ObjectKind, Vec<u8>), S> {
    fn get(&self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        HashMap::get(self, id).cloned()
    }
}

/// What a deep verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepReport {
    /// The mkit id the root reconstructs to.
    pub root: Id,
    /// The root's mkit type.
    pub root_type: ObjectType,
    /// Objects reconstructed in this walk (those a [`Verifier`] had already
    /// verified are not counted again).
    pub objects: usize,
    /// The signature verdict of every commit and tag reconstructed in this
    /// walk, children first.
    pub signatures: Vec<SignatureCheck>,
}

impl DeepReport {
    /// True when every signature checked is valid (none unsigned or invalid).
    pub fn all_valid(&self) -> bool {
        self.signatures
            .iter()
            .all(|s| s.status == SignatureStatus::Valid)
    }

    /// The objects whose signature does not verify.
    pub fn invalid(&self) -> impl Iterator<Item = &SignatureCheck> {
        self.signatures
            .iter()
            .filter(|s| s.status == SignatureStatus::Invalid)
    }

    /// The unsigned objects (all-zero signature).
    pub fn unsigned(&self) -> impl Iterator<Item = &SignatureCheck> {
        self.signatures
            .iter()
            .filter(|s| s.status == SignatureStatus::Unsigned)
    }
}

/// A pending object in the deep walk: its links are pushed, it waits for them.
enum Pending {
    Tree(Vec<u8>),
    Commit(CarriedCommit),
    Tag(CarriedTag),
}

enum Step {
    /// Visit an object the referrer expects to be of this kind (`None` for a root).
    Enter(Sha1, Option<ObjectKind>),
    /// Its children are done: reconstruct it.
    Leave(Sha1),
}

/// Deep verification that remembers what it has verified, so the closures
/// of many refs sharing history are each reconstructed once.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    /// Verified git ids and the mkit id and type each reconstructs to.
    done: HashMap<Sha1, (Id, ObjectType)>,
}

impl Verifier {
    /// A verifier that has verified nothing yet.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// The mkit id a verified git object reconstructs to.
    pub fn mkit_id(&self, git: &Sha1) -> Option<Id> {
        self.done.get(git).map(|d| d.0)
    }

    /// Deep-verify (§10) the closure of `root` in `source`: every object's
    /// bytes must hash to its id, every object must be bridge-emitted and
    /// reconstruct (§9), every referenced object must be of the kind its
    /// referrer says and reconstruct to the carried BLAKE3 id, and every
    /// commit and tag signature is checked.
    pub fn verify<S: GitSource + ?Sized>(
        &mut self,
        source: &S,
        root: &Sha1,
    ) -> Result<DeepReport, VerifyError> {
        let mut objects = 0usize;
        let mut signatures = Vec::new();
        let mut pending: HashMap<Sha1, Pending> = HashMap::new();
        let mut stack = vec![Step::Enter(*root, None)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(id, expected) => {
                    if let Some(&(_, t)) = self.done.get(&id) {
                        let found = export::git_kind(t).unwrap_or(ObjectKind::Blob);
                        check_kind(&id, expected, found)?;
                        continue;
                    }
                    if pending.contains_key(&id) {
                        // Only a cycle revisits a pending object, and a
                        // content-addressed graph has none: the Leave step
                        // will find the link unresolved and fail.
                        continue;
                    }
                    let (kind, body) =
                        source.get(&id).ok_or(VerifyError::Missing { object: id })?;
                    let found = object_id(kind, &body).map_err(VerifyError::Collision)?;
                    if found != id {
                        return Err(VerifyError::Corrupt { object: id, found });
                    }
                    check_kind(&id, expected, kind)?;
                    let children: Vec<(Sha1, ObjectKind)> = match kind {
                        ObjectKind::Blob => {
                            let rec = reconstruct_blob(&body).map_err(reconstruct_err(&id))?;
                            self.done.insert(id, (rec.id, rec.object.object_type()));
                            objects += 1;
                            continue;
                        }
                        ObjectKind::Tree => {
                            let links = parse_tree_strict(&body)
                                .map_err(reconstruct_err(&id))?
                                .iter()
                                .map(|e| {
                                    let k = if e.mode == GitMode::Tree {
                                        ObjectKind::Tree
                                    } else {
                                        ObjectKind::Blob
                                    };
                                    (e.id, k)
                                })
                                .collect();
                            pending.insert(id, Pending::Tree(body));
                            links
                        }
                        ObjectKind::Commit => {
                            let c = carried_commit(&body).map_err(reconstruct_err(&id))?;
                            let links = std::iter::once((c.tree, ObjectKind::Tree))
                                .chain(c.parents.iter().map(|p| (*p, ObjectKind::Commit)))
                                .collect();
                            pending.insert(id, Pending::Commit(c));
                            links
                        }
                        ObjectKind::Tag => {
                            let t = carried_tag(&body).map_err(reconstruct_err(&id))?;
                            let links = vec![(t.target, t.target_kind)];
                            pending.insert(id, Pending::Tag(t));
                            links
                        }
                    };
                    stack.push(Step::Leave(id));
                    for (child, k) in children.into_iter().rev() {
                        stack.push(Step::Enter(child, Some(k)));
                    }
                }
                Step::Leave(id) => {
                    let Some(p) = pending.remove(&id) else {
                        continue;
                    };
                    let lookup = |g: &Sha1| self.done.get(g).map(|d| d.0);
                    let rec = match p {
                        Pending::Tree(body) => reconstruct_tree(&body, lookup),
                        Pending::Commit(c) => c.resolve(lookup),
                        Pending::Tag(t) => t.resolve(lookup),
                    }
                    .map_err(reconstruct_err(&id))?;
                    if matches!(
                        rec.object.object_type(),
                        ObjectType::Commit | ObjectType::Tag
                    ) {
                        signatures.push(check_signature(&id, &rec)?);
                    }
                    self.done.insert(id, (rec.id, rec.object.object_type()));
                    objects += 1;
                }
            }
        }
        let &(root_id, root_type) = self
            .done
            .get(root)
            .ok_or(VerifyError::Missing { object: *root })?;
        Ok(DeepReport {
            root: root_id,
            root_type,
            objects,
            signatures,
        })
    }
}

fn check_kind(
    object: &Sha1,
    expected: Option<ObjectKind>,
    found: ObjectKind,
) -> Result<(), VerifyError> {
    match expected {
        Some(e) if e != found => Err(VerifyError::KindMismatch {
            object: *object,
            expected: e,
            found,
        }),
        _ => Ok(()),
    }
}

/// Deep-verify the closure of `root` in `source` from scratch (see
/// [`Verifier::verify`]).
pub fn deep_verify<S: GitSource + ?Sized>(
    source: &S,
    root: &Sha1,
) -> Result<DeepReport, VerifyError> {
    Verifier::new().verify(source, root)
}

/// The links a bridge-emitted commit or tag signs, as (git id, mkit id)
/// pairs: a commit's tree then its parents in order, or a tag's target.
/// An audit compares each pair with the map: a bridge object whose git
/// edges lead elsewhere than its signed mkit edges is not the signed
/// original (SPEC-GIT-BRIDGE §10, shallow mode's blind spot).
pub fn carried_edges(kind: ObjectKind, body: &[u8]) -> Result<Vec<(Sha1, Id)>, VerifyError> {
    let git = object_id(kind, body).map_err(VerifyError::Collision)?;
    match kind {
        ObjectKind::Commit => {
            let c = carried_commit(body).map_err(reconstruct_err(&git))?;
            if c.parents.len() != c.commit.parents.len() {
                // A guard: the carried commit is rebuilt from these very
                // lines, so the counts agree whenever it parsed.
                return Ok(Vec::new());
            }
            Ok(std::iter::once((c.tree, c.commit.tree))
                .chain(
                    c.parents
                        .iter()
                        .copied()
                        .zip(c.commit.parents.iter().copied()),
                )
                .collect())
        }
        ObjectKind::Tag => {
            let t = carried_tag(body).map_err(reconstruct_err(&git))?;
            Ok(vec![(t.target, t.tag.target)])
        }
        other => Err(VerifyError::NotSigned(other)),
    }
}

/// Why the mkit twin of a git blob or tree could not be re-derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// A commit or tag where content (a blob or a tree) was expected.
    #[error("non-content Git object in tree (a {0}; SPEC-GIT-BRIDGE §14.3)")]
    NotContent(ObjectKind),
    /// A tree entry whose git object the map does not know.
    #[error(
        "integrity: missing tree child mapping for {child}; the map has no mkit twin for this entry (re-import or re-export to rebuild it)"
    )]
    UnmappedChild {
        /// The entry's git object.
        child: Sha1,
    },
    /// A tree entry whose mapped twin cannot be read from the store.
    #[error("integrity: tree child {child} maps to {twin}, which cannot be read: {detail}")]
    UnreadableChild {
        /// The entry's git object.
        child: Sha1,
        /// Its mapped twin.
        twin: Id,
        /// What the store said.
        detail: String,
    },
    /// The import rules refuse the tree (SPEC-GIT-IMPORT §3.3).
    #[error(transparent)]
    Refused(Refusal),
}

/// Re-derive the mkit id of git content `object` of `kind` with `body`, by
/// the import rules: a blob is its content id (chunked above 1 MiB), a tree
/// is translated entry by entry (historic modes normalize, as a non-fork
/// import does) with each child's twin and type from `lookup`. The tree's
/// nesting is not re-checked here: the caller walks it and bounds it.
pub fn derive_content(
    object: &Sha1,
    kind: ObjectKind,
    body: &[u8],
    mut lookup: impl FnMut(&Sha1) -> Result<(Id, ObjectType), DeriveError>,
) -> Result<Id, DeriveError> {
    match kind {
        ObjectKind::Blob => Ok(content::content_id(body)),
        ObjectKind::Tree => {
            let mut first_error = None;
            let translated =
                translate_tree(
                    object,
                    body,
                    ImportOptions::default(),
                    |child| match lookup(child) {
                        Ok((id, kind)) => Some(Translated { id, kind, depth: 0 }),
                        Err(e) => {
                            first_error.get_or_insert(e);
                            None
                        }
                    },
                );
            match (translated, first_error) {
                (Ok(tree), _) => Ok(tree.id()),
                // The refusal names the child; the lookup knows why.
                (Err(Refusal::MissingObject { .. }), Some(e)) => Err(e),
                (Err(refusal), _) => Err(DeriveError::Refused(refusal)),
            }
        }
        other => Err(DeriveError::NotContent(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::export::{Exported, export_closure};
    use crate::git::encode::GitObject;
    use crate::mkit::object::{Blob, Commit, EntryMode, Identity, Object, Tag, Tree, TreeEntry};
    use crate::mkit::sign::{KeyPair, sign_commit, sign_tag};

    struct History {
        objects: HashMap<Id, Object>,
        head: Id,
        tag: Id,
    }

    fn history() -> History {
        let key = KeyPair::from_seed(&[0x11; 32]);
        let mut objects = HashMap::new();
        let mut put = |o: Object| {
            let id = o.id().unwrap();
            objects.insert(id, o);
            id
        };
        let blob = put(Object::Blob(Blob {
            data: b"x\n".to_vec(),
        }));
        let tree = put(Object::Tree(Tree {
            entries: vec![TreeEntry {
                name: b"f".to_vec(),
                mode: EntryMode::Blob,
                id: blob,
            }],
        }));
        let mut root = Commit {
            tree,
            parents: vec![],
            author: Identity::ed25519(key.public()),
            message: b"one\n".to_vec(),
            timestamp: 10,
            signer: [0; 32],
            message_hash: Id::ZERO,
            content_digest: Id::ZERO,
            signature: [0; 64],
        };
        sign_commit(&mut root, &key).unwrap();
        let root = put(Object::Commit(root));
        let unsigned = put(Object::Commit(Commit {
            tree,
            parents: vec![root],
            author: Identity::opaque(b"U".to_vec()),
            message: b"two\n".to_vec(),
            timestamp: 11,
            signer: [0; 32],
            message_hash: Id::ZERO,
            content_digest: Id::ZERO,
            signature: [0; 64],
        }));
        let mut tag = Tag {
            target: unsigned,
            target_type: ObjectType::Commit,
            name: b"v1".to_vec(),
            tagger: Identity::ed25519(key.public()),
            message: b"t\n".to_vec(),
            timestamp: 12,
            signer: [0; 32],
            signature: [0; 64],
        };
        sign_tag(&mut tag, &key).unwrap();
        let tag = put(Object::Tag(tag));
        History {
            objects,
            head: unsigned,
            tag,
        }
    }

    fn export_all(h: &History, root: &Id) -> (Sha1, HashMap<Sha1, (ObjectKind, Vec<u8>)>) {
        let mut known = HashMap::new();
        let mut git = HashMap::new();
        let out = export_closure(&h.objects, root, &mut known, |_, e: &Exported| {
            git.insert(e.id, (e.object.kind, e.object.body.clone()));
            Ok(())
        })
        .unwrap();
        (out.root, git)
    }

    #[test]
    fn deep_and_shallow_verify_an_exported_history() {
        let h = history();
        let (root, git) = export_all(&h, &h.tag);
        let report = deep_verify(&git, &root).unwrap();
        assert_eq!(report.root, h.tag);
        assert_eq!(report.root_type, ObjectType::Tag);
        assert_eq!(report.objects, 5);
        let statuses: Vec<_> = report
            .signatures
            .iter()
            .map(|s| (s.kind, s.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (ObjectType::Commit, SignatureStatus::Valid),
                (ObjectType::Commit, SignatureStatus::Unsigned),
                (ObjectType::Tag, SignatureStatus::Valid),
            ]
        );
        assert!(!report.all_valid());
        assert_eq!(report.unsigned().count(), 1);
        assert_eq!(report.invalid().count(), 0);

        let (kind, body) = &git[&root];
        let shallow = shallow_verify(*kind, body).unwrap();
        assert_eq!(
            (shallow.mkit, shallow.status),
            (h.tag, SignatureStatus::Valid)
        );

        // A verifier does not redo shared history.
        let mut v = Verifier::new();
        let (head, _) = export_all(&h, &h.head);
        assert_eq!(v.verify(&git, &head).unwrap().objects, 4);
        assert_eq!(v.verify(&git, &root).unwrap().objects, 1);
        assert_eq!(v.mkit_id(&head), Some(h.head));
    }

    #[test]
    fn tampering_is_caught() {
        let h = history();
        let (root, git) = export_all(&h, &h.tag);
        // Missing object.
        let (head, _) = export_all(&h, &h.head);
        let mut missing = git.clone();
        let tree_sha = git
            .iter()
            .find(|(_, (k, _))| *k == ObjectKind::Tree)
            .map(|(s, _)| *s)
            .unwrap();
        missing.remove(&tree_sha);
        assert_eq!(
            deep_verify(&missing, &root),
            Err(VerifyError::Missing { object: tree_sha })
        );
        // Bytes that do not hash to their id.
        let mut corrupt = git.clone();
        corrupt.get_mut(&tree_sha).unwrap().1.push(0);
        assert!(matches!(
            deep_verify(&corrupt, &root),
            Err(VerifyError::Corrupt { .. })
        ));
        // A validly hashed commit whose mkit-tree lies about its tree.
        let (_, body) = &git[&head];
        let text = String::from_utf8(body.clone()).unwrap();
        let line = text.lines().find(|l| l.starts_with("mkit-tree ")).unwrap();
        let forged = text.replace(line, &format!("mkit-tree {}", "ab".repeat(32)));
        let forged = GitObject {
            kind: ObjectKind::Commit,
            body: forged.into_bytes(),
        };
        let forged_id = forged.id().unwrap();
        let mut with_forged = git.clone();
        with_forged.insert(forged_id, (forged.kind, forged.body.clone()));
        assert!(matches!(
            deep_verify(&with_forged, &forged_id),
            Err(VerifyError::Reconstruct {
                error: ReconstructError::Link {
                    header: "mkit-tree",
                    ..
                },
                ..
            })
        ));
        // Shallow verification sees a changed message as a bad signature.
        let (_, tag_body) = &git[&root];
        let mut tampered = tag_body.clone();
        let last = tampered.len() - 2;
        tampered[last] = b'u';
        let check = shallow_verify(ObjectKind::Tag, &tampered).unwrap();
        assert_eq!(check.status, SignatureStatus::Invalid);
        assert_eq!(
            shallow_verify(ObjectKind::Tree, b""),
            Err(VerifyError::NotSigned(ObjectKind::Tree))
        );
    }

    #[test]
    fn a_commit_naming_a_blob_as_its_tree_is_a_kind_mismatch() {
        let h = history();
        let (head, git) = export_all(&h, &h.head);
        let blob_sha = git
            .iter()
            .find(|(_, (k, _))| *k == ObjectKind::Blob)
            .map(|(s, _)| *s)
            .unwrap();
        let (_, body) = &git[&head];
        let text = String::from_utf8(body.clone()).unwrap();
        let tree_line = text.lines().next().unwrap();
        let forged = text.replace(tree_line, &format!("tree {blob_sha}"));
        let forged = GitObject {
            kind: ObjectKind::Commit,
            body: forged.into_bytes(),
        };
        let id = forged.id().unwrap();
        let mut src = git.clone();
        src.insert(id, (forged.kind, forged.body));
        assert!(matches!(
            deep_verify(&src, &id),
            Err(VerifyError::KindMismatch {
                expected: ObjectKind::Tree,
                found: ObjectKind::Blob,
                ..
            })
        ));
    }
    /// Git objects by id, as a test mirror holds them.
    type GitObjects = HashMap<Sha1, (ObjectKind, Vec<u8>)>;

    /// Export `root` and return the git objects and the full mkit → git map.
    fn export_mapped(h: &History, root: &Id) -> (GitObjects, HashMap<Id, Sha1>) {
        let mut known = HashMap::new();
        let mut git = HashMap::new();
        export_closure(&h.objects, root, &mut known, |_, e: &Exported| {
            git.insert(e.id, (e.object.kind, e.object.body.clone()));
            Ok(())
        })
        .unwrap();
        (git, known)
    }

    #[test]
    fn carried_edges_pair_git_links_with_signed_mkit_links() {
        let h = history();
        let (git, known) = export_mapped(&h, &h.tag);
        let Object::Commit(head) = &h.objects[&h.head] else {
            panic!("head is a commit")
        };
        let (kind, body) = &git[&known[&h.head]];
        let edges = carried_edges(*kind, body).unwrap();
        let expected: Vec<(Sha1, Id)> = std::iter::once(head.tree)
            .chain(head.parents.iter().copied())
            .map(|m| (known[&m], m))
            .collect();
        assert_eq!(edges, expected);
        let (kind, body) = &git[&known[&h.tag]];
        assert_eq!(
            carried_edges(*kind, body).unwrap(),
            vec![(known[&h.head], h.head)]
        );
        // Content carries no signed edges.
        let tree_sha = known[&head.tree];
        let (kind, body) = &git[&tree_sha];
        assert_eq!(
            carried_edges(*kind, body),
            Err(VerifyError::NotSigned(ObjectKind::Tree))
        );
    }

    #[test]
    fn content_rederives_to_its_twin_and_a_swap_is_seen() {
        let h = history();
        let (git, known) = export_mapped(&h, &h.head);
        let inverse: HashMap<Sha1, Id> = known.iter().map(|(m, g)| (*g, *m)).collect();
        let types = |m: &Id| h.objects[m].object_type();
        let lookup = |g: &Sha1| {
            inverse
                .get(g)
                .map(|m| (*m, types(m)))
                .ok_or(DeriveError::UnmappedChild { child: *g })
        };
        for (sha, (kind, body)) in &git {
            match kind {
                ObjectKind::Blob | ObjectKind::Tree => {
                    assert_eq!(
                        derive_content(sha, *kind, body, lookup),
                        Ok(inverse[sha]),
                        "{sha}"
                    );
                }
                other => assert_eq!(
                    derive_content(sha, *kind, body, lookup),
                    Err(DeriveError::NotContent(*other))
                ),
            }
        }
        let (tree_sha, (_, tree_body)) = git
            .iter()
            .find(|(_, (k, _))| *k == ObjectKind::Tree)
            .unwrap();
        // A tree whose entry the map does not know.
        assert!(matches!(
            derive_content(tree_sha, ObjectKind::Tree, tree_body, |g| Err(
                DeriveError::UnmappedChild { child: *g }
            )),
            Err(DeriveError::UnmappedChild { .. })
        ));
        // An entry mapped to content of another type is refused, not misread.
        assert!(matches!(
            derive_content(tree_sha, ObjectKind::Tree, tree_body, |g| Ok((
                inverse[g],
                ObjectType::Tree
            ))),
            Err(DeriveError::Refused(_))
        ));
        // A blob whose bytes changed derives to another id than its twin.
        let (blob_sha, (_, blob_body)) = git
            .iter()
            .find(|(_, (k, _))| *k == ObjectKind::Blob)
            .unwrap();
        let mut changed = blob_body.clone();
        changed.push(b'!');
        assert_ne!(
            derive_content(blob_sha, ObjectKind::Blob, &changed, lookup),
            Ok(inverse[blob_sha])
        );
    }
}
