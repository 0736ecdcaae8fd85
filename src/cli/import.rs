//! `import` and `fetch`: git upstream → importer-signed mkit history.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use mkit_bridge::git::staging;
use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::import::{self, ImportOutcome, ImportRequest, KeyChoice, Target};
use mkit_bridge::state;
use serde::Serialize;

use super::CliError;
use super::render::Bar;

/// Options shared by `import` and `fetch`.
pub struct Common {
    pub remote: String,
    pub key: Option<PathBuf>,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
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
    let result = run(out, &repo, url, true, common);
    match &result {
        // Done (an all-skipped run too, as the reference keeps its
        // repository and state for inspection): nothing left to resume.
        Ok(()) | Err(CliError::Failed(_)) => {
            import::crash_point("checked-out");
            import::clear_pending(repo.mkit_dir())?;
        }
        // A resumed run keeps what it has, for the next attempt.
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
    // The reference's wording ("empty git URL or path", "... is not a valid
    // git URL or path"), then ours.
    remote::check_url(url).map_err(|e| {
        CliError::BadUpstream(match e {
            remote::RemoteError::Empty => format!("empty git URL or path: {e}"),
            remote::RemoteError::OptionLike(_) => {
                format!("{url:?} is not a valid git URL or path: {e}")
            }
        })
    })?;
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
    let choice = import::choose_import_key(repo.mkit_dir(), &common.remote, common.key.as_deref())?;
    let key_path = match choice {
        KeyChoice::Given(p) | KeyChoice::Default(p) => p,
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
    render(out, &outcome, common)?;
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

/// One skipped ref in `--json` output: the reference's `ref` and `reason`,
/// plus the refusal's name.
#[derive(Serialize)]
struct JsonSkipped<'a> {
    #[serde(rename = "ref")]
    upstream: &'a str,
    reason: String,
    refusal: &'a str,
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
    warnings: &'a [String],
    notes: &'a [String],
    translated: u64,
    written: u64,
    checked_out: Option<&'a str>,
    seconds: serde_json::Map<String, serde_json::Value>,
}

fn render(out: &mut impl Write, o: &ImportOutcome, common: &Common) -> Result<(), CliError> {
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
            skipped: o
                .skipped
                .iter()
                .map(|r| JsonSkipped {
                    upstream: &r.upstream,
                    reason: r.refusal.to_string(),
                    refusal: r.refusal.name(),
                })
                .collect(),
            checked_out_camel: o.checked_out.as_deref(),
            warnings: &o.warnings,
            notes: &o.notes,
            translated: o.translated,
            written: o.written,
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
    for r in &o.skipped {
        eprintln!("warning: skipping {}: {}", r.upstream, r.refusal);
    }
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(b) = &o.checked_out {
        eprintln!("HEAD -> refs/heads/{b} (files are not checked out; run `mkit checkout {b}`)");
    }
    if !common.quiet {
        eprintln!(
            "{} refs imported ({} changed), {} skipped; {} objects translated, {} written",
            o.imported.len(),
            changed.len(),
            o.skipped.len(),
            o.translated,
            o.written
        );
    }
    Ok(())
}
