//! The pull side of the ref planner: what `pull` does to the current
//! branch once the fetch moved its tracking ref.
//!
//! Pure like the rest of the planner: the driver reads the two refs and
//! answers ancestry (of mkit commits) through a closure; the move itself is
//! a compare-and-swap on the value read, applied by the driver.

use crate::mkit::id::Id;

/// What to do with the current branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStep {
    /// The branch has no tracking ref under this remote: fetch only.
    NoTrackingRef,
    /// The branch has no commit yet: fetch only.
    Unborn,
    /// The branch already holds the tracking ref's value.
    UpToDate,
    /// Move the branch from `expected` to `new` (a fast-forward).
    FastForward {
        /// The branch's value now: the lease.
        expected: Id,
        /// The tracking ref's value.
        new: Id,
    },
    /// The branch has commits the tracking ref does not: refused.
    Diverged,
}

/// Decide the pull from the tracking ref's value and the branch's.
/// `descends(old, new)` answers whether `old` is `new` or an ancestor of it;
/// it is asked only when both exist and differ.
pub fn plan<E>(
    tracking: Option<Id>,
    current: Option<Id>,
    descends: impl FnOnce(&Id, &Id) -> Result<bool, E>,
) -> Result<PullStep, E> {
    let Some(new) = tracking else {
        return Ok(PullStep::NoTrackingRef);
    };
    let Some(expected) = current else {
        return Ok(PullStep::Unborn);
    };
    if expected == new {
        return Ok(PullStep::UpToDate);
    }
    Ok(if descends(&expected, &new)? {
        PullStep::FastForward { expected, new }
    } else {
        PullStep::Diverged
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    fn never(_: &Id, _: &Id) -> Result<bool, Infallible> {
        panic!("ancestry asked where no decision depends on it")
    }

    #[test]
    fn every_pull_step() {
        assert_eq!(plan(None, Some(id(1)), never), Ok(PullStep::NoTrackingRef));
        assert_eq!(plan(Some(id(1)), None, never), Ok(PullStep::Unborn));
        assert_eq!(
            plan(Some(id(1)), Some(id(1)), never),
            Ok(PullStep::UpToDate)
        );
        let ff = plan(Some(id(2)), Some(id(1)), |old, new| {
            assert_eq!((*old, *new), (id(1), id(2)));
            Ok::<_, Infallible>(true)
        });
        assert_eq!(
            ff,
            Ok(PullStep::FastForward {
                expected: id(1),
                new: id(2)
            })
        );
        let diverged = plan(Some(id(2)), Some(id(3)), |_, _| Ok::<_, Infallible>(false));
        assert_eq!(diverged, Ok(PullStep::Diverged));
        assert_eq!(
            plan(Some(id(2)), Some(id(3)), |_, _| Err("unreadable")),
            Err("unreadable")
        );
    }
}
