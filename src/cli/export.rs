//! `export` (mkit history → a git mirror), rendered like the reference's
//! `mkit git export`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::export::{self, ExportOutcome, ExportRequest};

use super::CliError;
use super::render::Bar;

/// Options of `export`.
pub struct ExportArgs {
    pub dest: String,
    pub remote: String,
    pub refs: Vec<String>,
    pub force: bool,
    pub passthrough: bool,
    pub attest: bool,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
}

/// `export <dest>`.
pub fn export(out: &mut impl Write, args: &ExportArgs) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let bar = Bar::new(!args.quiet && !args.json && std::io::stderr().is_terminal());
    let interrupt = super::signals::interrupt_flag();
    let result = export::export(
        &repo,
        &ExportRequest {
            dest: &args.dest,
            remote: &args.remote,
            refs: &args.refs,
            force: args.force,
            passthrough: args.passthrough,
            attest: args.attest,
            jobs: args.jobs,
            interrupt,
            progress: &bar,
        },
    );
    bar.finish();
    let outcome = result?;
    if !args.quiet {
        for n in &outcome.notes {
            eprintln!("note: {n}");
        }
    }
    if super::signals::interrupted() {
        eprintln!(
            "note: interrupted during the push; the push was finished and recorded rather than \
             left half-done"
        );
    }
    let ok = !outcome.exported.is_empty();
    render_export(out, &outcome, ok, args)?;
    if !ok {
        return Err(CliError::Failed(format!(
            "every requested ref was skipped ({} refusals); nothing was pushed",
            outcome.skipped.len()
        )));
    }
    Ok(())
}

fn render_export(
    out: &mut impl Write,
    o: &ExportOutcome,
    ok: bool,
    args: &ExportArgs,
) -> Result<(), CliError> {
    if args.json {
        // The reference's shape, `{"ok":..,"exported":[..],..,"skipped":[..]}`,
        // with ours between the two lists (ending in a list): scripts written
        // for `mkit git export --json` anchor on both ends.
        let doc = JsonExport {
            ok,
            exported: o
                .exported
                .iter()
                .map(|r| JsonExported {
                    name: &r.name,
                    mkit: r.mkit.to_hex(),
                    git: r.git.to_hex(),
                    status: r.status.as_str(),
                })
                .collect(),
            mode: if o.fork { "fork" } else { "export" },
            attestations: o.attestations.as_ref().map(|a| JsonAttestations {
                name: "refs/mkit/attestations",
                git: a.commit.to_hex(),
                minted: a.minted,
                status: a.status.as_str(),
            }),
            updated: o.updated(),
            translated: o.translated,
            written: o.written,
            distrusted: o.distrusted,
            destination: &o.destination,
            transport: if o.local.is_some() { "local" } else { "push" },
            phases: o
                .timings
                .iter()
                .map(|(n, d)| JsonPhase {
                    name: n,
                    seconds: d.as_secs_f64(),
                })
                .collect(),
            skipped: o
                .skipped
                .iter()
                .map(|s| JsonSkipped {
                    name: &s.name,
                    reason: s.refusal.to_string(),
                    refusal: s.refusal.name(),
                })
                .collect(),
        };
        super::render::json_line(out, &doc)?;
    } else {
        for r in &o.exported {
            writeln!(out, "exported {} {} -> {}", r.name, r.mkit, r.git.to_hex())?;
        }
    }
    for s in &o.skipped {
        eprintln!("warning: skipping {}: {}", s.name, s.refusal);
    }
    if o.distrusted > 0 && !args.quiet {
        eprintln!(
            "note: {} map entries named git objects the staging repository lacks (or holds as \
             another kind); their objects were translated again",
            o.distrusted
        );
    }
    if !args.quiet && !args.json && ok {
        let updated = o.updated();
        eprintln!(
            "{} refs exported to {} ({} updated, {} already there), {} skipped; {} objects \
             translated, {} written",
            o.exported.len(),
            o.destination,
            updated,
            o.exported.len() - updated,
            o.skipped.len(),
            o.translated,
            o.written
        );
        if let Some(a) = &o.attestations {
            eprintln!(
                "refs/mkit/attestations {} ({} minted, {})",
                a.commit.to_hex(),
                a.minted,
                a.status.as_str()
            );
        }
    }
    Ok(())
}

/// `export --json`: the reference's keys (`ok`, `exported`, `skipped`), ours
/// in between.
#[derive(serde::Serialize)]
struct JsonExport<'a> {
    ok: bool,
    exported: Vec<JsonExported<'a>>,
    mode: &'static str,
    attestations: Option<JsonAttestations>,
    updated: usize,
    translated: u64,
    written: u64,
    /// Map entries not trusted (their git object missing from staging).
    distrusted: u64,
    destination: &'a str,
    /// `local` when the direct route to a local bare destination moved the
    /// refs, `push` when `git push` did.
    transport: &'static str,
    /// Last before `skipped`: the reference's output ends `],"skipped":[..]}`.
    phases: Vec<JsonPhase<'a>>,
    skipped: Vec<JsonSkipped<'a>>,
}

/// One phase of the run and its wall time, in run order.
#[derive(serde::Serialize)]
struct JsonPhase<'a> {
    name: &'a str,
    seconds: f64,
}

/// One exported ref: the reference's `ref`, `mkit`, `git`, then ours.
#[derive(serde::Serialize)]
struct JsonExported<'a> {
    #[serde(rename = "ref")]
    name: &'a str,
    mkit: String,
    git: String,
    status: &'static str,
}

/// The attestations ref after the run (keyed `name`, so that `"ref":`
/// counts only exported refs, as in the reference's output).
#[derive(serde::Serialize)]
struct JsonAttestations {
    name: &'static str,
    git: String,
    minted: usize,
    status: &'static str,
}

/// One skipped ref: the reference's `ref` and `reason`, then ours.
#[derive(serde::Serialize)]
struct JsonSkipped<'a> {
    #[serde(rename = "ref")]
    name: &'a str,
    reason: String,
    refusal: &'static str,
}
