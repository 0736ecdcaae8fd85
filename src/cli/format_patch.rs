//! `format-patch`: local commits as `git am`-able patch files or one mbox
//! stream on stdout, behaving as the reference's `mkit git format-patch`.

use std::io::Write;
use std::path::{Path, PathBuf};

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::format_patch::{self, FormatPatchError};

use super::CliError;
use super::exit;

/// Flags of `format-patch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Commit range `A..B`, or a single revision meaning `<rev>..HEAD`.
    pub range: String,
    /// Write patch files into this directory (default: current directory).
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print all patches to stdout instead of writing files.
    #[arg(long)]
    pub stdout: bool,
}

/// Run `format-patch` in the repository of the current directory.
pub fn run(out: &mut impl Write, args: &Args) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let plan = format_patch::plan(&repo, &args.range)?;
    if plan.skipped_merges > 0 {
        eprintln!(
            "warning: {} merge commit(s) skipped (patches are linear)",
            plan.skipped_merges
        );
    }
    if plan.series.is_empty() {
        eprintln!("no commits in range {}..{}", plan.exclude, plan.include);
        return Ok(());
    }
    let patches = format_patch::render(&repo, &plan)?;
    if args.stdout {
        for p in &patches {
            out.write_all(&p.mail)?;
        }
        return Ok(());
    }
    let dir = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
    format_patch::write_patches(&dir, &patches)?;
    for p in &patches {
        writeln!(out, "{}", p.file_name)?;
    }
    Ok(())
}

/// The sysexits code for a `format-patch` failure (the reference's codes).
pub fn exit_code(e: &FormatPatchError) -> u8 {
    match e {
        FormatPatchError::Revision { .. }
        | FormatPatchError::EndpointNotACommit(_)
        | FormatPatchError::NotACommit(_)
        | FormatPatchError::Read { .. }
        | FormatPatchError::Cycle
        | FormatPatchError::Binary { .. } => exit::DATAERR,
        FormatPatchError::Diff { .. }
        | FormatPatchError::WrongType { .. }
        | FormatPatchError::ChunkedSize { .. }
        | FormatPatchError::TooDeep { .. } => exit::FAILURE,
        FormatPatchError::Io(_) => exit::CANTCREAT,
    }
}
