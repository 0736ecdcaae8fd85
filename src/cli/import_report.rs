//! Rendering of the refusal report (skipped refs grouped by root cause) and
//! of `--dry-run` plans, for `import`, `fetch` and `pull`.
//!
//! The rule for skipped refs in text output: a cause that blocks at most
//! [`PER_REF_LINES`] refs keeps the reference's per-ref lines
//! (`warning: skipping <ref>: <reason>`, which its tests and scripts match)
//! followed by the cause; a cause that blocks more prints one grouped
//! warning with a few ref names. `--verbose` prints the per-ref lines of
//! every cause. A cause an earlier run already reported, with the same
//! blocked refs and introducing commits, is not repeated (the summary line
//! counts it) unless `--verbose`. `--json` always carries every skipped ref
//! and every cause.

use std::collections::HashMap;
use std::io::Write;

use mkit_bridge::bridge::cause::{Cause, CauseKey};
use mkit_bridge::bridge::refusal::Refusal;
use mkit_bridge::run::import::{Change, Plan, SkippedRef};
use serde::Serialize;

use super::CliError;
use super::import::Common;

/// Causes blocking at most this many refs print a line per ref.
pub const PER_REF_LINES: usize = 3;

/// Ref names shown in a grouped warning.
const NAMES_SHOWN: usize = 5;

/// Introducing commits shown per cause.
const COMMITS_SHOWN: usize = 3;

/// Causes left out of the text because an earlier run reported them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hidden {
    causes: usize,
    refs: usize,
}

impl Hidden {
    /// The summary line's mention of what was left out (empty when nothing).
    pub fn note(self) -> String {
        match self.causes {
            0 => String::new(),
            1 => format!(
                " ({} by 1 cause reported before; --verbose repeats it)",
                self.refs
            ),
            n => format!(
                " ({} by {n} causes reported before; --verbose repeats them)",
                self.refs
            ),
        }
    }
}

/// Print the skipped refs of a run, grouped by cause, on stderr as warnings.
/// Returns what was left out as already reported.
pub fn render_causes(skipped: &[SkippedRef], causes: &[Cause], verbose: bool) -> Hidden {
    let reasons = reasons(skipped);
    let style = Style {
        per_ref: "warning: skipping ",
        grouped: "warning: ",
        skipped: "skipped",
    };
    warn_causes(causes, &|r| reasons.get(r).cloned(), verbose, &style)
}

/// Each skipped ref's own refusal message, by upstream ref name.
fn reasons(skipped: &[SkippedRef]) -> HashMap<&str, String> {
    skipped
        .iter()
        .map(|s| (s.upstream.as_str(), s.refusal.to_string()))
        .collect()
}

/// Print `causes` on stderr as warnings in `style`, but those an earlier
/// run reported (unless `verbose`); `reason_of` gives a blocked ref's own
/// refusal message. Returns what was left out.
pub fn warn_causes(
    causes: &[Cause],
    reason_of: &dyn Fn(&str) -> Option<String>,
    verbose: bool,
    style: &Style<'_>,
) -> Hidden {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    let mut hidden = Hidden::default();
    for c in causes {
        if c.reported && !verbose {
            hidden.causes += 1;
            hidden.refs += c.blocked.len();
            continue;
        }
        // Rendered whole, then written at once: lines of parallel runs never mix.
        let mut text = Vec::new();
        let _ = write_cause(&mut text, c, reason_of, verbose, style);
        let _ = err.write_all(&text);
    }
    hidden
}

/// How cause lines start (warnings on stderr, or plan lines on stdout).
pub struct Style<'a> {
    /// Before `<ref>: <reason>` on a per-ref line.
    pub per_ref: &'a str,
    /// Before a grouped cause's first line.
    pub grouped: &'a str,
    /// What happens to its refs, in that line.
    pub skipped: &'a str,
}

