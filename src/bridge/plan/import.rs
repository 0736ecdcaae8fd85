//! The import side of the ref planner: what an import, fetch or pull's
//! fetch does to each local ref, decided before any ref moves.
//!
//! The driver gathers the upstream refs as fetched (each with its mapping
//! and translation, or the refusal that skips it) and the ref state the
//! previous import recorded; [`plan`] decides, per upstream ref, how it
//! relates to that record ([`Change`]) and what happens to the local ref it
//! lands on ([`Local`]), and which tracking refs of branches the upstream
//! deleted are removed ([`Prune`]). Nothing here reads a repository: the
//! current value of a local ref and whether one upstream commit descends
//! from another are asked of the caller's [`Oracle`], and ancestry only for
//! a branch whose upstream tip moved.
//!
//! Every write the plan makes carries the value the ref held when it was
//! planned, and every delete the value the previous import recorded; the
//! driver applies them with compare-and-swap ([`crate::mkit::refs`]) and
//! reports back ([`ImportPlan::settle_writes`], [`Prune::settle`]), so a ref
//! moved between planning and writing is a [`Local::LeaseMismatch`], left
//! as it is, never overwritten.
//!
//! The rules, as 0.5.0 applies them:
//!
//! - a tracking ref (`refs/remotes/<remote>/<branch>`) follows the
//!   upstream whatever it holds; a branch whose new tip does not descend
//!   from the recorded one was force-pushed, which is worth a warning;
//! - a tag (`refs/tags/<tag>`) is written only when it is absent or still
//!   where the previous import put it: a tag moved locally is kept;
//! - the tracking ref of a branch the upstream deleted is removed when it
//!   still holds what the previous import recorded (local tags are never
//!   removed, as git keeps them without `--prune-tags`).

use std::collections::BTreeMap;

use crate::bridge::import::{self as rules, RefMapping};
use crate::bridge::refusal::Refusal;
use crate::git::sha1::Sha1;
use crate::mkit::id::Id;
use crate::mkit::refs::{HEADS_PREFIX, RefUpdate, UpdateStatus};

/// What the previous import recorded for an upstream ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The upstream tip.
    pub git: Sha1,
    /// Its translation.
    pub mkit: Id,
}

/// One upstream ref as fetched and translated.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The upstream ref (`refs/heads/main`).
    pub name: String,
    /// Its tip.
    pub target: Sha1,
    /// Where it lands and the translation of its tip, or why it is skipped.
    pub resolved: Result<(RefMapping, Id), Refusal>,
}

/// What the planner asks of the repository.
pub trait Oracle {
    /// The caller's error.
    type Error;
    /// The value local ref `name` holds now (`None`: absent).
    fn local(&mut self, name: &str) -> Result<Option<Id>, Self::Error>;
    /// True when upstream commit `old` is `new` or one of its ancestors
    /// (false when unknown).
    fn descends(&mut self, old: &Sha1, new: &Sha1) -> Result<bool, Self::Error>;
}

/// How an upstream ref relates to what the previous import recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing recorded: first imported now.
    New,
    /// Recorded at the same tip with the same translation.
    Unchanged,
    /// A branch whose recorded tip is an ancestor of the new one.
    FastForward,
    /// A branch whose recorded tip is not an ancestor of the new one: the
    /// upstream rewrote it.
    Forced,
    /// A tag the upstream moved to another object.
    TagMoved,
    /// The same upstream tip, translated to another id than recorded.
    Retranslated,
}

/// What happens to the local ref an imported upstream ref lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Write the translation, if the ref still holds `expected` (`None`:
    /// must not exist). After [`ImportPlan::settle_writes`]: written.
    Write {
        /// The value seen when planning.
        expected: Option<Id>,
    },
    /// The ref already holds the translation.
    InPlace,
    /// A tag moved locally since the previous import (or a local tag the
    /// import never wrote): kept, with a warning.
    KeptMovedTag {
        /// What the tag holds.
        found: Id,
    },
    /// The compare-and-swap failed: the ref moved between planning and
    /// writing, and was left as it is.
    LeaseMismatch {
        /// The value seen when planning.
        expected: Option<Id>,
        /// What the ref held when the write was tried.
        found: Option<Id>,
    },
}

