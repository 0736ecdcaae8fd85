//! `git-bridge/v1` attestations on export (SPEC-GIT-BRIDGE §11), byte for
//! byte as `mkit git export` 0.5.0 writes them.
//!
//! For each exported head this run vouches for, one DSSE envelope is minted
//! with the repository key (`.mkit/keys/default.key`, the reference's
//! `repo-key` signer with its default algorithm, ed25519; a missing key is
//! refused, never generated), saved locally under
//! `.mkit/attestations/<subject>/<id>.dsse`, and added to the flat tree
//! published on the mirror under `refs/mkit/attestations`: one `100644`
//! entry `<64 hex attestation id>.dsse` per envelope, merged over the tree
//! already there. The tree is committed by a synthetic commit
//!
//! ```text
//! tree <tree>
//! parent <previous commit>             when there is one
//! author mkit-git-bridge <bridge@mkit.invalid> <ts> +0000
//! committer mkit-git-bridge <bridge@mkit.invalid> <ts> +0000
//!
//! mkit git-bridge attestations
//! ```
//!
//! where `<ts>` is the newest timestamp among the heads (a commit's or a tag
//! object's; 0 for anything else). A tree identical to the previous
//! commit's keeps that commit, so a re-export with nothing new publishes
//! nothing new.
//!
//! Not re-minted: a head whose recorded state (`refs`) is exactly this
//! (name, mkit id, git id) while a chain already exists in staging. The
//! objects (envelopes, tree, commit) go into the run's pack with the
//! translated history; the caller points the staging ref at the commit and
//! pushes it under a lease like every other ref.

use std::path::Path;

use crate::attest as dsse;
use crate::git::encode::{GitMode, TreeEntry, encode_tree};
use crate::git::push::Git;
use crate::git::sha1::{ObjectKind, Sha1, object_id};
use crate::mkit::id::Id;
use crate::mkit::keys;
use crate::mkit::object::Object;
use crate::mkit::store::Store;
use crate::state::RefState;

use super::pack::compress;
use super::{ATTESTATIONS_REF, ExportError, Sink, Tip};

/// The fixed person of the synthetic commits.
const BRIDGE_PERSON: &str = "mkit-git-bridge <bridge@mkit.invalid>";

/// The synthetic commits' message.
const CHAIN_MESSAGE: &str = "mkit git-bridge attestations\n";

/// What publishing needs.
pub(super) struct Publish<'a> {
    /// The git runner (reads the existing chain in staging).
    pub git: &'a Git,
    /// The staging repository.
    pub staging: &'a Path,
    /// The mkit store (head bytes and timestamps).
    pub store: &'a Store,
    /// The repository's `.mkit` directory (the key, the local store).
    pub mkit_dir: &'a Path,
    /// The destination as given (the predicate's `mirror`, as configured).
    pub dest: &'a str,
    /// The heads to vouch for, in selection order.
    pub heads: &'a [Tip],
    /// The ref state recorded by the last push.
    pub prior: &'a [RefState],
    /// The run's pack.
    pub sink: &'a mut Sink,
}

/// The chain's new head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Minted {
    /// The commit `refs/mkit/attestations` is to name.
    pub commit: Sha1,
    /// Envelopes minted by this run.
    pub minted: usize,
}

/// Mint what is new, write the envelopes, the tree and (when the tree
/// changed) a commit into the run's pack. `None` when there is no head to
/// vouch for (then no key is read).
pub(super) fn publish(p: &mut Publish<'_>) -> Result<Option<Minted>, ExportError> {
    if p.heads.is_empty() {
        return Ok(None);
    }
    let key_path = keys::default_key_path(p.mkit_dir);
    let seed = keys::load_seed(&key_path).map_err(|source| ExportError::Signer { source })?;
    let old = p.git.rev_parse_commit(p.staging, ATTESTATIONS_REF)?;
    let mut entries: Vec<(String, Sha1)> = match &old {
        Some(commit) => p.git.ls_tree(p.staging, commit)?,
        None => Vec::new(),
    };
    let mut objects = Vec::new();
    let mut newest = 0u64;
    let mut minted = 0usize;
    for head in p.heads {
        let (name, mkit, git) = head;
        let (bytes, timestamp) = head_bytes(p.store, mkit)?;
        newest = newest.max(timestamp);
        let published = old.is_some()
            && p.prior
                .iter()
                .any(|s| s.name == *name && s.mkit == *mkit && s.git == *git);
        if published {
            continue;
        }
        let envelope = mint(&seed, head, p.dest, &bytes)?;
        dsse::store::save(p.mkit_dir, mkit, &envelope).map_err(attest_err(name, "save"))?;
        let entry_name = format!("{}.dsse", dsse::attestation_id(&envelope));
        let blob_id = object_id(ObjectKind::Blob, &envelope)
            .map_err(attest_err(name, "hash the envelope blob"))?;
        objects.push(compress(blob_id, ObjectKind::Blob, &envelope)?);
        entries.retain(|(n, _)| *n != entry_name);
        entries.push((entry_name, blob_id));
        minted += 1;
    }
    let (tree_id, tree_body) = tree(&entries)?;
    objects.push(compress(tree_id, ObjectKind::Tree, &tree_body)?);
    if let Some(commit) = old
        && p.git.commit_tree(p.staging, &commit)? == Some(tree_id)
    {
        p.sink.absorb(objects)?;
        return Ok(Some(Minted { commit, minted }));
    }
    let body = chain_commit(&tree_id, old.as_ref(), newest);
    let commit = object_id(ObjectKind::Commit, &body)
        .map_err(attest_err(ATTESTATIONS_REF, "hash the chain commit"))?;
    objects.push(compress(commit, ObjectKind::Commit, &body)?);
    p.sink.absorb(objects)?;
    Ok(Some(Minted { commit, minted }))
}

