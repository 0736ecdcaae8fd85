//! The per-remote state directory `.mkit/git/<remote>/` (in progress).