/// The plan for one imported upstream ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Where it lands.
    pub mapping: RefMapping,
    /// The translation of its tip.
    pub id: Id,
    /// How it relates to the record.
    pub change: Change,
    /// What happens to the local ref.
    pub local: Local,
}

impl Planned {
    /// The local ref written.
    pub fn mkit_ref(&self) -> &str {
        self.mapping.mkit_ref()
    }
}

/// The decision for one upstream ref.
#[derive(Debug, Clone)]
pub struct RefPlan {
    /// The upstream ref.
    pub upstream: String,
    /// Its tip.
    pub target: Sha1,
    /// What the previous import recorded for it.
    pub recorded: Option<Recorded>,
    /// Imported (and how), or skipped (and why).
    pub outcome: Result<Planned, Refusal>,
}

impl RefPlan {
    /// True when the ref is imported and differs from the record (a
    /// no-change fetch reports nothing).
    pub fn changed(&self) -> bool {
        matches!(&self.outcome, Ok(p) if p.change != Change::Unchanged)
    }
}

/// What happens to the tracking ref of a branch the upstream deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneAction {
    /// Delete it if it still holds the recorded value. After
    /// [`Prune::settle`]: deleted.
    Delete,
    /// It is already gone.
    AlreadyGone,
    /// It holds another value than recorded (moved locally): kept.
    KeptMoved {
        /// What it holds.
        found: Id,
    },
    /// The compare-and-swap failed: it moved between planning and deleting.
    LeaseMismatch {
        /// What it held when the delete was tried.
        found: Option<Id>,
    },
}

/// A recorded branch the upstream no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// The deleted upstream branch.
    pub upstream: String,
    /// Its tracking ref.
    pub mkit_ref: String,
    /// What the previous import recorded.
    pub recorded: Recorded,
    /// What happens to the tracking ref.
    pub action: PruneAction,
}

impl Prune {
    /// Record the delete's result: `Ok(true)` removed, `Ok(false)` already
    /// absent, `Err(found)` held another value.
    pub fn settle(&mut self, result: Result<bool, Option<Id>>) {
        if self.action != PruneAction::Delete {
            return;
        }
        self.action = match result {
            Ok(true) => PruneAction::Delete,
            Ok(false) => PruneAction::AlreadyGone,
            Err(found) => PruneAction::LeaseMismatch { found },
        };
    }
}

/// The local branch a fresh clone checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The branch (`main`).
    pub branch: String,
    /// Its full ref (`refs/heads/main`).
    pub local: String,
    /// The value to write.
    pub new: Id,
    /// The value seen when planning.
    pub expected: Option<Id>,
    /// Set by [`Checkout::settle`] when the compare-and-swap failed: what
    /// the branch held.
    pub lost: Option<Option<Id>>,
}

impl Checkout {
    /// The compare-and-swap that sets the branch.
    pub fn update(&self) -> RefUpdate {
        RefUpdate {
            name: self.local.clone(),
            expected: self.expected,
            new: self.new,
        }
    }

    /// Record what became of [`Checkout::update`].
    pub fn settle(&mut self, status: UpdateStatus) {
        if let UpdateStatus::Conflict { found } = status {
            self.lost = Some(found);
        }
    }

    /// True when the branch holds the new value.
    pub fn done(&self) -> bool {
        self.lost.is_none()
    }
}

/// Everything an import will do to local refs.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    /// One decision per upstream ref, in upstream order.
    pub refs: Vec<RefPlan>,
    /// Recorded branches the upstream deleted, by name.
    pub pruned: Vec<Prune>,
    /// The default branch to create or reset, when asked for.
    pub checkout: Option<Checkout>,
}

