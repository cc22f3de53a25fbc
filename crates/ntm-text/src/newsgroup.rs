//! Cleaning of Usenet newsgroup posts before tokenisation.
//!
//! [`strip_newsgroup`] removes the parts of a post that name people, hosts and
//! other posts rather than the topic, so a topic model does not learn them.
//! It removes, in this order:
//!
//! 1. **The header block.** When the first line looks like a header field
//!    (`Name: value`, where the name is ASCII letters, digits and `-`), every
//!    line up to and including the first blank line is removed. A post
//!    without any blank line is then all header and becomes empty. Text whose
//!    first line is not a header field keeps all its lines.
//! 2. **The signature.** When one of the last [`SIGNATURE_WINDOW`] non-blank
//!    lines is a signature separator (after trimming whitespace: `--` or any
//!    longer run of `-` only), that line and everything after it are removed.
//!    The standard delimiter `-- ` (`--` after trimming) wins: the last one in
//!    the window is used, so a signature framed by dashed rules below it goes
//!    too. Without one, the last longer run of dashes in the window is used.
//! 3. **Quoted and attribution lines.** A line is removed when, after leading
//!    whitespace, it starts with `>` or `|`, or starts with `In article <`, or
//!    when, after trailing whitespace, it ends with `writes:`, `wrote:` or
//!    `says:` (ASCII case-insensitive).
//!
//! All other lines are kept in order and joined with `\n`. Blank lines count
//! as lines that contain only whitespace, so `\r\n` line ends work as well.

/// How many non-blank lines at the end of a post are searched for a
/// signature separator.
pub const SIGNATURE_WINDOW: usize = 10;

