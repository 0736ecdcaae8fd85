//! `export` (mkit history → a git mirror), rendered like the reference's
//! `mkit git export`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::export::{self, ExportOutcome, ExportRequest};

use super::CliError;
use super::render::{Bar, json_str};

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
    let interrupt = AtomicBool::new(false);
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
            interrupt: &interrupt,
            progress: &bar,
        },
    );
    bar.finish();
    let outcome = result?;
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
        // The reference's keys first (`ok`, `exported[ref,mkit,git]`,
        // `skipped[ref,reason]`), then ours.
        let exported: Vec<String> = o
            .exported
            .iter()
            .map(|r| {
                format!(
                    "{{\"ref\":{},\"mkit\":\"{}\",\"git\":\"{}\",\"status\":\"{}\"}}",
                    json_str(&r.name),
                    r.mkit,
                    r.git.to_hex(),
                    r.status.as_str()
                )
            })
            .collect();
        let skipped: Vec<String> = o
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{{\"ref\":{},\"reason\":{},\"refusal\":\"{}\"}}",
                    json_str(&s.name),
                    json_str(&s.refusal.to_string()),
                    s.refusal.name()
                )
            })
            .collect();
        let timings: Vec<String> = o
            .timings
            .iter()
            .map(|(n, d)| format!("{}:{:.3}", json_str(n), d.as_secs_f64()))
            .collect();
        let attestations = o.attestations.as_ref().map_or_else(
            || "null".to_owned(),
            |a| {
                format!(
                    "{{\"ref\":\"refs/mkit/attestations\",\"git\":\"{}\",\"minted\":{},\
                     \"status\":\"{}\"}}",
                    a.commit.to_hex(),
                    a.minted,
                    a.status.as_str()
                )
            },
        );
        writeln!(
            out,
            "{{\"ok\":{ok},\"exported\":[{}],\"skipped\":[{}],\"mode\":\"{}\",\
             \"attestations\":{},\"updated\":{},\"translated\":{},\"written\":{},\
             \"destination\":{},\"seconds\":{{{}}}}}",
            exported.join(","),
            skipped.join(","),
            if o.fork { "fork" } else { "export" },
            attestations,
            o.updated(),
            o.translated,
            o.written,
            json_str(&o.destination),
            timings.join(",")
        )?;
    } else {
        for r in &o.exported {
            writeln!(out, "exported {} {} -> {}", r.name, r.mkit, r.git.to_hex())?;
        }
    }
    for s in &o.skipped {
        eprintln!("warning: skipping {}: {}", s.name, s.refusal);
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