/// Plan an import. `recorded` is the previous import's ref state by
/// upstream name; `remote` the state name (for the tracking refs of deleted
/// branches); `checkout` the upstream default branch when the run sets the
/// local default branch (a fresh clone).
pub fn plan<O: Oracle>(
    remote: &str,
    upstream: Vec<Upstream>,
    recorded: &BTreeMap<String, Recorded>,
    checkout: Option<&str>,
    oracle: &mut O,
) -> Result<ImportPlan, O::Error> {
    let mut refs = Vec::with_capacity(upstream.len());
    for u in upstream {
        let before = recorded.get(&u.name).copied();
        let outcome = match u.resolved {
            Ok((mapping, id)) => Ok(decide(u.target, mapping, id, before, oracle)?),
            Err(refusal) => Err(refusal),
        };
        refs.push(RefPlan {
            upstream: u.name,
            target: u.target,
            recorded: before,
            outcome,
        });
    }
    let mut pruned = Vec::new();
    for (name, rec) in recorded {
        if refs.iter().any(|r| &r.upstream == name) {
            continue;
        }
        if let Ok(Some(RefMapping::Branch { mkit_ref, .. })) =
            rules::map_ref(remote, name.as_bytes())
        {
            let action = match oracle.local(&mkit_ref)? {
                None => PruneAction::AlreadyGone,
                Some(cur) if cur == rec.mkit => PruneAction::Delete,
                Some(found) => PruneAction::KeptMoved { found },
            };
            pruned.push(Prune {
                upstream: name.clone(),
                mkit_ref,
                recorded: *rec,
                action,
            });
        }
    }
    let checkout = match checkout {
        Some(default) => plan_checkout(&refs, default, oracle)?,
        None => None,
    };
    Ok(ImportPlan {
        refs,
        pruned,
        checkout,
    })
}

fn decide<O: Oracle>(
    target: Sha1,
    mapping: RefMapping,
    id: Id,
    before: Option<Recorded>,
    oracle: &mut O,
) -> Result<Planned, O::Error> {
    let is_branch = matches!(mapping, RefMapping::Branch { .. });
    let change = match before {
        None => Change::New,
        Some(old) if old.git == target && old.mkit == id => Change::Unchanged,
        Some(old) if old.git == target => Change::Retranslated,
        Some(_) if !is_branch => Change::TagMoved,
        Some(old) => {
            if oracle.descends(&old.git, &target)? {
                Change::FastForward
            } else {
                Change::Forced
            }
        }
    };
    let current = oracle.local(mapping.mkit_ref())?;
    let local = match current {
        Some(cur) if cur == id => Local::InPlace,
        // A tag is only moved from where the previous import put it.
        Some(cur) if !is_branch && before.is_none_or(|b| b.mkit != cur) => {
            Local::KeptMovedTag { found: cur }
        }
        expected => Local::Write { expected },
    };
    Ok(Planned {
        mapping,
        id,
        change,
        local,
    })
}

fn plan_checkout<O: Oracle>(
    refs: &[RefPlan],
    default: &str,
    oracle: &mut O,
) -> Result<Option<Checkout>, O::Error> {
    let Some(branch) = default.strip_prefix(HEADS_PREFIX) else {
        return Ok(None);
    };
    let Some(id) = refs
        .iter()
        .find(|r| r.upstream == default)
        .and_then(|r| r.outcome.as_ref().ok())
        .map(|p| p.id)
    else {
        return Ok(None);
    };
    let local = format!("{HEADS_PREFIX}{branch}");
    let expected = oracle.local(&local)?;
    Ok(Some(Checkout {
        branch: branch.to_owned(),
        local,
        new: id,
        expected,
        lost: None,
    }))
}

