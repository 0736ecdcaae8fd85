//! `pull`'s second half: fast-forward the current branch and its worktree to
//! the tracking ref a fetch just moved.
//!
//! As the reference's `mkit git pull` does: a detached or unborn `HEAD`, or a
//! branch with no tracking ref, is fetch-only; a branch that has diverged is
//! refused with the merge/rebase hint (the decision is the ref planner's,
//! [`crate::bridge::plan::pull`]); otherwise, under the worktree lock,
//! the worktree is checked clean, the branch moves with a compare-and-swap on
//! its old value, and the new tree is written (the branch is moved back if
//! writing the tree fails).

use std::collections::HashSet;

use crate::bridge::plan::pull::{self, PullStep};
use crate::mkit::Id;
use crate::mkit::object::Object;
use crate::mkit::refs::{self, Head, RefCondition, RefError};
use crate::mkit::repo::Repo;
use crate::mkit::store::StoreError;
use crate::run::checkout::{self, CheckoutError, CheckoutOutcome};

/// What `pull` did after the fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The branch and worktree moved forward.
    FastForwarded {
        /// The branch (short name).
        branch: String,
        /// Its old tip.
        from: Id,
        /// Its new tip.
        to: Id,
        /// What the worktree update did.
        checkout: CheckoutOutcome,
    },
    /// The branch already equals its tracking ref.
    UpToDate {
        /// The branch.
        branch: String,
    },
    /// Nothing to fast-forward; the fetch was all.
    FetchOnly(FetchOnly),
}

/// Why a pull only fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOnly {
    /// `HEAD` names a commit, not a branch.
    Detached,
    /// `HEAD` names a branch with no commit yet.
    Unborn {
        /// The branch.
        branch: String,
    },
    /// The current branch has no tracking ref under this remote.
    NoTrackingRef {
        /// The branch.
        branch: String,
    },
}

/// Why a pull could not fast-forward.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Local commits the tracking ref does not contain.
    #[error(
        "pull would not fast-forward branch '{branch}'; integrate with `mkit merge {remote}/{branch}` (or `mkit rebase {remote}/{branch}`)"
    )]
    NotFastForward {
        /// The branch.
        branch: String,
        /// The remote.
        remote: String,
    },
    /// The tracking ref does not name a commit.
    #[error("tracking ref {name} is not a commit ({id})")]
    NotACommit {
        /// The tracking ref.
        name: String,
        /// What it holds.
        id: Id,
    },
    /// The worktree guard or the checkout refused or failed.
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    /// The branch could not be moved.
    #[error("advance branch: {0}")]
    Advance(RefError),
    /// The checkout failed after the branch moved, and so did moving it back.
    #[error("{error}; additionally failed to roll back the branch ref: {rollback}")]
    RollbackFailed {
        /// The checkout failure.
        error: Box<CheckoutError>,
        /// The rollback failure.
        rollback: Box<RefError>,
    },
    /// A ref could not be read.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// Reading commits failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// True when `ancestor` is `tip` or reachable from it through parents.
pub fn is_ancestor(repo: &Repo, ancestor: &Id, tip: &Id) -> Result<bool, StoreError> {
    let mut seen = HashSet::new();
    let mut stack = vec![*tip];
    while let Some(id) = stack.pop() {
        if id == *ancestor {
            return Ok(true);
        }
        if !seen.insert(id) {
            continue;
        }
        match repo.store().read(&id)? {
            Object::Commit(c) => stack.extend(c.parents),
            Object::Remix(r) => stack.extend(r.parents),
            _ => {}
        }
    }
    Ok(false)
}

/// Fast-forward the current branch of `repo` to `refs/remotes/<remote>/<branch>`.
pub fn fast_forward(repo: &Repo, remote: &str) -> Result<PullOutcome, PullError> {
    let mkit = repo.mkit_dir();
    let Ok(Some(Head::Symbolic(local))) = refs::read_head(mkit) else {
        return Ok(PullOutcome::FetchOnly(FetchOnly::Detached));
    };
    let branch = local
        .strip_prefix(refs::HEADS_PREFIX)
        .unwrap_or(&local)
        .to_owned();
    let tracking = format!("{}{remote}/{branch}", refs::REMOTES_PREFIX);
    let tracked = refs::read_ref(mkit, &tracking)?;
    let current = match tracked {
        Some(_) => refs::read_ref(mkit, &local)?,
        None => None,
    };
    let (current, target) =
        match pull::plan(tracked, current, |old, new| is_ancestor(repo, old, new))? {
            PullStep::NoTrackingRef => {
                return Ok(PullOutcome::FetchOnly(FetchOnly::NoTrackingRef { branch }));
            }
            PullStep::Unborn => return Ok(PullOutcome::FetchOnly(FetchOnly::Unborn { branch })),
            PullStep::UpToDate => return Ok(PullOutcome::UpToDate { branch }),
            PullStep::Diverged => {
                return Err(PullError::NotFastForward {
                    branch,
                    remote: remote.to_owned(),
                });
            }
            PullStep::FastForward { expected, new } => (expected, new),
        };
    let new_tree = match repo.store().read(&target)? {
        Object::Commit(c) => c.tree,
        _ => {
            return Err(PullError::NotACommit {
                name: tracking,
                id: target,
            });
        }
    };
    let old_tree = checkout::commit_tree(repo, &local, &current)?;

    // The lock spans guard, ref move and checkout, so no other mkit command
    // can change the worktree between the check and the write.
    let _lock = checkout::lock_worktree(mkit)?;
    let head_plan = checkout::plan(repo.store(), &old_tree)?;
    let target_plan = checkout::plan(repo.store(), &new_tree)?;
    let index = checkout::current_index(mkit, &head_plan)?;
    checkout::check_clean(repo.root(), &index, &head_plan, &target_plan)?;
    refs::write_ref(mkit, &local, &target, RefCondition::Match(current))
        .map_err(PullError::Advance)?;
    match checkout::apply(repo.store(), repo.root(), mkit, &target_plan, Some(&index)) {
        Ok(outcome) => Ok(PullOutcome::FastForwarded {
            branch,
            from: current,
            to: target,
            checkout: outcome,
        }),
        Err(error) => match refs::write_ref(mkit, &local, &current, RefCondition::Match(target)) {
            Ok(()) => Err(error.into()),
            Err(rollback) => Err(PullError::RollbackFailed {
                error: Box::new(error),
                rollback: Box::new(rollback),
            }),
        },
    }
}