/// Removes the header, signature and quoted lines of a newsgroup post.
///
/// See the module docs for the exact rules. The result may be empty.
pub fn strip_newsgroup(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let body = strip_header(&lines);
    let body = strip_signature(body);

    let body_lines: Vec<&str> = body
        .iter()
        .copied()
        .filter(|line| !is_quote_or_attribution(line))
        .collect();
    body_lines.join("\n")
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// True for `Name: value` and for a bare `Name:` with an empty value.
fn is_header_field(line: &str) -> bool {
    let Some((name, rest)) = line.split_once(':') else {
        return false;
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    name_ok && (rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t'))
}

fn strip_header<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    match lines.first() {
        Some(first) if is_header_field(first) => {}
        _ => return lines,
    }
    match lines.iter().position(|line| is_blank(line)) {
        Some(blank) => &lines[blank + 1..],
        None => &[],
    }
}

fn is_signature_separator(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.len() >= 2 && trimmed.bytes().all(|byte| byte == b'-')
}

fn strip_signature<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    let mut non_blank_seen = 0;
    let mut last_rule = None;
    for (index, line) in lines.iter().enumerate().rev() {
        if is_blank(line) {
            continue;
        }
        if line.trim() == "--" {
            return &lines[..index];
        }
        if last_rule.is_none() && is_signature_separator(line) {
            last_rule = Some(index);
        }
        non_blank_seen += 1;
        if non_blank_seen >= SIGNATURE_WINDOW {
            break;
        }
    }
    match last_rule {
        Some(index) => &lines[..index],
        None => lines,
    }
}

fn ends_with_ignore_ascii_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.is_char_boundary(text.len() - suffix.len())
        && text[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn is_quote_or_attribution(line: &str) -> bool {
    let start = line.trim_start();
    if start.starts_with('>') || start.starts_with('|') || start.starts_with("In article <") {
        return true;
    }
    let end = line.trim_end();
    ["writes:", "wrote:", "says:"]
        .iter()
        .any(|suffix| ends_with_ignore_ascii_case(end, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY_POST: &str = "\
From: jdoe@cs.example.edu (John Doe)
Subject: Re: Best SCSI controller for a 486?
Organization: Example University
Lines: 18

In article <1993Apr20.101010.1234@news.example.com> smith@example.com (Ann Smith) writes:
>I am looking for a fast SCSI controller for my 486 clone.
>Any recommendations?
>
>Ann

The Adaptec 1542 works well with DOS and OS/2 drivers.
I have used one for two years without trouble.

bob@example.org wrote:
| the Buslogic card is faster
The Buslogic card is faster but costs more.

-- 
John Doe, Example University   | jdoe@cs.example.edu
\"Opinions are my own\"           | (555) 123-4567
";

    #[test]
    fn reply_keeps_only_own_text() {
        let cleaned = strip_newsgroup(REPLY_POST);
        let expected = "
The Adaptec 1542 works well with DOS and OS/2 drivers.
I have used one for two years without trouble.

The Buslogic card is faster but costs more.
";
        assert_eq!(cleaned, expected);
    }

    #[test]
    fn header_is_dropped_up_to_first_blank_line() {
        let post = "From: a@b.c\nSubject: hello\nNNTP-Posting-Host: x.y\n\nBody line one.\n\nBody line two.";
        assert_eq!(strip_newsgroup(post), "Body line one.\n\nBody line two.");
    }

    #[test]
    fn header_only_post_becomes_empty() {
        assert_eq!(strip_newsgroup("From: a@b.c\nSubject: nothing else"), "");
    }

    #[test]
    fn text_without_header_keeps_first_paragraph() {
        let text = "Plain text, no header here.\n\nSecond paragraph.";
        assert_eq!(strip_newsgroup(text), text);
    }

    #[test]
    fn crlf_line_ends_are_handled() {
        let post = "From: a@b.c\r\nSubject: s\r\n\r\nHello there.\r\n> quoted\r\n--\r\nsig\r\n";
        assert_eq!(strip_newsgroup(post), "Hello there.");
    }

    #[test]
    fn dash_run_signature_is_dropped() {
        let post = "From: a@b.c\n\nThe question is about drivers.\n------------------\nAnn Smith\nPhone 555\n";
        assert_eq!(strip_newsgroup(post), "The question is about drivers.");
    }

    #[test]
    fn separator_far_from_end_is_kept() {
        let mut post = String::from("From: a@b.c\n\nIntro line.\n--\n");
        for i in 0..SIGNATURE_WINDOW {
            post.push_str(&format!("content line {i}\n"));
        }
        let cleaned = strip_newsgroup(&post);
        assert!(cleaned.contains("Intro line."), "{cleaned}");
        assert!(cleaned.contains("content line 0"), "{cleaned}");
    }

    #[test]
    fn last_separator_in_window_is_used() {
        let post = "From: a@b.c\n\nBody text.\n--\nmiddle part\n--\nsignature\n";
        assert_eq!(strip_newsgroup(post), "Body text.\n--\nmiddle part");
    }

    #[test]
    fn framed_signature_after_delimiter_is_dropped() {
        let post =
            "From: a@b.c\n\nBody text.\n-- \n------------\nAnn Smith\nA quotation\n------------\n";
        assert_eq!(strip_newsgroup(post), "Body text.");
    }

    #[test]
    fn single_dash_and_dashed_words_are_not_separators() {
        let post = "From: a@b.c\n\nFirst item\n-\nsecond -- third\n";
        assert_eq!(strip_newsgroup(post), "First item\n-\nsecond -- third");
    }

    #[test]
    fn attribution_variants_are_dropped() {
        let body = "From: x@y.z\n\n\
            In article <C5sy1z.123@news.example.com>, someone@example.com\n\
            (Some One) writes:\n\
            Jane Roe WROTE:\n\
            The archbishop says:\n  > indented quote\n\
            ||> nested quote\n\
            He says: this line stays.\n\
            Kept line.";
        assert_eq!(
            strip_newsgroup(body),
            "He says: this line stays.\nKept line."
        );
    }

    #[test]
    fn empty_input_stays_empty() {
        assert_eq!(strip_newsgroup(""), "");
    }

    #[test]
    fn non_ascii_line_end_does_not_panic() {
        let post = "From: a@b.c\n\nCaf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e \u{1f600}\n";
        assert_eq!(
            strip_newsgroup(post),
            "Caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e \u{1f600}"
        );
    }
}