impl ImportPlan {
    /// The imported refs, in upstream order.
    pub fn imported(&self) -> impl Iterator<Item = (&RefPlan, &Planned)> {
        self.refs
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok().map(|p| (r, p)))
    }

    /// The skipped refs with their refusals, in upstream order.
    pub fn skipped(&self) -> impl Iterator<Item = (&RefPlan, &Refusal)> {
        self.refs
            .iter()
            .filter_map(|r| r.outcome.as_ref().err().map(|e| (r, e)))
    }

    /// The compare-and-swaps that move tracking refs and tags, in upstream
    /// order (the checkout branch is written on its own, after the prune).
    pub fn writes(&self) -> Vec<RefUpdate> {
        self.imported()
            .filter_map(|(_, p)| match p.local {
                Local::Write { expected } => Some(RefUpdate {
                    name: p.mkit_ref().to_owned(),
                    expected,
                    new: p.id,
                }),
                _ => None,
            })
            .collect()
    }

    /// Record what became of [`ImportPlan::writes`], one status per write in
    /// the same order: a conflict turns the ref's plan into a
    /// [`Local::LeaseMismatch`], a ref found already in place into
    /// [`Local::InPlace`].
    pub fn settle_writes(&mut self, statuses: &[UpdateStatus]) {
        let mut statuses = statuses.iter();
        for r in &mut self.refs {
            let Ok(p) = &mut r.outcome else { continue };
            let Local::Write { expected } = p.local else {
                continue;
            };
            match statuses.next() {
                Some(UpdateStatus::Written) | None => {}
                Some(UpdateStatus::InPlace) => p.local = Local::InPlace,
                Some(UpdateStatus::Conflict { found }) => {
                    p.local = Local::LeaseMismatch {
                        expected,
                        found: *found,
                    }
                }
            }
        }
    }

    /// The warnings the run gives for its refs, in the reference's words
    /// where it has them: per upstream ref in order (force-pushes, kept
    /// tags, lost leases), then per deleted branch.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (r, p) in self.imported() {
            if p.change == Change::Forced
                && let Some(old) = r.recorded
            {
                out.push(format!(
                    "upstream force-pushed {}; tracking ref rewound from {} to {} (rebase local \
                     branches that built on the old history)",
                    r.upstream,
                    old.git.to_hex(),
                    r.target.to_hex()
                ));
            }
            match (&p.mapping, p.local) {
                (RefMapping::Tag { tag, .. }, Local::KeptMovedTag { .. }) => out.push(format!(
                    "not updating tag '{tag}': it was moved locally (delete it with \
                     `mkit tag -d {tag}` to track the upstream tag)"
                )),
                (_, Local::LeaseMismatch { expected, found }) => out.push(format!(
                    "not updating {}: it moved from {} to {} while this import ran; run the \
                     import again to update it",
                    p.mkit_ref(),
                    show(expected),
                    show(found)
                )),
                _ => {}
            }
        }
        for prune in &self.pruned {
            match prune.action {
                PruneAction::Delete => out.push(format!(
                    "upstream deleted {}; tracking ref {} removed",
                    prune.upstream, prune.mkit_ref
                )),
                PruneAction::KeptMoved { found } => out.push(format!(
                    "upstream deleted {}; tracking ref {} kept: it was moved locally to {} \
                     (delete it by hand if it is no longer wanted)",
                    prune.upstream,
                    prune.mkit_ref,
                    found.to_hex()
                )),
                PruneAction::LeaseMismatch { found } => out.push(format!(
                    "upstream deleted {}; tracking ref {} kept: it moved to {} while this import \
                     ran",
                    prune.upstream,
                    prune.mkit_ref,
                    show(found)
                )),
                PruneAction::AlreadyGone => {}
            }
        }
        if let Some(c) = &self.checkout
            && let Some(found) = c.lost
        {
            out.push(format!(
                "not checking out '{}': {} moved from {} to {} while this import ran",
                c.branch,
                c.local,
                show(c.expected),
                show(found)
            ));
        }
        out
    }
}

