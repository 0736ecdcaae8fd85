//! Exit codes (sysexits.h) and the CLI's error type.

use mkit_bridge::durable::IoError;
use mkit_bridge::git::push::PushError;
use mkit_bridge::git::staging::StagingError;
use mkit_bridge::mkit::id::HexError;
use mkit_bridge::mkit::keys::KeyError;
use mkit_bridge::mkit::object::ObjectError;
use mkit_bridge::mkit::refs::RefError;
use mkit_bridge::mkit::repo::RepoError;
use mkit_bridge::mkit::store::StoreError;
use mkit_bridge::run::checkout::CheckoutError;
use mkit_bridge::run::export::ExportError;
use mkit_bridge::run::export::pack::PackError;
use mkit_bridge::run::format_patch::FormatPatchError;
use mkit_bridge::run::fsck::FsckError;
use mkit_bridge::run::import::ImportError;
use mkit_bridge::run::pull::PullError;
use mkit_bridge::run::snapshot::SnapshotError;
use mkit_bridge::run::verify::VerifyRunError;
use mkit_bridge::state::StateError;

/// Success.
pub const OK: u8 = 0;
/// A general failure (for example a verification that did not pass).
pub const FAILURE: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 64;
/// Input data was malformed (a bad id, a corrupt object).
pub const DATAERR: u8 = 65;
/// An input file or repository does not exist.
pub const NOINPUT: u8 = 66;
/// An output file or directory could not be created.
pub const CANTCREAT: u8 = 73;
/// An I/O error.
pub const IOERR: u8 = 74;
/// A service (the upstream) is unavailable.
pub const UNAVAILABLE: u8 = 69;
/// An internal error.
pub const SOFTWARE: u8 = 70;
/// Configuration or state that refuses the operation (bindings, pinned key).
pub const CONFIG: u8 = 78;
/// A transient condition (a lost compare-and-swap, a held lock): retry.
pub const TEMPFAIL: u8 = 75;
/// A permission problem (an insecure or foreign key file).
pub const NOPERM: u8 = 77;
/// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C):
/// run the same command again to finish.
pub const INTERRUPTED: u8 = 130;

