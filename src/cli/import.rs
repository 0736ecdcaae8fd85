//! `import` and `fetch`: git upstream → importer-signed mkit history.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use mkit_bridge::git::staging;
use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::checkout::{self, CheckoutError};
use mkit_bridge::run::import::{self, ImportOutcome, ImportRequest};
use mkit_bridge::run::pull::{self, FetchOnly, PullOutcome};
use mkit_bridge::state;

use super::CliError;
use super::render::{Bar, json_str};

/// The importer key's default file name under `.mkit/keys/`.
pub const IMPORT_KEY_FILE: &str = "git-import.key";

/// Options shared by `import` and `fetch`.
pub struct Common {
    pub remote: String,
    pub key: Option<PathBuf>,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
}

/// `import <url> [<dir>]`.
pub fn import(
    out: &mut impl Write,
    url: &str,
    dir: Option<PathBuf>,
    branch: Option<String>,
    common: &Common,
) -> Result<(), CliError> {
    check_upstream(url)?;
    let (repo, created) = match &dir {
        Some(d) => {
            if !import::is_fresh_target(d) {
                return Err(CliError::TargetNotEmpty(d.clone()));
            }
            let existed = d.exists();
            mkit_bridge::durable::create_dir_all_durable(d)?;
            (Repo::init(d)?, (!existed).then(|| d.clone()))
        }
        None => (Repo::open(Path::new("."))?, None),
    };
    let result = match &dir {
        Some(_) => import_and_checkout(out, &repo, url, branch.as_deref(), common),
        None => run(out, &repo, url, false, common),
    };
    // An import that could not run leaves no half-initialised directory; one
    // that ran but skipped every ref (or whose checkout was refused) keeps its
    // repository and state, as the reference does, so the user can inspect them.
    if let Err(e) = &result
        && !matches!(e, CliError::Failed(_) | CliError::Checkout(_))
        && let Some(d) = created
    {
        let _ = std::fs::remove_dir_all(d);
    }
    result
}

/// Refuse, before anything is created, an upstream we could never fetch: a
/// blank or option-like argument, a scheme no transport handles, or a local
/// path that does not exist.
fn check_upstream(url: &str) -> Result<(), CliError> {
    use mkit_bridge::git::remote::{self, UrlKind};
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
    let state_dir = state::state_dir(repo.mkit_dir(), &common.remote)?;
    let url = staging::recorded_url(&state_dir).ok_or_else(|| {
        CliError::Failed(format!(
            "no import state '{}' here (no {}); run `mkit-bridge import <url>` first",
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
    let key_path = common
        .key
        .clone()
        .unwrap_or_else(|| repo.mkit_dir().join(keys::KEYS_DIR).join(IMPORT_KEY_FILE));
    if common.key.is_none() && keys::create_seed_new(&key_path)? {
        eprintln!(
            "notice: generated a NEW import key at {}; it signs every imported commit and tag, \
             and later imports of this upstream must use the same key (back it up)",
            key_path.display()
        );
    }
    let key = KeyPair::from_seed(&keys::load_seed(&key_path)?);
    if !common.quiet {
        eprintln!(
            "note: signing imported history with key {} ({})",
            mkit_bridge::mkit::Id(key.public()),
            key_path.display()
        );
    }
    let bar = Bar::new(!common.quiet && !common.json && std::io::stderr().is_terminal());
    let interrupt = AtomicBool::new(false);
    let outcome = import::import(
        repo,
        &ImportRequest {
            url,
            remote: &common.remote,
            key: &key,
            jobs: common.jobs,
            set_default_branch: fresh,
            interrupt: &interrupt,
            progress: &bar,
        },
    )?;
    bar.finish();
    Ok(outcome)
}

/// Render an import's outcome (with `pull`'s fast-forwarded branch, if any)
/// and fail when every ref was skipped.
fn finish(
    out: &mut impl Write,
    outcome: &ImportOutcome,
    common: &Common,
    fast_forwarded: Option<&str>,
) -> Result<(), CliError> {
    match fast_forwarded {
        Some(branch) if common.json => {
            let mut line = Vec::new();
            render(&mut line, outcome, common)?;
            out.write_all(&with_json_field(&line, "fastForwarded", branch))?;
        }
        Some(branch) => {
            render(out, outcome, common)?;
            eprintln!("fast-forwarded '{branch}'");
        }
        None => render(out, outcome, common)?,
    }
    if outcome.imported.is_empty() && !outcome.skipped.is_empty() {
        return Err(CliError::Failed(format!(
            "every ref was skipped ({} refusals)",
            outcome.skipped.len()
        )));
    }
    Ok(())
}

fn render(out: &mut impl Write, o: &ImportOutcome, common: &Common) -> Result<(), CliError> {
    if common.json {
        let mut s = String::from("{\"imported\":[");
        for (i, r) in o.imported.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"ref\":{},\"mkit_ref\":{},\"git\":\"{}\",\"mkit\":\"{}\"}}",
                json_str(&r.upstream),
                json_str(&r.mkit_ref),
                r.git.to_hex(),
                r.mkit
            ));
        }
        s.push_str("],\"skipped\":[");
        for (i, r) in o.skipped.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"ref\":{},\"refusal\":\"{}\",\"reason\":{}}}",
                json_str(&r.upstream),
                r.refusal.name(),
                json_str(&r.refusal.to_string())
            ));
        }
        s.push_str("],\"warnings\":[");
        let warnings: Vec<String> = o.warnings.iter().map(|w| json_str(w)).collect();
        s.push_str(&warnings.join(","));
        let timings: Vec<String> = o
            .timings
            .iter()
            .map(|(n, d)| format!("{}:{:.3}", json_str(n), d.as_secs_f64()))
            .collect();
        s.push_str(&format!(
            "],\"translated\":{},\"written\":{},\"checked_out\":{},\"seconds\":{{{}}}}}",
            o.translated,
            o.written,
            o.checked_out.as_deref().map_or("null".to_owned(), json_str),
            timings.join(",")
        ));
        writeln!(out, "{s}")?;
        return Ok(());
    }
    for r in &o.imported {
        writeln!(
            out,
            "imported {} {} -> {}",
            r.upstream,
            &r.git.to_hex()[..8],
            &r.mkit.to_hex()[..8]
        )?;
    }
    for r in &o.skipped {
        eprintln!("warning: skipping {}: {}", r.upstream, r.refusal);
    }
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(b) = &o.checked_out {
        eprintln!("checked out '{b}'");
    }
    if !common.quiet {
        eprintln!(
            "{} refs imported, {} skipped; {} objects translated, {} written",
            o.imported.len(),
            o.skipped.len(),
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
        checkout::checkout_fresh(repo, name)?;
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

/// Add `"key":"value"` to the JSON object on `line` (one object and a newline).
fn with_json_field(line: &[u8], key: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let body = text.trim_end();
    match body.strip_suffix('}') {
        Some(open) => format!("{open},{}:{}}}\n", json_str(key), json_str(value)).into_bytes(),
        None => line.to_vec(),
    }
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