fn show(id: Option<Id>) -> String {
    id.map_or_else(|| "no ref".to_owned(), |id| id.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::convert::Infallible;

    fn sha(b: u8) -> Sha1 {
        Sha1([b; 20])
    }

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    /// Local refs and an upstream history (child -> parent), counting the
    /// ancestry questions.
    #[derive(Default)]
    struct World {
        refs: HashMap<String, Id>,
        parents: HashMap<Sha1, Sha1>,
        asked: usize,
    }

    impl Oracle for World {
        type Error = Infallible;
        fn local(&mut self, name: &str) -> Result<Option<Id>, Infallible> {
            Ok(self.refs.get(name).copied())
        }
        fn descends(&mut self, old: &Sha1, new: &Sha1) -> Result<bool, Infallible> {
            self.asked += 1;
            let mut cur = Some(*new);
            while let Some(c) = cur {
                if c == *old {
                    return Ok(true);
                }
                cur = self.parents.get(&c).copied();
            }
            Ok(false)
        }
    }

    impl World {
        /// Apply compare-and-swaps as the ref store does.
        fn apply(&mut self, writes: &[RefUpdate]) -> Vec<UpdateStatus> {
            writes
                .iter()
                .map(|w| {
                    let cur = self.refs.get(&w.name).copied();
                    if cur == Some(w.new) {
                        UpdateStatus::InPlace
                    } else if cur != w.expected {
                        UpdateStatus::Conflict { found: cur }
                    } else {
                        self.refs.insert(w.name.clone(), w.new);
                        UpdateStatus::Written
                    }
                })
                .collect()
        }
    }

    /// An upstream ref mapped as the import maps it for state `up`.
    fn upstream(name: String, target: Sha1, id: Id) -> Upstream {
        let mapping = rules::map_ref("up", name.as_bytes()).unwrap().unwrap();
        Upstream {
            name,
            target,
            resolved: Ok((mapping, id)),
        }
    }

    fn branch(name: &str, target: Sha1, id: Id) -> Upstream {
        upstream(format!("refs/heads/{name}"), target, id)
    }

    fn tag(name: &str, target: Sha1, id: Id) -> Upstream {
        upstream(format!("refs/tags/{name}"), target, id)
    }

    fn rec(entries: &[(&str, u8, u8)]) -> BTreeMap<String, Recorded> {
        entries
            .iter()
            .map(|(n, g, m)| {
                (
                    (*n).to_owned(),
                    Recorded {
                        git: sha(*g),
                        mkit: id(*m),
                    },
                )
            })
            .collect()
    }

    fn plan_all(
        world: &mut World,
        upstream: Vec<Upstream>,
        recorded: &BTreeMap<String, Recorded>,
    ) -> ImportPlan {
        plan("up", upstream, recorded, None, world).unwrap()
    }

    fn one(world: &mut World, u: Upstream, recorded: &BTreeMap<String, Recorded>) -> RefPlan {
        plan_all(world, vec![u], recorded).refs.remove(0)
    }

    fn decided(r: &RefPlan) -> (Change, Local) {
        (planned(r).change, planned(r).local)
    }

    fn planned(r: &RefPlan) -> &Planned {
        r.outcome.as_ref().unwrap()
    }

    #[test]
    fn new_refs_are_created_where_nothing_is() {
        let mut w = World::default();
        let r = one(&mut w, branch("main", sha(1), id(1)), &BTreeMap::new());
        assert_eq!(decided(&r), (Change::New, Local::Write { expected: None }));
        assert!(r.changed());
        let r = one(&mut w, tag("v1", sha(2), id(2)), &BTreeMap::new());
        assert_eq!(decided(&r), (Change::New, Local::Write { expected: None }));
        assert_eq!(w.asked, 0);
    }

    #[test]
    fn unchanged_refs_write_nothing_unless_the_local_ref_went_missing() {
        let mut w = World::default();
        w.refs.insert("refs/remotes/up/main".into(), id(1));
        let recorded = rec(&[("refs/heads/main", 1, 1), ("refs/tags/v1", 2, 2)]);
        let r = one(&mut w, branch("main", sha(1), id(1)), &recorded);
        assert_eq!(decided(&r), (Change::Unchanged, Local::InPlace));
        assert!(!r.changed());
        // The tag was deleted locally: the import writes it again.
        let r = one(&mut w, tag("v1", sha(2), id(2)), &recorded);
        assert_eq!(
            decided(&r),
            (Change::Unchanged, Local::Write { expected: None })
        );
        assert_eq!(w.asked, 0);
    }

    #[test]
    fn a_branch_moves_forward_or_is_forced_with_a_warning() {
        let mut w = World::default();
        // 1 <- 2 <- 3, and 4 on 1.
        w.parents.insert(sha(2), sha(1));
        w.parents.insert(sha(3), sha(2));
        w.parents.insert(sha(4), sha(1));
        w.refs.insert("refs/remotes/up/main".into(), id(2));
        let recorded = rec(&[("refs/heads/main", 2, 2)]);
        // A tracking ref follows the upstream, forward or rewound, leased
        // on the value it holds.
        let lease = Local::Write {
            expected: Some(id(2)),
        };
        let p = plan_all(&mut w, vec![branch("main", sha(3), id(3))], &recorded);
        let got = planned(&p.refs[0]);
        assert_eq!((got.change, got.local), (Change::FastForward, lease));
        assert!(p.warnings().is_empty());
        let p = plan_all(&mut w, vec![branch("main", sha(4), id(4))], &recorded);
        let got = planned(&p.refs[0]);
        assert_eq!((got.change, got.local), (Change::Forced, lease));
        assert_eq!(
            p.warnings(),
            vec![format!(
                "upstream force-pushed refs/heads/main; tracking ref rewound from {} to {} \
                 (rebase local branches that built on the old history)",
                sha(2).to_hex(),
                sha(4).to_hex()
            )]
        );
        assert_eq!(w.asked, 2);
    }

    #[test]
    fn a_tag_follows_the_upstream_only_from_where_the_import_put_it() {
        let mut w = World::default();
        w.refs.insert("refs/tags/v1".into(), id(1));
        let recorded = rec(&[("refs/tags/v1", 1, 1)]);
        let r = one(&mut w, tag("v1", sha(2), id(2)), &recorded);
        let lease = Local::Write {
            expected: Some(id(1)),
        };
        assert_eq!(decided(&r), (Change::TagMoved, lease));
        // Tags are never asked about ancestry.
        assert_eq!(w.asked, 0);

        // Moved locally: kept, with the reference's warning, whether or not
        // the upstream moved it too.
        w.refs.insert("refs/tags/v1".into(), id(9));
        for (target, change) in [(1, Change::Unchanged), (2, Change::TagMoved)] {
            let p = plan_all(&mut w, vec![tag("v1", sha(target), id(target))], &recorded);
            let kept = Local::KeptMovedTag { found: id(9) };
            assert_eq!(decided(&p.refs[0]), (change, kept));
            assert!(p.writes().is_empty());
            assert_eq!(
                p.warnings(),
                vec![
                    "not updating tag 'v1': it was moved locally (delete it with \
                     `mkit tag -d v1` to track the upstream tag)"
                        .to_owned()
                ]
            );
        }
        // A local tag the import never wrote is kept too.
        let r = one(&mut w, tag("v1", sha(3), id(3)), &BTreeMap::new());
        assert_eq!(planned(&r).local, Local::KeptMovedTag { found: id(9) });
        // A tracking ref moved by hand is not a tag: it follows.
        w.refs.insert("refs/remotes/up/main".into(), id(9));
        let r = one(&mut w, branch("main", sha(1), id(1)), &BTreeMap::new());
        assert_eq!(
            planned(&r).local,
            Local::Write {
                expected: Some(id(9))
            }
        );
    }

    #[test]
    fn a_retranslated_tip_is_a_change() {
        let mut w = World::default();
        let recorded = rec(&[("refs/heads/main", 1, 1)]);
        let r = one(&mut w, branch("main", sha(1), id(2)), &recorded);
        assert_eq!(planned(&r).change, Change::Retranslated);
        assert!(r.changed());
        assert_eq!(w.asked, 0);
    }

    #[test]
    fn refused_refs_are_skipped_and_never_written() {
        let mut w = World::default();
        let refused = Upstream {
            name: "refs/heads/bad".into(),
            target: sha(5),
            resolved: Err(Refusal::MissingObject { object: sha(5) }),
        };
        let recorded = rec(&[("refs/heads/bad", 4, 4)]);
        let p = plan_all(&mut w, vec![refused], &recorded);
        let skipped: Vec<_> = p
            .skipped()
            .map(|(r, e)| (r.upstream.clone(), e.name()))
            .collect();
        assert_eq!(
            skipped,
            vec![("refs/heads/bad".to_owned(), "MissingObject")]
        );
        assert!(p.writes().is_empty() && p.pruned.is_empty());
        assert!(!p.refs[0].changed());
        assert_eq!(p.refs[0].recorded, recorded.get("refs/heads/bad").copied());
    }

    #[test]
    fn deleted_branches_lose_their_tracking_refs_only_where_recorded() {
        let mut w = World::default();
        w.refs.insert("refs/remotes/up/gone".into(), id(1));
        w.refs.insert("refs/remotes/up/moved".into(), id(9));
        w.refs.insert("refs/tags/old".into(), id(3));
        let recorded = rec(&[
            ("refs/heads/gone", 1, 1),
            ("refs/heads/moved", 2, 2),
            ("refs/heads/vanished", 4, 4),
            ("refs/tags/old", 3, 3),
            ("refs/heads/main", 5, 5),
        ]);
        let mut p = plan_all(&mut w, vec![branch("main", sha(5), id(5))], &recorded);
        let actions: Vec<(&str, PruneAction)> = p
            .pruned
            .iter()
            .map(|x| (x.mkit_ref.as_str(), x.action))
            .collect();
        // By name; tags are never pruned.
        assert_eq!(
            actions,
            vec![
                ("refs/remotes/up/gone", PruneAction::Delete),
                (
                    "refs/remotes/up/moved",
                    PruneAction::KeptMoved { found: id(9) }
                ),
                ("refs/remotes/up/vanished", PruneAction::AlreadyGone),
            ]
        );
        assert_eq!(p.pruned[0].recorded.mkit, id(1));
        // The delete took effect.
        p.pruned[0].settle(Ok(true));
        assert_eq!(p.pruned[0].action, PruneAction::Delete);
        let warnings = p.warnings();
        assert_eq!(
            warnings[0],
            "upstream deleted refs/heads/gone; tracking ref refs/remotes/up/gone removed"
        );
        assert!(warnings[1].starts_with(
            "upstream deleted refs/heads/moved; tracking ref refs/remotes/up/moved kept"
        ));
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn a_delete_whose_lease_fails_keeps_the_ref() {
        let mut w = World::default();
        w.refs.insert("refs/remotes/up/gone".into(), id(1));
        let recorded = rec(&[("refs/heads/gone", 1, 1)]);
        let mut p = plan_all(&mut w, vec![], &recorded);
        assert_eq!(p.pruned[0].action, PruneAction::Delete);
        p.pruned[0].settle(Err(Some(id(7))));
        assert_eq!(
            p.pruned[0].action,
            PruneAction::LeaseMismatch { found: Some(id(7)) }
        );
        assert!(p.warnings()[0].contains("kept: it moved to"));
        // Gone meanwhile: nothing to say.
        let mut p = plan_all(&mut w, vec![], &recorded);
        p.pruned[0].settle(Ok(false));
        assert_eq!(p.pruned[0].action, PruneAction::AlreadyGone);
        assert!(p.warnings().is_empty());
    }

    #[test]
    fn a_ref_moved_after_planning_fails_its_lease_and_is_left_alone() {
        let mut w = World::default();
        w.refs.insert("refs/remotes/up/main".into(), id(1));
        w.refs.insert("refs/tags/v1".into(), id(1));
        let recorded = rec(&[("refs/heads/main", 1, 1), ("refs/tags/v1", 1, 1)]);
        w.parents.insert(sha(2), sha(1));
        let mut p = plan_all(
            &mut w,
            vec![
                branch("main", sha(2), id(2)),
                tag("v1", sha(2), id(2)),
                branch("new", sha(2), id(2)),
            ],
            &recorded,
        );
        let writes = p.writes();
        assert_eq!(
            writes
                .iter()
                .map(|w| (w.name.as_str(), w.expected))
                .collect::<Vec<_>>(),
            vec![
                ("refs/remotes/up/main", Some(id(1))),
                ("refs/tags/v1", Some(id(1))),
                ("refs/remotes/up/new", None),
            ]
        );
        // Someone moves the tag and creates the new branch's tracking ref
        // to the value the import wants, between planning and writing.
        w.refs.insert("refs/tags/v1".into(), id(8));
        w.refs.insert("refs/remotes/up/new".into(), id(2));
        let statuses = w.apply(&writes);
        p.settle_writes(&statuses);
        let locals: Vec<Local> = p.imported().map(|(_, x)| x.local).collect();
        assert_eq!(
            locals,
            vec![
                Local::Write {
                    expected: Some(id(1))
                },
                Local::LeaseMismatch {
                    expected: Some(id(1)),
                    found: Some(id(8))
                },
                Local::InPlace,
            ]
        );
        assert_eq!(w.refs["refs/tags/v1"], id(8));
        assert_eq!(w.refs["refs/remotes/up/main"], id(2));
        let warnings = p.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("not updating refs/tags/v1: it moved from"));
        // The import still happened: the ref is imported and changed.
        assert!(p.refs[1].changed());
    }

    #[test]
    fn the_default_branch_is_checked_out_under_a_lease() {
        let mut w = World::default();
        let refused = Upstream {
            name: "refs/heads/dev".into(),
            target: sha(5),
            resolved: Err(Refusal::MissingObject { object: sha(5) }),
        };
        let ups = || vec![branch("main", sha(1), id(1)), refused.clone()];
        let checkout = |w: &mut World, default: &str| {
            plan("up", ups(), &BTreeMap::new(), Some(default), w).unwrap()
        };
        let p = checkout(&mut w, "refs/heads/main");
        let mut c = p.checkout.clone().unwrap();
        assert_eq!(
            (c.branch.as_str(), c.local.as_str()),
            ("main", "refs/heads/main")
        );
        assert_eq!((c.new, c.expected), (id(1), None));
        assert!(c.done());
        // Another writer got there first.
        w.refs.insert("refs/heads/main".into(), id(6));
        let status = w.apply(&[c.update()])[0];
        c.settle(status);
        assert!(!c.done());
        // A refused or missing default branch, or a non-branch, checks out
        // nothing; neither does a run that did not ask.
        for default in ["refs/heads/dev", "refs/heads/nope", "refs/tags/main"] {
            let p = checkout(&mut w, default);
            assert_eq!(p.checkout, None, "{default}");
        }
        let p = plan_all(&mut w, ups(), &BTreeMap::new());
        assert_eq!(p.checkout, None);
        // With a local branch already there, its value is the lease.
        let p = checkout(&mut w, "refs/heads/main");
        assert_eq!(p.checkout.unwrap().expected, Some(id(6)));
    }

    #[test]
    fn oracle_errors_stop_the_plan() {
        struct Broken;
        impl Oracle for Broken {
            type Error = &'static str;
            fn local(&mut self, _: &str) -> Result<Option<Id>, &'static str> {
                Err("unreadable ref")
            }
            fn descends(&mut self, _: &Sha1, _: &Sha1) -> Result<bool, &'static str> {
                Err("unreadable history")
            }
        }
        let recorded = rec(&[("refs/heads/main", 1, 1)]);
        let r = plan(
            "up",
            vec![branch("main", sha(2), id(2))],
            &recorded,
            None,
            &mut Broken,
        );
        assert_eq!(r.err(), Some("unreadable history"));
        let r = plan(
            "up",
            vec![branch("main", sha(1), id(1))],
            &recorded,
            None,
            &mut Broken,
        );
        assert_eq!(r.err(), Some("unreadable ref"));
    }
}
