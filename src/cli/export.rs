//! `export` (mkit history → a git mirror) and `verify` (audit a bridge
//! state's git side), rendered like the reference's `mkit git export` and
//! `mkit git verify`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::export::{self, ExportOutcome, ExportRequest};
use mkit_bridge::run::verify::{self, VerifyOutcome, VerifyRequest};

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

/// Options of `verify`.
pub struct VerifyArgs {
    pub remote: Option<String>,
    pub deep: bool,
    pub refs: Vec<String>,
    pub json: bool,
}

/// `verify`.
pub fn verify(out: &mut impl Write, args: &VerifyArgs) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let outcome = verify::verify(
        &repo,
        &VerifyRequest {
            remote: args.remote.as_deref(),
            deep: args.deep,
            refs: &args.refs,
        },
    )?;
    let summary = summary(&outcome, args.deep);
    if args.json {
        render_verify_json(out, &outcome, args.deep)?;
    } else {
        for r in &outcome.refs {
            eprintln!(
                "verified {} ({}, {})",
                r.name,
                r.origin.as_str(),
                r.git.to_hex()
            );
        }
        for u in &outcome.unsigned {
            eprintln!("unsigned {}", u.to_hex());
        }
        for f in &outcome.failures {
            eprintln!("FAIL {} {}", f.object.to_hex(), f.reason);
        }
    }
    if !outcome.failures.is_empty() {
        return Err(CliError::Unverified(format!(
            "{} object(s) failed verification ({summary})",
            outcome.failures.len()
        )));
    }
    if !outcome.unsigned.is_empty() {
        // §10: all-zero signatures are reported as unsigned, never as
        // tampered, and never as a pass.
        return Err(CliError::Unverified(format!(
            "{} unsigned object(s) ({summary})",
            outcome.unsigned.len()
        )));
    }
    if !args.json {
        eprintln!("ok: {summary}");
    }
    Ok(())
}

fn summary(o: &VerifyOutcome, deep: bool) -> String {
    let mut s = format!(
        "{} bridge-translated ({} unsigned), {} imported-vouched",
        o.bridge,
        o.unsigned.len(),
        o.imported
    );
    if deep {
        s.push_str(&format!(", {} objects reconstructed", o.reconstructed));
    }
    s
}

fn render_verify_json(out: &mut impl Write, o: &VerifyOutcome, deep: bool) -> Result<(), CliError> {
    let refs: Vec<String> = o
        .refs
        .iter()
        .map(|r| {
            format!(
                "{{\"ref\":{},\"origin\":\"{}\",\"git\":\"{}\",\"mkit\":\"{}\"}}",
                json_str(&r.name),
                r.origin.as_str(),
                r.git.to_hex(),
                r.mkit
            )
        })
        .collect();
    let unsigned: Vec<String> = o
        .unsigned
        .iter()
        .map(|u| format!("\"{}\"", u.to_hex()))
        .collect();
    let failures: Vec<String> = o
        .failures
        .iter()
        .map(|f| {
            format!(
                "{{\"git\":\"{}\",\"reason\":{}}}",
                f.object.to_hex(),
                json_str(&f.reason)
            )
        })
        .collect();
    writeln!(
        out,
        "{{\"ok\":{},\"remote\":{},\"deep\":{deep},\"sources\":[{}],\"refs\":[{}],\"bridge\":{},\
         \"unsigned\":[{}],\"imported\":{},\"reconstructed\":{},\"failures\":[{}]}}",
        o.passed(),
        json_str(&o.remote),
        o.sources
            .iter()
            .map(|p| json_str(&p.display().to_string()))
            .collect::<Vec<_>>()
            .join(","),
        refs.join(","),
        o.bridge,
        unsigned.join(","),
        o.imported,
        o.reconstructed,
        failures.join(",")
    )?;
    Ok(())
}
