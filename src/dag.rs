//! Levels of a directed acyclic graph: the waves a translation runs in.
//!
//! Import and export both translate objects whose ids depend on the ids of
//! the objects they point at (a tree's subtrees, a commit's parents and
//! tree, a tag's target), so a set of waiting objects is cut into waves in
//! which every object's dependencies inside the set were settled by an
//! earlier wave; the objects of one wave are independent of each other and
//! can be translated in parallel. [`levels`] is that cut, once for every
//! driver.
//!
//! A node's level is 0 when none of its dependencies is in the set (those
//! outside it are settled already: mapped, leaves, or refused), else one
//! more than the highest level among its dependencies in the set. The walk
//! is iterative, so a history millions of commits deep cannot overflow the
//! call stack.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// Not reached yet.
const UNSEEN: usize = usize::MAX;
/// Reached, its dependencies not all levelled yet (on the walk's path).
const OPEN: usize = usize::MAX - 1;

/// `nodes` grouped by level (see the module text), wave 0 first, each wave
/// in the order the nodes have in `nodes` (a repeated node counts once, at
/// its first place). `deps` names a node's dependencies; those not in
/// `nodes` are ignored, and so is a repeated one.
///
/// Content-addressed objects cannot form a cycle; should `deps` describe
/// one anyway, the edge that closes it is ignored, so the call still ends
/// and every node gets a level.
pub fn levels<N, I>(nodes: &[N], mut deps: impl FnMut(&N) -> I) -> Vec<Vec<N>>
where
    N: Copy + Eq + Hash,
    I: IntoIterator<Item = N>,
{
    let mut index: HashMap<N, usize> = HashMap::with_capacity(nodes.len());
    let mut order: Vec<usize> = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if let Entry::Vacant(e) = index.entry(*n) {
            e.insert(i);
            order.push(i);
        }
    }
    // `level[i]`: UNSEEN, OPEN, or the level of `nodes[i]`.
    let mut level: Vec<usize> = vec![UNSEEN; nodes.len()];
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for &root in &order {
        if level[root] != UNSEEN {
            continue;
        }
        stack.push((root, false));
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                // Every dependency in the set is levelled now, or OPEN (an
                // edge closing a cycle, ignored).
                level[i] = deps(&nodes[i])
                    .into_iter()
                    .filter_map(|d| index.get(&d))
                    .filter(|&&j| level[j] < OPEN)
                    .map(|&j| level[j] + 1)
                    .max()
                    .unwrap_or(0);
                continue;
            }
            if level[i] != UNSEEN {
                continue;
            }
            level[i] = OPEN;
            stack.push((i, true));
            for d in deps(&nodes[i]) {
                if let Some(&j) = index.get(&d)
                    && level[j] == UNSEEN
                {
                    stack.push((j, false));
                }
            }
        }
    }
    let mut out: Vec<Vec<N>> = Vec::new();
    for i in order {
        let l = level[i];
        if out.len() <= l {
            out.resize_with(l + 1, Vec::new);
        }
        out[l].push(nodes[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Levels of the graph given as (node, deps) pairs, in that order.
    fn of(graph: &[(u32, &[u32])]) -> Vec<Vec<u32>> {
        let deps: HashMap<u32, &[u32]> = graph.iter().copied().collect();
        let nodes: Vec<u32> = graph.iter().map(|(n, _)| *n).collect();
        levels(&nodes, |n| {
            deps.get(n).copied().unwrap_or(&[]).iter().copied()
        })
    }

    #[test]
    fn dependencies_come_in_earlier_waves() {
        // 3 -> 2 -> 1, 3 -> 1, 4 alone; 9 is outside the set.
        assert_eq!(
            of(&[(3, &[2, 1]), (1, &[9]), (2, &[1]), (4, &[])]),
            vec![vec![1, 4], vec![2], vec![3]]
        );
    }

    #[test]
    fn a_level_is_one_more_than_the_highest_dependency() {
        // 5 depends on a chain of three (level 2) and on a leaf (level 0).
        assert_eq!(
            of(&[(5, &[7, 3]), (3, &[2]), (2, &[1]), (1, &[]), (7, &[])]),
            vec![vec![1, 7], vec![2], vec![3], vec![5]]
        );
    }

    #[test]
    fn waves_keep_the_input_order() {
        assert_eq!(
            of(&[(8, &[]), (2, &[]), (5, &[]), (6, &[8]), (4, &[2])]),
            vec![vec![8, 2, 5], vec![6, 4]]
        );
    }

    #[test]
    fn repeated_nodes_and_edges_count_once() {
        let deps: HashMap<u32, Vec<u32>> = [(1, vec![]), (2, vec![1, 1, 1])].into();
        let got = levels(&[2, 1, 2, 1], |n| deps[n].clone());
        assert_eq!(got, vec![vec![1], vec![2]]);
    }

    #[test]
    fn empty_set_has_no_waves() {
        assert!(of(&[]).is_empty());
    }

    #[test]
    fn a_cycle_still_ends_and_levels_every_node() {
        let got = of(&[(1, &[2]), (2, &[3]), (3, &[1]), (4, &[3])]);
        let all: usize = got.iter().map(Vec::len).sum();
        assert_eq!(all, 4);
        // 4 depends on 3, which is levelled somewhere: 4 comes after it.
        let wave_of = |n: u32| got.iter().position(|w| w.contains(&n)).unwrap();
        assert!(wave_of(4) > wave_of(3));
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        // One node per commit of a deep history: each depends on the next.
        const DEPTH: u32 = 200_000;
        let nodes: Vec<u32> = (0..DEPTH).collect();
        let got = levels(&nodes, |n| (n + 1 < DEPTH).then_some(n + 1));
        assert_eq!(got.len(), DEPTH as usize);
        assert_eq!(got[0], vec![DEPTH - 1]);
        assert_eq!(got[DEPTH as usize - 1], vec![0]);
    }
}