/// One envelope for one head.
fn mint(seed: &[u8; 32], head: &Tip, dest: &str, bytes: &[u8]) -> Result<Vec<u8>, ExportError> {
    let (name, mkit, git) = head;
    let predicate = dsse::git_bridge_predicate(git, dest, name);
    dsse::mint(
        seed,
        name,
        mkit,
        bytes,
        dsse::PREDICATE_GIT_BRIDGE,
        &predicate,
    )
    .map_err(attest_err(name, "mint"))
}

/// The [`ExportError::Attest`] for `action` on the attestation of `name`.
fn attest_err<E: std::error::Error + Send + Sync + 'static>(
    name: &str,
    action: &'static str,
) -> impl FnOnce(E) -> ExportError {
    move |e| ExportError::Attest {
        name: name.to_owned(),
        action,
        source: Box::new(e),
    }
}

/// A head's stored bytes and its timestamp (a commit's or a tag's; 0
/// otherwise, as the reference does).
fn head_bytes(store: &Store, id: &Id) -> Result<(Vec<u8>, u64), ExportError> {
    let bytes = store.read_bytes(id)?;
    let timestamp = match store.read(id)? {
        Object::Commit(c) => c.timestamp,
        Object::Tag(t) => t.timestamp,
        _ => 0,
    };
    Ok((bytes, timestamp))
}

/// The flat tree of envelopes, in git order.
fn tree(entries: &[(String, Sha1)]) -> Result<(Sha1, Vec<u8>), ExportError> {
    let list: Vec<TreeEntry<'_>> = entries
        .iter()
        .map(|(name, id)| TreeEntry {
            mode: GitMode::File,
            name: name.as_bytes(),
            id: *id,
        })
        .collect();
    let obj = encode_tree(list).map_err(attest_err(ATTESTATIONS_REF, "encode the tree"))?;
    let id = obj
        .id()
        .map_err(attest_err(ATTESTATIONS_REF, "hash the tree"))?;
    Ok((id, obj.body))
}

/// The synthetic commit's body.
fn chain_commit(tree: &Sha1, parent: Option<&Sha1>, timestamp: u64) -> Vec<u8> {
    let mut body = format!("tree {}\n", tree.to_hex());
    if let Some(p) = parent {
        body.push_str(&format!("parent {}\n", p.to_hex()));
    }
    let person = format!("{BRIDGE_PERSON} {timestamp} +0000");
    body.push_str(&format!(
        "author {person}\ncommitter {person}\n\n{CHAIN_MESSAGE}"
    ));
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_commit_has_the_reference_shape() {
        let tree = Sha1([0xab; 20]);
        let parent = Sha1([0x01; 20]);
        let body = String::from_utf8(chain_commit(&tree, Some(&parent), 1_700_000_000)).unwrap();
        assert_eq!(
            body,
            format!(
                "tree {}\nparent {}\nauthor mkit-git-bridge <bridge@mkit.invalid> 1700000000 \
                 +0000\ncommitter mkit-git-bridge <bridge@mkit.invalid> 1700000000 +0000\n\n\
                 mkit git-bridge attestations\n",
                tree.to_hex(),
                parent.to_hex()
            )
        );
        let root = String::from_utf8(chain_commit(&tree, None, 0)).unwrap();
        assert!(root.starts_with(&format!("tree {}\nauthor ", tree.to_hex())));
    }

    #[test]
    fn the_tree_is_flat_and_sorted() {
        let entries = vec![
            ("b.dsse".to_owned(), Sha1([2; 20])),
            ("a.dsse".to_owned(), Sha1([1; 20])),
        ];
        let (_, body) = tree(&entries).unwrap();
        let mut want = b"100644 a.dsse\0".to_vec();
        want.extend_from_slice(&[1; 20]);
        want.extend_from_slice(b"100644 b.dsse\0");
        want.extend_from_slice(&[2; 20]);
        assert_eq!(body, want);
    }
}
