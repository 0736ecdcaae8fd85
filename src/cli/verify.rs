//! `verify` (audit a bridge state's git side), rendered like the
//! reference's `mkit git verify`: on stderr `verified <ref> (<origin>,
//! <sha1>)` per ref, then `FAIL <sha1> <why>` per problem, then `ok:
//! <summary>` or the error; `--json` puts our report on stdout instead.

use std::io::Write;
use std::path::Path;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::verify::{self, VerifyOutcome, VerifyRequest, VerifyRunError};
use mkit_bridge::state::StateError;

use super::CliError;
use super::exit;

/// Options of `verify`.
pub struct VerifyArgs {
    pub remote: Option<String>,
    pub fork_audit: bool,
    pub deep: bool,
    pub refs: Vec<String>,
    pub json: bool,
}

/// `verify`.
pub fn run(out: &mut impl Write, args: &VerifyArgs) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let outcome = verify::verify(
        &repo,
        &VerifyRequest {
            remote: args.remote.as_deref(),
            fork_audit: args.fork_audit,
            deep: args.deep,
            refs: &args.refs,
        },
    )?;
    let summary = summary(&outcome, args);
    if args.json {
        render_json(out, &outcome, args)?;
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

/// The sysexits code of a verification that could not run, as 0.5.0 gives it.
pub fn exit_code(e: &VerifyRunError) -> u8 {
    match e {
        VerifyRunError::State(StateError::Busy { .. }) => exit::TEMPFAIL,
        VerifyRunError::State(StateError::Io(_)) => exit::IOERR,
        VerifyRunError::State(StateError::InvalidRemoteName { .. })
        | VerifyRunError::Ambiguous(_)
        | VerifyRunError::UnknownRef { .. } => exit::USAGE,
        VerifyRunError::State(_) => exit::CONFIG,
        VerifyRunError::NoState
        | VerifyRunError::NoSuchState(_)
        | VerifyRunError::NoRefs(_)
        | VerifyRunError::NoSource { .. } => exit::NOINPUT,
        VerifyRunError::ImportSpecUnreadable(_)
        | VerifyRunError::ImportSpecVersion { .. }
        | VerifyRunError::SourceUnreadable(_) => exit::DATAERR,
    }
}

/// 0.5.0's summary, with our additions for `--deep`.
fn summary(o: &VerifyOutcome, args: &VerifyArgs) -> String {
    let mut s = format!(
        "{} bridge-translated ({} unsigned), {} imported-vouched",
        o.bridge,
        o.unsigned.len(),
        o.imported
    );
    if args.fork_audit || args.deep {
        s.push_str(&format!(", {} content-derived", o.derived));
    }
    if args.deep {
        s.push_str(&format!(", {} objects reconstructed", o.reconstructed));
    }
    s
}

fn render_json(out: &mut impl Write, o: &VerifyOutcome, args: &VerifyArgs) -> Result<(), CliError> {
    let doc = serde_json::json!({
        "ok": o.passed(),
        "remote": o.remote,
        "fork_audit": args.fork_audit,
        "deep": args.deep,
        "sources": o.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "refs": o.refs.iter().map(|r| serde_json::json!({
            "ref": r.name,
            "origin": r.origin.as_str(),
            "git": r.git.to_hex(),
            "mkit": r.mkit.to_hex(),
        })).collect::<Vec<_>>(),
        "bridge": o.bridge,
        "unsigned": o.unsigned.iter().map(|u| u.to_hex()).collect::<Vec<_>>(),
        "imported": o.imported,
        "derived": o.derived,
        "reconstructed": o.reconstructed,
        "failures": o.failures.iter().map(|f| serde_json::json!({
            "git": f.object.to_hex(),
            "reason": f.reason,
        })).collect::<Vec<_>>(),
    });
    super::render::json_line(out, &doc)?;
    Ok(())
}