/// One cause: its per-ref lines or its grouped line, then where it comes
/// from and what to do.
fn write_cause(
    w: &mut dyn Write,
    c: &Cause,
    reason_of: &dyn Fn(&str) -> Option<String>,
    verbose: bool,
    style: &Style<'_>,
) -> std::io::Result<()> {
    let n = c.blocked.len();
    let per_ref = verbose || n <= PER_REF_LINES;
    let head = format!(
        "{}: {} [{}; {}]",
        place(c),
        c.refusal.summary(),
        c.refusal.name(),
        c.refusal.spec()
    );
    if per_ref {
        for r in &c.blocked {
            let reason = reason_of(r).unwrap_or_else(|| c.refusal.to_string());
            writeln!(w, "{}{r}: {reason}", style.per_ref)?;
        }
        let whose = match n {
            1 => "cause".to_owned(),
            n => format!("cause of these {n} refs"),
        };
        writeln!(w, "  {whose}: {head}")?;
    } else {
        writeln!(
            w,
            "{}{n} refs {}, all for one cause: {head}",
            style.grouped, style.skipped
        )?;
    }
    for i in c.introduced.iter().take(COMMITS_SHOWN) {
        let mut line = format!("  introduced by commit {}", i.commit);
        match (i.date(), i.subject.is_empty()) {
            (Some(d), false) => line += &format!(" ({d} \"{}\")", i.subject),
            (Some(d), true) => line += &format!(" ({d})"),
            (None, false) => line += &format!(" (\"{}\")", i.subject),
            (None, true) => {}
        }
        if c.introduced.len() > 1 || i.refs != n {
            line += &format!(", in the history of {} of them", i.refs);
        }
        writeln!(w, "{line}")?;
    }
    for m in c.moved.iter().take(COMMITS_SHOWN) {
        let mut line = format!(
            "  also at {}, moved or copied there by commit {}",
            show_path(&m.path),
            m.commits[0]
        );
        if m.commits.len() > 1 {
            line += &format!(" and {} more", m.commits.len() - 1);
        }
        writeln!(w, "{line}")?;
    }
    if c.introduced.len() > COMMITS_SHOWN {
        writeln!(
            w,
            "  and {} more introducing commits (--json lists them)",
            c.introduced.len() - COMMITS_SHOWN
        )?;
    }
    if !per_ref {
        let shown: Vec<&str> = c
            .blocked
            .iter()
            .take(NAMES_SHOWN)
            .map(String::as_str)
            .collect();
        writeln!(
            w,
            "  refs: {} and {} more (--verbose lists each with its reason; --json has them all)",
            shown.join(", "),
            n - shown.len()
        )?;
    }
    writeln!(w, "  remedy: {}", c.remedy())
}

/// Where a cause lies: its path, its object, or its ref name.
fn place(c: &Cause) -> String {
    match &c.key {
        CauseKey::Path { path, .. } if path.is_empty() => "the root tree".to_owned(),
        CauseKey::Path { path, .. } => show_path(path),
        CauseKey::Object { object, .. } => {
            let what = match &c.refusal {
                Refusal::TagName { .. } | Refusal::TagTarget { .. } | Refusal::TagChain { .. } => {
                    "tag"
                }
                Refusal::TooManyParents { .. } => "commit",
                Refusal::NegativeTimestamp { kind, .. }
                | Refusal::AuthorPayload { kind, .. }
                | Refusal::Unparsable { kind, .. }
                | Refusal::BlobTooLarge { kind, .. }
                | Refusal::Unrepresentable { kind, .. } => kind.name(),
                _ => "git object",
            };
            match &c.path {
                Some(p) if !p.is_empty() => format!("{what} {object} (at {})", show_path(p)),
                _ => format!("{what} {object}"),
            }
        }
        CauseKey::Ref { name } => format!("ref {name}"),
    }
}

/// A path as text: as is when it is printable UTF-8 without spaces at its
/// ends, else quoted and escaped (`"file "`, `"a\\b"`).
pub fn show_path(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s)
            if !s.chars().any(char::is_control)
                && !s.contains('\\')
                && s.trim() == s
                && !s.is_empty() =>
        {
            s.to_owned()
        }
        _ => mkit_bridge::text::quoted(path),
    }
}

// --- dry runs ----------------------------------------------------------------

#[derive(Serialize)]
struct JsonPlannedRef<'a> {
    #[serde(rename = "ref")]
    upstream: &'a str,
    mkit_ref: &'a str,
    change: &'static str,
    old: Option<String>,
    new: String,
}

#[derive(Serialize)]
struct JsonPruned<'a> {
    #[serde(rename = "ref")]
    upstream: &'a str,
    mkit_ref: &'a str,
    old: String,
}

/// One skipped ref in `--json` output (a run's or a plan's): the
/// reference's `ref` and `reason`, plus the refusal's name.
#[derive(Serialize)]
pub struct JsonSkipped<'a> {
    #[serde(rename = "ref")]
    upstream: &'a str,
    reason: String,
    refusal: &'a str,
}

