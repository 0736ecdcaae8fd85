//! `import` and `fetch`: git upstream → importer-signed mkit history.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressStyle};

use mkit_bridge::git::staging;
use mkit_bridge::mkit::keys;
use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::mkit::sign::KeyPair;
use mkit_bridge::run::import::{self, ImportOutcome, ImportRequest, Progress};
use mkit_bridge::state;

use super::CliError;

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
    let (repo, created) = match &dir {
        Some(d) => {
            if !import::is_fresh_target(d) {
                return Err(CliError::Failed(format!(
                    "{} exists and is not empty; import into an empty or new directory, or run \
                     `mkit-bridge import <url>` inside an existing repository",
                    d.display()
                )));
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

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Progress on stderr when it is a terminal; silent otherwise: one bar per
/// phase (blobs, trees, commits, tags) with its rate and ETA, and the content
/// rate in MB/s while blobs are read.
struct Bar {
    bar: Option<ProgressBar>,
    bytes: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
}

impl Bar {
    fn new(show: bool) -> Bar {
        Bar {
            bar: show.then(|| {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} (eta {eta}) {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }),
            bytes: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        if let Some(b) = &self.bar {
            b.set_prefix(name);
            b.set_message("");
            b.set_length(total);
            b.set_position(0);
            b.reset_eta();
        }
    }

    fn advance(&self, n: u64, bytes: u64) {
        let Some(b) = &self.bar else { return };
        if n > 0 {
            b.inc(n);
        }
        if bytes > 0 {
            let total = self
                .bytes
                .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
                + bytes;
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{:.1} MB/s", total as f64 / secs / 1e6));
        }
    }
}
