//! Where the audit reads git objects: the state's staging repository, then
//! its destination when that is a local repository.

use std::path::{Path, PathBuf};

use super::VerifyRunError;
use crate::bridge::verify::GitSource;
use crate::git::sha1::{ObjectKind, Sha1};
use crate::git::source;
use crate::git::staging;
use crate::state::{self, Binding};

/// The repositories objects are read from, in order of preference.
pub(super) struct Mirrors {
    repos: Vec<gix::Repository>,
    paths: Vec<PathBuf>,
}

impl Mirrors {
    /// Open the staging repository of `state_dir` and, when the recorded
    /// destination is a local path, that repository too. Either may be
    /// missing; [`Mirrors::is_empty`] tells whether anything opened.
    pub(super) fn open(state_dir: &Path) -> Result<Mirrors, VerifyRunError> {
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

    /// True when no repository could be opened.
    pub(super) fn is_empty(&self) -> bool {
        self.repos.is_empty()
    }

    /// The opened repositories' paths, in reading order.
    pub(super) fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl GitSource for Mirrors {
    fn get(&self, id: &Sha1) -> Option<(ObjectKind, Vec<u8>)> {
        self.repos.iter().find_map(|repo| source::find(repo, id))
    }
}
