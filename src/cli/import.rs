//! `import` and `fetch`: git upstream → importer-signed mkit history.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use mkit_bridge::git::staging;
use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::import::{self, ImportOutcome, ImportRequest};
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
    let result = run(out, &repo, url, dir.is_some(), common);
    // An import that could not run leaves no half-initialised directory; one
    // that ran but skipped every ref keeps its repository and state, as the
    // reference does, so the user can inspect them.
    if let Err(e) = &result
        && !matches!(e, CliError::Failed(_))
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
    render(out, &outcome, common)?;
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
            "],\"translated\":{},\"written\":{},\"attestations\":{},\"checked_out\":{},\"seconds\":{{{}}}}}",
            o.translated,
            o.written,
            o.attestations,
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
        eprintln!("HEAD -> refs/heads/{b} (files are not checked out; run `mkit checkout {b}`)");
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
