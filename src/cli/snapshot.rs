//! `snapshot`: commit a directory as a signed mkit commit.

use std::io::Write;
use std::path::PathBuf;

use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::snapshot::{SnapshotOptions, snapshot};

use super::CliError;

/// `snapshot`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to commit.
    pub source: PathBuf,
    /// Repository directory (default: current directory).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Branch to advance.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: String,
    /// Opaque author, for example "Name <email>" (default: the key's Ed25519 identity).
    #[arg(long)]
    pub author: Option<String>,
    /// Commit timestamp, seconds since the epoch (default: now).
    #[arg(long)]
    pub timestamp: Option<u64>,
    /// Signing key: a raw 32-byte seed, mode 0600 (default: .mkit/keys/default.key,
    /// generated when absent).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

pub fn run(out: &mut impl Write, args: &Args) -> Result<(), CliError> {
    let repo = Repo::open(&args.repo)?;
    let key_path = args
        .key
        .clone()
        .unwrap_or_else(|| keys::default_key_path(repo.mkit_dir()));
    if keys::create_seed_new(&key_path)? {
        eprintln!(
            "notice: generated a new signing key at {} (keep it: it signs every commit)",
            key_path.display()
        );
    }
    let key = KeyPair::from_seed(&keys::load_seed(&key_path)?);
    eprintln!(
        "signing with key {} ({})",
        mkit_bridge::mkit::Id(key.public()),
        key_path.display()
    );
    let outcome = snapshot(
        &repo,
        &SnapshotOptions {
            source: &args.source,
            branch: &args.branch,
            message: args.message.clone().into_bytes(),
            author: args.author.clone().map(String::into_bytes),
            timestamp: args.timestamp,
            key: &key,
        },
    )?;
    writeln!(out, "{}", outcome.commit)?;
    eprintln!(
        "refs/heads/{} -> {} (tree {}, {} new objects)",
        args.branch, outcome.commit, outcome.tree, outcome.written
    );
    Ok(())
}