/// Every way a command can fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An id that is not 64 lowercase hex.
    #[error("bad object id {id:?}: {source}")]
    BadId {
        /// What was given.
        id: String,
        /// Why it is not an id.
        source: HexError,
    },
    /// Opening or creating the repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Reading or writing objects failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object could not be encoded.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A signing key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A ref operation failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// An import could not run.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// An export could not run or did not land.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A verification could not run.
    #[error(transparent)]
    VerifyRun(#[from] VerifyRunError),
    /// A verification ran and did not pass; the details were already printed.
    #[error("{0}")]
    Unverified(String),
    /// The state directory refused the operation.
    #[error(transparent)]
    State(#[from] StateError),
    /// The upstream argument cannot name anything we could fetch.
    #[error("{0}")]
    BadUpstream(String),
    /// A local upstream path that does not exist.
    #[error("{}: no such repository", .0.display())]
    MissingUpstream(std::path::PathBuf),
    /// `import <url> <dir>` into a directory that already has content.
    #[error(
        "{} exists and is not empty; import into an empty or new directory, or run \
         `mkit-bridge import <url>` inside an existing repository",
        .0.display()
    )]
    TargetNotEmpty(std::path::PathBuf),
    /// `format-patch` could not render or write the series.
    #[error(transparent)]
    FormatPatch(#[from] FormatPatchError),
    /// A checkout was refused or failed.
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    /// A pull could not fast-forward.
    #[error(transparent)]
    Pull(#[from] PullError),
    /// A check failed; the details were already printed.
    #[error("{0}")]
    Failed(String),
    /// `fsck` could not run, or found damage (its report was already printed).
    #[error(transparent)]
    Fsck(#[from] FsckError),
    /// The `mirror` config cannot be used (nothing ran).
    #[error(transparent)]
    MirrorConfig(#[from] mkit_bridge::run::mirror::ConfigError),
    /// A `mirror` run ended with failed or busy upstreams; the report says
    /// which (1 when any failed, 75 when some were only busy).
    #[error("{message}")]
    MirrorIncomplete {
        /// Which upstreams, and what became of them.
        message: String,
        /// The exit code.
        code: u8,
    },
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

impl CliError {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadId { .. } | CliError::BadUpstream(_) => USAGE,
            CliError::MissingUpstream(_) => NOINPUT,
            CliError::TargetNotEmpty(_) => CANTCREAT,
            CliError::Repo(RepoError::NotARepository(_)) => NOINPUT,
            CliError::Repo(RepoError::AlreadyInitialized(_)) => CANTCREAT,
            CliError::Repo(RepoError::IncompatibleFormat { .. }) => DATAERR,
            CliError::Store(StoreError::NotFound(_)) => NOINPUT,
            CliError::Store(StoreError::Io(_)) | CliError::Repo(RepoError::Io(_)) => IOERR,
            CliError::Store(_) | CliError::Object(_) => DATAERR,
            CliError::Io(_) | CliError::Output(_) => IOERR,
            CliError::Key(KeyError::Io(_) | KeyError::Random(_)) => IOERR,
            CliError::Key(KeyError::Missing { .. }) => NOINPUT,
            CliError::Key(_) => NOPERM,
            CliError::Ref(RefError::Conflict { .. } | RefError::LockTimeout { .. }) => TEMPFAIL,
            CliError::Ref(_) => DATAERR,
            CliError::Snapshot(SnapshotError::Io(_)) => IOERR,
            CliError::Snapshot(SnapshotError::Ref(RefError::Conflict { .. })) => TEMPFAIL,
            CliError::Snapshot(_) => DATAERR,
            CliError::Import(ImportError::State(StateError::Busy { .. }))
            | CliError::State(StateError::Busy { .. }) => TEMPFAIL,
            CliError::Import(
                ImportError::Interrupted | ImportError::Staging(StagingError::Interrupted { .. }),
            ) => INTERRUPTED,
            CliError::Import(ImportError::Staging(StagingError::Sha256Upstream { .. })) => DATAERR,
            CliError::Import(ImportError::Staging(_)) => UNAVAILABLE,
            CliError::Import(ImportError::Store(_) | ImportError::Mirror { .. }) => IOERR,
            // A failed write of raw bytes, the map, a ref or the ref state.
            CliError::Import(
                ImportError::State(StateError::Io(_)) | ImportError::Ref(RefError::Io(_)),
            ) => IOERR,
            CliError::Import(ImportError::Threads { .. }) => SOFTWARE,
            // As 0.5.0: a store failure is "cannot create", a minting failure generic.
            CliError::Import(ImportError::Attest(
                mkit_bridge::attest::AttestError::Io(_)
                | mkit_bridge::attest::AttestError::TooLarge { .. },
            )) => CANTCREAT,
            CliError::Import(ImportError::Attest(_)) => FAILURE,
            CliError::Export(e) => export_code(e),
            CliError::VerifyRun(e) => super::verify::exit_code(e),
            CliError::Unverified(_) => DATAERR,
            CliError::Import(_) | CliError::State(_) => CONFIG,
            CliError::Failed(_) => FAILURE,
            CliError::FormatPatch(e) => super::format_patch::exit_code(e),
            CliError::Checkout(e) => checkout_code(e),
            CliError::Pull(e) => pull_code(e),
            CliError::Fsck(e) => super::fsck::exit_code(e),
            CliError::MirrorConfig(e) => super::mirror::config_code(e),
            CliError::MirrorIncomplete { code, .. } => *code,
        }
    }
}

/// The exit code for a checkout error: 1 as the reference's "checkout: ..."
/// failures, 75 for a busy worktree or ref, 73 when the branch or `HEAD`
/// cannot be written.
fn checkout_code(e: &CheckoutError) -> u8 {
    match e {
        CheckoutError::Busy { .. }
        | CheckoutError::Ref(RefError::Conflict { .. } | RefError::LockTimeout { .. }) => TEMPFAIL,
        CheckoutError::Ref(_) => CANTCREAT,
        CheckoutError::NotACommit { .. } => DATAERR,
        _ => FAILURE,
    }
}

/// The exit code for a pull error, as `mkit git pull` 0.5.0: 1 for a
/// divergence, a dirty worktree or a failed update; 73 when the branch cannot
/// be advanced; 65 for a tracking ref that is not a commit; 75 when busy.
fn pull_code(e: &PullError) -> u8 {
    match e {
        PullError::Checkout(c) => match c {
            CheckoutError::Busy { .. } => TEMPFAIL,
            CheckoutError::NotACommit { .. } => DATAERR,
            _ => FAILURE,
        },
        PullError::Advance(RefError::Conflict { .. } | RefError::LockTimeout { .. }) => TEMPFAIL,
        PullError::Advance(_) => CANTCREAT,
        PullError::NotACommit { .. } => DATAERR,
        PullError::NotFastForward { .. }
        | PullError::RollbackFailed { .. }
        | PullError::Ref(_)
        | PullError::Store(_) => FAILURE,
    }
}

/// The sysexits code for an export error.
fn export_code(e: &ExportError) -> u8 {
    match e {
        ExportError::State(StateError::Busy { .. }) => TEMPFAIL,
        ExportError::State(StateError::Io(_)) => IOERR,
        ExportError::State(StateError::InvalidRemoteName { .. }) => USAGE,
        ExportError::State(_) => CONFIG,
        ExportError::Store(StoreError::Io(_)) => IOERR,
        ExportError::Store(_) | ExportError::Ref(_) => DATAERR,
        ExportError::Destination(_)
        | ExportError::RefArgument { .. }
        | ExportError::NothingToExport => USAGE,
        ExportError::RefNotFound { .. } => DATAERR,
        ExportError::OriginGuard { .. }
        | ExportError::WrongDirection { .. }
        | ExportError::DestinationMismatch { .. } => CONFIG,
        ExportError::DestinationNotEmpty { .. } => CANTCREAT,
        ExportError::Io(_) | ExportError::Staging { .. } => IOERR,
        ExportError::Pack(PackError::Io { .. }) => IOERR,
        ExportError::Pack(_) => SOFTWARE,
        ExportError::Git(PushError::GitMissing) => UNAVAILABLE,
        ExportError::Git(PushError::Home { .. }) => CANTCREAT,
        ExportError::Git(_) => UNAVAILABLE,
        ExportError::Push { error, .. } if error.is_lease_failure() => TEMPFAIL,
        ExportError::Push {
            error: PushError::Rejected { .. },
            ..
        } => FAILURE,
        ExportError::Push { .. } => UNAVAILABLE,
        ExportError::Threads { .. } => SOFTWARE,
        ExportError::Interrupted | ExportError::InterruptedPush { .. } => INTERRUPTED,
        ExportError::PassthroughNeedsImport { .. }
        | ExportError::ForkNormalized { .. }
        | ExportError::ForkTagExists { .. } => USAGE,
        ExportError::ForkStagingMissing { .. } => CONFIG,
        ExportError::NotFastForward { .. } => DATAERR,
        ExportError::LeaseMismatch { .. } => TEMPFAIL,
        ExportError::Signer {
            source: KeyError::Missing { .. },
        } => NOINPUT,
        ExportError::Signer { .. } => CONFIG,
        ExportError::Attest { .. } => SOFTWARE,
    }
}
