//! The mail around a patch: mbox separator, `From:`/`Date:`/`Subject:`
//! headers, the message body, and the file name a patch is saved under, as
//! the reference `mkit git format-patch` writes them.
//!
//! Pure text functions over a commit's fields; [`crate::bridge::patch`]
//! renders the diff that goes between the `---` line and the signature.

use crate::bridge::export::{BRIDGE_EMAIL, display_name};
use crate::mkit::id::Id;
use crate::mkit::object::{Commit, Identity, IdentityKind};

/// The mbox separator's fixed date (git's own magic timestamp).
const SEPARATOR_DATE: &str = "Mon Sep 17 00:00:00 2001";

/// The signature block that closes every patch.
pub const SIGNATURE: &str = "-- \nmkit git format-patch\n\n";

/// Longest slug kept in a patch file name, in characters.
const SLUG_MAX: usize = 52;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The first line of a commit message (lossy UTF-8, a trailing `\r` dropped).
pub fn subject(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `NNNN-<slug>.patch` for patch `number` (1-based) of a series.
pub fn file_name(number: usize, subject: &str) -> String {
    format!("{number:04}-{}.patch", slug(subject))
}

/// A file-name-safe form of a subject: ASCII letters and digits kept, every
/// run of anything else one `-` (none leading or trailing), at most 52
/// characters, `patch` when nothing is left.
pub fn slug(subject: &str) -> String {
    let mut out = String::new();
    for c in subject.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let cut: String = out.trim_end_matches('-').chars().take(SLUG_MAX).collect();
    if cut.is_empty() {
        "patch".to_owned()
    } else {
        cut
    }
}

/// The `From:` value: an opaque author that already reads as a git person
/// (`Name <email>`, UTF-8, no control characters) as is; any other identity
/// as the export's display name with the bridge's sentinel address.
pub fn from_header(author: &Identity) -> String {
    if author.kind == IdentityKind::Opaque
        && let Ok(s) = std::str::from_utf8(&author.payload)
        && s.contains('<')
        && s.ends_with('>')
        && !s.chars().any(char::is_control)
    {
        return s.to_owned();
    }
    format!(
        "{} <{}>",
        String::from_utf8_lossy(&display_name(author)),
        String::from_utf8_lossy(BRIDGE_EMAIL)
    )
}

/// An RFC 2822 date in UTC for seconds since the epoch, day unpadded:
/// `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc2822(timestamp: u64) -> String {
    let days = timestamp / 86_400;
    let secs = timestamp % 86_400;
    let (year, month, day) = civil_date(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[usize::try_from((days + 4) % 7).unwrap_or(0)];
    format!(
        "{weekday}, {day} {} {year} {:02}:{:02}:{:02} +0000",
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01,
/// counting in 400-year eras that start on 1 March so leap days fall last.
pub(crate) fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    // 719_468 days from 0000-03-01 to 1970-01-01.
    let shifted = days_since_epoch + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = Mar ... 11 = Feb.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// True for a body line `git mailsplit` would take for a new message:
/// `From `, a first token, then somewhere after it a ctime-shaped window
/// `Www Mmm D[D] HH:MM:SS YYYY` (trailing tokens allowed). Looser lines such
/// as `From the start...` do not split and are left alone.
pub fn is_mbox_from_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("From ") else {
        return false;
    };
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    tokens.len() >= 6 && tokens[1..].windows(5).any(is_ctime)
}

fn is_ctime(w: &[&str]) -> bool {
    let [weekday, month, day, time, year] = w else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let t = time.as_bytes();
    WEEKDAYS.contains(weekday)
        && MONTHS.contains(month)
        && (1..=2).contains(&day.len())
        && digits(day)
        && t.len() == 8
        && t[2] == b':'
        && t[5] == b':'
        && year.len() == 4
        && digits(year)
}

/// One patch as an mbox message: separator, headers, the message body (a
/// mailsplit-shaped `From ` line escaped with `>`), `---`, the diff, and
/// [`SIGNATURE`]. `number`/`total` give `[PATCH n/t]`, or `[PATCH]` when the
/// series has one patch.
pub fn render(
    commit_id: &Id,
    commit: &Commit,
    number: usize,
    total: usize,
    diff: &[u8],
) -> Vec<u8> {
    let message = String::from_utf8_lossy(&commit.message);
    let mut lines = message.lines();
    let subject = lines.next().unwrap_or("");
    let tag = if total > 1 {
        format!("[PATCH {number}/{total}]")
    } else {
        "[PATCH]".to_owned()
    };
    let mut out = format!(
        "From {commit_id} {SEPARATOR_DATE}\nFrom: {}\nDate: {}\nSubject: {tag} {subject}\n\n",
        from_header(&commit.author),
        rfc2822(commit.timestamp)
    );
    for line in lines.skip_while(|l| l.is_empty()) {
        if is_mbox_from_line(line) {
            out.push('>');
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("---\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(diff);
    out.extend_from_slice(SIGNATURE.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_rfc2822() {
        assert_eq!(rfc2822(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc2822(1_709_208_000), "Thu, 29 Feb 2024 12:00:00 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc2822(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 +0000");
    }

    #[test]
    fn slugs_and_file_names() {
        assert_eq!(slug("Add foo, bar & baz!"), "Add-foo-bar-baz");
        assert_eq!(slug("???"), "patch");
        assert_eq!(slug(""), "patch");
        assert_eq!(slug("  lead"), "lead");
        assert_eq!(slug("naïve café"), "na-ve-caf");
        let long = "abc ".repeat(20);
        assert_eq!(slug(&long).len(), 52);
        assert!(
            slug(&long).ends_with('-'),
            "cut after trimming, as the reference does"
        );
        assert_eq!(
            file_name(1, "Add feature file"),
            "0001-Add-feature-file.patch"
        );
        assert_eq!(file_name(12, "x"), "0012-x.patch");
    }

    #[test]
    fn mailsplit_shaped_lines() {
        assert!(is_mbox_from_line(
            "From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001"
        ));
        assert!(is_mbox_from_line("From x Thu Jan 1 00:00:00 1970"));
        assert!(is_mbox_from_line(
            "From sender Fri Jun 12 12:00:00 2026 +0000"
        ));
        assert!(!is_mbox_from_line("From the start, this was true."));
        assert!(!is_mbox_from_line("From: someone <a@b>"));
        assert!(!is_mbox_from_line("From abc Mon Sep 17 00:00 2001"));
        assert!(
            !is_mbox_from_line("From Mon Sep 17 00:00:00 2001"),
            "the window must follow a first token"
        );
    }

    #[test]
    fn from_header_keeps_git_persons_and_synthesizes_the_rest() {
        assert_eq!(
            from_header(&Identity::opaque(b"A U Thor <a@example.com>".to_vec())),
            "A U Thor <a@example.com>"
        );
        assert_eq!(
            from_header(&Identity::opaque(b"plain".to_vec())),
            "plain <bridge@mkit.invalid>"
        );
        let key = from_header(&Identity::ed25519([0xaa; 32]));
        assert_eq!(
            key,
            format!("mkit:ed25519:{} <bridge@mkit.invalid>", "aa".repeat(32))
        );
    }

    fn commit(message: &str) -> Commit {
        Commit {
            tree: Id::ZERO,
            parents: vec![],
            author: Identity::opaque(b"A <a@b>".to_vec()),
            message: message.as_bytes().to_vec(),
            timestamp: 1_700_000_000,
            signer: [0; 32],
            message_hash: Id::ZERO,
            content_digest: Id::ZERO,
            signature: [0; 64],
        }
    }

    #[test]
    fn message_layout() {
        let id = Id([0x11; 32]);
        let mail = render(
            &id,
            &commit("Subject line\n\n\nBody one\nFrom x Thu Jan 1 00:00:00 1970\nFrom the start\n"),
            2,
            3,
            b"DIFF\n",
        );
        let expected = format!(
            "From {} Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\n\
             Date: Tue, 14 Nov 2023 22:13:20 +0000\nSubject: [PATCH 2/3] Subject line\n\n\
             Body one\n>From x Thu Jan 1 00:00:00 1970\nFrom the start\n---\nDIFF\n\
             -- \nmkit git format-patch\n\n",
            "11".repeat(32)
        );
        assert_eq!(String::from_utf8(mail).unwrap(), expected);
        let single = String::from_utf8(render(&id, &commit("Only"), 1, 1, b"")).unwrap();
        assert!(
            single.contains("\nSubject: [PATCH] Only\n\n---\n-- \n"),
            "{single}"
        );
    }
}
