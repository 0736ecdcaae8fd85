//! The ref planner: what a push will do to each ref, decided before anything
//! moves (SPEC-GIT-BRIDGE §12.2 and §14.1).
//!
//! A driver gathers, for every ref it wants to move, the value it last
//! recorded for it (its lease), the value the destination was seen holding
//! (when it looked), the value it wants to write and the kind of ref; then
//! [`plan`] turns that into one [`Decision`] per ref: create, fast-forward,
//! move, leave unchanged, force, or refuse with the reason and the values
//! that led there. Nothing here reads a repository: whether one commit
//! descends from another is asked of the caller's ancestry oracle, and only
//! for the refs whose decision depends on it.
//!
//! The same rules serve every mode:
//!
//! - **mirror** (plain export, the mirror is ours): the expectation is the
//!   recorded value, else the observed one (absent: must not exist). A
//!   recorded value that the destination was seen NOT to hold is a lease
//!   mismatch, refused before the push (git would refuse it anyway, as
//!   `stale info`). Rewrites are allowed: the lease is the tamper check.
//! - **force** (plain export with `--force`): no expectation; every ref
//!   moves to its new value.
//! - **fork** (`--passthrough`, the destination is not ours): only the
//!   fresh observation counts (a recorded value from another destination
//!   never applies). A branch must fast-forward from the observed value, a
//!   tag that exists never moves. A synthetic ref (the attestations chain)
//!   is leased on the observation but not held to fast-forward: its history
//!   is ours alone.
//!
//! Refusals are collected, never raised: the driver decides whether one
//! refused ref stops the run (both exporters do, since the push is atomic).
//!
//! The other directions have their own planners beside this one, pure in
//! the same way: [`import`] for import, fetch and the fetch half of pull
//! (tracking refs, tags, pruned branches, the checkout branch, each under a
//! lease), and [`pull`] for pull's fast-forward of the current branch.

use crate::git::sha1::Sha1;

pub mod import;
pub mod pull;

/// What kind of ref is being moved, which decides the rules that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/*`.
    Branch,
    /// `refs/tags/*`.
    Tag,
    /// A ref whose history only the bridge writes (`refs/mkit/attestations`).
    Synthetic,
}

impl RefKind {
    /// The kind of a full ref name: branches and tags by prefix, anything
    /// else synthetic.
    pub fn of(name: &str) -> RefKind {
        if name.starts_with("refs/heads/") {
            RefKind::Branch
        } else if name.starts_with("refs/tags/") {
            RefKind::Tag
        } else {
            RefKind::Synthetic
        }
    }
}

/// How the destination's ref values are to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain export to a mirror this repository owns.
    Mirror,
    /// Plain export with every lease dropped.
    Force,
    /// Fork (passthrough) export to a repository others write to.
    Fork,
}

/// What the destination was seen holding for one ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The destination was not asked.
    Unknown,
    /// The destination has no such ref.
    Absent,
    /// The destination holds this value.
    At(Sha1),
}

impl Observation {
    /// The observed value; `None` when absent or unknown (tell them apart
    /// with [`Observation::is_known`]).
    pub fn value(self) -> Option<Sha1> {
        match self {
            Observation::At(v) => Some(v),
            _ => None,
        }
    }

    /// True when the destination was asked.
    pub fn is_known(self) -> bool {
        self != Observation::Unknown
    }
}

/// One ref the driver wants to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefInput {
    /// Full ref name, the same on both sides.
    pub name: String,
    /// Its kind.
    pub kind: RefKind,
    /// The value this state recorded for it after its last push (`None`:
    /// no record).
    pub recorded: Option<Sha1>,
    /// What the destination holds now, when it was asked.
    pub observed: Observation,
    /// The value to write.
    pub new: Sha1,
}

impl RefInput {
    /// An input whose kind follows from its name.
    pub fn new(name: &str, recorded: Option<Sha1>, observed: Observation, new: Sha1) -> RefInput {
        RefInput {
            name: name.to_owned(),
            kind: RefKind::of(name),
            recorded,
            observed,
            new,
        }
    }
}

