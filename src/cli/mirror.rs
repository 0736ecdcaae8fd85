//! `mirror <config>`: a fleet of upstreams, one summary at the end.
//!
//! While it runs, one line per upstream goes to stderr as each finishes
//! (never mid-run output from the imports themselves); then the table (or,
//! with `--json`, the whole report) goes to stdout, and the details
//! (skipped refs, warnings, generated keys) to stderr.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use mkit_bridge::run::mirror::{
    self, ConfigError, MirrorOptions, MirrorReport, Status, UpstreamReport,
};

use super::CliError;
use super::exit;

/// Flags of `mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet's TOML config (spec/MIRROR.md lists every key); relative paths in it
    /// resolve against its directory.
    pub config: PathBuf,
    /// Upstreams mirrored at once (default: the config's `parallel`, else 2).
    #[arg(long, value_name = "M")]
    pub parallel: Option<NonZeroUsize>,
    /// Worker threads per upstream, for upstreams without their own `jobs` (default: the
    /// config's `jobs`, else two per core shared among the parallel runs).
    #[arg(long = "jobs-per-upstream", value_name = "N")]
    pub jobs_per_upstream: Option<usize>,
    /// Mirror only these upstreams (names from the config; repeat or separate with commas).
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the whole report as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No per-upstream lines and no details on stderr (the table or JSON still prints).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Run `mirror`.
pub fn run(out: &mut impl Write, args: &Args) -> Result<(), CliError> {
    let mut config = mirror::load_config(&args.config)?;
    config.select(&args.only)?;
    let interrupt = AtomicBool::new(false);
    let quiet = args.quiet;
    let on_done = move |r: &UpstreamReport| {
        if !quiet {
            // One write per line, so lines from parallel runs never mix.
            let line = format!("{}\n", finished_line(r));
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    };
    let report = mirror::run(
        &config,
        &MirrorOptions {
            parallel: args.parallel.map(NonZeroUsize::get),
            jobs: args.jobs_per_upstream,
            interrupt: &interrupt,
        },
        &on_done,
    );
    if args.json {
        super::render::json_line(out, &report)?;
    } else {
        table(out, &report)?;
        if !quiet {
            details(&report);
        }
    }
    for e in &report.log_errors {
        eprintln!("warning: log not written: {e}");
    }
    verdict(&report)
}

/// The line printed when an upstream finishes.
fn finished_line(r: &UpstreamReport) -> String {
    match &r.failure {
        Some(e) => format!(
            "mirror: {} {} ({:.2}s): {}",
            r.name,
            r.status.as_str(),
            r.seconds,
            one_line(&e.to_string())
        ),
        None => format!(
            "mirror: {} {} ({} refs, {} changed, {} skipped; {:.2}s)",
            r.name,
            r.status.as_str(),
            r.refs.unwrap_or(0),
            r.changed.unwrap_or(0),
            r.skipped.unwrap_or(0),
            r.seconds
        ),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn count(n: Option<usize>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// The summary table, then one totals line.
fn table(out: &mut impl Write, report: &MirrorReport) -> Result<(), CliError> {
    let header = [
        "NAME", "STATUS", "REFS", "CHANGED", "SKIPPED", "TIME", "DETAIL",
    ];
    let rows: Vec<[String; 7]> = report
        .upstreams
        .iter()
        .map(|r| {
            let detail = match &r.failure {
                Some(e) => one_line(&e.to_string()),
                None if r.created => "new repository".to_owned(),
                None => String::new(),
            };
            [
                r.name.clone(),
                r.status.as_str().to_owned(),
                count(r.refs),
                count(r.changed),
                count(r.skipped),
                format!("{:.2}s", r.seconds),
                detail,
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut s = format!(
            "{:<w0$}  {:<w1$}",
            cells[0],
            cells[1],
            w0 = width[0],
            w1 = width[1]
        );
        for i in 2..6 {
            s.push_str(&format!("  {:>w$}", cells[i], w = width[i]));
        }
        if !cells[6].is_empty() {
            s.push_str("  ");
            s.push_str(cells[6]);
        }
        s
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    let t = report.totals;
    writeln!(
        out,
        "{} upstreams: {} updated, {} unchanged, {} failed, {} busy ({:.2}s)",
        report.upstreams.len(),
        t.updated,
        t.unchanged,
        t.failed,
        t.busy,
        report.seconds
    )?;
    Ok(())
}

/// Per-upstream details after the table, on stderr: generated keys, skipped
/// refs, the import's warnings and notes.
fn details(report: &MirrorReport) {
    for r in &report.upstreams {
        if r.key_generated
            && let Some(p) = &r.key_file
        {
            eprintln!(
                "notice: {}: generated a NEW import key at {}; it signs every imported commit and \
                 tag, and later runs must use the same key (back it up, SPEC-GIT-IMPORT §4)",
                r.name,
                p.display()
            );
        }
        for s in &r.skipped_refs {
            eprintln!("warning: {}: skipping {}: {}", r.name, s.upstream, s.reason);
        }
        for w in &r.warnings {
            eprintln!("warning: {}: {w}", r.name);
        }
        for n in &r.notes {
            eprintln!("note: {}: {n}", r.name);
        }
    }
}

/// 0 when every upstream is updated or unchanged; 1 when any failed; 75
/// when none failed but some were busy.
fn verdict(report: &MirrorReport) -> Result<(), CliError> {
    let names = |s: Status| {
        report
            .upstreams
            .iter()
            .filter(|r| r.status == s)
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let n = report.upstreams.len();
    let t = report.totals;
    if t.failed > 0 {
        return Err(CliError::MirrorIncomplete {
            message: format!(
                "{} of {n} upstreams failed: {}",
                t.failed,
                names(Status::Failed)
            ),
            code: exit::FAILURE,
        });
    }
    if t.busy > 0 {
        return Err(CliError::MirrorIncomplete {
            message: format!(
                "{} of {n} upstreams were busy (another run holds their lock) and left for the \
                 next run: {}",
                t.busy,
                names(Status::Busy)
            ),
            code: exit::TEMPFAIL,
        });
    }
    Ok(())
}

/// The exit code for a config that cannot be used: 66 no such file, 74
/// unreadable, 64 `--only` naming an upstream the config lacks, 78 anything
/// wrong inside it.
pub fn config_code(e: &ConfigError) -> u8 {
    match e {
        ConfigError::Read(io) if io.source.kind() == std::io::ErrorKind::NotFound => exit::NOINPUT,
        ConfigError::Read(_) => exit::IOERR,
        ConfigError::NotInConfig { .. } => exit::USAGE,
        _ => exit::CONFIG,
    }
}
