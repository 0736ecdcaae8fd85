//! `fsck [--json] [--jobs N]`: check the whole repository here.
//!
//! Text: one line per problem on stdout (`<kind> <subject>: <detail>` and the
//! roots that reach it), then `warning: ...` lines, then one summary line.
//! `--json`: one [`JsonFsck`] document on stdout (shape in `spec/FSCK.md`).
//! Exit 0 clean, 65 damage, 74 files that could not be read.

use std::io::{IsTerminal, Write};
use std::path::Path;

use mkit_bridge::mkit::repo::Repo;
use mkit_bridge::run::fsck::{self, FsckError, FsckReport, FsckRequest, Problem, Subject};

use super::CliError;
use super::exit;
use super::render::Bar;

/// Options of `fsck`.
pub struct Args {
    pub jobs: usize,
    pub json: bool,
}

/// Roots named per problem in text output before "+N more".
const TEXT_ROOTS: usize = 4;

/// `fsck`.
pub fn run(out: &mut impl Write, args: &Args) -> Result<(), CliError> {
    let repo = Repo::open(Path::new("."))?;
    let bar = Bar::new(!args.json && std::io::stderr().is_terminal());
    let result = fsck::fsck(
        &repo,
        &FsckRequest {
            jobs: args.jobs,
            progress: &bar,
        },
    );
    bar.finish();
    let report = result?;
    if args.json {
        super::render::json_line(out, &json(&report))?;
    } else {
        render_text(out, &report)?;
    }
    report.verdict()?;
    Ok(())
}

/// The sysexits code of an fsck error.
pub fn exit_code(e: &FsckError) -> u8 {
    match e {
        FsckError::Damaged { .. } => exit::DATAERR,
        FsckError::Unreadable { .. } | FsckError::Io(_) => exit::IOERR,
        FsckError::Ref(mkit_bridge::mkit::refs::RefError::Io(_)) => exit::IOERR,
        FsckError::State(mkit_bridge::state::StateError::Io(_)) => exit::IOERR,
        FsckError::Ref(_) | FsckError::State(_) => exit::DATAERR,
        FsckError::Threads { .. } | FsckError::TooManyObjects(_) => exit::SOFTWARE,
    }
}

fn subject_text(s: &Subject) -> String {
    match s {
        Subject::Object(id) => id.to_hex(),
        Subject::Ref(name) => name.clone(),
        Subject::Raw { state, sha1 } => format!("git/{state}/raw/{}", sha1.to_hex()),
    }
}

fn render_text(out: &mut impl Write, r: &FsckReport) -> Result<(), CliError> {
    for p in &r.problems {
        writeln!(
            out,
            "{} {}: {}{}",
            p.kind.as_str(),
            subject_text(&p.subject),
            p.detail,
            reached_text(p)
        )?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {}", w.detail)?;
    }
    let secs = r.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        r.objects as f64 / secs
    } else {
        0.0
    };
    let verdict = match r.problems.len() {
        0 => "ok".to_owned(),
        n => format!("{n} problem(s)"),
    };
    writeln!(
        out,
        "fsck: {verdict}: {} objects ({:.1} MB) in {secs:.2} s ({rate:.0} objects/s), {} roots, {} reachable, {} unreachable, {} unsigned, {} raw files in {} state(s), {} map entries",
        r.objects,
        r.bytes as f64 / 1e6,
        r.roots.len(),
        r.reachable,
        r.unreachable,
        r.unsigned.len(),
        r.raw_files,
        r.states.len(),
        r.map_entries,
    )?;
    Ok(())
}

fn reached_text(p: &Problem) -> String {
    let names = &p.reached_from;
    if names.is_empty() {
        return if matches!(p.subject, Subject::Object(_)) {
            " (reached from no ref)".to_owned()
        } else {
            String::new()
        };
    }
    let shown = names[..names.len().min(TEXT_ROOTS)].join(", ");
    if names.len() > TEXT_ROOTS {
        format!(
            " (reached from {shown} and {} more)",
            names.len() - TEXT_ROOTS
        )
    } else {
        format!(" (reached from {shown})")
    }
}

/// `fsck --json`: one document.
#[derive(serde::Serialize)]
struct JsonFsck<'a> {
    ok: bool,
    objects: u64,
    bytes: u64,
    kinds: JsonKinds,
    roots: Vec<JsonRoot<'a>>,
    reachable: u64,
    unreachable: u64,
    unsigned: Vec<String>,
    states: &'a [String],
    raw_files: u64,
    map_entries: u64,
    seconds: f64,
    phases: Vec<JsonPhase>,
    warnings: Vec<JsonWarning<'a>>,
    problems: Vec<JsonProblem<'a>>,
}

#[derive(serde::Serialize)]
struct JsonKinds {
    blob: u64,
    tree: u64,
    commit: u64,
    remix: u64,
    chunked_blob: u64,
    tag: u64,
}

#[derive(serde::Serialize)]
struct JsonRoot<'a> {
    name: &'a str,
    id: String,
}

#[derive(serde::Serialize)]
struct JsonPhase {
    name: &'static str,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct JsonWarning<'a> {
    kind: &'static str,
    detail: &'a str,
}

/// One problem: `subject` is `object`, `ref` or `raw`; `id` the mkit id,
/// the ref name, or the raw file's sha1; `state` only for raw files.
#[derive(serde::Serialize)]
struct JsonProblem<'a> {
    kind: &'static str,
    subject: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    detail: &'a str,
    reached_from: &'a [String],
}

fn json(r: &FsckReport) -> JsonFsck<'_> {
    JsonFsck {
        ok: r.problems.is_empty(),
        objects: r.objects,
        bytes: r.bytes,
        kinds: JsonKinds {
            blob: r.kinds.blob,
            tree: r.kinds.tree,
            commit: r.kinds.commit,
            remix: r.kinds.remix,
            chunked_blob: r.kinds.chunked_blob,
            tag: r.kinds.tag,
        },
        roots: r
            .roots
            .iter()
            .map(|x| JsonRoot {
                name: &x.name,
                id: x.id.to_hex(),
            })
            .collect(),
        reachable: r.reachable,
        unreachable: r.unreachable,
        unsigned: r.unsigned.iter().map(|i| i.to_hex()).collect(),
        states: &r.states,
        raw_files: r.raw_files,
        map_entries: r.map_entries,
        seconds: r.elapsed.as_secs_f64(),
        phases: r
            .phases
            .iter()
            .map(|(name, d)| JsonPhase {
                name,
                seconds: d.as_secs_f64(),
            })
            .collect(),
        warnings: r
            .warnings
            .iter()
            .map(|w| JsonWarning {
                kind: w.kind.as_str(),
                detail: &w.detail,
            })
            .collect(),
        problems: r
            .problems
            .iter()
            .map(|p| {
                let (subject, id, state) = match &p.subject {
                    Subject::Object(id) => ("object", id.to_hex(), None),
                    Subject::Ref(name) => ("ref", name.clone(), None),
                    Subject::Raw { state, sha1 } => ("raw", sha1.to_hex(), Some(state.as_str())),
                };
                JsonProblem {
                    kind: p.kind.as_str(),
                    subject,
                    id,
                    state,
                    detail: &p.detail,
                    reached_from: &p.reached_from,
                }
            })
            .collect(),
    }
}
