//! Writes a [`Diagram`] as a Mermaid `sequenceDiagram`, the text form
//! that GitHub, GitLab, many wikis and note apps draw by themselves, so a
//! student can paste a trace's story into their notes and edit it.
//!
//! Participants get short ids (`p0`, `p1`, ...) with the node name as
//! their label, because names like `smtp.school.test` or `end` are not
//! valid ids. Message text is escaped with Mermaid's entity codes: `;`
//! would end the statement, `#` starts an entity, and `<`/`>` would be
//! read as HTML (`<bob@example.org>` would vanish).

use std::fmt::Write;

use super::model::{ArrowKind, Diagram, Item};

/// The Mermaid source of `diagram`.
pub fn render(diagram: &Diagram) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let _ = writeln!(out, "    title {}", text(&diagram.title));
    for (i, name) in diagram.participants.iter().enumerate() {
        let _ = writeln!(out, "    participant p{i} as {}", text(name));
    }
    let last = diagram.participants.len().saturating_sub(1);
    for item in &diagram.items {
        match item {
            Item::Arrow { from, to, kind, encrypted, text: label, .. } => {
                let arrow = match kind {
                    ArrowKind::Request => "->>",
                    ArrowKind::Reply => "-->>",
                    ArrowKind::Failed => "-x",
                };
                let lock = if *encrypted { "[TLS] " } else { "" };
                let _ = writeln!(out, "    p{from}{arrow}p{to}: {lock}{}", text(label));
            }
            Item::Note { first, last, text: note, .. } if first == last => {
                let _ = writeln!(out, "    Note over p{first}: {}", text(note));
            }
            Item::Note { first, last, text: note, .. } => {
                let _ = writeln!(out, "    Note over p{first},p{last}: {}", text(note));
            }
            Item::Divider { text: label } => {
                let span = if last == 0 { "p0".to_string() } else { format!("p0,p{last}") };
                let _ = writeln!(out, "    Note over {span}: {}", text(label));
            }
        }
    }
    out
}

/// Text safe after `:` in a Mermaid statement (and as a participant label).
fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\r' | '\n' | '\t' => out.push(' '),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.is_empty() { "·".to_string() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::model::{build, tests::story};

    #[test]
    fn participants_arrows_and_notes() {
        let source = render(&build(&story(), None).unwrap());
        let lines: Vec<&str> = source.lines().collect();
        assert_eq!(lines[0], "sequenceDiagram");
        assert_eq!(lines[1], "    title Alice writes to Bob");
        assert_eq!(lines[2], "    participant p0 as alice-laptop");
        assert!(lines.contains(&"    p0->>p1: MAIL FROM:#lt;a@b#gt;"), "{source}");
        assert!(lines.contains(&"    p1-->>p0: 220 hi"));
        assert!(lines.contains(&"    p2-->>p1: MX 10 mx1.example.org, MX 20 mx2.example.org"));
        assert!(lines.contains(&"    Note over p1: SMTP-1 deferred, retry at 00:15:00"));
        assert!(lines.contains(&"    Note over p0,p4: step 1: alice-laptop sends"));
    }

    #[test]
    fn escapes_what_mermaid_would_read() {
        assert_eq!(text("a;b #c <d>\nx"), "a#59;b #35;c #lt;d#gt; x");
        assert_eq!(text("  "), "·");
    }
}
