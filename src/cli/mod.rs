//! Command-line definitions and rendering.
//!
//! Each subcommand parses its flags here, calls the library, and renders the
//! outcome: results on stdout, diagnostics on stderr. Errors become sysexits
//! codes (see [`exit`]); a closed stdout (for example `| head`) ends the
//! command quietly with success.

mod exit;
mod export;
mod format_patch;
mod fsck;
mod import;
mod import_report;
mod mirror;
mod objects;
mod render;
mod signals;
mod snapshot;
mod status;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use exit::CliError;

/// mkit-bridge: move history between git and mkit.
#[derive(Debug, Parser)]
#[command(name = "mkit-bridge", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty mkit repository (`.mkit/`, format bmt-v1, HEAD on main).
    Init {
        /// Directory to create it in (created when absent); default: current directory.
        dir: Option<PathBuf>,
    },
    /// Print the mkit id of files' content (blob, or chunked blob over 1 MiB).
    HashObject {
        /// Also write the objects into the repository.
        #[arg(short = 'w', long)]
        write: bool,
        /// Repository directory (default: current directory).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Files to hash.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show a stored object (verifying its id on read).
    CatObject {
        /// Print only the object type.
        #[arg(short = 't', conflicts_with = "size")]
        kind: bool,
        /// Print only the encoded size in bytes.
        #[arg(short = 's')]
        size: bool,
        /// Repository directory (default: current directory).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The object id (64 hex).
        id: String,
    },
    /// Commit a directory's files as one signed mkit commit on a branch.
    Snapshot(snapshot::Args),
    /// Import a git upstream: every commit and tag re-signed by the import key.
    Import {
        /// The upstream: a path, file://, git://, ssh://, user@host:path or http(s):// URL.
        url: String,
        /// Create this directory (absent or empty), import into it and set HEAD to the
        /// upstream's default branch; without it, import into the repository here.
        dir: Option<PathBuf>,
        /// Check out this imported branch instead of the upstream's default branch
        /// (only with <DIR>).
        #[arg(long, value_name = "NAME", requires = "dir")]
        branch: Option<String>,
        /// Fetch into the staging mirror and print what the import would do, writing
        /// nothing to the repository (not with <DIR>).
        #[arg(long = "dry-run", conflicts_with = "dir")]
        dry_run: bool,
        #[command(flatten)]
        opts: ImportArgs,
    },
    /// Re-import from the upstream recorded by an earlier import.
    Fetch {
        /// Fetch into the staging mirror and print what the fetch would do (new, updated,
        /// force-pushed, pruned and refused refs), writing nothing to the repository.
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[command(flatten)]
        opts: ImportArgs,
    },
    /// Fetch, then fast-forward the current branch and its files to the tracking ref
    /// (a diverged branch is refused: integrate with `mkit merge <remote>/<branch>`).
    Pull {
        #[command(flatten)]
        opts: ImportArgs,
    },
    /// Show every bridge state: direction, source, destination, pinned importer key,
    /// tracking refs, export leases and staging health.
    Status {
        /// Print the states as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Export branches and tags to a git mirror: deterministic translation, one atomic
    /// push with a lease per ref, git-bridge/v1 attestations on refs/mkit/attestations;
    /// --passthrough is fork mode through an import state.
    Export {
        /// Destination: a git URL or a local path (a missing or empty local path is
        /// initialized as a bare repository).
        dest: String,
        /// Name of the bridge state under .mkit/git/.
        #[arg(long = "remote-name", default_value = "mirror")]
        remote_name: String,
        /// Export only these refs (full names, refs/heads/... or refs/tags/...);
        /// default: every branch and tag.
        #[arg(long = "ref", value_name = "REF")]
        refs: Vec<String>,
        /// Push without leases: move every exported ref whatever the mirror holds.
        #[arg(long, conflicts_with = "passthrough")]
        force: bool,
        /// Mint no git-bridge/v1 attestation and publish no refs/mkit/attestations
        /// (no key is read).
        #[arg(long = "no-attest")]
        no_attest: bool,
        /// Fork mode (SPEC-GIT-BRIDGE §14) through this --remote-name's import state:
        /// imported history keeps its original git ids, local commits are translated on
        /// top, and every branch must fast-forward on the destination (tags never move).
        #[arg(long)]
        passthrough: bool,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        #[command(flatten)]
        report: Reporting,
    },
    /// Verify a bridge state's git side: carried signatures, the importer's
    /// signatures and attestations, re-derived content (--fork-audit), or whole
    /// closures with every BLAKE3 link (--deep).
    Verify {
        /// Bridge state under .mkit/git/ (optional when there is only one).
        #[arg(long = "remote-name", value_name = "NAME")]
        remote_name: Option<String>,
        /// Full fork audit (SPEC-GIT-BRIDGE §14.3): also re-derive every tree and
        /// blob under bridge commits from its mkit twin and require the exact sha1.
        #[arg(long = "fork-audit")]
        fork_audit: bool,
        /// Everything --fork-audit does, and reconstruct each bridge tip's whole
        /// closure, checking every link and signature.
        #[arg(long)]
        deep: bool,
        /// Verify only these recorded refs (full names); default: every recorded ref.
        #[arg(long = "ref", value_name = "REF")]
        refs: Vec<String>,
        /// Print the outcome as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Render local commits as `git am`-able patches (behaves as `mkit git format-patch`):
    /// merges skipped with a warning, binary changes refused.
    FormatPatch(format_patch::Args),
    /// Check the whole repository here: every object file re-hashed and decoded, every
    /// link from every ref present and of the declared kind, every signature, every
    /// retained raw git object (exit 65 when anything is damaged).
    Fsck {
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Worker threads (default: two per core).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
    },
    /// Mirror a fleet of git upstreams, as a TOML config lists them: each one's first run
    /// imports into a new repository, later runs fetch; several at once, a held lock
    /// reported as busy; one summary table (exit 1 if any failed, 75 if some were busy).
    Mirror(mirror::Args),
    /// Verify an object: its id, its structure, and its signature if it has one.
    VerifyObject {
        /// Repository directory (default: current directory).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The object ids (64 hex).
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// How a run reports, shared by the import verbs and `export`.
#[derive(Debug, clap::Args)]
struct Reporting {
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress, notes or summary on stderr (warnings still print).
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Flags shared by `import` and `fetch`.
#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Name of the state under .mkit/git/ and of the tracking refs.
    #[arg(long = "remote-name", default_value = "upstream")]
    remote_name: String,
    /// Import key: a raw 32-byte seed, mode 0600 (default .mkit/keys/git-import.key,
    /// generated with a notice when absent).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Worker threads (default: two per core; translation waits on the disk).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    #[command(flatten)]
    report: Reporting,
    /// Show every skipped ref on its own line, and refusal causes already reported
    /// by an earlier run.
    #[arg(long, short = 'v')]
    verbose: bool,
}

impl ImportArgs {
    fn common(self) -> import::Common {
        import::Common {
            remote: self.remote_name,
            key: self.key,
            jobs: self.jobs,
            json: self.report.json,
            quiet: self.report.quiet,
            verbose: self.verbose,
            dry_run: false,
        }
    }
}

/// Parse the command line, run it, and return the process exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Init { dir } => objects::init(&mut out, dir),
        Command::HashObject { write, repo, files } => {
            objects::hash_object(&mut out, &repo, &files, write)
        }
        Command::CatObject {
            kind,
            size,
            repo,
            id,
        } => objects::cat_object(&mut out, &repo, &id, kind, size),
        Command::VerifyObject { repo, ids } => objects::verify_object(&mut out, &repo, &ids),
        Command::Import {
            url,
            dir,
            branch,
            dry_run,
            opts,
        } => import::import(
            &mut out,
            &url,
            dir,
            branch,
            &import::Common {
                dry_run,
                ..opts.common()
            },
        ),
        Command::Fetch { dry_run, opts } => import::fetch(
            &mut out,
            &import::Common {
                dry_run,
                ..opts.common()
            },
        ),
        Command::Pull { opts } => import::pull(&mut out, &opts.common()),
        Command::Status { json } => status::status(&mut out, json),
        Command::Export {
            dest,
            remote_name,
            refs,
            force,
            no_attest,
            passthrough,
            jobs,
            report: Reporting { json, quiet },
        } => export::export(
            &mut out,
            &export::ExportArgs {
                dest,
                remote: remote_name,
                refs,
                force,
                passthrough,
                attest: !no_attest,
                jobs,
                json,
                quiet,
            },
        ),
        Command::Verify {
            remote_name,
            fork_audit,
            deep,
            refs,
            json,
        } => verify::run(
            &mut out,
            &verify::VerifyArgs {
                remote: remote_name,
                fork_audit,
                deep,
                refs,
                json,
            },
        ),
        Command::FormatPatch(args) => format_patch::run(&mut out, &args),
        Command::Fsck { json, jobs } => fsck::run(&mut out, &fsck::Args { jobs, json }),
        Command::Mirror(args) => mirror::run(&mut out, &args),
        Command::Snapshot(args) => snapshot::run(&mut out, &args),
    };
    let result = result.and_then(|()| out.flush().map_err(CliError::Output));
    match result {
        Ok(()) => exit::OK,
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        // An interrupted run says where it stopped, and is no error.
        Err(e) if e.exit_code() == exit::INTERRUPTED => {
            let _ = writeln!(io::stderr(), "{e}");
            exit::INTERRUPTED
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {e}");
            e.exit_code()
        }
    }
}