/// What the push will do to a ref that is not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The ref is expected absent and will be created.
    Create,
    /// The expected value is an ancestor of the new one (checked in fork
    /// mode only).
    FastForward,
    /// The ref moves from the expected value, ancestry unchecked (mirror
    /// mode: a rewrite is allowed under the lease).
    Move,
    /// The ref already holds the new value; it is still pushed so that a
    /// ref moved behind our back fails the lease.
    Unchanged,
    /// No expectation: the ref is overwritten whatever it holds.
    Force,
}

/// Why a ref cannot be pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanRefusal {
    /// The destination does not hold the value this state recorded
    /// (mirror mode): someone moved it since our last push.
    LeaseMismatch {
        /// The recorded value.
        recorded: Sha1,
        /// What the destination holds (`None`: the ref is gone).
        observed: Option<Sha1>,
    },
    /// Fork mode: the tag exists on the destination at another object.
    TagExists {
        /// What the destination's tag names.
        observed: Sha1,
    },
    /// Fork mode: the destination's branch is not an ancestor of the new
    /// tip (or is unknown to us): it has work this repository has not
    /// integrated.
    NonFastForward {
        /// What the destination's branch names.
        observed: Sha1,
    },
}

impl PlanRefusal {
    /// A stable token for reports.
    pub fn name(&self) -> &'static str {
        match self {
            PlanRefusal::LeaseMismatch { .. } => "lease-mismatch",
            PlanRefusal::TagExists { .. } => "fork-tag-exists",
            PlanRefusal::NonFastForward { .. } => "non-fast-forward",
        }
    }
}

/// The decision for one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Full ref name.
    pub name: String,
    /// Its kind.
    pub kind: RefKind,
    /// The value to write.
    pub new: Sha1,
    /// The lease: the value the ref must hold for the push to apply
    /// (`None`: must not exist). Meaningless for [`Action::Force`].
    pub expected: Option<Sha1>,
    /// What the destination was seen holding.
    pub observed: Observation,
    /// What happens, or why not.
    pub outcome: Result<Action, PlanRefusal>,
}

/// The plan for a whole push, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// One decision per input ref.
    pub decisions: Vec<Decision>,
}

impl Plan {
    /// The refused decisions, in input order.
    pub fn refused(&self) -> impl Iterator<Item = (&Decision, PlanRefusal)> {
        self.decisions
            .iter()
            .filter_map(|d| d.outcome.err().map(|r| (d, r)))
    }

    /// True when no ref is refused.
    pub fn is_clear(&self) -> bool {
        self.decisions.iter().all(|d| d.outcome.is_ok())
    }

    /// How many refs will change on the destination, as far as the plan
    /// knows (unchanged refs excluded).
    pub fn changes(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| matches!(d.outcome, Ok(a) if a != Action::Unchanged))
            .count()
    }
}

/// True when `mode` needs to know what the destination holds for `input`
/// before planning it: always in fork mode, never with force, and in mirror
/// mode only for a ref with no recorded value.
pub fn needs_observation(mode: Mode, input_recorded: Option<Sha1>) -> bool {
    match mode {
        Mode::Fork => true,
        Mode::Force => false,
        Mode::Mirror => input_recorded.is_none(),
    }
}

/// Decide every ref. `descends(old, new)` answers whether `old` is an
/// ancestor of (or equal to) `new`, and false when `old` is unknown to the
/// caller; it is asked only for fork-mode branches that would move.
pub fn plan<E>(
    mode: Mode,
    inputs: &[RefInput],
    mut descends: impl FnMut(&Sha1, &Sha1) -> Result<bool, E>,
) -> Result<Plan, E> {
    let mut decisions = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (expected, outcome) = decide(mode, input, &mut descends)?;
        decisions.push(Decision {
            name: input.name.clone(),
            kind: input.kind,
            new: input.new,
            expected,
            observed: input.observed,
            outcome,
        });
    }
    Ok(Plan { decisions })
}

type Decided = (Option<Sha1>, Result<Action, PlanRefusal>);

