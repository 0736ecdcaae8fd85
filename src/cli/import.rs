//! `import` and `fetch`: git upstream → importer-signed mkit history.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use mkit_bridge::git::staging;
use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::checkout::{self, CheckoutError};
use mkit_bridge::run::import::{self, ImportOutcome, ImportRequest, KeyChoice, Target};
use mkit_bridge::run::pull::{self, FetchOnly, PullOutcome};
use mkit_bridge::state;
use serde::Serialize;

use super::CliError;
use super::import_report::JsonSkipped;
use super::render::Bar;

/// Options shared by `import` and `fetch`.
pub struct Common {
    pub remote: String,
    pub key: Option<PathBuf>,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
    /// Every skipped ref on its own line, and causes reported before.
    pub verbose: bool,
    /// Plan only: fetch into the staging mirror, write nothing else.
    pub dry_run: bool,
}

/// `import <url> [<dir>]`.
///
/// The fresh-clone form records a pending marker in `<dir>/.mkit/` as soon
/// as the repository exists and removes it when the whole command is done,
/// so an interrupted run is finished by running the same command again.
pub fn import(
    out: &mut impl Write,
    url: &str,
    dir: Option<PathBuf>,
    branch: Option<String>,
    common: &Common,
) -> Result<(), CliError> {
    check_upstream(url)?;
    let Some(d) = dir else {
        let repo = Repo::open(Path::new("."))?;
        warn_pending(&repo);
        return run(out, &repo, url, false, common);
    };
    let (repo, created, resumed) = match import::classify_target(&d, url, &common.remote) {
        Target::Fresh => {
            let existed = d.exists();
            mkit_bridge::durable::create_dir_all_durable(&d)?;
            import::remove_debris(&d);
            let repo = Repo::init(&d)?;
            import::crash_point("init");
            import::write_pending(repo.mkit_dir(), &common.remote, url)?;
            (repo, !existed, false)
        }
        Target::Resume => {
            import::remove_debris(&d);
            let repo = match Repo::open(&d) {
                Ok(r) => r,
                Err(mkit_bridge::mkit::repo::RepoError::NotARepository(_)) => Repo::init(&d)?,
                Err(e) => return Err(e.into()),
            };
            import::write_pending(repo.mkit_dir(), &common.remote, url)?;
            if !common.quiet {
                eprintln!(
                    "note: resuming the interrupted import of {url} into {}",
                    d.display()
                );
            }
            (repo, false, true)
        }
        Target::Occupied(other) => {
            if let Some(p) = other {
                eprintln!(
                    "note: {} holds an unfinished import of {} (--remote-name {}); finish it with \
                     `mkit-bridge import {} {} --remote-name {}`",
                    d.display(),
                    p.url,
                    p.remote,
                    p.url,
                    d.display(),
                    p.remote
                );
            }
            return Err(CliError::TargetNotEmpty(d));
        }
    };
    let result = import_and_checkout(out, &repo, url, branch.as_deref(), resumed, common);
    match &result {
        // Done (an all-skipped run too, as the reference keeps its
        // repository and state for inspection): nothing left to resume.
        Ok(()) | Err(CliError::Failed(_)) => {
            import::crash_point("checked-out");
            import::clear_pending(repo.mkit_dir())?;
        }
        // A refused checkout, an interrupted run, or a resumed run keeps
        // what it has (and the pending marker), so the next attempt
        // finishes the job.
        Err(CliError::Checkout(_) | CliError::Import(import::ImportError::Interrupted)) => {}
        Err(_) if resumed => {}
        // A fresh run that could not run leaves nothing behind: the
        // directory if it made it, else (a pre-existing empty directory,
        // which may carry meaning) only its content.
        Err(_) if created => {
            let _ = std::fs::remove_dir_all(&d);
        }
        Err(_) => {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
    }
    result
}

/// Say how to finish an interrupted fresh-clone import of this repository
/// (its tracking refs can be fetched, but only the import command makes the
/// local branch and the checkout).
fn warn_pending(repo: &Repo) {
    let Some(p) = import::read_pending(repo.mkit_dir()) else {
        return;
    };
    let root = std::fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
    let name = root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let parent = root
        .parent()
        .map_or_else(|| ".".to_owned(), |p| p.display().to_string());
    eprintln!(
        "warning: the import of {} into this directory was interrupted before it finished (the \
         local branch, HEAD and the checkout may be missing); to finish it, run the same command \
         again: cd {parent} && mkit-bridge import {} {name}{}",
        p.url,
        p.url,
        if p.remote == "upstream" {
            String::new()
        } else {
            format!(" --remote-name {}", p.remote)
        }
    );
}

/// Refuse, before anything is created, an upstream we could never fetch: a
/// blank or option-like argument, a scheme no transport handles, or a local
/// path that does not exist.
fn check_upstream(url: &str) -> Result<(), CliError> {
    use mkit_bridge::git::remote::{self, UrlKind};
    // The messages carry the reference's wording ("empty git URL or path",
    // "... is not a valid git URL or path"), which scripts match.
    remote::check_url(url).map_err(|e| CliError::BadUpstream(e.to_string()))?;
    match remote::url_kind(url) {
        UrlKind::Other(scheme) => Err(CliError::BadUpstream(format!(
            "{url}: the {scheme}:// scheme is not supported (use a path, file://, git://, ssh://, \
             user@host:path or http(s)://)"
        ))),
        UrlKind::Local | UrlKind::File => match remote::local_path(url) {
            Some(p) if !p.exists() => Err(CliError::MissingUpstream(p)),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// `fetch`: re-import from the source recorded in the state.
pub fn fetch(out: &mut impl Write, common: &Common) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    warn_pending(&repo);
    let state_dir = state::state_dir(repo.mkit_dir(), &common.remote)?;
    let url = staging::recorded_url(&state_dir).ok_or_else(|| {
        CliError::Failed(format!(
            "no import state for '{}' here (no {}); run `mkit-bridge import <url>` first",
            common.remote,
            staging::mirror_path(&state_dir).display()
        ))
    })?;
    run(out, &repo, &url, false, common)
}

fn run(
    out: &mut impl Write,
    repo: &Repo,
    url: &str,
    fresh: bool,
    common: &Common,
) -> Result<(), CliError> {
    if common.dry_run {
        let plan = plan_outcome(repo, url, common)?;
        return super::import_report::render_plan(out, &plan, common);
    }
    let outcome = fetch_outcome(repo, url, fresh, common)?;
    finish(out, &outcome, common, None)
}

/// Run the import itself (key, progress, driver); nothing is rendered yet.
fn fetch_outcome(
    repo: &Repo,
    url: &str,
    fresh: bool,
    common: &Common,
) -> Result<ImportOutcome, CliError> {
    let key = import_key(repo, common)?;
    let outcome = drive(repo, url, common, &key, fresh, import::import)?;
    if super::signals::interrupted() {
        eprintln!(
            "note: interrupted after the objects were written; the import was finished rather \
             than left half-done"
        );
    }
    Ok(outcome)
}

/// The importer key for this run, chosen as `import::choose_import_key`
/// says. A dry run never writes one: where a real run would generate the
/// key, it plans with a throwaway key (nothing it computes is kept).
fn import_key(repo: &Repo, common: &Common) -> Result<KeyPair, CliError> {
    let choice = import::choose_import_key(repo.mkit_dir(), &common.remote, common.key.as_deref())?;
    let key_path = match choice {
        KeyChoice::Given(p) | KeyChoice::Default(p) => p,
        KeyChoice::Generate(p) if common.dry_run => {
            if !common.quiet {
                eprintln!(
                    "note: dry run: no import key yet (a real run generates one at {}); planning \
                     with a throwaway key",
                    p.display()
                );
            }
            return Ok(import::dry_run_key());
        }
        KeyChoice::Generate(p) => {
            // `create_seed_new` never replaces a file: of two first imports
            // racing here, one key wins and both load it.
            if keys::create_seed_new(&p)? {
                eprintln!(
                    "notice: generated a NEW import key at {}; it signs every imported commit \
                     and tag, and later imports of this upstream must use the same key (back it \
                     up; collaborative tracking of one upstream requires sharing it, SPEC-GIT-IMPORT §4)",
                    p.display()
                );
            }
            p
        }
    };
    let key = KeyPair::from_seed(&keys::load_seed(&key_path)?);
    if !common.quiet && !common.dry_run {
        eprintln!(
            "note: signing imported history with key {} ({})",
            mkit_bridge::mkit::Id(key.public()),
            key_path.display()
        );
    }
    Ok(key)
}

/// Plan the import (`--dry-run`): fetch into the staging mirror, translate
/// into a batch that writes nothing.
fn plan_outcome(repo: &Repo, url: &str, common: &Common) -> Result<import::Plan, CliError> {
    let key = import_key(repo, common)?;
    if !common.quiet {
        eprintln!("note: dry run: fetching into the staging mirror only; nothing else is written");
    }
    drive(repo, url, common, &key, false, import::plan)
}

/// Run `driver` (the import or its dry-run plan) on `url` with this run's
/// options, `key`, the interrupt flag and a progress bar on a terminal.
fn drive<T>(
    repo: &Repo,
    url: &str,
    common: &Common,
    key: &KeyPair,
    set_default_branch: bool,
    driver: impl FnOnce(&Repo, &ImportRequest<'_>) -> Result<T, import::ImportError>,
) -> Result<T, CliError> {
    let bar = Bar::new(!common.quiet && !common.json && std::io::stderr().is_terminal());
    let done = driver(
        repo,
        &ImportRequest {
            url,
            remote: &common.remote,
            key,
            jobs: common.jobs,
            set_default_branch,
            interrupt: super::signals::interrupt_flag(),
            progress: &bar,
        },
    )?;
    bar.finish();
    Ok(done)
}

/// Render an import's outcome (with `pull`'s fast-forwarded branch, if any)
/// and fail when every ref was skipped.
fn finish(
    out: &mut impl Write,
    outcome: &ImportOutcome,
    common: &Common,
    fast_forwarded: Option<&str>,
) -> Result<(), CliError> {
    render(out, outcome, common, fast_forwarded)?;
    if outcome.imported.is_empty() && !outcome.skipped.is_empty() {
        return Err(CliError::Failed(format!(
            "every requested ref was skipped ({} refusals)",
            outcome.skipped.len()
        )));
    }
    Ok(())
}

/// One imported ref in `--json` output: the reference's `ref`, `git` and
/// `mkit`, plus ours.
#[derive(Serialize)]
struct JsonImported<'a> {
    #[serde(rename = "ref")]
    upstream: &'a str,
    git: String,
    mkit: String,
    mkit_ref: &'a str,
    changed: bool,
}

/// `--json` output of `import` and `fetch`: the reference's keys (`ok`,
/// `imported`, `skipped`, `checkedOut`), then ours.
#[derive(Serialize)]
struct JsonOutcome<'a> {
    ok: bool,
    imported: Vec<JsonImported<'a>>,
    skipped: Vec<JsonSkipped<'a>>,
    #[serde(rename = "checkedOut", skip_serializing_if = "Option::is_none")]
    checked_out_camel: Option<&'a str>,
    causes: &'a [mkit_bridge::bridge::cause::Cause],
    warnings: &'a [String],
    notes: &'a [String],
    #[serde(rename = "fastForwarded", skip_serializing_if = "Option::is_none")]
    fast_forwarded: Option<&'a str>,
    translated: u64,
    written: u64,
    attestations: u64,
    checked_out: Option<&'a str>,
    seconds: serde_json::Map<String, serde_json::Value>,
}

fn render(
    out: &mut impl Write,
    o: &ImportOutcome,
    common: &Common,
    fast_forwarded: Option<&str>,
) -> Result<(), CliError> {
    if common.json {
        let doc = JsonOutcome {
            // Mirrors the exit code: an all-skipped run does not claim success.
            ok: !o.imported.is_empty() || o.skipped.is_empty(),
            imported: o
                .imported
                .iter()
                .map(|r| JsonImported {
                    upstream: &r.upstream,
                    git: r.git.to_hex(),
                    mkit: r.mkit.to_hex(),
                    mkit_ref: &r.mkit_ref,
                    changed: r.changed,
                })
                .collect(),
            skipped: JsonSkipped::list(&o.skipped),
            checked_out_camel: o.checked_out.as_deref(),
            causes: &o.causes,
            warnings: &o.warnings,
            notes: &o.notes,
            fast_forwarded,
            translated: o.translated,
            written: o.written,
            attestations: o.attestations,
            checked_out: o.checked_out.as_deref(),
            seconds: o
                .timings
                .iter()
                .map(|(n, d)| ((*n).to_owned(), serde_json::json!(d.as_secs_f64())))
                .collect(),
        };
        super::render::json_line(out, &doc)?;
        return Ok(());
    }
    if !common.quiet {
        for n in &o.notes {
            eprintln!("note: {n}");
        }
    }
    // Only refs that moved are listed; a run that changed nothing says so.
    let changed: Vec<_> = o.imported.iter().filter(|r| r.changed).collect();
    for r in &changed {
        writeln!(
            out,
            "imported {} {} -> {}",
            r.upstream,
            &r.git.to_hex()[..8],
            &r.mkit.to_hex()[..8]
        )?;
    }
    if changed.is_empty() && o.skipped.is_empty() {
        writeln!(
            out,
            "already up to date: no upstream ref changed ({} refs)",
            o.imported.len()
        )?;
    }
    let hidden = super::import_report::render_causes(&o.skipped, &o.causes, common.verbose);
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(b) = &o.checked_out {
        eprintln!("checked out '{b}'");
    }
    if let Some(b) = fast_forwarded {
        eprintln!("fast-forwarded '{b}'");
    }
    if !common.quiet {
        eprintln!(
            "{} refs imported ({} changed), {} skipped{}; {} objects translated, {} written",
            o.imported.len(),
            changed.len(),
            o.skipped.len(),
            hidden.note(),
            o.translated,
            o.written
        );
    }
    Ok(())
}

// --- checkout after `import <url> <dir>`, and `pull` ------------------------

/// `import <url> <dir>`: import, then check out the default branch (or
/// `--branch NAME`) into the new directory, then render.
fn import_and_checkout(
    out: &mut impl Write,
    repo: &Repo,
    url: &str,
    branch: Option<&str>,
    resumed: bool,
    common: &Common,
) -> Result<(), CliError> {
    let mut outcome = fetch_outcome(repo, url, branch.is_none(), common)?;
    let chosen = match branch {
        Some(name) => {
            if let Err(e) = checkout::start_branch(repo, &common.remote, name) {
                return Err(match e {
                    CheckoutError::NoBranch { .. } => {
                        CliError::Failed(not_imported(&outcome, name))
                    }
                    other => other.into(),
                });
            }
            Some(name.to_owned())
        }
        None => {
            if outcome.checked_out.is_none() {
                warn_default_refused(&outcome, url);
            }
            outcome.checked_out.clone()
        }
    };
    if let Some(name) = &chosen {
        if resumed {
            checkout::checkout_resumed(repo, name)?;
        } else {
            checkout::checkout_fresh(repo, name)?;
        }
        outcome.checked_out = Some(name.clone());
    }
    finish(out, &outcome, common, None)
}

/// Why `--branch NAME` has nothing to check out, with the branches there are.
fn not_imported(outcome: &ImportOutcome, name: &str) -> String {
    let full = format!("refs/heads/{name}");
    let why = outcome
        .skipped
        .iter()
        .find(|s| s.upstream == full)
        .map_or_else(
            || "the upstream has no such branch".to_owned(),
            |s| format!("it was refused: {}", s.refusal),
        );
    format!(
        "branch '{name}' was not imported ({why}); imported branches: {}",
        imported_branches(outcome)
    )
}

fn imported_branches(outcome: &ImportOutcome) -> String {
    let names: Vec<&str> = outcome
        .imported
        .iter()
        .filter_map(|r| r.upstream.strip_prefix("refs/heads/"))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The default branch was not imported: say which, why, and what to do.
fn warn_default_refused(outcome: &ImportOutcome, url: &str) {
    let Some(default) = &outcome.default_branch else {
        return;
    };
    let Some(skipped) = outcome.skipped.iter().find(|s| &s.upstream == default) else {
        return;
    };
    let short = default.strip_prefix("refs/heads/").unwrap_or(default);
    eprintln!(
        "warning: default branch '{short}' was not imported ({}); nothing is checked out. \
         To check out another imported branch instead, import into a new directory with \
         `mkit-bridge import --branch NAME {url} <dir>` (imported branches: {})",
        skipped.refusal,
        imported_branches(outcome)
    );
}

/// `pull`: fetch from the recorded upstream, then fast-forward the current
/// branch and its worktree.
pub fn pull(out: &mut impl Write, common: &Common) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let state_dir = state::state_dir(repo.mkit_dir(), &common.remote)?;
    let url = staging::recorded_url(&state_dir).ok_or_else(|| {
        CliError::Failed(format!(
            "no import state '{}' here (no {}); run `mkit-bridge import <url>` first",
            common.remote,
            staging::mirror_path(&state_dir).display()
        ))
    })?;
    let outcome = fetch_outcome(&repo, &url, false, common)?;
    let moved = match pull::fast_forward(&repo, &common.remote)? {
        PullOutcome::FastForwarded { branch, .. } => Some(branch),
        PullOutcome::UpToDate { branch } => {
            if !common.quiet && !common.json {
                eprintln!("'{branch}' is up to date with {}/{branch}", common.remote);
            }
            None
        }
        PullOutcome::FetchOnly(why) => {
            if !common.quiet && !common.json {
                eprintln!(
                    "note: fetched only: {}",
                    fetch_only_reason(&why, &common.remote)
                );
            }
            None
        }
    };
    finish(out, &outcome, common, moved.as_deref())
}

fn fetch_only_reason(why: &FetchOnly, remote: &str) -> String {
    match why {
        FetchOnly::Detached => "HEAD is detached".to_owned(),
        FetchOnly::Unborn { branch } => format!("branch '{branch}' has no commit yet"),
        FetchOnly::NoTrackingRef { branch } => {
            format!("branch '{branch}' has no tracking ref {remote}/{branch}")
        }
    }
}
