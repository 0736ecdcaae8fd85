//! `mirror <config>`: a fleet of upstreams, one summary at the end.
//!
//! While it runs, one line per upstream goes to stderr as each finishes
//! (never mid-run output from the imports themselves); then the table (or,
//! with `--json`, the whole report) goes to stdout, and the details
//! (skipped refs, warnings, generated keys) to stderr.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use mkit_bridge::run::mirror::{
    self, ConfigError, MirrorFailure, MirrorOptions, MirrorReport, Status, UpstreamReport,
};

use super::CliError;
use super::exit;
use super::import_report::{Style, warn_causes};

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
    /// Plan only: fetch each upstream into its staging mirror and report what a real run would
    /// do (refs that would change, refusals grouped by cause, objects to translate); nothing
    /// else is written, no target is created and no log is kept.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Every skipped ref on its own line, and causes an earlier run reported already.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Run `mirror`.
pub fn run(out: &mut impl Write, args: &Args) -> Result<(), CliError> {
    let mut config = mirror::load_config(&args.config)?;
    config.select(&args.only)?;
    let interrupt = super::signals::interrupt_flag();
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
            interrupt,
            dry_run: args.dry_run,
        },
        &on_done,
    );
    if args.json {
        super::render::json_line(out, &report)?;
    } else {
        table(out, &report)?;
        if !quiet {
            details(&report, args.verbose);
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
                None if r.created && report.dry_run => {
                    "new repository (would be created)".to_owned()
                }
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
        "{} upstreams{}: {} {}updated, {} unchanged, {} failed, {} busy ({:.2}s)",
        report.upstreams.len(),
        if report.dry_run {
            " (dry run: nothing was written but the staging mirrors)"
        } else {
            ""
        },
        t.updated,
        if report.dry_run { "would be " } else { "" },
        t.unchanged,
        t.failed,
        t.busy,
        report.seconds
    )?;
    Ok(())
}

/// Per-upstream details after the table, on stderr: generated keys, skipped
/// refs grouped by cause (as `fetch` prints them, each line naming the
/// upstream), the import's warnings and notes.
fn details(report: &MirrorReport, verbose: bool) {
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
        let per_ref = format!("warning: {}: skipping ", r.name);
        let grouped = format!("warning: {}: ", r.name);
        let style = Style {
            per_ref: &per_ref,
            grouped: &grouped,
            skipped: if report.dry_run {
                "would be skipped"
            } else {
                "skipped"
            },
        };
        let reason_of = |name: &str| {
            r.skipped_refs
                .iter()
                .find(|s| s.upstream == name)
                .map(|s| s.reason.clone())
        };
        let hidden = warn_causes(&r.causes, &reason_of, verbose, &style);
        let note = hidden.note();
        if !note.is_empty() {
            eprintln!("note: {}: refs skipped{note}", r.name);
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
    if super::signals::interrupted() {
        let left = report
            .upstreams
            .iter()
            .filter(|r| matches!(r.failure, Some(MirrorFailure::Interrupted)))
            .count();
        return Err(CliError::MirrorIncomplete {
            message: format!(
                "interrupted: the running upstreams stopped at a safe point and {left} were not \
                 started; the next run finishes them"
            ),
            code: exit::INTERRUPTED,
        });
    }
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