impl JsonSkipped<'_> {
    /// `skipped` as `--json` lists it.
    pub fn list(skipped: &[SkippedRef]) -> Vec<JsonSkipped<'_>> {
        skipped
            .iter()
            .map(|s| JsonSkipped {
                upstream: &s.upstream,
                reason: s.refusal.to_string(),
                refusal: s.refusal.name(),
            })
            .collect()
    }
}

/// `--dry-run --json`.
#[derive(Serialize)]
struct JsonPlan<'a> {
    ok: bool,
    dry_run: bool,
    refs: Vec<JsonPlannedRef<'a>>,
    pruned: Vec<JsonPruned<'a>>,
    skipped: Vec<JsonSkipped<'a>>,
    causes: &'a [Cause],
    translated: u64,
    written: u64,
    warnings: &'a [String],
    notes: &'a [String],
    default_branch: Option<&'a str>,
}

/// Print a dry run's plan: on stdout, one line per ref that would change,
/// the refused refs grouped by cause, then a summary.
pub fn render_plan(out: &mut impl Write, plan: &Plan, common: &Common) -> Result<(), CliError> {
    if common.json {
        let doc = JsonPlan {
            ok: !plan.refs.is_empty() || plan.skipped.is_empty(),
            dry_run: true,
            refs: plan
                .refs
                .iter()
                .map(|r| JsonPlannedRef {
                    upstream: &r.upstream,
                    mkit_ref: &r.mkit_ref,
                    change: r.change.as_str(),
                    old: r.old.map(|s| s.to_hex()),
                    new: r.new.to_hex(),
                })
                .collect(),
            pruned: plan
                .pruned
                .iter()
                .map(|p| JsonPruned {
                    upstream: &p.upstream,
                    mkit_ref: &p.mkit_ref,
                    old: p.old.to_hex(),
                })
                .collect(),
            skipped: JsonSkipped::list(&plan.skipped),
            causes: &plan.causes,
            translated: plan.translated,
            written: plan.written,
            warnings: &plan.warnings,
            notes: &plan.notes,
            default_branch: plan.default_branch.as_deref(),
        };
        super::render::json_line(out, &doc)?;
        return Ok(());
    }
    if !common.quiet {
        for n in &plan.notes {
            eprintln!("note: {n}");
        }
    }
    let short = |s: &mkit_bridge::git::Sha1| s.to_hex()[..8].to_owned();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for r in &plan.refs {
        *counts.entry(r.change.as_str()).or_default() += 1;
        let what = match (r.change, r.old) {
            (Change::Unchanged, _) if !common.verbose => continue,
            (Change::Unchanged, _) => short(&r.new),
            (Change::New, _) => short(&r.new),
            (Change::Updated, Some(old)) => format!("{}..{}", short(&old), short(&r.new)),
            (Change::Forced, Some(old)) => format!(
                "{}...{} (force-pushed: the old tip is not an ancestor)",
                short(&old),
                short(&r.new)
            ),
            (Change::KeptMovedLocally, _) => format!(
                "{} (the tag was moved locally; the fetch leaves it, with a warning)",
                short(&r.new)
            ),
            (_, None) => short(&r.new),
        };
        writeln!(out, "{:<9} {} {what}", r.change.as_str(), r.upstream)?;
    }
    for p in &plan.pruned {
        writeln!(
            out,
            "{:<9} {} {} (deleted upstream; {} would be removed)",
            "pruned",
            p.upstream,
            short(&p.old),
            p.mkit_ref
        )?;
    }
    let style = Style {
        per_ref: "refused   ",
        grouped: "refused   ",
        skipped: "would be skipped",
    };
    let reasons = reasons(&plan.skipped);
    let reason_of = |r: &str| reasons.get(r).cloned();
    for c in &plan.causes {
        write_cause(out, c, &reason_of, common.verbose, &style)?;
    }
    for w in &plan.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    let changing = get("new") + get("updated") + get("forced");
    writeln!(
        out,
        "dry run: {changing} refs would change ({} new, {} updated, {} forced), {} pruned, {} \
         refused{}, {} unchanged{}; {} git objects would be translated, {} mkit objects \
         written; nothing was written but the staging mirror",
        get("new"),
        get("updated"),
        get("forced"),
        plan.pruned.len(),
        plan.skipped.len(),
        match plan.causes.len() {
            0 => String::new(),
            1 => " (1 cause)".to_owned(),
            n => format!(" ({n} causes)"),
        },
        get("unchanged"),
        match get("kept") {
            0 => String::new(),
            k => format!(", {k} kept (moved locally)"),
        },
        plan.translated,
        plan.written
    )?;
    Ok(())
}