fn decide<E>(
    mode: Mode,
    input: &RefInput,
    descends: &mut impl FnMut(&Sha1, &Sha1) -> Result<bool, E>,
) -> Result<Decided, E> {
    match mode {
        Mode::Force => Ok((input.observed.value(), Ok(Action::Force))),
        Mode::Mirror => Ok(decide_mirror(input)),
        Mode::Fork => decide_fork(input, descends),
    }
}

fn decide_mirror(input: &RefInput) -> Decided {
    if let Some(recorded) = input.recorded
        && input.observed.is_known()
        && input.observed.value() != Some(recorded)
    {
        let refusal = PlanRefusal::LeaseMismatch {
            recorded,
            observed: input.observed.value(),
        };
        return (Some(recorded), Err(refusal));
    }
    let expected = input.recorded.or(input.observed.value());
    let action = match expected {
        None => Action::Create,
        Some(old) if old == input.new => Action::Unchanged,
        Some(_) => Action::Move,
    };
    (expected, Ok(action))
}

fn decide_fork<E>(
    input: &RefInput,
    descends: &mut impl FnMut(&Sha1, &Sha1) -> Result<bool, E>,
) -> Result<Decided, E> {
    // The observation is the only expectation: the destination is not
    // ours, and a record made against another destination means nothing.
    let expected = input.observed.value();
    let action = match expected {
        None => Ok(Action::Create),
        Some(old) if old == input.new => Ok(Action::Unchanged),
        Some(old) => match input.kind {
            RefKind::Tag => Err(PlanRefusal::TagExists { observed: old }),
            RefKind::Synthetic => Ok(Action::Move),
            RefKind::Branch => {
                if descends(&old, &input.new)? {
                    Ok(Action::FastForward)
                } else {
                    Err(PlanRefusal::NonFastForward { observed: old })
                }
            }
        },
    };
    Ok((expected, action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::convert::Infallible;

    fn sha(b: u8) -> Sha1 {
        Sha1([b; 20])
    }

    /// A tiny commit graph: child -> parents.
    struct Graph(HashMap<Sha1, Vec<Sha1>>);

    impl Graph {
        fn linear(ids: &[u8]) -> Graph {
            let mut g = HashMap::new();
            for w in ids.windows(2) {
                g.insert(sha(w[1]), vec![sha(w[0])]);
            }
            g.insert(sha(ids[0]), vec![]);
            Graph(g)
        }

        fn descends(&self, old: &Sha1, new: &Sha1) -> Result<bool, Infallible> {
            if !self.0.contains_key(old) {
                return Ok(false);
            }
            let mut stack = vec![*new];
            while let Some(c) = stack.pop() {
                if c == *old {
                    return Ok(true);
                }
                stack.extend(self.0.get(&c).into_iter().flatten().copied());
            }
            Ok(false)
        }
    }

    fn never(_: &Sha1, _: &Sha1) -> Result<bool, Infallible> {
        panic!("ancestry asked where no decision depends on it")
    }

    fn one(mode: Mode, input: RefInput, g: &Graph) -> Decision {
        let p = plan(mode, &[input], |a, b| g.descends(a, b)).unwrap();
        p.decisions.into_iter().next().unwrap()
    }

    #[test]
    fn ref_kinds_follow_the_name() {
        assert_eq!(RefKind::of("refs/heads/main"), RefKind::Branch);
        assert_eq!(RefKind::of("refs/tags/v1"), RefKind::Tag);
        assert_eq!(RefKind::of("refs/mkit/attestations"), RefKind::Synthetic);
    }

    #[test]
    fn mirror_leases_on_the_record_then_the_observation() {
        let inputs = [
            // Recorded, not observed: the record is the lease.
            RefInput::new("refs/heads/a", Some(sha(1)), Observation::Unknown, sha(2)),
            // No record: the observation is the lease.
            RefInput::new("refs/heads/b", None, Observation::At(sha(3)), sha(4)),
            // No record, absent: must not exist.
            RefInput::new("refs/tags/t", None, Observation::Absent, sha(5)),
            // Recorded and unchanged.
            RefInput::new("refs/heads/c", Some(sha(6)), Observation::Unknown, sha(6)),
            // Recorded and seen where recorded.
            RefInput::new(
                "refs/heads/d",
                Some(sha(7)),
                Observation::At(sha(7)),
                sha(8),
            ),
        ];
        let p = plan(Mode::Mirror, &inputs, never).unwrap();
        let got: Vec<(Option<Sha1>, Result<Action, PlanRefusal>)> = p
            .decisions
            .iter()
            .map(|d| (d.expected, d.outcome))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(sha(1)), Ok(Action::Move)),
                (Some(sha(3)), Ok(Action::Move)),
                (None, Ok(Action::Create)),
                (Some(sha(6)), Ok(Action::Unchanged)),
                (Some(sha(7)), Ok(Action::Move)),
            ]
        );
        assert!(p.is_clear());
        assert_eq!(p.changes(), 4);
    }

    #[test]
    fn mirror_refuses_a_record_the_destination_no_longer_holds() {
        let moved = RefInput::new(
            "refs/heads/a",
            Some(sha(1)),
            Observation::At(sha(9)),
            sha(2),
        );
        let gone = RefInput::new("refs/heads/b", Some(sha(1)), Observation::Absent, sha(2));
        let p = plan(Mode::Mirror, &[moved, gone], never).unwrap();
        let refused: Vec<PlanRefusal> = p.refused().map(|(_, r)| r).collect();
        assert_eq!(
            refused,
            vec![
                PlanRefusal::LeaseMismatch {
                    recorded: sha(1),
                    observed: Some(sha(9))
                },
                PlanRefusal::LeaseMismatch {
                    recorded: sha(1),
                    observed: None
                },
            ]
        );
        assert_eq!(p.decisions[0].expected, Some(sha(1)));
        assert!(!p.is_clear());
        assert_eq!(p.refused().next().unwrap().1.name(), "lease-mismatch");
    }

    #[test]
    fn force_moves_everything_without_asking() {
        let inputs = [
            RefInput::new("refs/tags/t", Some(sha(1)), Observation::Unknown, sha(2)),
            RefInput::new("refs/heads/a", None, Observation::Unknown, sha(2)),
        ];
        let p = plan(Mode::Force, &inputs, never).unwrap();
        assert!(p.decisions.iter().all(|d| d.outcome == Ok(Action::Force)));
    }

    #[test]
    fn fork_fast_forwards_branches_from_the_observation_only() {
        let g = Graph::linear(&[1, 2, 3]);
        // The record (from another destination) is ignored.
        let d = one(
            Mode::Fork,
            RefInput::new(
                "refs/heads/main",
                Some(sha(9)),
                Observation::At(sha(1)),
                sha(3),
            ),
            &g,
        );
        assert_eq!(d.expected, Some(sha(1)));
        assert_eq!(d.outcome, Ok(Action::FastForward));
        // Absent on the destination: created, must not exist, whatever
        // was recorded.
        let d = one(
            Mode::Fork,
            RefInput::new("refs/heads/new", Some(sha(1)), Observation::Absent, sha(3)),
            &g,
        );
        assert_eq!((d.expected, d.outcome), (None, Ok(Action::Create)));
        // Already there.
        let d = one(
            Mode::Fork,
            RefInput::new("refs/heads/main", None, Observation::At(sha(3)), sha(3)),
            &g,
        );
        assert_eq!(d.outcome, Ok(Action::Unchanged));
    }

    #[test]
    fn fork_refuses_a_branch_with_work_we_have_not_integrated() {
        // 1 <- 2 <- 3 and a sibling 4 on 2 that we never saw.
        let mut g = Graph::linear(&[1, 2, 3]);
        g.0.insert(sha(4), vec![sha(2)]);
        let d = one(
            Mode::Fork,
            RefInput::new("refs/heads/main", None, Observation::At(sha(4)), sha(3)),
            &g,
        );
        assert_eq!(
            d.outcome,
            Err(PlanRefusal::NonFastForward { observed: sha(4) })
        );
        // A value we do not even have is not a fast-forward either.
        let d = one(
            Mode::Fork,
            RefInput::new("refs/heads/main", None, Observation::At(sha(77)), sha(3)),
            &g,
        );
        assert_eq!(
            d.outcome,
            Err(PlanRefusal::NonFastForward { observed: sha(77) })
        );
        // Moving backwards is not a fast-forward.
        let d = one(
            Mode::Fork,
            RefInput::new("refs/heads/main", None, Observation::At(sha(3)), sha(2)),
            &g,
        );
        assert_eq!(d.outcome.unwrap_err().name(), "non-fast-forward");
    }

    #[test]
    fn fork_never_moves_an_existing_tag_even_forward() {
        let g = Graph::linear(&[1, 2]);
        let d = one(
            Mode::Fork,
            RefInput::new("refs/tags/v1", None, Observation::At(sha(1)), sha(2)),
            &g,
        );
        assert_eq!(d.outcome, Err(PlanRefusal::TagExists { observed: sha(1) }));
        assert_eq!(d.outcome.unwrap_err().name(), "fork-tag-exists");
        let d = one(
            Mode::Fork,
            RefInput::new("refs/tags/v1", None, Observation::At(sha(2)), sha(2)),
            &g,
        );
        assert_eq!(d.outcome, Ok(Action::Unchanged));
    }

    #[test]
    fn fork_leases_the_synthetic_ref_without_ancestry() {
        let d = plan(
            Mode::Fork,
            &[RefInput::new(
                "refs/mkit/attestations",
                Some(sha(5)),
                Observation::At(sha(6)),
                sha(7),
            )],
            never,
        )
        .unwrap()
        .decisions
        .remove(0);
        assert_eq!((d.expected, d.outcome), (Some(sha(6)), Ok(Action::Move)));
    }

    #[test]
    fn fork_creates_what_the_destination_lacks_and_counts_only_moves() {
        let g = Graph::linear(&[1, 2]);
        let inputs = [
            RefInput::new("refs/mkit/attestations", None, Observation::Absent, sha(5)),
            RefInput::new("refs/tags/v2", None, Observation::Absent, sha(2)),
            RefInput::new("refs/heads/main", None, Observation::At(sha(2)), sha(2)),
            RefInput::new("refs/tags/v1", None, Observation::At(sha(1)), sha(2)),
        ];
        let p = plan(Mode::Fork, &inputs, |a, b| g.descends(a, b)).unwrap();
        let got: Vec<Result<Action, PlanRefusal>> = p.decisions.iter().map(|d| d.outcome).collect();
        assert_eq!(
            got,
            vec![
                Ok(Action::Create),
                Ok(Action::Create),
                Ok(Action::Unchanged),
                Err(PlanRefusal::TagExists { observed: sha(1) }),
            ]
        );
        assert!(p.decisions[..2].iter().all(|d| d.expected.is_none()));
        // Neither the unchanged ref nor the refused one counts.
        assert_eq!(p.changes(), 2);
        assert!(!p.is_clear());
    }

    #[test]
    fn mirror_without_record_or_observation_must_create() {
        let p = plan(
            Mode::Mirror,
            &[RefInput::new(
                "refs/heads/a",
                None,
                Observation::Unknown,
                sha(1),
            )],
            never,
        )
        .unwrap();
        assert_eq!(
            (p.decisions[0].expected, p.decisions[0].outcome),
            (None, Ok(Action::Create))
        );
    }

    #[test]
    fn observation_is_needed_by_mode() {
        assert!(needs_observation(Mode::Fork, Some(sha(1))));
        assert!(!needs_observation(Mode::Force, None));
        assert!(needs_observation(Mode::Mirror, None));
        assert!(!needs_observation(Mode::Mirror, Some(sha(1))));
    }

    #[test]
    fn an_oracle_error_stops_the_plan() {
        let r = plan(
            Mode::Fork,
            &[RefInput::new(
                "refs/heads/a",
                None,
                Observation::At(sha(1)),
                sha(2),
            )],
            |_, _| Err("git failed"),
        );
        assert_eq!(r, Err("git failed"));
    }
}
