//! `status`: the bridge states of the repository here.
//!
//! The text form prints every line the reference's `mkit git status` prints,
//! in its order, and adds lines of its own (never changes one): a normalized
//! import, an interrupted import, and stamps that could not be read.

use std::io::Write;
use std::path::Path;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::status::{self, StateStatus, short_key};
use mkit_bridge::state::RefState;
use serde_json::{Value, json};

use super::CliError;

/// `status [--json]`.
pub fn status(out: &mut impl Write, as_json: bool) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let states = status::status(repo.mkit_dir())?;
    if as_json {
        let v = json!({ "states": states.iter().map(state_json).collect::<Vec<_>>() });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    if states.is_empty() {
        writeln!(
            out,
            "no git bridge state (run `mkit git import` or `mkit git export` first)"
        )?;
        return Ok(());
    }
    for s in &states {
        render(out, s)?;
    }
    Ok(())
}

fn render(out: &mut impl Write, s: &StateStatus) -> Result<(), CliError> {
    writeln!(
        out,
        "{}  direction={}",
        s.name,
        s.direction.as_deref().unwrap_or("unknown")
    )?;
    if let Some(v) = &s.source {
        writeln!(out, "  source: {v}")?;
    }
    if let Some(v) = &s.dest {
        writeln!(out, "  dest: {v}")?;
    }
    if let Some(k) = &s.importer_key {
        writeln!(out, "  importer key: {}… (pinned)", short_key(k))?;
    }
    for r in &s.tracking {
        writeln!(
            out,
            "  tracking {} @ {} (import)",
            r.name,
            &r.git.to_hex()[..12]
        )?;
    }
    for r in &s.exported {
        writeln!(
            out,
            "  exported {} @ {} (lease)",
            r.name,
            &r.git.to_hex()[..12]
        )?;
    }
    writeln!(
        out,
        "  staging: {}",
        if s.staging_ok { "ok" } else { "missing" }
    )?;
    if s.normalized {
        writeln!(
            out,
            "  normalized: historic tree modes were normalized on import"
        )?;
    }
    if s.interrupted {
        writeln!(
            out,
            "  interrupted: an import did not finish; run `mkit-bridge fetch --remote-name {}`",
            s.name
        )?;
    }
    for p in &s.problems {
        writeln!(out, "  unreadable: {p}")?;
    }
    Ok(())
}

fn refs_json(refs: &[RefState]) -> Vec<Value> {
    refs.iter()
        .map(|r| json!({ "ref": r.name, "git": r.git.to_hex(), "mkit": r.mkit.to_hex() }))
        .collect()
}

fn state_json(s: &StateStatus) -> Value {
    json!({
        "name": s.name,
        "direction": s.direction,
        "source": s.source,
        "dest": s.dest,
        "importerKey": s.importer_key.map(|k| mkit_bridge::mkit::Id(k).to_hex()),
        "tracking": refs_json(&s.tracking),
        "exported": refs_json(&s.exported),
        "staging": if s.staging_ok { "ok" } else { "missing" },
        "normalized": s.normalized,
        "interrupted": s.interrupted,
        "problems": s.problems,
    })
}
